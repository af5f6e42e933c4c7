//! SIGINT and SIGTERM. A command that can stop cleanly (train: after the current step, with a
//! checkpoint; sample: before the next chunk, without output) asks for a [`graceful`] first
//! signal and polls [`stop_requested`]; any other signal ends the process at once, after the
//! temporaries of unfinished outputs are removed. A broken pipe ends the process quietly.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

static GRACEFUL: AtomicBool = AtomicBool::new(false);
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Installs the handlers (once, at start-up).
pub fn install() {
    // Writing to a closed pipe (`| head`) ends the process as it does any Unix tool, instead of
    // turning every later print into an error.
    #[cfg(unix)]
    // SAFETY: resetting a signal's disposition to the default is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: cannot handle SIGINT/SIGTERM ({e}); an interrupted run may leave temporary files");
            return;
        }
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            let first = RECEIVED
                .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            if first && GRACEFUL.load(Ordering::SeqCst) {
                eprintln!(
                    "\n{}: stopping cleanly (send it again to stop at once)",
                    name(sig)
                );
                continue;
            }
            fisherflow::data::file::remove_pending();
            std::process::exit(128 + sig);
        }
    });
}

/// From now on a first signal asks the command to stop ([`stop_requested`]) instead of ending
/// the process.
pub fn graceful() {
    GRACEFUL.store(true, Ordering::SeqCst);
}

/// Whether a signal asked the command to stop.
pub fn stop_requested() -> bool {
    RECEIVED.load(Ordering::SeqCst) != 0
}

/// The signal that stopped the command, if one did.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// `SIGINT` or `SIGTERM`.
pub fn name(sig: i32) -> &'static str {
    if sig == SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    }
}

/// The error a command returns when a signal stopped it.
pub fn stopped(what: &str) -> fisherflow::Error {
    let sig = received().map_or("a signal", name);
    fisherflow::Error::Stopped(format!("stopped by {sig}: {what}"))
}
