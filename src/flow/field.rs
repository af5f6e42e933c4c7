//! The trained vector field as an inference network for the samplers, with its weights and
//! activations stored in f32 or f16 ([`Precision`]); every dot product accumulates in f32.
//!
//! The network is the [`Mlp`](crate::nn::Mlp) of training, evaluated without the autodiff
//! machinery: the time embedding is written straight into the concatenated inputs, each
//! residual block is one gemm whose epilogue adds `LeakyReLU(·)` into the hidden state
//! ([`Gemm::accumulate`]), and the tangent projection reads the f32 state. One evaluation is
//! `3 + 2·blocks` dispatches:
//!
//! ```text
//! embed        cat0 = [x, temb(t)],  cath[:, H..] = temb(t)
//! gemm         h = LeakyReLU(cat0 · W_in + b_in)
//! per block    cath[:, ..H] = h;  h += LeakyReLU(cath · W_i + b_i)
//! put_cols     cath[:, ..H] = h
//! gemm         v = cath · W_out + b_out
//! finish       out = v − ⟨v, x⟩ x per position (f32)
//! ```

use crate::autodiff::NamedTensor;
use crate::error::{Error, Result};
use crate::flow::sample::FlowModel;
use crate::gpu::{lib, Arg, KernelDef, ShaderDef, Work};
use crate::gpu::{GpuContext, GpuTensor, Recorder};
use crate::kernels::linalg::{gemm, Gemm, View};
use crate::kernels::{Activation, Precision};
use crate::nn::MlpConfig;

/// `shaders/field.wgsl` with the grid prelude, in f32 or f16 storage.
pub static SHADER: ShaderDef = ShaderDef::storage_generic(
    "field",
    &[lib::GRID, include_str!("../../shaders/field.wgsl")],
)
.slots(&["x", "w", "b", "cat0", "cath", "h", "v", "out"]);

/// `cat0 = [x, temb(t)]` and the time-embedding columns of `cath`.
pub static EMBED: KernelDef =
    KernelDef::new(&SHADER, "embed", &["x", "w", "b", "cat0", "cath"]).params::<FieldParams>();
/// `cath[:, ..H] = h`.
pub static PUT_COLS: KernelDef =
    KernelDef::new(&SHADER, "put_cols", &["h", "cath"]).params::<FieldParams>();
/// `out = v − ⟨v, x⟩ x` per position.
pub static FINISH: KernelDef =
    KernelDef::new(&SHADER, "finish", &["v", "x", "out"]).params::<FieldParams>();

/// Every kernel of the family.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![&EMBED, &PUT_COLS, &FINISH]
}

crate::gpu_params! {
    /// Parameters of the field kernels.
    pub struct FieldParams {
        /// Sequences in the chunk.
        pub rows: u32,
        /// `L·K`.
        pub lk: u32,
        /// Time-embedding width.
        pub e: u32,
        /// Hidden width.
        pub h: u32,
        /// Categories.
        pub k: u32,
        /// 1: project onto the tangent space.
        pub project: u32,
        /// Time of the evaluation.
        pub t: f32,
        /// Padding.
        pub _pad: u32,
    }
}

/// A buffer of `len` elements in the network's precision.
#[derive(Debug)]
struct Store {
    buffer: wgpu::Buffer,
    len: usize,
}

impl Store {
    fn new(ctx: &GpuContext, data: &[f32], p: Precision) -> Result<Self> {
        let buffer = match p {
            Precision::F32 => GpuTensor::from_slice(ctx, data, &[data.len()])?
                .buffer()
                .clone(),
            Precision::F16 => {
                let h: Vec<half::f16> = data.iter().map(|&v| half::f16::from_f32(v)).collect();
                GpuTensor::from_slice(ctx, &h, &[h.len()])?.buffer().clone()
            }
        };
        Ok(Self {
            buffer,
            len: data.len(),
        })
    }

    fn zeros(ctx: &GpuContext, len: usize, p: Precision) -> Result<Self> {
        let buffer = match p {
            Precision::F32 => GpuTensor::<f32>::zeros(ctx, &[len])?.buffer().clone(),
            Precision::F16 => GpuTensor::<half::f16>::zeros(ctx, &[len])?.buffer().clone(),
        };
        Ok(Self { buffer, len })
    }

    fn view(&self) -> View<'_> {
        View {
            buffer: &self.buffer,
            offset: 0,
            len: self.len as u64,
        }
    }
}

/// One dense layer: weight `[in, out]` and bias `[out]`.
#[derive(Debug)]
struct Layer {
    w: Store,
    b: Store,
    inputs: usize,
    outputs: usize,
}

/// The largest magnitude an f16 holds.
const F16_MAX: f32 = 65504.0;

fn find<'a>(params: &'a [NamedTensor], name: &str, shape: &[usize]) -> Result<&'a NamedTensor> {
    let p = params
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| Error::Checkpoint(format!("the model has no parameter {name:?}")))?;
    let n: usize = shape.iter().product();
    if p.data.len() != n || p.shape.iter().product::<usize>() != n {
        return Err(Error::Checkpoint(format!(
            "parameter {name:?} has shape {:?} ({} values); the model needs {shape:?}",
            p.shape,
            p.data.len()
        )));
    }
    Ok(p)
}

fn upload(
    ctx: &GpuContext,
    params: &[NamedTensor],
    name: &str,
    shape: &[usize],
    p: Precision,
) -> Result<Store> {
    let t = find(params, name, shape)?;
    if p == Precision::F16 {
        if let Some(v) = t.data.iter().find(|v| !v.is_finite() || v.abs() > F16_MAX) {
            return Err(Error::InvalidArgument(format!(
                "parameter {name:?} holds {v}, which f16 cannot represent (|x| ≤ {F16_MAX})"
            )));
        }
    }
    Store::new(ctx, &t.data, p)
}

fn layer(
    ctx: &GpuContext,
    params: &[NamedTensor],
    name: &str,
    inputs: usize,
    outputs: usize,
    p: Precision,
) -> Result<Layer> {
    Ok(Layer {
        w: upload(
            ctx,
            params,
            &format!("{name}.weight"),
            &[inputs, outputs],
            p,
        )?,
        b: upload(ctx, params, &format!("{name}.bias"), &[outputs], p)?,
        inputs,
        outputs,
    })
}

/// The vector field of a [`FlowModel`] for a fixed number of rows, ready to record.
#[derive(Debug)]
pub struct FieldNet<'c> {
    ctx: &'c GpuContext,
    config: MlpConfig,
    precision: Precision,
    rows: usize,
    time_w: Store,
    time_b: Store,
    input: Layer,
    blocks: Vec<Layer>,
    output: Layer,
    cat0: Store,
    cath: Store,
    h: Store,
    v: Store,
    x: GpuTensor<f32>,
    out: GpuTensor<f32>,
}

impl<'c> FieldNet<'c> {
    /// Upload `model`'s parameters in precision `p` and allocate the activations of `rows`
    /// sequences. Errors when the adapter lacks f16 support, when a parameter is missing or
    /// misshapen, or (f16) when a parameter lies outside f16's range.
    pub fn new(ctx: &'c GpuContext, model: &FlowModel, rows: usize, p: Precision) -> Result<Self> {
        p.check(ctx)?;
        if rows == 0 {
            return Err(Error::InvalidArgument(
                "the field needs at least one row".into(),
            ));
        }
        let config = model.config.mlp;
        let (l, k, lk) = (config.seq_len, config.categories, config.width());
        let (h, e) = (config.hidden, config.time_dim);
        let ps = &model.params;
        let blocks = (0..config.blocks)
            .map(|i| layer(ctx, ps, &format!("block{i}"), h + e, h, p))
            .collect::<Result<Vec<_>>>()?;
        let size = |a: usize, b: usize, what: &str| {
            a.checked_mul(b)
                .ok_or_else(|| Error::Limit(format!("{what}: {a}×{b} overflows")))
        };
        Ok(Self {
            ctx,
            config,
            precision: p,
            rows,
            time_w: upload(ctx, ps, "time.weight", &[1, e], p)?,
            time_b: upload(ctx, ps, "time.bias", &[e], p)?,
            input: layer(ctx, ps, "input", lk + e, h, p)?,
            blocks,
            output: layer(ctx, ps, "output", h + e, lk, p)?,
            cat0: Store::zeros(ctx, size(rows, lk + e, "input activations")?, p)?,
            cath: Store::zeros(ctx, size(rows, h + e, "hidden activations")?, p)?,
            h: Store::zeros(ctx, size(rows, h, "hidden state")?, p)?,
            v: Store::zeros(ctx, size(rows, lk, "output")?, p)?,
            x: GpuTensor::zeros(ctx, &[rows, l, k])?,
            out: GpuTensor::zeros(ctx, &[rows, l, k])?,
        })
    }

    /// The input points `x` `[rows, L, K]` (f32): write or record into it before
    /// [`FieldNet::record`].
    pub fn input(&self) -> &GpuTensor<f32> {
        &self.x
    }

    /// The field `v(x, t)` `[rows, L, K]` (f32) after a recorded evaluation.
    pub fn output(&self) -> &GpuTensor<f32> {
        &self.out
    }

    /// Rows evaluated together.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Storage precision of weights and activations.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    fn params(&self, t: f32) -> FieldParams {
        let c = &self.config;
        FieldParams {
            rows: self.rows as u32,
            lk: c.width() as u32,
            e: c.time_dim as u32,
            h: c.hidden as u32,
            k: c.categories as u32,
            project: c.project as u32,
            t,
            _pad: 0,
        }
    }

    fn launch(
        &self,
        rec: &mut Recorder,
        kernel: &'static KernelDef,
        t: f32,
        threads: usize,
        args: &[Arg<'_>],
    ) -> Result<()> {
        let p = self.params(t);
        let work = Work::Threads(threads as u64);
        kernel.launch_as(self.ctx, rec, self.precision, work, args, |_| p)
    }

    fn bind<'a>(&self, s: &'a Store, what: &str) -> Result<Arg<'a>> {
        let elem = self.precision.bytes();
        Ok(Arg::Resource(
            s.view().bind_elems(self.ctx, what, elem, elem)?.0,
        ))
    }

    fn dense(
        &self,
        rec: &mut Recorder,
        layer: &Layer,
        a: &Store,
        c: &Store,
        act: Activation,
        acc: bool,
    ) -> Result<()> {
        let g = Gemm::new(self.rows, layer.outputs, layer.inputs)
            .precision(self.precision)
            .activation(act)
            .accumulate(acc);
        gemm(
            self.ctx,
            rec,
            &g,
            a.view(),
            layer.w.view(),
            Some(layer.b.view()),
            c.view(),
        )
    }

    /// Record one evaluation of `v(x, t)` at time `t` for every row: reads
    /// [`FieldNet::input`], writes [`FieldNet::output`].
    pub fn record(&self, rec: &mut Recorder, t: f32) -> Result<()> {
        let c = &self.config;
        let (rows, lk, h, e) = (self.rows, c.width(), c.hidden, c.time_dim);
        let leaky = Activation::LeakyRelu(c.slope);
        self.launch(
            rec,
            &EMBED,
            t,
            rows * (lk + e),
            &[
                Arg::from(&self.x),
                self.bind(&self.time_w, "time weight")?,
                self.bind(&self.time_b, "time bias")?,
                self.bind(&self.cat0, "input activations")?,
                self.bind(&self.cath, "hidden activations")?,
            ],
        )?;
        self.dense(rec, &self.input, &self.cat0, &self.h, leaky, false)?;
        let put = |rec: &mut Recorder| -> Result<()> {
            self.launch(
                rec,
                &PUT_COLS,
                t,
                rows * h,
                &[
                    self.bind(&self.h, "hidden state")?,
                    self.bind(&self.cath, "hidden activations")?,
                ],
            )
        };
        for block in &self.blocks {
            put(rec)?;
            self.dense(rec, block, &self.cath, &self.h, leaky, true)?;
        }
        put(rec)?;
        self.dense(
            rec,
            &self.output,
            &self.cath,
            &self.v,
            Activation::Identity,
            false,
        )?;
        self.launch(
            rec,
            &FINISH,
            t,
            rows * c.seq_len,
            &[
                self.bind(&self.v, "output")?,
                Arg::from(&self.x),
                Arg::from(&self.out),
            ],
        )?;
        Ok(())
    }
}
