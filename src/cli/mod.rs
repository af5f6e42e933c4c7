//! Subcommands of the `fisherflow` binary, one module each, and what they share.

pub mod bench;
pub mod common;
pub mod data;
pub mod devices;
pub mod nll;
pub mod report;
pub mod sample;
pub mod sdflow;
pub mod signals;
pub mod tn;
pub mod toybench;
pub mod tracks;
pub mod train;
pub mod train_sizes;
