//! Subcommands of the `fisherflow` binary, one module each.

pub mod devices;
pub mod tn;
