//! Inference programs: a graph lowered for its forward pass only, fused and with its buffers
//! reused, in f32 or (on the GPU) f16 storage. The sampler's vector field is the training
//! graph compiled this way, so there is one definition of every network.
//!
//! Fusions, each a property of the ops involved ([`Op::as_linear`], [`Op::as_activation`],
//! [`Op::as_add`], [`Op::as_concat`]):
//! - a linear layer followed by its only consumer, an activation, is one gemm with the
//!   activation in its epilogue;
//! - a residual addition `h + layer(…)` whose `h` is read for the last time is the layer's gemm
//!   accumulating into `h`'s buffer;
//! - buffers are reused once their values are dead, and a concatenation whose buffer already
//!   holds one of its parts at the right columns (the time embedding of every block of an MLP)
//!   does not copy it again.
//!
//! Storage: instructions that run in f16 ([`Instr::f16_storage`]) get buffers in the program's
//! precision; the others (tangent projections, reductions) and the inputs and outputs are f32,
//! with conversions inserted where a value crosses over.

use std::collections::HashMap;
use std::sync::Arc;

use crate::autodiff::graph::{Graph, NodeId, NodeKind};
use crate::autodiff::kernels::{self as k, AutodiffParams};
use crate::autodiff::op::{Forward, GpuRun, Instr, Loc, Mem, Op};
use crate::autodiff::ops::concat::{ColCopy, Concat2};
use crate::autodiff::ops::matmul::{Gemm, GemmSpec};
use crate::error::{Error, Result};
use crate::gpu::{u32_of, Work};
use crate::kernels::{Activation, Precision, Real};

/// Parameters start on multiples of this many elements (256 bytes in f16).
const PARAM_ALIGN: usize = 128;

/// Buffer 0 holds every parameter, in the program's storage.
pub const PARAMS: usize = 0;

/// `y = x` across storage types: f32 into the program's storage (`to_storage`) or back.
#[derive(Debug)]
pub struct Convert {
    /// Source.
    pub x: Loc,
    /// Destination.
    pub y: Loc,
    /// `true`: f32 into storage; `false`: storage into f32.
    pub to_storage: bool,
}

impl Convert {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        mem.put(self.y, false, |i, r| r.get(self.x)[i].to_f64());
    }
}

impl Instr for Convert {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.x]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let p = AutodiffParams {
            n: u32_of(self.y.len, "elements")?,
            ..Default::default()
        };
        let e = gpu.precision.bytes();
        let (x, y) = if self.to_storage {
            (gpu.arg(self.x, 4), gpu.arg(self.y, e))
        } else {
            (gpu.arg(self.x, e), gpu.arg(self.y, 4))
        };
        let kernel = if self.to_storage {
            &k::TO_STORAGE
        } else {
            &k::TO_F32
        };
        let (ctx, pr) = (gpu.ctx, gpu.precision);
        let work = Work::Threads(self.y.len as u64);
        kernel.launch_as(ctx, gpu.rec, pr, work, &[x, y], |_| p)
    }
}

/// `y = c` everywhere, for an f32 input set inside a recording.
#[derive(Debug)]
pub struct Fill {
    /// Destination (f32).
    pub y: Loc,
    /// Value.
    pub c: f32,
}

impl Fill {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        let c = self.c as f64;
        mem.put(self.y, false, |_, _| c);
    }
}

impl Instr for Fill {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let p = AutodiffParams {
            n: u32_of(self.y.len, "elements")?,
            c: self.c,
            ..Default::default()
        };
        let y = gpu.arg(self.y, 4);
        let (ctx, pr) = (gpu.ctx, gpu.precision);
        let work = Work::Threads(self.y.len as u64);
        k::FILL_F32.launch_as(ctx, gpu.rec, pr, work, &[y], |_| p)
    }
}

/// A graph's forward pass for one batch size, fused, with reused buffers.
#[derive(Clone, Debug)]
pub struct InferencePlan {
    /// Batch size.
    pub batch: usize,
    /// Storage precision of the f16-capable buffers.
    pub precision: Precision,
    /// Element count of every buffer.
    pub buf_lens: Vec<usize>,
    /// Whether a buffer is in the program's storage (`false`: f32).
    pub buf_storage: Vec<bool>,
    /// Where each parameter lives in [`PARAMS`].
    pub param_locs: Vec<Loc>,
    /// The graph's inputs the program reads: name, node and f32 location.
    pub inputs: Vec<(String, NodeId, Loc)>,
    /// The requested outputs and their f32 locations.
    pub outputs: Vec<(NodeId, Loc)>,
    /// Resolved `[rows, cols]` of every node.
    pub shapes: Vec<[usize; 2]>,
    /// The instructions.
    pub instrs: Vec<Arc<dyn Instr>>,
}

/// A value's home: a location and its storage.
#[derive(Clone, Copy, Debug)]
struct Home {
    loc: Loc,
    storage: bool,
}

/// How a node is lowered.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    /// By its op.
    Plain,
    /// Folded into the gemm of node `at` (a linear layer under an activation, or a layer
    /// under a residual addition); its operands are read there.
    Folded { at: NodeId },
    /// One gemm: linear node `lin`, epilogue `act`, accumulating into operand `into`.
    Gemm {
        lin: NodeId,
        act: Activation,
        into: Option<NodeId>,
    },
}

struct Builder<'g> {
    graph: &'g Graph,
    plan: InferencePlan,
    homes: Vec<Option<Home>>,
    /// Conversions already made: (node, storage) → location.
    converted: HashMap<(NodeId, bool), Loc>,
    /// Free buffers: (len, storage) → buffer indices, most recently freed last.
    free: HashMap<(usize, bool), Vec<usize>>,
    /// Nodes whose values live in each buffer (a buffer is free when all are dead).
    owners: HashMap<usize, Vec<NodeId>>,
    /// Column blocks a buffer is known to hold: (column offset, width, node).
    contents: HashMap<usize, Vec<(usize, usize, NodeId)>>,
    last_use: Vec<usize>,
}

impl InferencePlan {
    /// Lower `graph`'s forward pass for batch size `batch`, computing `outputs`, with the
    /// f16-capable buffers in `precision`.
    pub fn build(
        graph: &Graph,
        batch: usize,
        outputs: &[NodeId],
        precision: Precision,
    ) -> Result<Self> {
        if batch == 0 {
            return Err(Error::InvalidArgument("batch size must be positive".into()));
        }
        if outputs.is_empty() {
            return Err(Error::InvalidArgument(
                "an inference program needs outputs".into(),
            ));
        }
        let nodes = graph.nodes();
        let needed = graph.ancestors(outputs)?;
        let mut shapes = Vec::with_capacity(nodes.len());
        for n in nodes {
            let [r, c] = [n.shape[0].resolve(batch), n.shape[1].resolve(batch)];
            r.checked_mul(c)
                .ok_or_else(|| Error::Limit(format!("a node of [{r}, {c}] at batch {batch}")))?;
            shapes.push([r, c]);
        }
        let roles = roles(graph, &needed, outputs);
        let mut last_use = vec![0usize; nodes.len()];
        for &id in &needed {
            let at = emission_point(&roles, id);
            for o in nodes[id].kind.operands() {
                last_use[o] = last_use[o].max(at);
            }
            last_use[id] = last_use[id].max(at);
        }
        // Inputs and outputs keep their buffers: callers write and read them around runs.
        for (&id, n) in needed.iter().map(|id| (id, &nodes[*id])) {
            if matches!(n.kind, NodeKind::Input(_)) {
                last_use[id] = usize::MAX;
            }
        }
        for &o in outputs {
            last_use[o] = usize::MAX;
        }
        let mut param_locs = Vec::new();
        let mut off = 0usize;
        for p in graph.params() {
            param_locs.push(Loc {
                buf: PARAMS,
                off,
                len: p.len(),
            });
            off = (off + p.len()).div_ceil(PARAM_ALIGN) * PARAM_ALIGN;
        }
        let mut b = Builder {
            graph,
            plan: InferencePlan {
                batch,
                precision,
                buf_lens: vec![off.max(PARAM_ALIGN)],
                buf_storage: vec![true],
                param_locs,
                inputs: Vec::new(),
                outputs: Vec::new(),
                shapes,
                instrs: Vec::new(),
            },
            homes: vec![None; nodes.len()],
            converted: HashMap::new(),
            free: HashMap::new(),
            owners: HashMap::new(),
            contents: HashMap::new(),
            last_use,
        };
        for &id in &needed {
            b.lower(id, &roles[id])?;
            b.release(id);
        }
        for &o in outputs {
            let loc = b.value(o, false);
            b.plan.outputs.push((o, loc));
        }
        Ok(b.plan)
    }

    /// The f32 location of input `name`, checking `len` values fit it.
    pub fn input_loc(&self, name: &str, len: usize) -> Result<Option<Loc>> {
        if !self.inputs.iter().any(|(n, _, _)| n == name) {
            return Ok(None);
        }
        let (_, id, loc) = self.inputs.iter().find(|(n, _, _)| n == name).unwrap();
        if loc.len != len {
            let [r, c] = self.shapes[*id];
            return Err(Error::Shape(format!(
                "input {name:?} is [{r}, {c}] ({} values) at batch {}; {len} values given",
                loc.len, self.batch
            )));
        }
        Ok(Some(*loc))
    }

    /// The f32 location of output `node`.
    pub fn output_loc(&self, node: NodeId) -> Result<Loc> {
        self.outputs
            .iter()
            .find(|(n, _)| *n == node)
            .map(|(_, l)| *l)
            .ok_or_else(|| Error::InvalidArgument(format!("node {node} is not an output")))
    }
}

/// Which nodes fuse, from the ops' own descriptions.
fn roles(graph: &Graph, needed: &[NodeId], outputs: &[NodeId]) -> Vec<Role> {
    let nodes = graph.nodes();
    let mut consumers = vec![0usize; nodes.len()];
    for &id in needed {
        for o in nodes[id].kind.operands() {
            consumers[o] += 1;
        }
    }
    let only_use = |id: NodeId| consumers[id] == 1 && !outputs.contains(&id);
    let op = |id: NodeId| nodes[id].kind.op();
    let mut roles = vec![Role::Plain; nodes.len()];
    // A linear layer (with its activation) as one gemm.
    let gemm_of = |id: NodeId| -> Option<(NodeId, Activation)> {
        if op(id)?.as_linear().is_some() {
            return Some((id, Activation::Identity));
        }
        let (z, f) = op(id)?.as_activation()?;
        (op(z)?.as_linear().is_some() && only_use(z)).then_some((z, f))
    };
    for &id in needed {
        if let Some((lin, act)) = gemm_of(id) {
            if lin != id {
                roles[lin] = Role::Folded { at: id };
            }
            roles[id] = Role::Gemm {
                lin,
                act,
                into: None,
            };
        }
    }
    // Residual additions: the layer's gemm accumulates into the other summand when that
    // summand is computed (not an input or parameter) and read here for the last time.
    let order: HashMap<NodeId, usize> = needed.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    for &id in needed {
        let Some((a, b)) = op(id).and_then(|o| o.as_add()) else {
            continue;
        };
        for (h, layer) in [(a, b), (b, a)] {
            let Role::Gemm { lin, act, .. } = roles[layer] else {
                continue;
            };
            let computed = matches!(nodes[h].kind, NodeKind::Op(_));
            let later_reader = needed
                .iter()
                .any(|&n| order[&n] > order[&id] && nodes[n].kind.operands().contains(&h));
            if computed && h != layer && only_use(layer) && !later_reader && !outputs.contains(&h) {
                roles[layer] = Role::Folded { at: id };
                if lin != layer {
                    roles[lin] = Role::Folded { at: id };
                }
                roles[id] = Role::Gemm {
                    lin,
                    act,
                    into: Some(h),
                };
                break;
            }
        }
    }
    roles
}

/// The node at whose turn `id`'s instructions run (a folded node's operands are read there).
fn emission_point(roles: &[Role], id: NodeId) -> usize {
    match roles[id] {
        Role::Folded { at } => at,
        _ => id,
    }
}

impl Builder<'_> {
    fn storage(&self) -> bool {
        self.plan.precision == Precision::F16
    }

    /// A buffer of `len` elements in the given storage, reused when one is free.
    fn buffer(&mut self, len: usize, storage: bool) -> Loc {
        let key = (len, storage && self.storage());
        let buf = match self.free.get_mut(&key).and_then(|v| v.pop()) {
            Some(b) => b,
            None => {
                self.plan.buf_lens.push(len);
                self.plan.buf_storage.push(key.1);
                self.plan.buf_lens.len() - 1
            }
        };
        Loc { buf, off: 0, len }
    }

    /// Give node `id` a home of its own (`storage`: in the program's storage).
    fn place(&mut self, id: NodeId, storage: bool) -> Loc {
        let [r, c] = self.plan.shapes[id];
        let loc = self.buffer(r * c, storage);
        self.owners.entry(loc.buf).or_default().push(id);
        self.homes[id] = Some(Home {
            loc,
            storage: storage && self.storage(),
        });
        loc
    }

    /// Node `id`'s value in f32 (`storage = false`) or in the program's storage, converting
    /// (once) when its home is in the other one.
    fn value(&mut self, id: NodeId, storage: bool) -> Loc {
        let storage = storage && self.storage();
        let home = self.homes[id].expect("operands are lowered first");
        if home.storage == storage {
            return home.loc;
        }
        if let Some(l) = self.converted.get(&(id, storage)) {
            return *l;
        }
        let [r, c] = self.plan.shapes[id];
        let y = self.buffer(r * c, storage);
        self.owners.entry(y.buf).or_default().push(id);
        self.emit(Arc::new(Convert {
            x: home.loc,
            y,
            to_storage: storage,
        }));
        self.converted.insert((id, storage), y);
        y
    }

    fn emit(&mut self, ins: Arc<dyn Instr>) {
        self.contents.remove(&ins.dst().buf);
        self.plan.instrs.push(ins);
    }

    fn lower(&mut self, id: NodeId, role: &Role) -> Result<()> {
        let graph = self.graph;
        match (&graph.nodes()[id].kind, *role) {
            (NodeKind::Input(name), _) => {
                let loc = self.place(id, false);
                self.plan.inputs.push((name.clone(), id, loc));
            }
            (NodeKind::Param(i), _) => {
                self.homes[id] = Some(Home {
                    loc: self.plan.param_locs[*i],
                    storage: self.storage(),
                });
            }
            (_, Role::Folded { .. }) => {}
            (NodeKind::Op(_), Role::Gemm { lin, act, into }) => self.lower_gemm(id, lin, act, into),
            (NodeKind::Op(op), Role::Plain) => match op.as_concat() {
                Some(parts) => self.lower_concat(id, &parts),
                None => self.lower_op(id, op.as_ref()),
            },
        }
        Ok(())
    }

    fn lower_gemm(&mut self, id: NodeId, lin: NodeId, act: Activation, into: Option<NodeId>) {
        let parts = self.graph.nodes()[lin]
            .kind
            .op()
            .and_then(|o| o.as_linear())
            .expect("a gemm role is a linear layer");
        let [m, n] = self.plan.shapes[lin];
        let k = self.plan.shapes[parts.x][1];
        let a = self.value(parts.x, true);
        let b = self.value(parts.w, true);
        let bias = parts.b.map(|b| self.value(b, true));
        let c = match into {
            Some(h) => {
                let home = self.value(h, true);
                // The sum lives where h did.
                self.owners.entry(home.buf).or_default().push(id);
                self.homes[id] = Some(Home {
                    loc: home,
                    storage: self.storage(),
                });
                home
            }
            None => self.place(id, true),
        };
        let g = GemmSpec {
            m,
            n,
            k,
            ta: false,
            tb: false,
            acc: into.is_some(),
        };
        self.emit(Arc::new(Gemm {
            g,
            act,
            a,
            b,
            bias,
            c,
        }));
    }

    /// A concatenation: its parts copied into its columns, except those its buffer already
    /// holds there.
    fn lower_concat(&mut self, id: NodeId, parts: &[NodeId]) {
        let [rows, cols] = self.plan.shapes[id];
        let y = self.place(id, true);
        let mut held = self.contents.remove(&y.buf).unwrap_or_default();
        if let [p, q] = parts[..] {
            let (wp, wq) = (self.plan.shapes[p][1], self.plan.shapes[q][1]);
            if !held.contains(&(0, wp, p)) && !held.contains(&(wp, wq, q)) {
                let (a, b) = (self.value(p, true), self.value(q, true));
                self.plan.instrs.push(Arc::new(Concat2 {
                    a,
                    b,
                    y,
                    rows,
                    a_cols: wp,
                    b_cols: wq,
                }));
                self.contents.insert(y.buf, vec![(0, wp, p), (wp, wq, q)]);
                return;
            }
        }
        let mut y_off = 0;
        for &p in parts {
            let w = self.plan.shapes[p][1];
            if !held.contains(&(y_off, w, p)) {
                let x = self.value(p, true);
                self.plan.instrs.push(Arc::new(ColCopy {
                    x,
                    y,
                    rows,
                    x_cols: w,
                    y_cols: cols,
                    x_off: 0,
                    y_off,
                    width: w,
                    acc: false,
                }));
                held.retain(|&(o, wd, _)| o + wd <= y_off || y_off + w <= o);
                held.push((y_off, w, p));
            }
            y_off += w;
        }
        self.contents.insert(y.buf, held);
    }

    /// Any other op: lowered by itself, in storage when all its instructions run in f16.
    fn lower_op(&mut self, id: NodeId, op: &dyn Op) {
        let operands = op.operands();
        let shapes = self.plan.shapes.clone();
        // A dry lowering tells whether every instruction of the op runs in f16 storage.
        let mut probe = Vec::new();
        let dummy: Vec<Option<Loc>> = (0..shapes.len())
            .map(|i| {
                Some(Loc {
                    buf: i + 1,
                    off: 0,
                    len: shapes[i][0] * shapes[i][1],
                })
            })
            .collect();
        op.forward(&mut Forward {
            node: id,
            shapes: &shapes,
            values: &dummy,
            out: &mut probe,
        });
        let storage = probe.iter().all(|i| i.f16_storage());
        let mut values = vec![None; shapes.len()];
        for &o in &operands {
            values[o] = Some(self.value(o, storage));
        }
        values[id] = Some(self.place(id, storage));
        let mut out = Vec::new();
        op.forward(&mut Forward {
            node: id,
            shapes: &shapes,
            values: &values,
            out: &mut out,
        });
        for ins in out {
            self.emit(ins);
        }
    }

    /// Return to the pool the buffers whose every value is dead after node `at`.
    fn release(&mut self, at: NodeId) {
        let dead: Vec<usize> = self
            .owners
            .iter()
            .filter(|(_, ns)| ns.iter().all(|&n| self.last_use[n] <= at))
            .map(|(&b, _)| b)
            .collect();
        for b in dead {
            self.owners.remove(&b);
            let key = (self.plan.buf_lens[b], self.plan.buf_storage[b]);
            self.free.entry(key).or_default().push(b);
        }
    }
}
