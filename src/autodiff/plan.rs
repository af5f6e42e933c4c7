//! Lowering a [`Graph`] for one batch size into a flat, backend-neutral program: buffer
//! locations and forward and backward instructions. The backward instructions come from one
//! reverse topological walk over the nodes the loss depends on; both backends run the same
//! program, so they agree by construction on what is computed.

use crate::autodiff::graph::{Dim, Graph, NodeId, Op};
use crate::error::{Error, Result};
use crate::kernels::Activation;

/// Buffer 0 holds every parameter, contiguously.
pub const PARAMS: usize = 0;
/// Buffer 1 holds every parameter gradient, same layout as [`PARAMS`].
pub const GRADS: usize = 1;

/// Parameters start on multiples of this many elements (256 bytes, the largest storage
/// offset alignment adapters ask for), so each can be bound on its own.
pub const PARAM_ALIGN: usize = 64;

/// A range of a buffer: `len` elements from element `off` of buffer `buf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    /// Buffer index (see [`PARAMS`], [`GRADS`]; others are per-node buffers).
    pub buf: usize,
    /// First element.
    pub off: usize,
    /// Number of elements.
    pub len: usize,
}

/// Sizes and transposes of one matrix product `c (+)= op(a)·op(b) (+ bias)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmSpec {
    /// Rows of `c`.
    pub m: usize,
    /// Columns of `c`.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// `a` is stored `[k, m]`.
    pub ta: bool,
    /// `b` is stored `[n, k]`.
    pub tb: bool,
    /// Add into `c` instead of overwriting it.
    pub acc: bool,
}

/// Elementwise binary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `a + b`.
    Add,
    /// `a ⊙ b`.
    Mul,
}

/// One instruction. Every `acc` flag means "add into the destination" instead of "overwrite".
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq)]
pub enum Instr {
    /// `c (+)= op(a)·op(b) (+ bias[n])`.
    Gemm {
        g: GemmSpec,
        a: Loc,
        b: Loc,
        bias: Option<Loc>,
        c: Loc,
    },
    /// `y = f(x)`.
    Act { f: Activation, x: Loc, y: Loc },
    /// `gx (+)= gy · f'(x)`.
    ActGrad {
        f: Activation,
        x: Loc,
        gy: Loc,
        gx: Loc,
        acc: bool,
    },
    /// `y[r, c] = x[r, c] + b[c]`.
    BiasAdd { x: Loc, b: Loc, y: Loc, cols: usize },
    /// `y[c] (+)= Σ_r x[r, c]`.
    ColSum {
        x: Loc,
        y: Loc,
        rows: usize,
        cols: usize,
        acc: bool,
    },
    /// `y (+)= a op b`.
    Binary {
        op: BinOp,
        a: Loc,
        b: Loc,
        y: Loc,
        acc: bool,
    },
    /// `y (+)= s·x + c`.
    ScaleAdd {
        x: Loc,
        y: Loc,
        s: f32,
        c: f32,
        acc: bool,
    },
    /// `y[r, y_off + j] (+)= x[r, x_off + j]` for `j < width`.
    ColCopy {
        x: Loc,
        y: Loc,
        rows: usize,
        x_cols: usize,
        y_cols: usize,
        x_off: usize,
        y_off: usize,
        width: usize,
        acc: bool,
    },
    /// `y[0] = s · Σ x`.
    Sum { x: Loc, y: Loc, s: f32 },
    /// `y[0] = s · Σ (a − b)²`.
    SqDiffSum { a: Loc, b: Loc, y: Loc, s: f32 },
    /// `y (+)= s · g[0]` everywhere.
    Broadcast { g: Loc, y: Loc, s: f32, acc: bool },
    /// `y (+)= s · g[0] · (a − b)`.
    SqDiffGrad {
        a: Loc,
        b: Loc,
        g: Loc,
        y: Loc,
        s: f32,
        acc: bool,
    },
    /// Per group of `k`: `y = v − ⟨x, v⟩ x`.
    Proj { v: Loc, x: Loc, y: Loc, k: usize },
    /// Per group: `y (+)= g − ⟨x, g⟩ x` (the gradient with respect to `v`).
    ProjGradV {
        x: Loc,
        g: Loc,
        y: Loc,
        k: usize,
        acc: bool,
    },
    /// Per group: `y (+)= −(⟨x, g⟩ v + ⟨x, v⟩ g)` (the gradient with respect to `x`).
    ProjGradX {
        v: Loc,
        x: Loc,
        g: Loc,
        y: Loc,
        k: usize,
        acc: bool,
    },
    /// `y = 0`.
    Zero { y: Loc },
}

impl Instr {
    /// The location written.
    pub fn dst(&self) -> Loc {
        match self {
            Instr::Gemm { c, .. } => *c,
            Instr::Act { y, .. }
            | Instr::BiasAdd { y, .. }
            | Instr::ColSum { y, .. }
            | Instr::Binary { y, .. }
            | Instr::ScaleAdd { y, .. }
            | Instr::ColCopy { y, .. }
            | Instr::Sum { y, .. }
            | Instr::SqDiffSum { y, .. }
            | Instr::Broadcast { y, .. }
            | Instr::SqDiffGrad { y, .. }
            | Instr::Proj { y, .. }
            | Instr::ProjGradV { y, .. }
            | Instr::ProjGradX { y, .. }
            | Instr::Zero { y } => *y,
            Instr::ActGrad { gx, .. } => *gx,
        }
    }

    /// The locations read (the destination of an accumulating instruction not included).
    pub fn srcs(&self) -> Vec<Loc> {
        match self {
            Instr::Gemm { a, b, bias, .. } => {
                let mut v = vec![*a, *b];
                v.extend(bias.iter().copied());
                v
            }
            Instr::Act { x, .. } => vec![*x],
            Instr::ActGrad { x, gy, .. } => vec![*x, *gy],
            Instr::BiasAdd { x, b, .. } => vec![*x, *b],
            Instr::ColSum { x, .. } | Instr::ScaleAdd { x, .. } | Instr::ColCopy { x, .. } => {
                vec![*x]
            }
            Instr::Binary { a, b, .. } => vec![*a, *b],
            Instr::Sum { x, .. } => vec![*x],
            Instr::SqDiffSum { a, b, .. } => vec![*a, *b],
            Instr::Broadcast { g, .. } => vec![*g],
            Instr::SqDiffGrad { a, b, g, .. } => vec![*a, *b, *g],
            Instr::Proj { v, x, .. } => vec![*v, *x],
            Instr::ProjGradV { x, g, .. } => vec![*x, *g],
            Instr::ProjGradX { v, x, g, .. } => vec![*v, *x, *g],
            Instr::Zero { .. } => vec![],
        }
    }
}

/// A graph lowered for one batch size.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Batch size the plan was made for.
    pub batch: usize,
    /// Element count of every buffer (index = [`Loc::buf`]).
    pub buf_lens: Vec<usize>,
    /// Where each parameter lives in [`PARAMS`] (and its gradient in [`GRADS`]).
    pub param_locs: Vec<Loc>,
    /// Resolved `[rows, cols]` of every node.
    pub shapes: Vec<[usize; 2]>,
    /// Value location of every computed node (`None` for nodes not needed).
    pub values: Vec<Option<Loc>>,
    /// Gradient location of every node that gets one.
    pub grads: Vec<Option<Loc>>,
    /// Forward instructions.
    pub forward: Vec<Instr>,
    /// Backward instructions (empty without a loss).
    pub backward: Vec<Instr>,
    /// The loss node, if any.
    pub loss: Option<NodeId>,
    /// A one-element location the backend sets to 1 before the backward pass (the loss
    /// gradient).
    pub seed: Option<Loc>,
}

impl Plan {
    /// Lower `graph` for batch size `batch`, computing `outputs` and, when `loss` is given,
    /// the loss and every parameter gradient.
    pub fn build(
        graph: &Graph,
        batch: usize,
        outputs: &[NodeId],
        loss: Option<NodeId>,
    ) -> Result<Plan> {
        if batch == 0 {
            return Err(Error::InvalidArgument("batch size must be positive".into()));
        }
        let nodes = graph.nodes();
        let mut targets = outputs.to_vec();
        if let Some(l) = loss {
            if graph.shape(l)? != [Dim::Fixed(1), Dim::Fixed(1)] {
                return Err(Error::Shape(format!(
                    "the loss node {l} must be a scalar [1, 1], not {:?}",
                    graph.shape(l)?
                )));
            }
            targets.push(l);
        }
        let needed = graph.ancestors(&targets)?;
        let shapes: Vec<[usize; 2]> = nodes
            .iter()
            .map(|n| [n.shape[0].resolve(batch), n.shape[1].resolve(batch)])
            .collect();

        // Parameters: every one has a slot (checkpoints hold them all), aligned.
        let mut param_locs = Vec::new();
        let mut off = 0usize;
        for p in graph.params() {
            let len = p.len();
            param_locs.push(Loc {
                buf: PARAMS,
                off,
                len,
            });
            off = (off + len).div_ceil(PARAM_ALIGN) * PARAM_ALIGN;
        }
        let total = off.max(PARAM_ALIGN);
        let mut buf_lens = vec![total, total];
        let alloc = |len: usize, lens: &mut Vec<usize>| {
            lens.push(len);
            Loc {
                buf: lens.len() - 1,
                off: 0,
                len,
            }
        };

        let mut values: Vec<Option<Loc>> = vec![None; nodes.len()];
        for &id in &needed {
            let [r, c] = shapes[id];
            values[id] = Some(match &nodes[id].op {
                Op::Param(i) => param_locs[*i],
                _ => alloc(r * c, &mut buf_lens),
            });
        }

        let val = |id: NodeId| values[id].expect("operand of a needed node is needed");
        let mut forward = Vec::new();
        for &id in &needed {
            let [rows, cols] = shapes[id];
            let y = val(id);
            match &nodes[id].op {
                Op::Input(_) | Op::Param(_) => {}
                Op::MatMul { a, b, ta, tb } => {
                    let k = if *ta { shapes[*a][0] } else { shapes[*a][1] };
                    forward.push(Instr::Gemm {
                        g: GemmSpec {
                            m: rows,
                            n: cols,
                            k,
                            ta: *ta,
                            tb: *tb,
                            acc: false,
                        },
                        a: val(*a),
                        b: val(*b),
                        bias: None,
                        c: y,
                    });
                }
                Op::Linear { x, w, b } => forward.push(Instr::Gemm {
                    g: GemmSpec {
                        m: rows,
                        n: cols,
                        k: shapes[*x][1],
                        ta: false,
                        tb: false,
                        acc: false,
                    },
                    a: val(*x),
                    b: val(*w),
                    bias: b.map(val),
                    c: y,
                }),
                Op::BiasAdd { x, b } => forward.push(Instr::BiasAdd {
                    x: val(*x),
                    b: val(*b),
                    y,
                    cols,
                }),
                Op::Add(a, b) => forward.push(Instr::Binary {
                    op: BinOp::Add,
                    a: val(*a),
                    b: val(*b),
                    y,
                    acc: false,
                }),
                Op::Mul(a, b) => forward.push(Instr::Binary {
                    op: BinOp::Mul,
                    a: val(*a),
                    b: val(*b),
                    y,
                    acc: false,
                }),
                Op::Scale(a, s) => forward.push(Instr::ScaleAdd {
                    x: val(*a),
                    y,
                    s: *s,
                    c: 0.0,
                    acc: false,
                }),
                Op::AddScalar(a, s) => forward.push(Instr::ScaleAdd {
                    x: val(*a),
                    y,
                    s: 1.0,
                    c: *s,
                    acc: false,
                }),
                Op::Act(a, f) => forward.push(Instr::Act {
                    f: *f,
                    x: val(*a),
                    y,
                }),
                Op::Concat(parts) => {
                    let mut y_off = 0;
                    for &p in parts {
                        let w = shapes[p][1];
                        forward.push(Instr::ColCopy {
                            x: val(p),
                            y,
                            rows,
                            x_cols: w,
                            y_cols: cols,
                            x_off: 0,
                            y_off,
                            width: w,
                            acc: false,
                        });
                        y_off += w;
                    }
                }
                Op::Sum(a) => forward.push(Instr::Sum {
                    x: val(*a),
                    y,
                    s: 1.0,
                }),
                Op::Mean(a) => forward.push(Instr::Sum {
                    x: val(*a),
                    y,
                    s: 1.0 / (shapes[*a][0] * shapes[*a][1]) as f32,
                }),
                Op::MseLoss { v, u } => forward.push(Instr::SqDiffSum {
                    a: val(*v),
                    b: val(*u),
                    y,
                    s: 1.0 / shapes[*v][0] as f32,
                }),
                Op::ProjTangent { v, x, k } => forward.push(Instr::Proj {
                    v: val(*v),
                    x: val(*x),
                    y,
                    k: *k,
                }),
            }
        }

        let mut grads: Vec<Option<Loc>> = vec![None; nodes.len()];
        let mut backward = Vec::new();
        let mut seed = None;
        if let Some(loss) = loss {
            let on_path = graph.ancestors(&[loss])?;
            let mut req = vec![false; nodes.len()];
            for &id in &on_path {
                req[id] = matches!(nodes[id].op, Op::Param(_))
                    || nodes[id].op.operands().iter().any(|&o| req[o]);
            }
            for &id in &on_path {
                if !req[id] {
                    continue;
                }
                grads[id] = Some(match &nodes[id].op {
                    Op::Param(i) => Loc {
                        buf: GRADS,
                        ..param_locs[*i]
                    },
                    _ => alloc(shapes[id][0] * shapes[id][1], &mut buf_lens),
                });
            }
            seed = grads[loss];
            let mut written = vec![false; nodes.len()];
            written[loss] = true;
            let gl = |id: NodeId| grads[id].expect("gradient slot");
            for &id in on_path.iter().rev() {
                if !req[id] {
                    continue;
                }
                let gy = gl(id);
                let [rows, cols] = shapes[id];
                // Emit `f(dst, acc)` for operand `o` when it needs a gradient.
                let mut emit = |o: NodeId, f: &dyn Fn(Loc, bool) -> Instr| {
                    if req[o] {
                        let acc = written[o];
                        written[o] = true;
                        backward.push(f(gl(o), acc));
                    }
                };
                match &nodes[id].op {
                    Op::Input(_) | Op::Param(_) => {}
                    Op::MatMul { a, b, ta, tb } => {
                        let (a, b, ta, tb) = (*a, *b, *ta, *tb);
                        let k = if ta { shapes[a][0] } else { shapes[a][1] };
                        let (m, n) = (rows, cols);
                        let (va, vb) = (val(a), val(b));
                        emit(a, &|d, acc| {
                            if !ta {
                                // da[m,k] = dc · op(b)ᵀ
                                Instr::Gemm {
                                    g: GemmSpec {
                                        m,
                                        n: k,
                                        k: n,
                                        ta: false,
                                        tb: !tb,
                                        acc,
                                    },
                                    a: gy,
                                    b: vb,
                                    bias: None,
                                    c: d,
                                }
                            } else {
                                // da[k,m] = op(b) · dcᵀ
                                Instr::Gemm {
                                    g: GemmSpec {
                                        m: k,
                                        n: m,
                                        k: n,
                                        ta: tb,
                                        tb: true,
                                        acc,
                                    },
                                    a: vb,
                                    b: gy,
                                    bias: None,
                                    c: d,
                                }
                            }
                        });
                        emit(b, &|d, acc| {
                            if !tb {
                                // db[k,n] = op(a)ᵀ · dc
                                Instr::Gemm {
                                    g: GemmSpec {
                                        m: k,
                                        n,
                                        k: m,
                                        ta: !ta,
                                        tb: false,
                                        acc,
                                    },
                                    a: va,
                                    b: gy,
                                    bias: None,
                                    c: d,
                                }
                            } else {
                                // db[n,k] = dcᵀ · op(a)
                                Instr::Gemm {
                                    g: GemmSpec {
                                        m: n,
                                        n: k,
                                        k: m,
                                        ta: true,
                                        tb: ta,
                                        acc,
                                    },
                                    a: gy,
                                    b: va,
                                    bias: None,
                                    c: d,
                                }
                            }
                        });
                    }
                    Op::Linear { x, w, b } => {
                        let inp = shapes[*x][1];
                        let (vx, vw) = (val(*x), val(*w));
                        emit(*x, &|d, acc| Instr::Gemm {
                            g: GemmSpec {
                                m: rows,
                                n: inp,
                                k: cols,
                                ta: false,
                                tb: true,
                                acc,
                            },
                            a: gy,
                            b: vw,
                            bias: None,
                            c: d,
                        });
                        emit(*w, &|d, acc| Instr::Gemm {
                            g: GemmSpec {
                                m: inp,
                                n: cols,
                                k: rows,
                                ta: true,
                                tb: false,
                                acc,
                            },
                            a: vx,
                            b: gy,
                            bias: None,
                            c: d,
                        });
                        if let Some(b) = b {
                            emit(*b, &|d, acc| Instr::ColSum {
                                x: gy,
                                y: d,
                                rows,
                                cols,
                                acc,
                            });
                        }
                    }
                    Op::BiasAdd { x, b } => {
                        emit(*x, &|d, acc| Instr::ScaleAdd {
                            x: gy,
                            y: d,
                            s: 1.0,
                            c: 0.0,
                            acc,
                        });
                        emit(*b, &|d, acc| Instr::ColSum {
                            x: gy,
                            y: d,
                            rows,
                            cols,
                            acc,
                        });
                    }
                    Op::Add(a, b) => {
                        for o in [*a, *b] {
                            emit(o, &|d, acc| Instr::ScaleAdd {
                                x: gy,
                                y: d,
                                s: 1.0,
                                c: 0.0,
                                acc,
                            });
                        }
                    }
                    Op::Mul(a, b) => {
                        let (va, vb) = (val(*a), val(*b));
                        emit(*a, &|d, acc| Instr::Binary {
                            op: BinOp::Mul,
                            a: gy,
                            b: vb,
                            y: d,
                            acc,
                        });
                        emit(*b, &|d, acc| Instr::Binary {
                            op: BinOp::Mul,
                            a: gy,
                            b: va,
                            y: d,
                            acc,
                        });
                    }
                    Op::Scale(a, s) => emit(*a, &|d, acc| Instr::ScaleAdd {
                        x: gy,
                        y: d,
                        s: *s,
                        c: 0.0,
                        acc,
                    }),
                    Op::AddScalar(a, _) => emit(*a, &|d, acc| Instr::ScaleAdd {
                        x: gy,
                        y: d,
                        s: 1.0,
                        c: 0.0,
                        acc,
                    }),
                    Op::Act(a, f) => {
                        let x = val(*a);
                        emit(*a, &|d, acc| Instr::ActGrad {
                            f: *f,
                            x,
                            gy,
                            gx: d,
                            acc,
                        })
                    }
                    Op::Concat(parts) => {
                        let mut x_off = 0;
                        for &p in parts {
                            let w = shapes[p][1];
                            emit(p, &|d, acc| Instr::ColCopy {
                                x: gy,
                                y: d,
                                rows,
                                x_cols: cols,
                                y_cols: w,
                                x_off,
                                y_off: 0,
                                width: w,
                                acc,
                            });
                            x_off += w;
                        }
                    }
                    Op::Sum(a) => emit(*a, &|d, acc| Instr::Broadcast {
                        g: gy,
                        y: d,
                        s: 1.0,
                        acc,
                    }),
                    Op::Mean(a) => {
                        let s = 1.0 / (shapes[*a][0] * shapes[*a][1]) as f32;
                        emit(*a, &|d, acc| Instr::Broadcast {
                            g: gy,
                            y: d,
                            s,
                            acc,
                        })
                    }
                    Op::MseLoss { v, u } => {
                        let s = 2.0 / shapes[*v][0] as f32;
                        let (vv, vu) = (val(*v), val(*u));
                        emit(*v, &|d, acc| Instr::SqDiffGrad {
                            a: vv,
                            b: vu,
                            g: gy,
                            y: d,
                            s,
                            acc,
                        });
                        emit(*u, &|d, acc| Instr::SqDiffGrad {
                            a: vv,
                            b: vu,
                            g: gy,
                            y: d,
                            s: -s,
                            acc,
                        });
                    }
                    Op::ProjTangent { v, x, k } => {
                        let (vv, vx, k) = (val(*v), val(*x), *k);
                        emit(*v, &|d, acc| Instr::ProjGradV {
                            x: vx,
                            g: gy,
                            y: d,
                            k,
                            acc,
                        });
                        emit(*x, &|d, acc| Instr::ProjGradX {
                            v: vv,
                            x: vx,
                            g: gy,
                            y: d,
                            k,
                            acc,
                        });
                    }
                }
            }
            // Parameters the loss does not depend on get a zero gradient.
            for (i, p) in graph.params().iter().enumerate() {
                if !written[p.node] {
                    backward.push(Instr::Zero {
                        y: Loc {
                            buf: GRADS,
                            ..param_locs[i]
                        },
                    });
                }
            }
        }
        let plan = Plan {
            batch,
            buf_lens,
            param_locs,
            shapes,
            values,
            grads,
            forward,
            backward,
            loss,
            seed,
        };
        for ins in plan.forward.iter().chain(&plan.backward) {
            let d = ins.dst();
            if ins.srcs().iter().any(|s| s.buf == d.buf) {
                return Err(Error::InvalidArgument(format!(
                    "internal: an instruction reads and writes buffer {}: {ins:?}",
                    d.buf
                )));
            }
        }
        Ok(plan)
    }
}
