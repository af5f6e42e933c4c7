//! `--signal FILE` of `train` and `sample`: per-position signal tracks, one channel a file (the
//! flag repeated for more channels), one track a line.

use std::path::PathBuf;

use fisherflow::budget;
use fisherflow::data::SignalTracks;
use fisherflow::{Error, Result};

use super::common::flag_error;

/// Refuses a --signal path that is not a readable regular file, or whose values could not be
/// held in memory, before any work.
pub fn check_files(files: &[PathBuf]) -> Result<()> {
    for f in files {
        let meta = std::fs::metadata(f)
            .map_err(|e| Error::InvalidArgument(format!("--signal {}: {e}", f.display())))?;
        if !meta.is_file() {
            return Err(Error::InvalidArgument(format!(
                "--signal {}: not a regular file",
                f.display()
            )));
        }
        // Each value takes at least two bytes of text (a digit and a separator) and four in
        // memory, beside the text itself.
        let need = (meta.len() as u128).saturating_mul(3);
        if let Some(avail) = budget::host_available().filter(|&a| need > a) {
            return Err(Error::InvalidArgument(format!(
                "--signal {}: reading it needs about {} of memory, more than the {} available",
                f.display(),
                budget::human(need),
                budget::human(avail)
            )));
        }
    }
    Ok(())
}

/// The tracks of `files` (channel j from file j) for `n` sequences of length `len`, or `None`
/// when no file is given; `what` names the sequences in errors (`--data x.fa has`, `--n is`).
pub fn read(files: &[PathBuf], len: usize, n: usize, what: &str) -> Result<Option<SignalTracks>> {
    if files.is_empty() {
        return Ok(None);
    }
    check_files(files)?;
    let mut parts = Vec::with_capacity(files.len());
    for f in files {
        let t = SignalTracks::read(f, len).map_err(|e| flag_error("--signal", e))?;
        if t.n != n {
            return Err(Error::InvalidArgument(format!(
                "--signal {}: {} tracks, but {what} {n} (one track a line, line i for sequence \
                 i)",
                f.display(),
                t.n
            )));
        }
        parts.push(t);
    }
    SignalTracks::stack(&parts)
        .map(Some)
        .map_err(|e| flag_error("--signal", e))
}
