//! The integrators' orders, measured: on `dx/dt = A·x` with `A` skew-symmetric (a rotation,
//! exact solution `expm(tA)·x0`) on S⁵ and on a product of spheres, the error at `t = 1` falls
//! like `h^p` with p = 1, 2, 4 for Euler, midpoint and RK4, on the GPU and the CPU backend; and
//! adaptive Dormand–Prince reaches a given accuracy with fewer field evaluations than RK4.

use fisherflow::flow::devices::{CpuOde, GpuOde, LinearField};
use fisherflow::flow::ode::{integrate_adaptive, integrate_fixed, Adaptive, OdeDevice, Solver};
use fisherflow::flow::Geometry;
use fisherflow::gpu::testing::gpu;
use fisherflow::gpu::GpuTensor;

/// SplitMix64 for reproducible inputs.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

/// A skew-symmetric `[k, k]` matrix with entries of size ~`scale`.
fn skew(rng: &mut Rng, k: usize, scale: f64) -> Vec<f64> {
    let mut a = vec![0.0; k * k];
    for i in 0..k {
        for j in i + 1..k {
            let v = scale * rng.next();
            a[i * k + j] = v;
            a[j * k + i] = -v;
        }
    }
    a
}

/// `expm(a)` by scaling and squaring of a Taylor series (f64).
fn expm(a: &[f64], k: usize) -> Vec<f64> {
    let norm: f64 = a.iter().map(|v| v.abs()).sum();
    let s = (norm.log2().ceil().max(0.0) as i32) + 4;
    let scaled: Vec<f64> = a.iter().map(|v| v / 2f64.powi(s)).collect();
    let mul = |p: &[f64], q: &[f64]| -> Vec<f64> {
        let mut r = vec![0.0; k * k];
        for i in 0..k {
            for l in 0..k {
                for j in 0..k {
                    r[i * k + j] += p[i * k + l] * q[l * k + j];
                }
            }
        }
        r
    };
    let mut e: Vec<f64> = (0..k * k)
        .map(|i| (i % (k + 1) == 0) as u8 as f64)
        .collect();
    let mut term = e.clone();
    for n in 1..20 {
        term = mul(&term, &scaled).iter().map(|v| v / n as f64).collect();
        e.iter_mut().zip(&term).for_each(|(x, t)| *x += t);
    }
    for _ in 0..s {
        e = mul(&e, &e);
    }
    e
}

/// Unit rows of length `k`.
fn points(rng: &mut Rng, rows: usize, k: usize) -> Vec<f32> {
    let mut x = Vec::new();
    for _ in 0..rows {
        let v: Vec<f64> = (0..k).map(|_| rng.next()).collect();
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        x.extend(v.iter().map(|a| (a / n) as f32));
    }
    x
}

struct Problem {
    k: usize,
    a: Vec<f64>,
    x0: Vec<f32>,
    exact: Vec<f64>,
}

fn problem(seed: u64, rows: usize, k: usize, scale: f64) -> Problem {
    let mut rng = Rng(seed);
    let a = skew(&mut rng, k, scale);
    let x0 = points(&mut rng, rows, k);
    let e = expm(&a, k);
    let mut exact = Vec::new();
    for r in x0.chunks(k) {
        for i in 0..k {
            exact.push((0..k).map(|j| e[i * k + j] * r[j] as f64).sum::<f64>());
        }
    }
    Problem { k, a, x0, exact }
}

fn max_err(got: &[f32], want: &[f64]) -> f64 {
    got.iter()
        .zip(want)
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0, f64::max)
}

fn field(p: &Problem) -> LinearField {
    LinearField::new(p.a.iter().map(|&v| v as f32).collect(), p.k).unwrap()
}

fn run_cpu(p: &Problem, solver: Solver, steps: usize) -> f64 {
    let mut dev = CpuOde::new(Geometry::Sphere, p.x0.len(), p.k);
    let (a, b) = (dev.buffer().unwrap(), dev.buffer().unwrap());
    dev.bufs[a].copy_from_slice(&p.x0);
    let x = integrate_fixed(
        &mut dev,
        &mut field(p),
        solver,
        &a,
        &b,
        0.0,
        1.0,
        steps,
        false,
    );
    max_err(&dev.bufs[x.unwrap()], &p.exact)
}

fn run_gpu(p: &Problem, solver: Solver, steps: usize) -> Option<f64> {
    let ctx = gpu()?;
    let rows = p.x0.len() / p.k;
    let mut dev = GpuOde::new(ctx, Geometry::Sphere, [rows, 1, p.k]);
    let (a, b) = (dev.buffer().unwrap(), dev.buffer().unwrap());
    a.write(ctx, &p.x0).unwrap();
    let x: GpuTensor = integrate_fixed(
        &mut dev,
        &mut field(p),
        solver,
        &a,
        &b,
        0.0,
        1.0,
        steps,
        false,
    )
    .unwrap();
    dev.rec.run(ctx).unwrap();
    Some(max_err(&x.to_vec(ctx).unwrap(), &p.exact))
}

/// The observed orders between successive step doublings.
fn orders(errs: &[f64]) -> Vec<f64> {
    errs.windows(2).map(|w| (w[0] / w[1]).log2()).collect()
}

fn check_order(what: &str, errs: &[f64], want: f64) {
    let o = orders(errs);
    let e: Vec<String> = errs.iter().map(|v| format!("{v:.3e}")).collect();
    eprintln!("{what}: errors {e:?} orders {o:.2?}");
    let last = *o.last().unwrap();
    assert!(
        (last - want).abs() <= 0.2,
        "{what}: observed order {last:.2}, expected {want} (errors {e:?})"
    );
}

/// S⁵ (rows of 6), and a product of spheres (12 rows of 4: 3 sequences of length 4); the
/// rotations are fast enough that the errors stay well above f32 rounding.
fn problems() -> [(&'static str, Problem); 2] {
    [
        ("S^5", problem(7, 5, 6, 8.0)),
        ("(S^3)^12", problem(8, 12, 4, 16.0)),
    ]
}

const CASES: [(Solver, f64, [usize; 3]); 3] = [
    (Solver::Euler, 1.0, [256, 512, 1024]),
    (Solver::Midpoint, 2.0, [64, 128, 256]),
    (Solver::Rk4, 4.0, [16, 32, 64]),
];

#[test]
fn orders_on_s5_and_on_a_product_of_spheres_cpu() {
    // S⁵: rows of 6; a product of spheres: 12 rows of 4 (3 sequences of length 4).
    for (name, p) in problems() {
        for (solver, order, steps) in CASES {
            let errs: Vec<f64> = steps.iter().map(|&n| run_cpu(&p, solver, n)).collect();
            check_order(&format!("cpu {name} {}", solver.name()), &errs, order);
        }
    }
}

#[test]
fn orders_on_s5_and_on_a_product_of_spheres_gpu() {
    if gpu().is_none() {
        return;
    }
    for (name, p) in problems() {
        for (solver, order, steps) in CASES {
            let errs: Vec<f64> = steps
                .iter()
                .map(|&n| run_gpu(&p, solver, n).unwrap())
                .collect();
            check_order(&format!("gpu {name} {}", solver.name()), &errs, order);
        }
    }
}

#[test]
fn dopri5_reaches_a_tolerance_with_fewer_evaluations_than_rk4() {
    let p = problem(9, 6, 6, 3.0);
    let mut dev = CpuOde::new(Geometry::Sphere, p.x0.len(), p.k);
    let (a, b) = (dev.buffer().unwrap(), dev.buffer().unwrap());
    dev.bufs[a].copy_from_slice(&p.x0);
    let opts = Adaptive {
        rtol: 1e-6,
        atol: 1e-6,
        ..Default::default()
    };
    let (x, stats) =
        integrate_adaptive(&mut dev, &mut field(&p), &a, &b, 0.0, 1.0, &opts, false).unwrap();
    let err = max_err(&dev.bufs[x], &p.exact);
    assert!(err < 1e-4, "dopri5 error {err:.2e}");
    // The fewest RK4 steps (doubling) that are as accurate.
    let mut steps = 1;
    while run_cpu(&p, Solver::Rk4, steps) > err {
        steps *= 2;
    }
    eprintln!(
        "dopri5: error {err:.2e} in {} evaluations ({} accepted, {} rejected steps); RK4 needs \
         {steps} steps = {} evaluations",
        stats.evaluations,
        stats.accepted,
        stats.rejected,
        4 * steps
    );
    assert!(stats.evaluations < 4 * steps);
    // A looser tolerance takes fewer evaluations.
    dev.bufs[a].copy_from_slice(&p.x0);
    let loose = Adaptive {
        rtol: 1e-3,
        atol: 1e-3,
        ..Default::default()
    };
    let (_, st2) =
        integrate_adaptive(&mut dev, &mut field(&p), &a, &b, 0.0, 1.0, &loose, false).unwrap();
    assert!(st2.evaluations < stats.evaluations);
}
