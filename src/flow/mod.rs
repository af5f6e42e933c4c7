//! Flow-matching building blocks.

pub mod ot;
