//! Fisher-Flow: flow matching on the positive orthant of the sphere.

pub mod kernels;
