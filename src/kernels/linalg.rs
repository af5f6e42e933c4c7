//! Dense matrix multiplication: `c = act(alpha · op(a)·op(b) + bias)` with optional transposes,
//! a fused bias + activation epilogue, or accumulation into `c` (`c += act(…)`, which fuses a
//! residual connection).
//!
//! All matrices are row-major, stored in f32 or f16 ([`Gemm::precision`]; arithmetic is f32
//! either way). Operands are [`View`]s: a range of elements of a buffer, so several matrices
//! can live in one buffer at any element offset.
//!
//! Two kernels ([`GemmKernel`]): a workgroup-memory tiled kernel for GPUs, and a subgroup
//! kernel for software Vulkan on CPUs (lavapipe), where non-uniform loads are the bottleneck.

use crate::error::{Error, Result};
use crate::gpu::{
    lib, u32_of, Arg, Element, GpuContext, GpuTensor, KernelDef, Recorder, ShaderDef, Work,
};
use crate::kernels::{Activation, Precision};

pub(crate) const GEMM_SLOTS: &[&str] = &["a", "b", "bias", "c"];
pub(crate) const GEMM_PRELUDE: &str = include_str!("../../shaders/lib/gemm_prelude.wgsl");
pub(crate) const TILES: &str = include_str!("../../shaders/matmul.wgsl");

/// The tiled gemm with scalar loads (any shapes and offsets), in f32 or f16 storage.
pub static MATMUL_SCALAR: ShaderDef = ShaderDef::storage_generic(
    "matmul_scalar",
    &[
        lib::ACT,
        GEMM_PRELUDE,
        TILES,
        include_str!("../../shaders/matmul_scalar.wgsl"),
    ],
)
.slots(GEMM_SLOTS);

/// The tiled gemm with vec4 loads, in f32 or f16 storage.
pub static MATMUL_VEC4: ShaderDef = ShaderDef::storage_generic(
    "matmul_vec4",
    &[
        lib::ACT,
        GEMM_PRELUDE,
        TILES,
        include_str!("../../shaders/matmul_vec4.wgsl"),
    ],
)
.slots(GEMM_SLOTS);

/// The gemm for CPU adapters with 8-wide subgroups ([`GemmKernel::Subgroup8`]), in f32 or f16
/// storage.
pub static MATMUL_CPU: ShaderDef = ShaderDef::storage_generic(
    "matmul_cpu",
    &[
        lib::ACT,
        GEMM_PRELUDE,
        include_str!("../../shaders/matmul_cpu.wgsl"),
    ],
)
.slots(GEMM_SLOTS);

/// Tiled gemm, scalar loads.
pub static GEMM_SCALAR: KernelDef =
    KernelDef::new(&MATMUL_SCALAR, "gemm_scalar", GEMM_SLOTS).params::<GemmParams>();
/// Tiled gemm, vec4 loads.
pub static GEMM_VEC4: KernelDef =
    KernelDef::new(&MATMUL_VEC4, "gemm_vec4", GEMM_SLOTS).params::<GemmParams>();
/// Subgroup gemm for CPU adapters.
pub static GEMM_SG8: KernelDef = KernelDef::new(&MATMUL_CPU, "gemm_sg8", GEMM_SLOTS)
    .params::<GemmParams>()
    .workgroup(8);

/// Every kernel of the family.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![&GEMM_SCALAR, &GEMM_VEC4, &GEMM_SG8]
}

/// A view of `len` elements starting at element `offset` of a buffer (the kernel binds the
/// buffer and adds the offset itself, so there is no alignment constraint on `offset`).
/// Elements are f32 unless the operation says otherwise ([`Gemm::precision`]).
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// The buffer holding the elements.
    pub buffer: &'a wgpu::Buffer,
    /// First element (in elements, not bytes).
    pub offset: u64,
    /// Number of elements.
    pub len: u64,
}

impl<'a> View<'a> {
    /// The whole tensor.
    pub fn of<T: Element>(t: &'a GpuTensor<T>) -> Self {
        Self {
            buffer: t.buffer(),
            offset: 0,
            len: t.len() as u64,
        }
    }

    /// `len` elements of `t` from element `offset`; errors when the range leaves the tensor.
    pub fn slice<T: Element>(t: &'a GpuTensor<T>, offset: u64, len: u64) -> Result<Self> {
        let end = offset.checked_add(len);
        if end.is_none_or(|e| e > t.len() as u64) {
            return Err(Error::Shape(format!(
                "view of {len} elements at offset {offset} leaves a tensor of {} elements",
                t.len()
            )));
        }
        Ok(Self {
            buffer: t.buffer(),
            offset,
            len,
        })
    }

    /// Check that the view of f32 elements lies inside its buffer.
    pub(crate) fn check(&self, what: &str) -> Result<()> {
        self.check_elems(what, 4)
    }

    /// Check that the view of `elem`-byte elements lies inside its buffer.
    pub(crate) fn check_elems(&self, what: &str, elem: u64) -> Result<()> {
        let end = self
            .offset
            .checked_add(self.len)
            .and_then(|e| e.checked_mul(elem));
        match end {
            Some(e) if e <= self.buffer.size() => Ok(()),
            _ => Err(Error::Shape(format!(
                "{what}: view of {} elements at element offset {} runs past the end of its buffer ({} bytes)",
                self.len,
                self.offset,
                self.buffer.size()
            ))),
        }
    }

    /// Whether two views share a buffer and overlap.
    pub(crate) fn overlaps(&self, other: &View) -> bool {
        self.buffer == other.buffer
            && self.offset < other.offset + other.len
            && other.offset < self.offset + self.len
    }

    /// A binding covering the view of f32 elements: the buffer from the aligned offset at or
    /// below the view's first byte up to the view's end rounded up to `round` bytes (capped at
    /// the buffer size). Returns the resource and the view's element offset inside the binding.
    pub(crate) fn bind(
        &self,
        ctx: &GpuContext,
        what: &str,
        round: u64,
    ) -> Result<(wgpu::BindingResource<'a>, u32)> {
        self.bind_elems(ctx, what, round, 4)
    }

    /// [`View::bind`] for elements of `elem` bytes.
    pub(crate) fn bind_elems(
        &self,
        ctx: &GpuContext,
        what: &str,
        round: u64,
        elem: u64,
    ) -> Result<(wgpu::BindingResource<'a>, u32)> {
        // Storage bindings are whole multiples of 4 bytes.
        let round = round.max(4);
        let align = ctx.limits().min_storage_buffer_offset_alignment.max(4) as u64;
        let first = self.offset * elem;
        let start = first - first % align;
        let end = ((self.offset + self.len.max(1)) * elem)
            .div_ceil(round)
            .saturating_mul(round)
            .min(self.buffer.size());
        let size = end - start;
        let max = ctx.limits().max_storage_buffer_binding_size;
        if size > max {
            return Err(Error::Limit(format!(
                "{what}: binding {size} bytes exceeds the adapter's storage binding limit of {max} bytes"
            )));
        }
        let inner = u32::try_from((first - start) / elem)
            .map_err(|_| Error::Limit(format!("{what}: offset out of range")))?;
        Ok((
            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: self.buffer,
                offset: start,
                size: std::num::NonZeroU64::new(size),
            }),
            inner,
        ))
    }
}

/// The shape and options of one matrix product; see [`gemm`](fn@gemm).
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    /// Rows of `op(a)` and `c`.
    pub m: usize,
    /// Columns of `op(b)` and `c`.
    pub n: usize,
    /// Columns of `op(a)`, rows of `op(b)`.
    pub k: usize,
    /// `op(a) = aᵀ`, with `a` stored row-major `[k, m]`.
    pub trans_a: bool,
    /// `op(b) = bᵀ`, with `b` stored row-major `[n, k]`.
    pub trans_b: bool,
    /// Scale of the product.
    pub alpha: f32,
    /// Add into `c` instead of overwriting it: `c += act(alpha · op(a)·op(b) + bias)` (with
    /// an activation, a fused residual connection).
    pub accumulate: bool,
    /// Activation applied after bias.
    pub activation: Activation,
    /// Storage type of every operand (`a`, `b`, `bias`, `c`); arithmetic is f32.
    pub precision: Precision,
}

impl Gemm {
    /// `c[m×n] = a[m×k] · b[k×n]`: no transposes, alpha 1, no accumulation, identity.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Self {
            m,
            n,
            k,
            trans_a: false,
            trans_b: false,
            alpha: 1.0,
            accumulate: false,
            activation: Activation::Identity,
            precision: Precision::F32,
        }
    }
    /// Set [`Gemm::trans_a`].
    pub fn trans_a(mut self, t: bool) -> Self {
        self.trans_a = t;
        self
    }
    /// Set [`Gemm::trans_b`].
    pub fn trans_b(mut self, t: bool) -> Self {
        self.trans_b = t;
        self
    }
    /// Set [`Gemm::alpha`].
    pub fn alpha(mut self, alpha: f32) -> Self {
        self.alpha = alpha;
        self
    }
    /// Set [`Gemm::accumulate`].
    pub fn accumulate(mut self, acc: bool) -> Self {
        self.accumulate = acc;
        self
    }
    /// Set [`Gemm::activation`].
    pub fn activation(mut self, act: Activation) -> Self {
        self.activation = act;
        self
    }
    /// Set [`Gemm::precision`].
    pub fn precision(mut self, p: Precision) -> Self {
        self.precision = p;
        self
    }

    /// Check the options and the operand lengths (`bias` is the bias length when present).
    fn check(&self, a: u64, b: u64, bias: Option<u64>, c: u64) -> Result<()> {
        let (m, n, k) = (self.m, self.n, self.k);
        if m == 0 || n == 0 || k == 0 {
            return Err(Error::Shape(format!(
                "gemm with a zero dimension (m={m}, n={n}, k={k})"
            )));
        }
        let prod = |x: usize, y: usize, what: &str| {
            x.checked_mul(y)
                .map(|v| v as u64)
                .ok_or_else(|| Error::Shape(format!("gemm: {what} size {x}×{y} overflows")))
        };
        let want = [
            ("a", prod(m, k, "a")?, a),
            ("b", prod(k, n, "b")?, b),
            ("c", prod(m, n, "c")?, c),
        ];
        for (name, w, got) in want {
            if w != got {
                let shape = match (name, self.trans_a, self.trans_b) {
                    ("a", false, _) => format!("[{m}, {k}]"),
                    ("a", true, _) => format!("[{k}, {m}]"),
                    ("b", _, false) => format!("[{k}, {n}]"),
                    ("b", _, true) => format!("[{n}, {k}]"),
                    _ => format!("[{m}, {n}]"),
                };
                return Err(Error::Shape(format!(
                    "gemm m={m} n={n} k={k}: {name} must hold {shape} = {w} elements, its view has {got}"
                )));
            }
        }
        if let Some(l) = bias {
            if l != n as u64 {
                return Err(Error::Shape(format!(
                    "gemm: bias must hold n = {n} elements, its view has {l}"
                )));
            }
        }
        Ok(())
    }
}

crate::gpu_params! {
    /// Parameters of the gemm kernels.
    pub struct GemmParams {
        /// Rows of `c`.
        pub m: u32,
        /// Columns of `c`.
        pub n: u32,
        /// Inner dimension.
        pub k: u32,
        /// 1 trans_a, 2 trans_b, 4 accumulate, 8 has bias.
        pub flags: u32,
        /// Activation code.
        pub act: u32,
        /// Element offset of `a` in its binding.
        pub a_off: u32,
        /// Element offset of `b` in its binding.
        pub b_off: u32,
        /// Element offset of `c` in its binding.
        pub c_off: u32,
        /// Element offset of the bias in its binding.
        pub bias_off: u32,
        /// Scale of the product.
        pub alpha: f32,
        /// Leaky ReLU slope.
        pub slope: f32,
        /// Convolutions ([`super::conv`]): positions per sequence.
        pub seq: u32,
        /// Convolutions: channels per position of the convolved operand.
        pub chans: u32,
        /// Convolutions: kernel size.
        pub taps: u32,
        /// Convolutions: dilation.
        pub dil: u32,
        /// Convolutions: 1 for the transposed convolution.
        pub flip: u32,
    }
}

const TRANS_A: u32 = 1;
const TRANS_B: u32 = 2;
const ACCUMULATE: u32 = 4;
const HAS_BIAS: u32 = 8;

/// Rows and columns of `c` computed by one workgroup of the tiled kernels.
const SG_ROWS: usize = 32;
const SG_COLS: usize = 16;
const TILE_M: usize = 64;
const TILE_N: usize = 64;

/// Record `c[m×n] = act(alpha · op(a)·op(b) + bias[n])` (bias optional, broadcast over rows),
/// or with [`Gemm::accumulate`] `c += act(alpha · op(a)·op(b) + bias)`.
///
/// `op(a)` is `a` (row-major `[m, k]`) or `aᵀ` (`a` stored `[k, m]`); `op(b)` is `b` (`[k, n]`)
/// or `bᵀ` (`b` stored `[n, k]`). `c` may not share a buffer with `a`, `b` or `bias` (wgpu
/// forbids binding one buffer both read-only and writable in one dispatch). The recording
/// holds the bind group, so replaying it allocates nothing.
pub fn gemm(
    ctx: &GpuContext,
    rec: &mut Recorder,
    g: &Gemm,
    a: View,
    b: View,
    bias: Option<View>,
    c: View,
) -> Result<()> {
    gemm_with(ctx, rec, g, a, b, bias, c, GemmKernel::Auto)
}

/// Which kernel [`gemm_with`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmKernel {
    /// `Subgroup8` on a CPU adapter with 8-wide subgroups, else `Tiled` (what [`gemm`](fn@gemm) uses).
    Auto,
    /// Workgroup-memory tiles (64×64×32, 256 invocations, 4×4 register blocks), vec4 global
    /// loads when every operand's contiguous dimension and offset are multiples of 4.
    Tiled,
    /// One 8-invocation subgroup per 32×16 block, A values shared by `subgroupBroadcast`: for
    /// software Vulkan (lavapipe), where every non-uniform load is done lane by lane.
    Subgroup8,
}

/// Whether the adapter suits [`GemmKernel::Subgroup8`]: a CPU with the SUBGROUP feature and
/// subgroups of exactly 8 invocations.
pub fn subgroup8_suits(ctx: &GpuContext) -> bool {
    let info = ctx.adapter_info();
    info.device_type == wgpu::DeviceType::Cpu
        && ctx.features().contains(wgpu::Features::SUBGROUP)
        && info.subgroup_min_size == 8
        && info.subgroup_max_size == 8
}

/// [`gemm`](fn@gemm) with an explicit choice of kernel (same semantics and checks).
#[allow(clippy::too_many_arguments)]
pub fn gemm_with(
    ctx: &GpuContext,
    rec: &mut Recorder,
    g: &Gemm,
    a: View,
    b: View,
    bias: Option<View>,
    c: View,
    kernel: GemmKernel,
) -> Result<()> {
    g.check(a.len, b.len, bias.map(|v| v.len), c.len)?;
    g.precision.check(ctx)?;
    let elem = g.precision.bytes();
    a.check_elems("gemm a", elem)?;
    b.check_elems("gemm b", elem)?;
    c.check_elems("gemm c", elem)?;
    if let Some(bv) = &bias {
        bv.check_elems("gemm bias", elem)?;
    }
    for (name, v) in [("a", Some(a)), ("b", Some(b)), ("bias", bias)] {
        let Some(v) = v else { continue };
        if v.buffer == c.buffer {
            let how = if c.overlaps(&v) {
                "overlaps"
            } else {
                "shares a buffer with"
            };
            return Err(Error::InvalidArgument(format!(
                "gemm: c {how} {name}; the output must be in a different buffer from the inputs \
                 (one dispatch cannot bind a buffer both read-only and read-write)"
            )));
        }
    }
    let sg8 = match kernel {
        GemmKernel::Auto => subgroup8_suits(ctx),
        GemmKernel::Tiled => false,
        GemmKernel::Subgroup8 => {
            if !subgroup8_suits(ctx) {
                return Err(Error::InvalidArgument(
                    "gemm: the Subgroup8 kernel needs a CPU adapter with the SUBGROUP feature and \
                     subgroups of exactly 8 invocations"
                        .into(),
                ));
            }
            true
        }
    };
    let (tiles_m, tiles_n) = if sg8 {
        (g.m.div_ceil(SG_ROWS), g.n.div_ceil(SG_COLS))
    } else {
        (g.m.div_ceil(TILE_M), g.n.div_ceil(TILE_N))
    };
    let max = ctx.limits().max_compute_workgroups_per_dimension as usize;
    if tiles_m > max || tiles_n > max {
        return Err(Error::Limit(format!(
            "gemm m={} n={}: {tiles_m}×{tiles_n} tiles exceed {max} workgroups per dimension",
            g.m, g.n
        )));
    }
    // The vec4 kernel needs every operand's contiguous dimension and in-binding offset to be
    // multiples of 4; the scalar kernel takes anything.
    let a_inner = if g.trans_a { g.m } else { g.k };
    let b_inner = if g.trans_b { g.k } else { g.n };
    let align4 = |v: &View| {
        let al = ctx.limits().min_storage_buffer_offset_alignment.max(4) as u64;
        ((v.offset * elem % al) / elem).is_multiple_of(4)
    };
    let vec4 =
        !sg8 && a_inner.is_multiple_of(4) && b_inner.is_multiple_of(4) && align4(&a) && align4(&b);
    // Bindings are whole elements (vec4s on the vec4 path).
    let round = if vec4 { 4 * elem } else { elem };
    let (ra, a_off) = a.bind_elems(ctx, "gemm a", round, elem)?;
    let (rb, b_off) = b.bind_elems(ctx, "gemm b", round, elem)?;
    let (rc, c_off) = c.bind_elems(ctx, "gemm c", elem, elem)?;
    // Without a bias the kernel still needs something at the bias binding: `a` (read-only).
    let (rbias, bias_off) = match &bias {
        Some(v) => v.bind_elems(ctx, "gemm bias", elem, elem)?,
        None => a.bind_elems(ctx, "gemm a", elem, elem)?,
    };
    let (act, slope) = g.activation.code();
    let mut flags = 0;
    if g.trans_a {
        flags |= TRANS_A;
    }
    if g.trans_b {
        flags |= TRANS_B;
    }
    if g.accumulate {
        flags |= ACCUMULATE;
    }
    if bias.is_some() {
        flags |= HAS_BIAS;
    }
    let params = GemmParams {
        m: u32_of(g.m, "gemm m")?,
        n: u32_of(g.n, "gemm n")?,
        k: u32_of(g.k, "gemm k")?,
        flags,
        act,
        a_off,
        b_off,
        c_off,
        bias_off,
        alpha: g.alpha,
        slope,
        ..Default::default()
    };
    let kernel = if sg8 {
        &GEMM_SG8
    } else if vec4 {
        &GEMM_VEC4
    } else {
        &GEMM_SCALAR
    };
    let args = [ra, rb, rbias, rc].map(Arg::Resource);
    let grid = Work::Grid([tiles_n as u32, tiles_m as u32, 1]);
    kernel.launch_as(ctx, rec, g.precision, grid, &args, |_| params)
}

/// CPU reference for [`gemm`](fn@gemm) (f64 accumulation), same semantics and checks on lengths (in f32
/// storage: [`Gemm::precision`] is ignored).
pub fn gemm_cpu(g: &Gemm, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32]) -> Result<()> {
    g.check(
        a.len() as u64,
        b.len() as u64,
        bias.map(|x| x.len() as u64),
        c.len() as u64,
    )?;
    let (m, n, k) = (g.m, g.n, g.k);
    let mut row = vec![0f64; n];
    for i in 0..m {
        row.iter_mut().for_each(|v| *v = 0.0);
        for p in 0..k {
            let av = if g.trans_a {
                a[p * m + i]
            } else {
                a[i * k + p]
            } as f64;
            if g.trans_b {
                for (j, r) in row.iter_mut().enumerate() {
                    *r += av * b[j * k + p] as f64;
                }
            } else {
                let br = &b[p * n..(p + 1) * n];
                for (r, &bv) in row.iter_mut().zip(br) {
                    *r += av * bv as f64;
                }
            }
        }
        for j in 0..n {
            let mut v = g.alpha as f64 * row[j];
            if let Some(bs) = bias {
                v += bs[j] as f64;
            }
            let out = &mut c[i * n + j];
            if g.accumulate {
                *out = (*out as f64 + g.activation.apply_f32(v as f32) as f64) as f32;
            } else {
                *out = g.activation.apply_f32(v as f32);
            }
        }
    }
    Ok(())
}
