//! The crate's error type. Every fallible public function returns [`Result`].

use std::fmt;

/// Everything that can go wrong in fisherflow, with a message that says what and why.
#[derive(Debug)]
pub enum Error {
    /// No usable GPU adapter was found (or none matched the requested name).
    NoAdapter(String),
    /// The adapter refused to create a device, or a device was lost.
    Device(String),
    /// A wgpu validation error caught by an error scope (a bug in a kernel launch, or an input
    /// that slipped past the host-side checks).
    Validation(String),
    /// The GPU ran out of memory.
    OutOfMemory(String),
    /// Tensor shapes do not fit together, or a size is zero or out of range.
    Shape(String),
    /// An argument outside its allowed range (t outside [0, 1], a negative step count, ...).
    InvalidArgument(String),
    /// A size over a limit: the adapter's (one that cannot be split into chunks), the host's
    /// memory, or a bound of the crate.
    Limit(String),
    /// A malformed input file; the message names the file and line.
    Parse(String),
    /// A checkpoint that is corrupt, truncated or does not match the model.
    Checkpoint(String),
    /// Training diverged (NaN or inf).
    NonFinite(String),
    /// An operating-system I/O error, with the path it concerned.
    Io(String, std::io::Error),
    /// The run was stopped by a signal; the message says what was kept.
    Stopped(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoAdapter(m) => write!(f, "no GPU adapter: {m}"),
            Error::Device(m) => write!(f, "GPU device error: {m}"),
            Error::Validation(m) => write!(f, "GPU validation error: {m}"),
            Error::OutOfMemory(m) => write!(f, "GPU out of memory: {m}"),
            Error::Shape(m) => write!(f, "shape error: {m}"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::Limit(m) => write!(f, "limit exceeded: {m}"),
            Error::Parse(m) => write!(f, "{m}"),
            Error::Checkpoint(m) => write!(f, "checkpoint error: {m}"),
            Error::NonFinite(m) => write!(f, "non-finite value: {m}"),
            Error::Io(path, e) => write!(f, "{path}: {e}"),
            Error::Stopped(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for returning a [`Error::Shape`] error with a formatted message.
#[macro_export]
macro_rules! shape_err {
    ($($arg:tt)*) => { $crate::Error::Shape(format!($($arg)*)) };
}

/// Shorthand for returning a [`Error::InvalidArgument`] error with a formatted message.
#[macro_export]
macro_rules! arg_err {
    ($($arg:tt)*) => { $crate::Error::InvalidArgument(format!($($arg)*)) };
}
