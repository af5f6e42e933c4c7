//! Benchmarks shared by `fisherflow bench` and `cargo bench`: every figure is reported as a
//! ratio against a baseline measured in the same run on the same adapter.

pub mod flow;
pub mod matmul;
pub mod optim;
pub mod sdflow;
pub mod sphere;
pub mod tensornet;
pub mod train;

use std::time::Instant;

use crate::error::Result;
use crate::gpu::{GpuContext, Recorder};

/// One benchmark figure and its same-run baseline.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Measurement {
    /// Benchmark family (e.g. `sphere`, `matmul`).
    pub group: String,
    /// What was measured (kernel and size).
    pub name: String,
    /// The figure, in `unit`.
    pub value: f64,
    /// Unit of `value` and `baseline` (e.g. `GB/s`, `GFLOP/s`, `samples/s`).
    pub unit: String,
    /// What the baseline is (e.g. `vec4 copy of the same bytes`, `CPU sgemm`).
    pub baseline_name: String,
    /// The baseline figure, same unit, measured in the same run.
    pub baseline: f64,
    /// `value / baseline`.
    pub ratio: f64,
    /// The adapter (or `CPU`) the figure came from.
    pub device: String,
    /// How the time was taken (`gpu-timestamps` or `wall-clock`).
    pub timer: String,
}

impl Measurement {
    /// A measurement with `ratio = value / baseline`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        group: &str,
        name: &str,
        value: f64,
        unit: &str,
        baseline_name: &str,
        baseline: f64,
        device: &str,
        timer: &str,
    ) -> Self {
        Self {
            group: group.into(),
            name: name.into(),
            value,
            unit: unit.into(),
            baseline_name: baseline_name.into(),
            baseline,
            ratio: if baseline > 0.0 {
                value / baseline
            } else {
                f64::NAN
            },
            device: device.into(),
            timer: timer.into(),
        }
    }
}

/// How long one replay of a recording takes.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Median over the repetitions of the summed per-dispatch GPU time (timestamp queries), in
    /// seconds; `None` when the adapter has no timestamps.
    pub gpu_s: Option<f64>,
    /// Median wall-clock time of submit + wait, in seconds.
    pub wall_s: f64,
}

impl Timing {
    /// The GPU time when known, else the wall-clock time.
    pub fn best_s(&self) -> f64 {
        self.gpu_s.unwrap_or(self.wall_s)
    }
    /// `gpu-timestamps` or `wall-clock`: which clock [`Timing::best_s`] used.
    pub fn timer(&self) -> &'static str {
        if self.gpu_s.is_some() {
            "gpu-timestamps"
        } else {
            "wall-clock"
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Time `rec` after `warmup` untimed runs: `reps` profiled runs (when the adapter has
/// timestamps) and `reps` wall-clock runs.
pub fn time_recording(
    ctx: &GpuContext,
    rec: &Recorder,
    warmup: usize,
    reps: usize,
) -> Result<Timing> {
    let reps = reps.max(1);
    for _ in 0..warmup {
        rec.run(ctx)?;
    }
    let gpu_s = if ctx.has_timestamps() {
        let mut v = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t: f64 = rec.run_profiled(ctx)?.iter().map(|(_, ns)| ns).sum();
            v.push(t * 1e-9);
        }
        Some(median(v))
    } else {
        None
    };
    let mut w = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        rec.run(ctx)?;
        w.push(t0.elapsed().as_secs_f64());
    }
    Ok(Timing {
        gpu_s,
        wall_s: median(w),
    })
}

/// Median wall-clock seconds of `f` over `reps` runs after one warm-up run.
pub fn time_cpu(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut w = Vec::with_capacity(reps.max(1));
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        f();
        w.push(t0.elapsed().as_secs_f64());
    }
    median(w)
}

/// Print measurements as an aligned table, with a header line that says what the ratio is.
pub fn print_table(rows: &[Measurement]) {
    println!(
        "ratio = value / baseline, both measured in this run on the same device; every unit is \
         a rate, so a ratio above 1 means faster than the baseline"
    );
    let header = [
        "group",
        "benchmark",
        "value",
        "unit",
        "baseline",
        "ratio",
        "baseline is",
        "timer",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.group.clone(),
                r.name.clone(),
                format!("{:.3}", r.value),
                r.unit.clone(),
                format!("{:.3}", r.baseline),
                format!("{:.3}", r.ratio),
                r.baseline_name.clone(),
                r.timer.clone(),
            ]
        })
        .collect();
    let mut width = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Numbers right-aligned, text left-aligned.
    let numeric = [false, false, true, false, true, true, false, false];
    let line = |row: &[String]| {
        let parts: Vec<String> = row
            .iter()
            .zip(width.iter().zip(numeric))
            .map(|(c, (&w, num))| {
                let pad = " ".repeat(w - c.chars().count());
                if num {
                    format!("{pad}{c}")
                } else {
                    format!("{c}{pad}")
                }
            })
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(&header.map(String::from));
    for row in &cells {
        line(row);
    }
}

/// A benchmark family: runs on a context, `quick` for a short run.
pub type Family = fn(&GpuContext, bool) -> Result<Vec<Measurement>>;

/// Every benchmark family, by name.
pub fn families() -> Vec<(&'static str, Family)> {
    vec![
        ("copy", copy_bandwidth),
        ("sphere", sphere::run),
        ("matmul", matmul::run),
        ("optim", optim::run),
        ("train", train::run),
        ("flow", flow::run),
        ("sdflow", sdflow::run),
        ("tensornet", tensornet::run),
        ("tn-mcmc", tensornet::mcmc),
        ("tn-column", tensornet::column),
    ]
}

/// Bandwidth of the vec4 copy kernel against `copy_buffer_to_buffer` of the same bytes: how
/// close a compute kernel gets to the driver's own copy path.
pub fn copy_bandwidth(ctx: &GpuContext, quick: bool) -> Result<Vec<Measurement>> {
    use crate::gpu::GpuTensor;
    let sizes: &[usize] = if quick {
        &[1 << 20]
    } else {
        &[1 << 20, 1 << 24]
    };
    let mut out = Vec::new();
    for &n in sizes {
        let a = GpuTensor::<f32>::zeros(ctx, &[n])?;
        let b = GpuTensor::<f32>::zeros(ctx, &[n])?;
        let mut kernel = Recorder::new();
        crate::kernels::util::copy(ctx, &mut kernel, &a, &b)?;
        let mut driver = Recorder::new();
        driver.copy(a.buffer(), 0, b.buffer(), 0, a.bytes());
        let reps = if quick { 5 } else { 20 };
        let tk = time_recording(ctx, &kernel, 2, reps)?;
        // Driver copies carry no pass timestamps: compare wall clock with wall clock.
        let td = time_recording(ctx, &driver, 2, reps)?;
        let bytes = 2.0 * a.bytes() as f64;
        out.push(Measurement::new(
            "copy",
            &format!("vec4 copy kernel, {} MiB", a.bytes() >> 20),
            bytes / tk.wall_s / 1e9,
            "GB/s",
            "copy_buffer_to_buffer",
            bytes / td.wall_s / 1e9,
            &ctx.describe(),
            "wall-clock",
        ));
    }
    Ok(out)
}
