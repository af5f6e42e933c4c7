//! Running the `fisherflow` binary from the end-to-end tests: in the temporary directory (so
//! nothing in the working directory changes what it does), with its output captured.

#![allow(dead_code)]

use std::process::{Command, Output};

/// The binary, run in the temporary directory with `XDG_RUNTIME_DIR` set there.
pub fn fisherflow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fisherflow"));
    c.current_dir(std::env::temp_dir())
        .env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

/// Run the binary with `args` and wait for it.
pub fn run(args: &[&str]) -> Output {
    fisherflow().args(args).output().expect("the binary runs")
}

/// Standard output and standard error together.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[path = "tmp.rs"]
mod tmp;
pub use tmp::tmpdir;
