//! Fisher-Flow: flow matching on the positive orthant of the sphere, with the linear simplex
//! baseline, minibatch optimal transport, training and sampling.

pub mod batch;
pub mod cond;
pub mod devices;
pub mod field;
pub mod kernels;
pub mod meta;
pub mod nll;
pub mod ode;
pub mod ot;
pub mod sample;
pub mod toybench;
pub mod train;

pub use cond::Conditioning;
pub use field::FieldNet;

/// Every kernel of the Fisher-Flow families.
pub fn kernels() -> Vec<&'static crate::gpu::KernelDef> {
    [kernels::kernels(), ot::kernels(), nll::kernels::kernels()].concat()
}
pub use meta::{DataInfo, OtKind, RunConfig, ScheduleKind};
pub use ode::{Adaptive, Solver};
pub use sample::{
    sample, sample_into, sample_with_progress, sample_with_stats, FlowModel, SampleConfig,
    SampleStats,
};
pub use train::{FlowConfig, Geometry, LrSchedule, OtMode, TrainConfig, Trainer};
