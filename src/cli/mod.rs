//! Subcommands of the `fisherflow` binary, one module each.

pub mod bench;
pub mod data;
pub mod devices;
pub mod flow;
pub mod sdflow;
pub mod tn;
