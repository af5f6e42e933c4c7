//! An op added from outside the crate, the way a new op is added inside it: one struct with
//! its shape rule and its forward and backward lowering, one instruction pair with a CPU body
//! (generic over f32/f64) and a GPU recording through the kernel layer, and its WGSL. Checked
//! like every built-in op: the gradient by finite differences, the GPU against the CPU.

use fisherflow::autodiff::{
    Backward, CpuExecutor, Executor, Forward, GpuExecutor, GpuRun, Graph, Init, Instr, Loc, Mem,
    NodeId, Op, OptimConfig,
};
use fisherflow::gpu::{lib, testing::gpu, KernelDef, ShaderDef, Work};
use fisherflow::kernels::Real;

const SRC: &str = "
struct CubeParams {
    n: u32,
    backward: u32,
    acc: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: CubeParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn cube_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i < params.n) {
        out[i] = x[i] * x[i] * x[i];
    }
}

@compute @workgroup_size(256)
fn cube_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i < params.n) {
        let g = 3.0 * x[i] * x[i] * gy[i];
        out[i] = select(g, out[i] + g, params.acc == 1u);
    }
}
";

fisherflow::gpu_params! {
    struct CubeParams {
        n: u32,
        backward: u32,
        acc: u32,
        _pad: u32,
    }
}

static SHADER: ShaderDef = ShaderDef::new("cube", &[lib::GRID, SRC]).slots(&["x", "gy", "out"]);
static CUBE_FWD: KernelDef =
    KernelDef::new(&SHADER, "cube_fwd", &["x", "out"]).params::<CubeParams>();
static CUBE_BWD: KernelDef =
    KernelDef::new(&SHADER, "cube_bwd", &["x", "gy", "out"]).params::<CubeParams>();

/// `y = x³` (forward) or `gx (+)= 3x²·gy` (backward, `gy: Some`).
#[derive(Debug)]
struct CubeInstr {
    x: Loc,
    gy: Option<Loc>,
    out: Loc,
    acc: bool,
}

impl CubeInstr {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        mem.put(self.out, self.acc, |i, r| {
            let x = r.get(self.x)[i].to_f64();
            match self.gy {
                None => x * x * x,
                Some(g) => 3.0 * x * x * r.get(g)[i].to_f64(),
            }
        });
    }
}

impl Instr for CubeInstr {
    fn dst(&self) -> Loc {
        self.out
    }
    fn srcs(&self) -> Vec<Loc> {
        let mut v = vec![self.x];
        v.extend(self.gy);
        v
    }
    fisherflow::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> fisherflow::Result<()> {
        let p = CubeParams {
            n: self.out.len as u32,
            backward: self.gy.is_some() as u32,
            acc: self.acc as u32,
            _pad: 0,
        };
        let work = Work::Threads(self.out.len as u64);
        let (ctx, x, out) = (gpu.ctx, gpu.arg(self.x, 4), gpu.arg(self.out, 4));
        match self.gy {
            None => CUBE_FWD.launch(ctx, gpu.rec, work, &[x, out], |_| p),
            Some(g) => {
                let g = gpu.arg(g, 4);
                CUBE_BWD.launch(ctx, gpu.rec, work, &[x, g, out], |_| p)
            }
        }
    }
}

/// The op: element-wise cube.
#[derive(Debug)]
struct Cube(NodeId);

impl Op for Cube {
    fn name(&self) -> &'static str {
        "cube"
    }
    fn operands(&self) -> Vec<NodeId> {
        vec![self.0]
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let (x, out) = (cx.value(self.0), cx.y());
        cx.emit(CubeInstr {
            x,
            gy: None,
            out,
            acc: false,
        });
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let (x, gy) = (cx.value(self.0), cx.gy());
        cx.grad(self.0, |out, acc| CubeInstr {
            x,
            gy: Some(gy),
            out,
            acc,
        });
    }
}

const B: usize = 6;

/// `loss = mse(cube(x·w + b), target)` with the cube used twice (so its gradient accumulates).
fn graph() -> (Graph, NodeId, NodeId) {
    let mut g = Graph::new(3);
    let x = g.input("x", 3).unwrap();
    let t = g.input("t", 2).unwrap();
    let w = g
        .param(
            "w",
            &[3, 2],
            Init::Uniform {
                low: -0.8,
                high: 0.8,
            },
        )
        .unwrap();
    let b = g
        .param(
            "b",
            &[2],
            Init::Uniform {
                low: -0.3,
                high: 0.3,
            },
        )
        .unwrap();
    let z = g.linear(x, w, Some(b)).unwrap();
    let shape = g.shape(z).unwrap();
    let c = g.add_op(Cube(z), shape).unwrap();
    let y = g.add(c, z).unwrap();
    let loss = g.mse_loss(y, t).unwrap();
    (g, c, loss)
}

fn inputs(ex: &mut dyn Executor) {
    let x: Vec<f32> = (0..B * 3)
        .map(|i| ((i * 7 % 11) as f32 / 11.0) - 0.4)
        .collect();
    let t: Vec<f32> = (0..B * 2)
        .map(|i| ((i * 5 % 7) as f32 / 7.0) - 0.5)
        .collect();
    ex.set_input("x", &x).unwrap();
    ex.set_input("t", &t).unwrap();
}

#[test]
fn a_new_op_has_finite_difference_gradients_on_the_cpu() {
    let (g, c, loss) = graph();
    let mut ex = CpuExecutor::<f64>::new(&g, B, &[c], Some(loss), OptimConfig::default()).unwrap();
    inputs(&mut ex);
    ex.forward_backward().unwrap();
    for p in 0..2 {
        let grad = ex.grad_f64(p).unwrap();
        let base = ex.param_f64(p).unwrap();
        for i in 0..base.len() {
            let h = 1e-6;
            let mut at = |d: f64| {
                let mut v = base.clone();
                v[i] += d;
                ex.set_param_f64(p, &v).unwrap();
                ex.forward().unwrap();
                ex.loss_f64().unwrap()
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            ex.set_param_f64(p, &base).unwrap();
            assert!(
                (fd - grad[i]).abs() <= 1e-6 * (1.0 + fd.abs()),
                "param {p}[{i}]: finite difference {fd} vs gradient {}",
                grad[i]
            );
        }
    }
}

#[test]
fn a_new_op_agrees_between_gpu_and_cpu() {
    let Some(ctx) = gpu() else { return };
    let (g, c, loss) = graph();
    let cfg = OptimConfig::default();
    let mut cpu = CpuExecutor::<f64>::new(&g, B, &[c], Some(loss), cfg).unwrap();
    let mut gpu = GpuExecutor::new(ctx, &g, B, &[c], Some(loss), cfg).unwrap();
    inputs(&mut cpu);
    inputs(&mut gpu);
    cpu.forward_backward().unwrap();
    gpu.forward_backward().unwrap();
    let close = |a: &[f32], b: &[f32], what: &str| {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    };
    close(&gpu.output(c).unwrap(), &cpu.output(c).unwrap(), "cube");
    close(&[gpu.loss().unwrap()], &[cpu.loss().unwrap()], "loss");
    for (a, b) in gpu.grads().unwrap().iter().zip(cpu.grads().unwrap()) {
        close(&a.data, &b.data, &a.name);
    }
}
