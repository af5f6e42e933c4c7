//! Sphere kernels against the f64 reference, edge cases, properties of the reference maths,
//! chunked launches and bad input.

use fisherflow::gpu::{plan_chunks, testing::gpu, GpuContext, GpuTensor, Recorder, Tuning};
use fisherflow::kernels::sphere::{self, reference as cpu};
use fisherflow::Error;

/// SplitMix64 with a Box-Muller normal.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    /// `rows` points of the positive orthant of S^{k-1}: |z|/‖z‖.
    fn orthant(&mut self, rows: usize, k: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows * k);
        for _ in 0..rows {
            let z: Vec<f64> = (0..k).map(|_| self.normal().abs()).collect();
            let n = z.iter().map(|v| v * v).sum::<f64>().sqrt();
            out.extend(z.iter().map(|v| (v / n) as f32));
        }
        out
    }
    fn normals(&mut self, n: usize, scale: f64) -> Vec<f32> {
        (0..n).map(|_| (scale * self.normal()) as f32).collect()
    }
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn assert_close(what: &str, gpu: &[f32], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(gpu.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in gpu.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(
            err <= atol + rtol * w.abs(),
            "{what}: element {i}: gpu {g} vs reference {w} (error {err:e})"
        );
    }
}

const ATOL: f64 = 1e-5;
const RTOL: f64 = 1e-5;

fn up(ctx: &GpuContext, v: &[f32], shape: &[usize]) -> GpuTensor {
    GpuTensor::from_slice(ctx, v, shape).unwrap()
}

/// Unit tangent direction at each row of `x`, scaled by `scales[row]`.
fn tangents(rng: &mut Rng, x: &[f32], k: usize, scales: &[f64]) -> Vec<f32> {
    let xs = f64s(x);
    let v = f64s(&rng.normals(x.len(), 1.0));
    let p = cpu::proj_tangent(&xs, &v, k);
    let mut out = Vec::with_capacity(x.len());
    for (r, row) in p.chunks(k).enumerate() {
        let n = row.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-300);
        out.extend(row.iter().map(|a| (a / n * scales[r]) as f32));
    }
    out
}

/// Lane choices every GPU test runs under: the adapter's own (one lane per row on lavapipe),
/// the GPU choice from K (cross-lane reductions), and a fixed small count.
const LANES: [Option<u32>; 3] = [None, Some(0), Some(4)];

fn with_lanes(ctx: &GpuContext, lanes: Option<u32>, f: impl FnOnce(&GpuContext)) {
    let tuned = ctx.tuned(Tuning {
        row_lanes: lanes,
        ..Default::default()
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&tuned)));
    if let Err(e) = r {
        eprintln!("failed with lanes {lanes:?}");
        std::panic::resume_unwind(e);
    }
}

struct Run<'a> {
    ctx: &'a GpuContext,
    rec: Recorder,
}

impl<'a> Run<'a> {
    fn new(ctx: &'a GpuContext) -> Self {
        Self {
            ctx,
            rec: Recorder::new(),
        }
    }
    fn go(&self, outs: &[&GpuTensor]) -> Vec<Vec<f32>> {
        self.rec.run(self.ctx).unwrap();
        outs.iter().map(|t| t.to_vec(self.ctx).unwrap()).collect()
    }
}

/// Runs every row kernel on (b, l, k) inputs `x0`, `x1`, `v` and times `t`, comparing with the
/// reference.
#[allow(clippy::too_many_arguments)]
fn check_all(
    ctx: &GpuContext,
    what: &str,
    b: usize,
    l: usize,
    k: usize,
    x0: &[f32],
    x1: &[f32],
    v: &[f32],
    t: &[f32],
) {
    let shape = [b, l, k];
    let rows = b * l;
    let (gx0, gx1, gv) = (up(ctx, x0, &shape), up(ctx, x1, &shape), up(ctx, v, &shape));
    let gt = sphere::times_tensor(ctx, t).unwrap();
    let outs: Vec<GpuTensor> = (0..8)
        .map(|_| GpuTensor::zeros(ctx, &shape).unwrap())
        .collect();
    let dist = GpuTensor::zeros(ctx, &[b, l]).unwrap();
    let mut r = Run::new(ctx);
    sphere::exp_map(ctx, &mut r.rec, &gx0, &gv, &outs[0]).unwrap();
    sphere::log_map(ctx, &mut r.rec, &gx0, &gx1, &outs[1]).unwrap();
    sphere::proj_tangent(ctx, &mut r.rec, &gx0, &gv, &outs[2]).unwrap();
    sphere::geodesic_distance(ctx, &mut r.rec, &gx0, &gx1, &dist).unwrap();
    sphere::slerp(ctx, &mut r.rec, &gx0, &gx1, &gt, &outs[3]).unwrap();
    sphere::interpolant_target(ctx, &mut r.rec, &gx0, &gx1, &gt, &outs[4], &outs[5]).unwrap();
    sphere::euler_step(ctx, &mut r.rec, &gx0, &gv, 0.37, &outs[6]).unwrap();
    sphere::to_simplex(ctx, &mut r.rec, &gx1, &outs[7]).unwrap();
    let refs: Vec<&GpuTensor> = outs.iter().chain([&dist]).collect();
    let got = r.go(&refs);

    let (a, c, w) = (f64s(x0), f64s(x1), f64s(v));
    let td = f64s(t);
    assert_close(
        &format!("{what} exp_map"),
        &got[0],
        &cpu::exp_map(&a, &w, k),
        ATOL,
        RTOL,
    );
    assert_close(
        &format!("{what} log_map"),
        &got[1],
        &cpu::log_map(&a, &c, k),
        ATOL,
        RTOL,
    );
    assert_close(
        &format!("{what} proj_tangent"),
        &got[2],
        &cpu::proj_tangent(&a, &w, k),
        ATOL,
        RTOL,
    );
    let (xt, ut) = cpu::interpolant_target(&a, &c, &td, l, k);
    assert_close(&format!("{what} slerp"), &got[3], &xt, ATOL, RTOL);
    assert_close(&format!("{what} interpolant x_t"), &got[4], &xt, ATOL, RTOL);
    assert_close(&format!("{what} interpolant u_t"), &got[5], &ut, ATOL, RTOL);
    assert_close(
        &format!("{what} euler_step"),
        &got[6],
        &cpu::euler_step(&a, &w, 0.37, k),
        ATOL,
        RTOL,
    );
    assert_close(
        &format!("{what} to_simplex"),
        &got[7],
        &cpu::to_simplex(&c),
        ATOL,
        RTOL,
    );
    let d = cpu::geodesic_distance(&a, &c, k);
    assert_close(&format!("{what} distance"), &got[8], &d, ATOL, RTOL);

    // u_t has norm d(x0, x1) and equals log_{x_t}(x1)/(1-t) away from t = 1.
    for r in 0..rows {
        let row = &got[5][r * k..(r + 1) * k];
        let n = row.iter().map(|&a| (a as f64).powi(2)).sum::<f64>().sqrt();
        assert!((n - d[r]).abs() < 2e-5, "{what}: |u_t| {n} vs d {}", d[r]);
        let tr = td[r / l];
        if tr < 0.99 {
            let by_log = cpu::target_by_log_row(&a[r * k..(r + 1) * k], &c[r * k..(r + 1) * k], tr);
            assert_close(&format!("{what} u_t vs log"), row, &by_log, 2e-5, 1e-4);
        }
    }
}

#[test]
fn kernels_match_reference_on_random_inputs() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng(7);
    for &(b, l, k) in &[
        (3, 5, 2),
        (2, 7, 3),
        (4, 3, 5),
        (5, 4, 20),
        (2, 3, 33),
        (3, 2, 160),
        (1, 3, 1000),
        (2, 2, 4096),
        (2, 1, 4099),
        (3, 1, 1028),
        (2, 3, 36),
        (37, 11, 4),
    ] {
        let rows = b * l;
        let x0 = rng.orthant(rows, k);
        let x1 = rng.orthant(rows, k);
        let v = rng.normals(rows * k, 0.5);
        let mut t: Vec<f32> = (0..b).map(|_| rng.uniform() as f32).collect();
        t[0] = 0.0;
        if b > 1 {
            t[b - 1] = 1.0;
        }
        for lanes in LANES {
            with_lanes(ctx, lanes, |ctx| {
                check_all(ctx, &format!("[{b},{l},{k}]"), b, l, k, &x0, &x1, &v, &t)
            });
        }
    }
}

#[test]
fn kernels_match_reference_on_edge_cases() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng(11);
    for &k in &[2usize, 3, 4, 7, 20, 160] {
        // Rows: equal points, one-hot x0 to orthogonal one-hot x1, one-hot to itself, random
        // pair, a vertex to a random point, nearby points.
        let mut x0 = Vec::new();
        let mut x1 = Vec::new();
        let p = rng.orthant(3, k);
        let onehot = |i: usize| -> Vec<f32> { (0..k).map(|j| (j == i) as u8 as f32).collect() };
        x0.extend(&p[..k]);
        x1.extend(&p[..k]);
        x0.extend(onehot(0));
        x1.extend(onehot(k - 1));
        x0.extend(onehot(1));
        x1.extend(onehot(1));
        x0.extend(&p[k..2 * k]);
        x1.extend(&p[2 * k..]);
        x0.extend(onehot(k / 2));
        x1.extend(&p[2 * k..]);
        let near: Vec<f64> = cpu::exp_row(
            &f64s(&p[k..2 * k]),
            &f64s(&tangents(&mut rng, &p[k..2 * k], k, &[1e-3])),
        );
        x0.extend(&p[k..2 * k]);
        x1.extend(near.iter().map(|&a| a as f32));
        let l = 6;
        // Tangents of norm 0, 1e-8, 1e-6 (the threshold), 1e-3, 1 and 3.
        let v = tangents(&mut rng, &x0, k, &[0.0, 1e-8, 1e-6, 1e-3, 1.0, 3.0]);
        for &t in &[0.0f32, 1.0, 1.0 - 1e-7, 0.5, 1e-7] {
            for lanes in LANES {
                with_lanes(ctx, lanes, |ctx| {
                    check_all(ctx, &format!("K={k} t={t}"), 1, l, k, &x0, &x1, &v, &[t])
                });
            }
        }
    }
}

#[test]
fn interpolant_endpoints_on_gpu() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng(3);
    let (b, l, k) = (3, 4, 20);
    let x0 = rng.orthant(b * l, k);
    let x1 = rng.orthant(b * l, k);
    let shape = [b, l, k];
    let (g0, g1) = (up(ctx, &x0, &shape), up(ctx, &x1, &shape));
    let t = sphere::times_tensor(ctx, &[0.0, 1.0, 1.0 - 1e-7]).unwrap();
    let (xt, ut) = (
        GpuTensor::zeros(ctx, &shape).unwrap(),
        GpuTensor::zeros(ctx, &shape).unwrap(),
    );
    let mut r = Run::new(ctx);
    sphere::interpolant_target(ctx, &mut r.rec, &g0, &g1, &t, &xt, &ut).unwrap();
    let got = r.go(&[&xt, &ut]);
    let n = l * k;
    assert_close("x_0 = x0", &got[0][..n], &f64s(&x0[..n]), 1e-6, 1e-6);
    assert_close(
        "x_1 = x1",
        &got[0][n..2 * n],
        &f64s(&x1[n..2 * n]),
        1e-6,
        1e-6,
    );
    assert_close(
        "x_(1-1e-7) ~ x1",
        &got[0][2 * n..],
        &f64s(&x1[2 * n..]),
        2e-6,
        1e-6,
    );
    assert!(got[1].iter().all(|v| v.is_finite()));
}

#[test]
fn maps_between_simplex_and_sphere() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng(5);
    for n in [1003, 1004] {
        let p: Vec<f32> = (0..n).map(|_| rng.uniform() as f32).collect();
        let mut pn = p.clone();
        pn[0] = -0.5;
        let (gp, out, back) = (
            up(ctx, &pn, &[n]),
            GpuTensor::zeros(ctx, &[n]).unwrap(),
            GpuTensor::zeros(ctx, &[n]).unwrap(),
        );
        let mut r = Run::new(ctx);
        sphere::to_sphere(ctx, &mut r.rec, &gp, &out).unwrap();
        sphere::to_simplex(ctx, &mut r.rec, &out, &back).unwrap();
        let got = r.go(&[&out, &back]);
        assert_close(
            "to_sphere",
            &got[0],
            &cpu::to_sphere(&f64s(&pn)),
            1e-6,
            1e-6,
        );
        let mut want = f64s(&pn);
        want[0] = 0.0;
        assert_close("round trip", &got[1], &want, 1e-6, 1e-5);
    }
}

#[test]
fn geodesic_steps_stay_on_the_sphere() {
    let Some(ctx) = gpu() else { return };
    for lanes in LANES {
        with_lanes(ctx, lanes, geodesic_steps_stay_on_the_sphere_with);
    }
}

fn geodesic_steps_stay_on_the_sphere_with(ctx: &GpuContext) {
    let mut rng = Rng(9);
    for (rows, k) in [(50, 20), (30, 7), (3, 1040)] {
        let x = rng.orthant(rows, k);
        let v = rng.normals(rows * k, 2.0);
        let (gv, a, b) = (
            up(ctx, &v, &[rows, k]),
            up(ctx, &x, &[rows, k]),
            GpuTensor::zeros(ctx, &[rows, k]).unwrap(),
        );
        // Unfolded: exp_x(dt·proj_x(v)), renormalised, as the reference computes it.
        let mut r = Run::new(ctx);
        sphere::geodesic_step(ctx, &mut r.rec, &a, &gv, 0.1, false, &b).unwrap();
        let got = r.go(&[&b]);
        let (xs, vs) = (f64s(&x), f64s(&v));
        let u: Vec<f64> = cpu::proj_tangent(&xs, &vs, k)
            .iter()
            .map(|a| 0.1 * a)
            .collect();
        let want: Vec<f64> = cpu::exp_map(&xs, &u, k)
            .chunks(k)
            .flat_map(|row| {
                let n = row.iter().map(|a| a * a).sum::<f64>().sqrt();
                row.iter().map(move |a| a / n).collect::<Vec<_>>()
            })
            .collect();
        assert_close("geodesic step", &got[0], &want, ATOL, RTOL);
        // Many folded (Euler) steps, back and forth: on the sphere, in the orthant.
        let mut r = Run::new(ctx);
        for _ in 0..10 {
            sphere::euler_step(ctx, &mut r.rec, &a, &gv, 0.05, &b).unwrap();
            sphere::euler_step(ctx, &mut r.rec, &b, &gv, 0.05, &a).unwrap();
        }
        let got = r.go(&[&a]);
        for row in got[0].chunks(k) {
            assert!(row.iter().all(|&a| a >= 0.0));
            let n: f64 = row.iter().map(|&a| (a as f64).powi(2)).sum();
            assert!((n - 1.0).abs() < 1e-5, "norm² {n}");
        }
    }
}

#[test]
fn chunk_planner_respects_binding_size_and_alignment() {
    // 80-byte rows (K = 20) plus a 4-byte distance row, 256-byte alignment, 8 KiB bindings.
    let plan = plan_chunks(8192, 256, &[80, 4], 1000).unwrap();
    let mut next = 0;
    for &(r0, n) in &plan {
        assert_eq!(r0, next);
        assert!(n * 80 <= 8192);
        assert_eq!((r0 * 80) % 256, 0);
        assert_eq!((r0 * 4) % 256, 0);
        next += n;
    }
    assert_eq!(next, 1000);
    assert!(plan.len() > 1);
    // One row larger than a binding, or no aligned chunk at all: errors.
    assert!(matches!(
        plan_chunks(64, 4, &[128], 3),
        Err(Error::Limit(_))
    ));
    assert!(matches!(
        plan_chunks(300, 256, &[4, 12], 100),
        Err(Error::Limit(_))
    ));
    assert_eq!(plan_chunks(1 << 20, 256, &[16], 10).unwrap(), vec![(0, 10)]);
}

#[test]
fn chunked_launches_match_reference() {
    let Some(ctx) = gpu() else { return };
    for lanes in LANES {
        with_lanes(ctx, lanes, chunked_launches_match_reference_with);
    }
}

fn chunked_launches_match_reference_with(ctx: &GpuContext) {
    let mut rng = Rng(13);
    // 17 rows of K = 20 or 5 per batch element: with 2 KiB bindings a chunk boundary falls inside a
    // batch element, so t must be looked up by global row.
    for k in [20, 5] {
        let (b, l) = (7, 17);
        let rows = b * l;
        let x0 = rng.orthant(rows, k);
        let x1 = rng.orthant(rows, k);
        let v = rng.normals(rows * k, 0.5);
        let t: Vec<f32> = (0..b).map(|i| i as f32 / (b - 1) as f32).collect();
        let ctx = &ctx.tuned(Tuning {
            max_binding: Some(2048),
            ..*ctx.tuning()
        });
        let shape = [b, l, k];
        let (g0, g1, gv) = (
            up(ctx, &x0, &shape),
            up(ctx, &x1, &shape),
            up(ctx, &v, &shape),
        );
        let gt = sphere::times_tensor(ctx, &t).unwrap();
        let outs: Vec<GpuTensor> = (0..4)
            .map(|_| GpuTensor::zeros(ctx, &shape).unwrap())
            .collect();
        let dist = GpuTensor::zeros(ctx, &[b, l]).unwrap();
        let mut r = Run::new(ctx);
        sphere::interpolant_target(ctx, &mut r.rec, &g0, &g1, &gt, &outs[0], &outs[1]).unwrap();
        sphere::euler_step(ctx, &mut r.rec, &g0, &gv, 0.2, &outs[2]).unwrap();
        sphere::to_sphere(ctx, &mut r.rec, &g1, &outs[3]).unwrap();
        sphere::geodesic_distance(ctx, &mut r.rec, &g0, &g1, &dist).unwrap();
        assert!(
            r.rec.dispatches() >= 8,
            "expected two or more chunks per kernel"
        );
        let got = r.go(&[&outs[0], &outs[1], &outs[2], &outs[3], &dist]);
        let (a, c, w) = (f64s(&x0), f64s(&x1), f64s(&v));
        let (xt, ut) = cpu::interpolant_target(&a, &c, &f64s(&t), l, k);
        assert_close("chunked x_t", &got[0], &xt, ATOL, RTOL);
        assert_close("chunked u_t", &got[1], &ut, ATOL, RTOL);
        assert_close(
            "chunked euler",
            &got[2],
            &cpu::euler_step(&a, &w, 0.2, k),
            ATOL,
            RTOL,
        );
        assert_close(
            "chunked to_sphere",
            &got[3],
            &cpu::to_sphere(&c),
            ATOL,
            RTOL,
        );
        assert_close(
            "chunked distance",
            &got[4],
            &cpu::geodesic_distance(&a, &c, k),
            ATOL,
            RTOL,
        );
    }
}

#[test]
fn bad_inputs_are_errors() {
    let Some(ctx) = gpu() else { return };
    let z = |s: &[usize]| GpuTensor::zeros(ctx, s).unwrap();
    let mut rec = Recorder::new();
    let (a, b) = (z(&[2, 3, 4]), z(&[2, 3, 5]));
    let shape = |r: fisherflow::Result<()>| assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
    shape(sphere::exp_map(ctx, &mut rec, &a, &b, &a));
    shape(sphere::log_map(ctx, &mut rec, &a, &a, &b));
    shape(sphere::proj_tangent(ctx, &mut rec, &b, &a, &a));
    shape(sphere::euler_step(ctx, &mut rec, &a, &b, 0.1, &a));
    shape(sphere::to_sphere(ctx, &mut rec, &a, &b));
    let k0 = z(&[2, 3, 0]);
    shape(sphere::exp_map(ctx, &mut rec, &k0, &k0, &k0));
    let empty = z(&[0, 3, 4]);
    shape(sphere::exp_map(ctx, &mut rec, &empty, &empty, &empty));
    shape(sphere::geodesic_distance(
        ctx,
        &mut rec,
        &a,
        &a,
        &z(&[2, 4]),
    ));
    let t2 = z(&[2]);
    shape(sphere::slerp(ctx, &mut rec, &a, &a, &z(&[3]), &a));
    shape(sphere::slerp(
        ctx,
        &mut rec,
        &z(&[6, 4]),
        &z(&[6, 4]),
        &t2,
        &z(&[6, 4]),
    ));
    shape(sphere::interpolant_target(
        ctx, &mut rec, &a, &b, &t2, &a, &a,
    ));
    shape(sphere::interpolant_target(
        ctx, &mut rec, &a, &a, &t2, &a, &b,
    ));
    for bad in [-0.1f32, 1.5, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            sphere::times_tensor(ctx, &[0.5, bad]),
            Err(Error::InvalidArgument(_))
        ));
    }
    assert!(sphere::times_tensor(ctx, &[]).is_err());
    assert!(matches!(
        sphere::euler_step(ctx, &mut rec, &a, &a, f32::NAN, &a),
        Err(Error::InvalidArgument(_))
    ));
    // Rows too long for any binding.
    let small = ctx.tuned(Tuning {
        max_binding: Some(64),
        ..Default::default()
    });
    let long = z(&[1, 1, 32]);
    let r = sphere::exp_map(&small, &mut rec, &long, &long, &long);
    assert!(matches!(r, Err(Error::Limit(_))), "{r:?}");
    assert!(rec.is_empty(), "failed launches must record nothing");
}

// ---- properties of the reference maths (f64) ----

#[test]
fn reference_properties() {
    let mut rng = Rng(21);
    for &k in &[2usize, 3, 20, 160] {
        for _ in 0..20 {
            let x = f64s(&rng.orthant(1, k));
            let y = f64s(&rng.orthant(1, k));
            // Renormalise in f64.
            let unit = |v: Vec<f64>| {
                let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
                v.into_iter().map(|a| a / n).collect::<Vec<f64>>()
            };
            let (x, y) = (unit(x), unit(y));
            let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
            let d = cpu::angle(&x, &y);
            assert!((d - cpu::angle_acos(&x, &y)).abs() < 1e-7);
            // exp_x(log_x(y)) = y; |log_x(y)| = d.
            let lg = cpu::log_row(&x, &y);
            assert!((dot(&lg, &lg).sqrt() - d).abs() < 1e-12);
            let e = cpu::exp_row(&x, &lg);
            for (p, q) in e.iter().zip(&y) {
                assert!((p - q).abs() < 1e-12);
            }
            // <proj_x(v), x> = 0.
            let v: Vec<f64> = (0..k).map(|_| rng.normal()).collect();
            let p = cpu::proj_tangent(&x, &v, k);
            assert!(dot(&p, &x).abs() < 1e-12);
            // Interpolant: endpoints, distance to x1 shrinks linearly, |u_t| = d, and the
            // closed-form target equals log_{x_t}(x1)/(1-t).
            for &t in &[0.0, 0.1, 0.5, 0.9, 1.0 - 1e-7, 1.0] {
                let (xt, ut) = cpu::interpolant_row(&x, &y, t);
                assert!((cpu::angle(&xt, &y) - (1.0 - t) * d).abs() < 1e-9);
                assert!((dot(&ut, &ut).sqrt() - d).abs() < 1e-12);
                assert!((dot(&xt, &xt) - 1.0).abs() < 1e-12);
                let s = cpu::slerp_row(&x, &y, t);
                for (p, q) in s.iter().zip(&xt) {
                    assert!((p - q).abs() < 1e-12);
                }
                if t == 0.0 || t == 1.0 {
                    let want = if t == 0.0 { &x } else { &y };
                    for (p, q) in xt.iter().zip(want) {
                        assert!((p - q).abs() < 1e-14);
                    }
                }
                if t < 0.95 {
                    let by_log = cpu::target_by_log_row(&x, &y, t);
                    for (p, q) in by_log.iter().zip(&ut) {
                        assert!((p - q).abs() < 1e-10, "t {t}: {p} vs {q}");
                    }
                }
                // u_t by finite differences of x_t.
                if t > 1e-3 && t < 1.0 - 1e-3 {
                    let h = 1e-6;
                    let (a, _) = cpu::interpolant_row(&x, &y, t + h);
                    let (b, _) = cpu::interpolant_row(&x, &y, t - h);
                    for i in 0..k {
                        assert!(((a[i] - b[i]) / (2.0 * h) - ut[i]).abs() < 1e-7);
                    }
                }
            }
            // Euler step: on the sphere, in the orthant, and for a tangent v with small dt it
            // moves by |v| dt.
            let step = cpu::euler_row(&x, &v, 0.3);
            assert!((dot(&step, &step) - 1.0).abs() < 1e-12);
            assert!(step.iter().all(|&a| a >= 0.0));
        }
    }
    // Equal points: zero log, zero distance, constant interpolant with zero velocity.
    let x = [0.6, 0.8];
    assert_eq!(cpu::log_row(&x, &x), vec![0.0, 0.0]);
    assert_eq!(cpu::angle(&x, &x), 0.0);
    let (xt, ut) = cpu::interpolant_row(&x, &x, 0.3);
    assert!(xt.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-15));
    assert!(ut.iter().all(|a| a.abs() < 1e-15));
    // Orthogonal vertices: distance π/2.
    assert!((cpu::angle(&[1.0, 0.0], &[0.0, 1.0]) - std::f64::consts::FRAC_PI_2).abs() < 1e-15);
}

#[test]
fn pull_back_inverts_the_differential_of_exp() {
    // dexp_u(v) by central differences of exp_x, then the pull-back must return v.
    let mut rng = Rng(31);
    for (k, scale) in [(6, 0.3), (20, 1.2), (5, 1e-8), (33, 2.5)] {
        let x = f64s(&rng.orthant(1, k));
        let tangent = |rng: &mut Rng, s: f64| -> Vec<f64> {
            let v = f64s(&rng.normals(k, 1.0));
            cpu::proj_tangent(&x, &v, k).iter().map(|a| a * s).collect()
        };
        let u = tangent(&mut rng, scale);
        let v = tangent(&mut rng, 1.0);
        let h = 1e-6;
        let at = |e: f64| {
            let p: Vec<f64> = u.iter().zip(&v).map(|(a, b)| a + e * b).collect();
            cpu::exp_row(&x, &p)
        };
        let (p, m) = (at(h), at(-h));
        let w: Vec<f64> = p.iter().zip(&m).map(|(a, b)| (a - b) / (2.0 * h)).collect();
        let back = cpu::pull_back_row(&x, &u, 1.0, &w);
        for (a, b) in back.iter().zip(&v) {
            assert!((a - b).abs() < 1e-6, "k={k} |u|={scale}: {a} vs {b}");
        }
    }
}

#[test]
fn pull_back_matches_reference() {
    let Some(ctx) = gpu() else { return };
    for lanes in LANES {
        with_lanes(ctx, lanes, pull_back_matches_reference_with);
    }
}

fn pull_back_matches_reference_with(ctx: &GpuContext) {
    let mut rng = Rng(37);
    for (rows, k, dt) in [(40, 20, 0.3), (17, 7, 0.05), (3, 1040, 1.0), (9, 4, 1e-9)] {
        let x = rng.orthant(rows, k);
        let xs = f64s(&x);
        let u: Vec<f32> = cpu::proj_tangent(&xs, &f64s(&rng.normals(rows * k, 0.7)), k)
            .iter()
            .map(|&a| a as f32)
            .collect();
        // w tangent at y = exp_x(dt u).
        let us: Vec<f64> = u.iter().map(|&a| dt * a as f64).collect();
        let y = cpu::exp_map(&xs, &us, k);
        let w: Vec<f32> = cpu::proj_tangent(&y, &f64s(&rng.normals(rows * k, 1.0)), k)
            .iter()
            .map(|&a| a as f32)
            .collect();
        let shape = [rows, k];
        let (gx, gu, gw, out) = (
            up(ctx, &x, &shape),
            up(ctx, &u, &shape),
            up(ctx, &w, &shape),
            GpuTensor::zeros(ctx, &shape).unwrap(),
        );
        let mut r = Run::new(ctx);
        sphere::pull_back(ctx, &mut r.rec, &gx, &gu, dt as f32, &gw, &out).unwrap();
        let got = r.go(&[&out]);
        let want = cpu::pull_back(&xs, &f64s(&u), dt, &f64s(&w), k);
        assert_close("pull_back", &got[0], &want, 2e-5, 2e-5);
    }
}
