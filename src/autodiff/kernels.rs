//! Host side of `shaders/autodiff.wgsl`: the element-wise kernels of the autodiff ops. The CPU
//! reference of every kernel is the matching instruction in [`CpuExecutor`](super::CpuExecutor);
//! the tests compare the two backends op by op.

use crate::gpu::{lib, KernelDef, ShaderDef};

/// `shaders/autodiff.wgsl` with the grid and activation preludes, in f32 or f16 storage.
pub static SHADER: ShaderDef = ShaderDef::storage_generic(
    "autodiff",
    &[
        lib::GRID,
        lib::ACT,
        include_str!("../../shaders/autodiff.wgsl"),
    ],
)
.slots(&["x", "y", "z", "out", "xf", "outf"]);

const XO: &[&str] = &["x", "out"];
const XYO: &[&str] = &["x", "y", "out"];

/// `out = f(x)`.
pub static ACT_FWD: KernelDef = KernelDef::new(&SHADER, "act_fwd", XO).params::<AutodiffParams>();
/// `out (+)= gy · f'(x)`.
pub static ACT_BWD: KernelDef = KernelDef::new(&SHADER, "act_bwd", XYO).params::<AutodiffParams>();
/// `out (+)= s·x + c`.
pub static SCALE_ADD: KernelDef =
    KernelDef::new(&SHADER, "scale_add", XO).params::<AutodiffParams>();
/// A column block copy.
pub static COL_COPY: KernelDef = KernelDef::new(&SHADER, "col_copy", XO).params::<AutodiffParams>();
/// `out = [x, y]` row by row.
pub static CONCAT2: KernelDef = KernelDef::new(&SHADER, "concat2", XYO).params::<AutodiffParams>();
/// `out (+)= s·x[0]`.
pub static BROADCAST: KernelDef =
    KernelDef::new(&SHADER, "broadcast", XO).params::<AutodiffParams>();
/// The running loss sum.
pub static LOSS_ACCUM: KernelDef = KernelDef::new(&SHADER, "loss_accum", XO)
    .params::<AutodiffParams>()
    .workgroup(1);
/// `out = x + b[col]`.
pub static BIAS_ADD: KernelDef =
    KernelDef::new(&SHADER, "bias_add", XYO).params::<AutodiffParams>();
/// `out (+)= x + y` or `x ⊙ y`.
pub static BINARY: KernelDef = KernelDef::new(&SHADER, "binary", XYO).params::<AutodiffParams>();
/// `out (+)= s·g[0]·(a − b)`.
pub static SQDIFF_GRAD: KernelDef =
    KernelDef::new(&SHADER, "sqdiff_grad", &["x", "y", "z", "out"]).params::<AutodiffParams>();

/// `out = E(xf)`.
pub static TO_STORAGE: KernelDef =
    KernelDef::new(&SHADER, "to_storage", &["xf", "out"]).params::<AutodiffParams>();
/// `outf = f32(x)`.
pub static TO_F32: KernelDef =
    KernelDef::new(&SHADER, "to_f32", &["x", "outf"]).params::<AutodiffParams>();
/// `outf = c`.
pub static FILL_F32: KernelDef =
    KernelDef::new(&SHADER, "fill_f32", &["outf"]).params::<AutodiffParams>();

/// `shaders/seq.wgsl`: the kernels of the sequence-model ops (normalisation, per-channel
/// affine maps, per-sequence broadcasts, embeddings), in f32 or f16 storage.
pub static SEQ: ShaderDef = ShaderDef::storage_generic(
    "seq",
    &[lib::GRID, lib::TREE, include_str!("../../shaders/seq.wgsl")],
)
.slots(&["x", "y", "z", "out"]);

/// Normalisation of every row.
pub static NORM_FWD: KernelDef = KernelDef::new(&SEQ, "norm_fwd", XO).params::<SeqParams>();
/// Its input gradient.
pub static NORM_BWD: KernelDef = KernelDef::new(&SEQ, "norm_bwd", XYO).params::<SeqParams>();
/// `out = x ⊙ y[col] + z[col]`.
pub static CHAN_AFFINE: KernelDef =
    KernelDef::new(&SEQ, "chan_affine", &["x", "y", "z", "out"]).params::<SeqParams>();
/// `out (+)= x ⊙ y[col]`.
pub static CHAN_SCALE: KernelDef = KernelDef::new(&SEQ, "chan_scale", XYO).params::<SeqParams>();
/// `out[col] (+)= Σ_r x ⊙ y`.
pub static COL_DOT: KernelDef = KernelDef::new(&SEQ, "col_dot", XYO).params::<SeqParams>();
/// `out = x + y[sequence]`.
pub static SEQ_ADD: KernelDef = KernelDef::new(&SEQ, "seq_add", XYO).params::<SeqParams>();
/// `out[sequence] (+)= Σ_positions x`.
pub static SEQ_SUM: KernelDef = KernelDef::new(&SEQ, "seq_sum", XO).params::<SeqParams>();
/// `out = y[label x]`.
pub static EMBED: KernelDef = KernelDef::new(&SEQ, "embed", XYO).params::<SeqParams>();
/// The table gradient of [`EMBED`].
pub static EMBED_GRAD: KernelDef = KernelDef::new(&SEQ, "embed_grad", XYO).params::<SeqParams>();

/// Every kernel of the family.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![
        &NORM_FWD,
        &NORM_BWD,
        &CHAN_AFFINE,
        &CHAN_SCALE,
        &COL_DOT,
        &SEQ_ADD,
        &SEQ_SUM,
        &EMBED,
        &EMBED_GRAD,
        &TO_STORAGE,
        &TO_F32,
        &FILL_F32,
        &ACT_FWD,
        &ACT_BWD,
        &SCALE_ADD,
        &COL_COPY,
        &CONCAT2,
        &BROADCAST,
        &LOSS_ACCUM,
        &BIAS_ADD,
        &BINARY,
        &SQDIFF_GRAD,
    ]
}

crate::gpu_params! {
    /// The uniform block shared by every kernel of `autodiff.wgsl` (fields unused by a kernel
    /// are ignored).
    pub struct AutodiffParams {
        /// Elements, rows or columns, per kernel.
        pub n: u32,
        /// Rows.
        pub rows: u32,
        /// Columns.
        pub cols: u32,
        /// Kernel mode (activation code, binary op).
        pub mode: u32,
        /// 1: accumulate into the output.
        pub acc: u32,
        /// Columns of the input (column copy).
        pub x_cols: u32,
        /// Columns of the output (column copy).
        pub y_cols: u32,
        /// First input column (column copy).
        pub x_off: u32,
        /// First output column (column copy).
        pub y_off: u32,
        /// Columns copied.
        pub width: u32,
        /// Scale.
        pub s: f32,
        /// Additive constant.
        pub c: f32,
        /// LeakyReLU slope.
        pub slope: f32,
        /// Padding.
        pub _pad0: u32,
        /// Padding.
        pub _pad1: u32,
        /// Padding.
        pub _pad2: u32,
    }
}

crate::gpu_params! {
    /// The uniform block of `seq.wgsl` (fields unused by a kernel are ignored).
    pub struct SeqParams {
        /// Rows.
        pub rows: u32,
        /// Columns.
        pub cols: u32,
        /// Rows per sequence.
        pub seq: u32,
        /// Rows of an embedding table.
        pub n: u32,
        /// 1: accumulate into the output.
        pub acc: u32,
        /// Normalisation epsilon.
        pub eps: f32,
        /// Padding.
        pub _pad0: u32,
        /// Padding.
        pub _pad1: u32,
    }
}
