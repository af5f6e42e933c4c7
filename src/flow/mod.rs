//! Fisher-Flow: flow matching on the positive orthant of the sphere, with the simplex
//! baselines (linear flow matching, Dirichlet flow matching, the Fisher–Rao flow on the
//! simplex), minibatch optimal transport, training and sampling.

pub mod batch;
pub mod cond;
pub mod devices;
pub mod dirichlet;
pub mod field;
pub mod kernels;
pub mod meta;
pub mod methods;
pub mod nll;
pub mod ode;
pub mod ot;
pub mod pairing;
pub mod paths;
pub mod plateau;
pub mod sample;
pub mod simplex_fr;
pub mod source;
pub mod toybench;
pub mod train;

pub use cond::{Conditioning, SampleClasses};
pub use field::FieldNet;

/// Every kernel of the Fisher-Flow families.
pub fn kernels() -> Vec<&'static crate::gpu::KernelDef> {
    [
        kernels::kernels(),
        ot::kernels(),
        paths::kernels(),
        nll::kernels::kernels(),
    ]
    .concat()
}
pub use meta::{DataInfo, OtKind, RunConfig, ScheduleKind};
pub use ode::{Adaptive, Solver};
pub use pairing::OtPairing;
pub use sample::{
    sample, sample_into, sample_labels, sample_with_progress, sample_with_stats, FlowModel,
    SampleConfig, SampleStats,
};
pub use source::DataSource;
pub use train::{FlowConfig, Geometry, LrSchedule, OtMode, TrainConfig, Trainer};
