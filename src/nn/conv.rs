//! The convolutional Fisher-Flow field network over `[B·L, K]` (one row per position, no
//! flattening of a sequence into one row): an input projection, residual blocks of dilated
//! convolutions with layer norm, a Gaussian-Fourier time embedding (and, when conditioned, a
//! class embedding) added in every block, and an output projection onto the tangent space.
//!
//! A per-position signal track of `S` channels (`[B·L, S]`) enters as `S` more input channels:
//! it is concatenated to the points before the input projection, `Linear(K + S → H)`. That is
//! the same map as a projection of the points plus a bias-free projection of the track, done as
//! one gemm, and it lets the track reach every block through the residual stream from the first
//! layer on, position by position (the convolutions then spread it along the sequence).

use std::f32::consts::PI;

use crate::autodiff::{Dim, Graph, Init, NodeId};
use crate::error::{Error, Result};
use crate::nn::{Linear, MlpConfig, Network};

/// Dilation of block `i`: 1, 2, 4, 8, then again from 1.
pub fn dilation(block: usize) -> usize {
    1 << (block % 4)
}

/// Standard deviation of the Gaussian frequencies of the time embedding (cycles per unit
/// time; `t` lies in [0, 1]).
pub const FOURIER_SCALE: f32 = 4.0;

/// Per-sequence features of `t: [B, 1]`: `[sin 2πωt, cos 2πωt]` for `dim / 2` frequencies
/// `ω ~ N(0, FOURIER_SCALE²)` (a parameter `time.freq`, initialised so), then
/// `SiLU(Linear(dim → out))`.
pub fn fourier_embedding(g: &mut Graph, t: NodeId, dim: usize, out: usize) -> Result<NodeId> {
    let half = dim.div_ceil(2);
    let std = 2.0 * PI * FOURIER_SCALE;
    let freq = g.param("time.freq", &[1, half], Init::Normal { std })?;
    let z = g.matmul(t, freq)?;
    let shifted = g.add_scalar(z, PI / 2.0)?;
    let phases = g.concat(&[z, shifted])?;
    let feats = g.act(phases, crate::kernels::Activation::Sin)?;
    let lin = Linear::new(g, "time", 2 * half, out, true)?;
    let e = lin.forward(g, feats)?;
    g.silu(e)
}

/// Build the convolutional field for `cfg` (`hidden` channels, `blocks` residual blocks,
/// `time_dim` Fourier features) with kernel size `kernel`; with `classes > 0` it reads class
/// labels (input [`Network::LABELS`], `classes` meaning none: the null class of guidance);
/// with `signal > 0` it reads a track of `signal` channels per position (input
/// [`Network::SIGNAL`], `[B·L, signal]`).
pub fn build(
    cfg: &MlpConfig,
    kernel: usize,
    classes: usize,
    signal: usize,
    seed: u64,
) -> Result<Network> {
    if kernel == 0 {
        return Err(Error::InvalidArgument(
            "the convolution kernel size must be positive".into(),
        ));
    }
    let (l, k, h) = (cfg.seq_len, cfg.categories, cfg.hidden);
    let mut g = Graph::new(seed);
    let rows = [Dim::BatchTimes(l), Dim::Fixed(k)];
    let x = g.input_shaped(Network::X, rows)?;
    let t = g.input(Network::T, 1)?;
    let target = g.input_shaped(Network::TARGET, rows)?;
    let mut temb = fourier_embedding(&mut g, t, cfg.time_dim, h)?;
    let labels = if classes > 0 {
        let labels = g.input(Network::LABELS, 1)?;
        let init = Init::Normal { std: 1.0 };
        let table = g.param("class.embed", &[classes + 1, h], init)?;
        let e = g.embedding(labels, table)?;
        temb = g.add(temb, e)?;
        Some(labels)
    } else {
        None
    };
    let (track, inp) = if signal > 0 {
        let s = g.input_shaped(Network::SIGNAL, [Dim::BatchTimes(l), Dim::Fixed(signal)])?;
        (Some(s), g.concat(&[x, s])?)
    } else {
        (None, x)
    };
    let mut hid = Linear::new(&mut g, "input", k + signal, h, true)?.forward(&mut g, inp)?;
    for i in 0..cfg.blocks {
        let n = layer_norm(&mut g, &format!("block{i}.norm"), hid, h)?;
        let te = Linear::new(&mut g, &format!("block{i}.time"), h, h, true)?;
        let te = te.forward(&mut g, temb)?;
        let n = g.seq_add(n, te, l)?;
        let a = g.gelu(n)?;
        let init = Init::KaimingUniform { fan_in: kernel * h };
        let w = g.param(
            &format!("block{i}.conv.weight"),
            &[kernel * h, h],
            init.clone(),
        )?;
        let b = g.param(&format!("block{i}.conv.bias"), &[h], init)?;
        let c = g.conv1d(a, w, Some(b), l, dilation(i))?;
        hid = g.add(hid, c)?;
    }
    let n = layer_norm(&mut g, "output.norm", hid, h)?;
    let mut out = Linear::new(&mut g, "output", h, k, true)?.forward(&mut g, n)?;
    if cfg.project {
        out = g.proj_tangent(out, x, k)?;
    }
    // Σ over positions and categories, averaged over sequences (the MLP's loss): the mean
    // over rows times L.
    let mse = g.mse_loss(out, target)?;
    let loss = g.scale(mse, l as f32)?;
    Ok(Network {
        graph: g,
        x,
        t,
        target,
        labels,
        signal: track,
        out,
        loss,
    })
}

fn layer_norm(g: &mut Graph, name: &str, x: NodeId, c: usize) -> Result<NodeId> {
    let gamma = g.param(&format!("{name}.weight"), &[c], Init::Const(1.0))?;
    let beta = g.param(&format!("{name}.bias"), &[c], Init::Zeros)?;
    g.layer_norm(x, gamma, beta)
}
