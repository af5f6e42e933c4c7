//! Fisher-Flow: flow matching on the positive orthant of the sphere, with the linear simplex
//! baseline, minibatch optimal transport, training and sampling.

pub mod kernels;
pub mod ot;
