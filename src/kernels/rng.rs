//! Counter-based random numbers on the GPU: Philox4x32-10, with a bit-exact CPU reference.
//!
//! Layout (shared by the GPU kernels and [`cpu`]): block `b` of a call is
//! `philox(counter = [b, stream, counter_lo, counter_hi], key = [seed_lo, seed_hi])` and element
//! `i` uses word `i % 4` of block `i / 4`. The (seed, counter) pair lives in one uniform buffer
//! ([`GpuRng`]); a trainer writes a new counter each step ([`GpuRng::set_counter`]) and replays
//! its recording, and gives every call within a step its own `stream` id. Draws are then
//! reproducible and a run resumes exactly from (seed, counter).
//!
//! Conversions: uniform `[0, 1)` = `(u >> 8) · 2⁻²⁴` (exact in f32); `(0, 1]` =
//! `((u >> 8) + 1) · 2⁻²⁴`; normals by Box–Muller on words (0, 1) and (2, 3) of a block:
//! `r = √(−2 ln U₁)`, `θ = 2π U₂`, `(r cos θ, r sin θ)` with `U₁ ∈ (0, 1]`, `U₂ ∈ [0, 1)`.

use crate::error::{Error, Result};
use crate::gpu::{
    lib, row_lanes, Arg, GpuContext, GpuTensor, KernelDef, Recorder, ShaderDef, Work,
};

/// `shaders/rng.wgsl` with the grid, row and Philox preludes.
pub static SHADER: ShaderDef = ShaderDef::new(
    "rng",
    &[
        lib::GRID,
        lib::ROWS,
        lib::PHILOX,
        include_str!("../../shaders/rng.wgsl"),
    ],
)
.slots(&["rng", "out"]);

const OUT: &[&str] = &["rng", "out"];
/// Element-wise uniform or normal fill.
pub static FILL: KernelDef = KernelDef::new(&SHADER, "fill", OUT)
    .params::<ShapeParams>()
    .workgroup(64);
/// Uniform points on the positive orthant of the sphere, one row each.
pub static SPHERE_PRIOR: KernelDef =
    KernelDef::new(&SHADER, "sphere_prior", OUT).params::<ShapeParams>();
/// Dirichlet(1) points on the simplex, one row each.
pub static DIRICHLET1: KernelDef =
    KernelDef::new(&SHADER, "dirichlet1", OUT).params::<ShapeParams>();

/// Every kernel of the family.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![&FILL, &SPHERE_PRIOR, &DIRICHLET1]
}

/// Philox4x32 multipliers and Weyl key increments (Salmon et al., SC'11).
pub const PHILOX_M: [u32; 2] = [0xD251_1F53, 0xCD9E_8D57];
/// Philox4x32 key schedule constants.
pub const PHILOX_W: [u32; 2] = [0x9E37_79B9, 0xBB67_AE85];

/// Philox4x32-10 of one 128-bit counter under a 64-bit key.
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for r in 0..10 {
        if r > 0 {
            k[0] = k[0].wrapping_add(PHILOX_W[0]);
            k[1] = k[1].wrapping_add(PHILOX_W[1]);
        }
        let p0 = PHILOX_M[0] as u64 * c[0] as u64;
        let p1 = PHILOX_M[1] as u64 * c[2] as u64;
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
    }
    c
}

/// `[0, 1)` from the top 24 bits of `u` (exact in f32).
pub fn unit_f32(u: u32) -> f32 {
    (u >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// `(0, 1]` from the top 24 bits of `u` (never zero).
pub fn unit_open0_f32(u: u32) -> f32 {
    ((u >> 8) + 1) as f32 * (1.0 / 16_777_216.0)
}

/// CPU reference of every kernel, bit-exact in the raw words (floats computed in f64 and
/// rounded, so they agree with the GPU to within its transcendental accuracy).
pub mod cpu {
    use super::*;

    fn key(seed: u64) -> [u32; 2] {
        [seed as u32, (seed >> 32) as u32]
    }

    /// Block `b` of stream `stream` at `counter`.
    pub fn block(seed: u64, counter: u64, stream: u32, b: u32) -> [u32; 4] {
        philox4x32_10(
            [b, stream, counter as u32, (counter >> 32) as u32],
            key(seed),
        )
    }

    /// Raw word `i` of a stream.
    pub fn word(seed: u64, counter: u64, stream: u32, i: usize) -> u32 {
        block(seed, counter, stream, (i / 4) as u32)[i % 4]
    }

    /// `n` raw words.
    pub fn words(seed: u64, counter: u64, stream: u32, n: usize) -> Vec<u32> {
        (0..n).map(|i| word(seed, counter, stream, i)).collect()
    }

    /// `n` uniforms in `[0, 1)` (what [`uniform`](super::uniform) writes).
    pub fn uniform(seed: u64, counter: u64, stream: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| unit_f32(word(seed, counter, stream, i)))
            .collect()
    }

    /// The Box–Muller pair of two raw words: `(r cos θ, r sin θ)`.
    fn box_muller(a: u32, b: u32) -> (f64, f64) {
        let r = (-2.0 * (unit_open0_f32(a) as f64).ln()).sqrt();
        let th = 2.0 * std::f64::consts::PI * unit_f32(b) as f64;
        (r * th.cos(), r * th.sin())
    }

    /// Normal element `i` of a stream, in f64.
    pub fn normal_at(seed: u64, counter: u64, stream: u32, i: usize) -> f64 {
        let v = block(seed, counter, stream, (i / 4) as u32);
        let j = i % 4;
        let (a, b) = if j < 2 { (v[0], v[1]) } else { (v[2], v[3]) };
        let (c, s) = box_muller(a, b);
        if j.is_multiple_of(2) {
            c
        } else {
            s
        }
    }

    /// Normal elements `first..first + out.len()` of a stream (each [`normal_at`]), one
    /// Philox block and two Box–Muller pairs per four elements.
    pub fn normals_into(seed: u64, counter: u64, stream: u32, first: usize, out: &mut [f64]) {
        let mut i = first;
        let mut rest = out;
        while !rest.is_empty() {
            let v = block(seed, counter, stream, (i / 4) as u32);
            let (c0, s0) = box_muller(v[0], v[1]);
            let (c1, s1) = box_muller(v[2], v[3]);
            let quad = [c0, s0, c1, s1];
            let take = (4 - i % 4).min(rest.len());
            let (head, tail) = rest.split_at_mut(take);
            head.copy_from_slice(&quad[i % 4..i % 4 + take]);
            rest = tail;
            i += take;
        }
    }

    /// `n` standard normals (what [`normal`](super::normal) writes).
    pub fn normal(seed: u64, counter: u64, stream: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| normal_at(seed, counter, stream, i) as f32)
            .collect()
    }

    /// `rows × k` points uniform on the positive orthant of the sphere (what `sphere_prior`
    /// writes).
    pub fn sphere_prior(seed: u64, counter: u64, stream: u32, rows: usize, k: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows * k);
        let mut z = vec![0f64; k];
        for r in 0..rows {
            out.extend(sphere_prior_row(seed, counter, stream, r, &mut z));
        }
        out
    }

    /// Row `r` of [`sphere_prior`] (rows of `z.len()`), with `z` as scratch space.
    pub fn sphere_prior_row<'z>(
        seed: u64,
        counter: u64,
        stream: u32,
        r: usize,
        z: &'z mut [f64],
    ) -> impl Iterator<Item = f32> + 'z {
        let k = z.len();
        normals_into(seed, counter, stream, r * k, z);
        let norm = z.iter().map(|v| v * v).sum::<f64>().sqrt();
        z.iter().map(move |v| {
            if norm > 0.0 {
                (v.abs() / norm) as f32
            } else {
                (1.0 / (k as f64).sqrt()) as f32
            }
        })
    }

    /// `rows × k` Dirichlet(1) points on the simplex (what `dirichlet1` writes).
    pub fn dirichlet1(seed: u64, counter: u64, stream: u32, rows: usize, k: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows * k);
        for r in 0..rows {
            let e: Vec<f64> = (0..k)
                .map(|c| -(unit_open0_f32(word(seed, counter, stream, r * k + c)) as f64).ln())
                .collect();
            let s: f64 = e.iter().sum();
            for v in e {
                out.push(if s > 0.0 {
                    (v / s) as f32
                } else {
                    1.0 / k as f32
                });
            }
        }
        out
    }
}

/// A sequential CPU stream over Philox blocks (`stream`, `counter`, blocks 0, 1, 2, ...), for
/// host-side sampling that must be reproducible from a seed.
#[derive(Clone, Debug)]
pub struct PhiloxStream {
    seed: u64,
    counter: u64,
    stream: u32,
    block: u32,
    buf: [u32; 4],
    pos: usize,
}

impl PhiloxStream {
    /// The stream of words of `(seed, counter, stream)` from element 0.
    pub fn new(seed: u64, counter: u64, stream: u32) -> Self {
        Self {
            seed,
            counter,
            stream,
            block: 0,
            buf: [0; 4],
            pos: 4,
        }
    }

    /// The next raw word. After 2³² blocks the counter advances by one and blocks restart.
    pub fn next_u32(&mut self) -> u32 {
        if self.pos == 4 {
            self.buf = cpu::block(self.seed, self.counter, self.stream, self.block);
            self.block = self.block.wrapping_add(1);
            if self.block == 0 {
                self.counter = self.counter.wrapping_add(1);
            }
            self.pos = 0;
        }
        let v = self.buf[self.pos];
        self.pos += 1;
        v
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let lo = self.next_u32() as u64;
        (self.next_u32() as u64) << 32 | lo
    }

    /// A uniform f64 in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `0..n` (n > 0), without modulo bias (rejection).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }
}

crate::gpu_params! {
    /// The (seed, counter) uniform shared by every RNG kernel launch.
    pub struct RngParams {
        /// Low word of the seed (Philox key 0).
        pub seed_lo: u32,
        /// High word of the seed (Philox key 1).
        pub seed_hi: u32,
        /// Low word of the counter base.
        pub ctr_lo: u32,
        /// High word of the counter base.
        pub ctr_hi: u32,
    }
}

impl RngParams {
    /// From a 64-bit seed and counter.
    pub fn new(seed: u64, counter: u64) -> Self {
        Self {
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            ctr_lo: counter as u32,
            ctr_hi: (counter >> 32) as u32,
        }
    }
}

crate::gpu_params! {
    /// Parameters of the RNG kernels.
    pub struct ShapeParams {
        /// Elements (fill) or rows (row kernels).
        pub n: u32,
        /// Row length (row kernels).
        pub k: u32,
        /// Philox stream.
        pub stream: u32,
        /// Row kernels: invocations per row.
        pub lanes: u32,
        /// Fill: 0 uniform, 1 normal.
        pub dist: u32,
        /// Padding.
        pub _pad0: u32,
        /// Padding.
        pub _pad1: u32,
        /// Padding.
        pub _pad2: u32,
    }
}

/// GPU random-number state: a uniform buffer holding (seed, counter). Launches recorded against
/// it read the buffer when they run, so [`set_counter`](Self::set_counter) followed by a replay
/// draws fresh numbers.
#[derive(Debug)]
pub struct GpuRng {
    buffer: wgpu::Buffer,
    seed: u64,
    counter: u64,
}

impl GpuRng {
    /// A state with `seed` and `counter`.
    pub fn new(ctx: &GpuContext, seed: u64, counter: u64) -> Self {
        Self {
            buffer: ctx.uniform(&RngParams::new(seed, counter)),
            seed,
            counter,
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The current counter.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Write a new counter (queued; seen by every later submit).
    pub fn set_counter(&mut self, ctx: &GpuContext, counter: u64) {
        self.counter = counter;
        ctx.queue().write_buffer(
            &self.buffer,
            0,
            bytemuck::bytes_of(&RngParams::new(self.seed, counter)),
        );
    }

    /// Advance the counter by one (one training step).
    pub fn step(&mut self, ctx: &GpuContext) {
        let c = self.counter.wrapping_add(1);
        self.set_counter(ctx, c);
    }

    /// The uniform buffer (the `rng` binding of the RNG kernels), for host code that writes it itself.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

fn elems(out: &GpuTensor<f32>, what: &str) -> Result<u32> {
    if out.is_empty() {
        return Err(Error::Shape(format!("rng::{what}: empty output")));
    }
    u32::try_from(out.len())
        .ok()
        .filter(|&n| n < u32::MAX - 4)
        .ok_or_else(|| Error::Limit(format!("rng::{what}: {} elements", out.len())))
}

/// Element-wise fill: every element of `out` from its own Philox word(s).
fn fill(
    ctx: &GpuContext,
    rec: &mut Recorder,
    rng: &GpuRng,
    stream: u32,
    out: &GpuTensor<f32>,
    dist: u32,
) -> Result<()> {
    let n = elems(out, "fill")?;
    let params = ShapeParams {
        n,
        k: 1,
        stream,
        lanes: 1,
        dist,
        ..Default::default()
    };
    let args = [Arg::Whole(&rng.buffer), out.into()];
    FILL.launch(ctx, rec, Work::Threads(n.div_ceil(4) as u64), &args, |_| {
        params
    })
}

/// Record `out ← U[0, 1)` (all elements, any shape).
pub fn uniform(
    ctx: &GpuContext,
    rec: &mut Recorder,
    rng: &GpuRng,
    stream: u32,
    out: &GpuTensor<f32>,
) -> Result<()> {
    fill(ctx, rec, rng, stream, out, 0)
}

/// Record `t ~ U[0, 1)` for the B elements of `t` (the flow-matching times).
pub fn times(
    ctx: &GpuContext,
    rec: &mut Recorder,
    rng: &GpuRng,
    stream: u32,
    t: &GpuTensor<f32>,
) -> Result<()> {
    uniform(ctx, rec, rng, stream, t)
}

/// Record `out ← N(0, 1)` (Box–Muller).
pub fn normal(
    ctx: &GpuContext,
    rec: &mut Recorder,
    rng: &GpuRng,
    stream: u32,
    out: &GpuTensor<f32>,
) -> Result<()> {
    fill(ctx, rec, rng, stream, out, 1)
}

fn rows_of(out: &GpuTensor<f32>, what: &str) -> Result<(u32, u32)> {
    let n = elems(out, what)?;
    let k = *out
        .shape()
        .last()
        .ok_or_else(|| Error::Shape(format!("rng::{what}: scalar output")))?;
    if k == 0 {
        return Err(Error::Shape(format!("rng::{what}: rows of length 0")));
    }
    Ok((n / k as u32, k as u32))
}

/// Row-wise draw: every row (last axis, length K) of `out` handled by
/// [`row_lanes`] invocations, as the sphere kernels do.
fn rows(
    ctx: &GpuContext,
    rec: &mut Recorder,
    rng: &GpuRng,
    stream: u32,
    out: &GpuTensor<f32>,
    kernel: &'static KernelDef,
) -> Result<()> {
    let (rows, k) = rows_of(out, kernel.entry)?;
    let lanes = row_lanes(ctx, k as usize);
    let params = ShapeParams {
        n: rows,
        k,
        stream,
        lanes,
        ..Default::default()
    };
    let work = Work::Groups(rows.div_ceil(crate::gpu::WG / lanes) as u64);
    kernel.launch(
        ctx,
        rec,
        work,
        &[Arg::Whole(&rng.buffer), out.into()],
        |_| params,
    )
}

/// Record the Fisher-Flow prior: every row (last axis, length K) of `out` ← `|z|/‖z‖`,
/// `z ~ N(0, I_K)`, uniform on the positive orthant of the unit sphere. Any K.
pub fn sphere_prior(
    ctx: &GpuContext,
    rec: &mut Recorder,
    rng: &GpuRng,
    stream: u32,
    out: &GpuTensor<f32>,
) -> Result<()> {
    rows(ctx, rec, rng, stream, out, &SPHERE_PRIOR)
}

/// Record Dirichlet(1) rows on the simplex: every row of `out` ← `e/Σe`, `e = −ln U`.
pub fn dirichlet1(
    ctx: &GpuContext,
    rec: &mut Recorder,
    rng: &GpuRng,
    stream: u32,
    out: &GpuTensor<f32>,
) -> Result<()> {
    rows(ctx, rec, rng, stream, out, &DIRICHLET1)
}
