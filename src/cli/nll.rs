//! `fisherflow nll`: the negative log-likelihood of sequences under a trained model, with its
//! standard error and its scale (the toy target's own entropy, uniform noise).

use std::path::PathBuf;
use std::time::Instant;

use fisherflow::checkpoint::Checkpoint;
use fisherflow::data::{Labels, SequenceDataset, SignalTracks};
use fisherflow::flow::nll::{
    self, class_nll, sequence_nll_given, Divergence, NllConfig, Protocol, MAX_EXACT_WIDTH,
    MAX_PROBES,
};
use fisherflow::flow::{Adaptive, FlowModel, Geometry, Solver};
use fisherflow::gpu::ContextOptions;
use fisherflow::{budget::MAX_SAMPLE_STEPS, Error, Result};

use super::common::{self, flag_error, DataArgs, DeviceArgs};
use super::tracks;

/// Arguments of `fisherflow nll`.
///
/// Each data sequence (one-hot points x = √onehot on the positive orthants) is integrated back
/// to t = 0 along the model's flow while the divergence of the projected field on the product
/// of spheres is accumulated; the prior's log-density (uniform on the orthants:
/// p_0 = 2^K Γ(K/2)/(2π^{K/2}) per position) is added. Models of the simplex methods are
/// integrated on the simplex (divergence within Σp = 1; prior Dir(1), or Dir(½) for
/// fisher-rao-simplex); Dirichlet FM's points are taken at t = T_MAX = 7, moved by eps from
/// the vertices towards the simplex's centre. A class-conditional model scores each sequence
/// given its label (the data's, or --class for all), without guidance; a model trained with a
/// signal track scores each sequence given its track (--signal). The default protocol (vertex)
/// reports −log p_{1−eps}(x), the negative log-density of the model at t = 1 − eps at the one-hot
/// points (the field diverges at t = 1 on the vertices and was trained on t < 1): a density on
/// the spheres, not a probability, which falls as the model concentrates on the data and can
/// be negative. `--protocol dequantized` reports an upper bound on the NLL of the discrete
/// model the sampler draws from (argmax at t = 1), with draws in the argmax cells
/// (contracted towards the vertices by --contract): in the units of the data's entropy, but
/// loose for a trained flow, whose mass is far more concentrated than the draws.
#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct NllArgs {
    /// A checkpoint written by `fisherflow train`.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Class labels of the sequences of a --data file, one integer a line (class-conditional
    /// models; FASTA class= headers and dna: sources carry their own).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Score every sequence under this class (class-conditional models) instead of its label.
    #[arg(long)]
    class: Option<u32>,
    /// The per-position signal track of every sequence of --data (a model trained with
    /// --signal): L reals a line, line i for sequence i; repeat for more channels, one file each,
    /// in the order the model was trained with.
    #[arg(long, value_name = "FILE")]
    signal: Vec<PathBuf>,
    /// Divergence: exact (L·K vector-Jacobian products per field evaluation, up to
    /// L·K = 1024) or hutchinson (--probes Rademacher probes, unbiased).
    #[arg(long = "div", value_enum, default_value_t = NllConfig::default().divergence)]
    div: Divergence,
    /// Hutchinson probes per sequence.
    #[arg(long, default_value_t = NllConfig::default().probes,
          value_parser = common::count(1, MAX_PROBES as u64))]
    probes: usize,
    /// Integrator: euler, midpoint, rk4, or dopri5 (adaptive, --rtol and --atol).
    #[arg(long, value_enum, default_value_t = NllConfig::default().solver)]
    solver: Solver,
    /// Integration steps from t = 1 back to 0 (fixed-step solvers).
    #[arg(long, default_value_t = NllConfig::default().steps,
          value_parser = common::count(1, MAX_SAMPLE_STEPS as u64))]
    steps: usize,
    /// Relative tolerance of dopri5.
    #[arg(long, default_value_t = Adaptive::default().rtol, value_parser = common::positive_f64)]
    rtol: f64,
    /// Absolute tolerance of dopri5.
    #[arg(long, default_value_t = Adaptive::default().atol, value_parser = common::positive_f64)]
    atol: f64,
    /// What is reported: vertex (the density at the one-hot points at t = 1 − eps) or
    /// dequantized (a bound on the discrete NLL).
    #[arg(long, value_enum, default_value_t = NllConfig::default().protocol)]
    protocol: Protocol,
    /// With --protocol vertex: the points are taken at t = 1 − eps (Dirichlet FM: at t = 7, the
    /// vertices moved by eps towards the centre of the simplex).
    #[arg(long, default_value_t = NllConfig::default().eps, value_parser = common::positive_f64)]
    eps: f64,
    /// With the dequantized protocol: the draws in the argmax cells are contracted towards
    /// the vertices along great circles, their angle from the vertex scaled by this factor
    /// (1: uniform in the cells); the bound holds for every value and is tightest where q
    /// matches the model's concentration.
    #[arg(long, default_value_t = NllConfig::default().contract, value_parser = common::positive_f64)]
    contract: f64,
    /// Evaluate at most this many sequences (the first ones).
    #[arg(long, default_value_t = 1000, value_parser = common::count(1, u64::MAX))]
    max_seqs: usize,
    /// Seed of the probes and of the dequantisation draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the sequences drawn from a toy: or dna: source (training draws with its
    /// --seed, 0 by default: the default here gives held-out sequences).
    #[arg(long, default_value_t = 1)]
    data_seed: u64,
    #[command(flatten)]
    device: DeviceArgs,
}

/// `fisherflow nll`.
pub fn run(opts: &ContextOptions, a: NllArgs) -> Result<()> {
    let spec = a.data.data.clone().ok_or_else(|| {
        Error::InvalidArgument("--data is required (toy:..., dna:... or a file)".into())
    })?;
    if a.eps >= 1.0 {
        return Err(Error::InvalidArgument(format!(
            "--eps {} must be below 1",
            a.eps
        )));
    }
    if a.contract > 1.0 {
        return Err(Error::InvalidArgument(format!(
            "--contract {} must be at most 1",
            a.contract
        )));
    }
    let ck = Checkpoint::load(&a.model).map_err(|e| flag_error("--model", e))?;
    let model = FlowModel::from_checkpoint(&ck).map_err(|e| flag_error("--model", e))?;
    let (l, k) = (model.config.mlp.seq_len, model.config.mlp.categories);
    let cfg = NllConfig {
        divergence: a.div,
        probes: a.probes,
        solver: a.solver,
        steps: a.steps,
        adaptive: Adaptive {
            rtol: a.rtol,
            atol: a.atol,
            ..Default::default()
        },
        seed: a.seed,
        protocol: a.protocol,
        eps: a.eps,
        contract: a.contract,
        chunk: None,
    };
    nll::check(&model, &cfg).map_err(|e| match (e, a.div) {
        (Error::InvalidArgument(m), Divergence::Exact) if l * k > MAX_EXACT_WIDTH => {
            Error::InvalidArgument(format!("--div exact: {m}"))
        }
        (e, _) => flag_error("--model", e),
    })?;
    if let Some((_, dl, dk)) = common::planned_shape(&spec)? {
        check_shape(&spec, dl, dk, l, k)?;
    }
    model.config.cond.check_class(a.class)?;
    model.config.cond.check_signal(a.signal.len(), "--signal")?;
    tracks::check_files(&a.signal)?;
    let mut data_args = a.data.clone();
    data_args.labels = a.labels.clone();
    let loaded = common::load(&spec, &data_args, a.data_seed)?;
    let mut data = loaded.data;
    check_shape(&spec, data.len, data.vocab, l, k)?;
    let what = format!("--data {spec} has");
    if let Some(t) = tracks::read(&a.signal, data.len, data.n, &what)? {
        data = data.with_signal(t)?;
    }
    if data.n > a.max_seqs {
        data = first(&data, a.max_seqs)?;
    }
    let conditional = model.config.cond.classes > 0;
    if conditional && a.class.is_none() && data.labels.is_none() {
        return Err(Error::InvalidArgument(format!(
            "--model is class-conditional ({} classes) and --data {spec} has no labels: give \
             --labels FILE, class=C in every FASTA header, or score every sequence under one \
             --class",
            model.config.cond.classes
        )));
    }
    let choice = a.device.choose(opts)?;
    let t0 = Instant::now();
    let res =
        sequence_nll_given(choice.device(), &model, &data, a.class, &cfg).map_err(|e| match e {
            Error::InvalidArgument(m) if m.starts_with("sequence ") => {
                Error::InvalidArgument(format!("--data {spec}: {m}"))
            }
            e => e,
        })?;
    let secs = t0.elapsed().as_secs_f64();
    let (mean, se) = res.mean_se();
    let (lf, ln2) = (l as f64, std::f64::consts::LN_2);
    let what = match a.protocol {
        Protocol::Dequantized => format!(
            "dequantized bound on the NLL (t = 1, contraction {})",
            a.contract as f32
        ),
        Protocol::Vertex if model.config.geometry == Geometry::Dirichlet => format!(
            "negative log-density at t = {} at the vertices moved by {} towards the centre",
            fisherflow::flow::dirichlet::T_MAX,
            a.eps as f32
        ),
        Protocol::Vertex => format!(
            "negative log-density at the vertices, t = 1 - {}",
            a.eps as f32
        ),
    };
    let mut given = match (conditional, a.class) {
        (false, _) => String::new(),
        (true, Some(c)) => format!(", every sequence given class {c}"),
        (true, None) => ", each sequence given its label".to_string(),
    };
    if !a.signal.is_empty() {
        given += &format!(
            ", {} its signal track ({} channel{})",
            if conditional {
                "and"
            } else {
                "each sequence given"
            },
            a.signal.len(),
            if a.signal.len() == 1 { "" } else { "s" }
        );
    }
    let div = match a.div {
        Divergence::Exact => "exact divergence".to_string(),
        Divergence::Hutchinson => format!("Hutchinson, {} probes", a.probes),
    };
    println!(
        "{} sequences of length {l} over {k} tokens ({}{given}): {what}; {div}; {}, {} field \
         evaluations per sequence; {secs:.1}s",
        data.n,
        method_name(model.config.geometry),
        a.solver.name(),
        res.evaluations
    );
    println!("                 nats            bits");
    println!(
        "per sequence  {mean:>8.4} ± {se:<6.4} {:>8.4} ± {:<6.4}",
        mean / ln2,
        se / ln2
    );
    println!(
        "per token     {:>8.4} ± {:<6.4} {:>8.4} ± {:<6.4}",
        mean / lf,
        se / lf,
        mean / lf / ln2,
        se / lf / ln2
    );
    if let (true, None, Some(labels)) = (conditional, a.class, &data.labels) {
        println!("per class     sequences   nats per token");
        for c in class_nll(&res, &labels.ids) {
            println!(
                "  class {:<5} {:>9}   {:>8.4} ± {:<6.4}",
                c.class,
                c.n,
                c.mean / lf,
                c.se / lf
            );
        }
    }
    println!(
        "scale per token: uniform noise log K = {:.4} nats{}",
        (k as f64).ln(),
        prior_scale(model.config.geometry, a.protocol, k)
    );
    if let Some(t) = &loaded.target {
        let h: f64 = t
            .probs
            .iter()
            .filter(|&&p| p > 0.0)
            .map(|p| -p * p.ln())
            .sum::<f64>()
            / lf;
        println!("the toy target's entropy per token: {h:.4} nats");
    }
    Ok(())
}

fn check_shape(spec: &str, dl: usize, dk: usize, l: usize, k: usize) -> Result<()> {
    if dl != l || dk > k {
        return Err(Error::InvalidArgument(format!(
            "--data {spec}: sequences of length {dl} over {dk} tokens, but --model expects \
             length {l} over {k} tokens"
        )));
    }
    Ok(())
}

/// The first `n` sequences of `data`, with their labels.
fn first(data: &SequenceDataset, n: usize) -> Result<SequenceDataset> {
    let l = data.len;
    let mut out = SequenceDataset::new(
        data.tokens[..n * l].to_vec(),
        n,
        l,
        data.vocab,
        data.alphabet.clone(),
    )?;
    if let Some(lab) = &data.labels {
        out.labels = Some(Labels::new(lab.ids[..n].to_vec(), Some(lab.classes))?);
    }
    if let Some(t) = data.signal() {
        let rows: Vec<usize> = (0..n).collect();
        out = out.with_signal(SignalTracks::new(t.gather(&rows), n, t.len, t.channels)?)?;
    }
    Ok(out)
}

fn method_name(g: Geometry) -> &'static str {
    match g {
        Geometry::Sphere => "Fisher-Flow",
        Geometry::Simplex => "linear FM",
        Geometry::FisherRaoSimplex => "Fisher-Rao on the simplex",
        Geometry::Dirichlet => "Dirichlet FM",
    }
}

/// What a zero field (the prior) gives per token, where it is a constant, and Dirichlet FM's
/// offset at the vertices.
fn prior_scale(g: Geometry, protocol: Protocol, k: usize) -> String {
    let kf = k as f64;
    match (g, protocol) {
        (_, Protocol::Dequantized) => format!("; zero field (the prior) {:.4} nats", kf.ln()),
        (Geometry::Sphere, _) => format!("; zero field (the prior) {:.4} nats", -nll::log_prior(k)),
        (Geometry::Simplex, _) => format!(
            "; zero field (the prior) {:.4} nats",
            -nll::log_dirichlet1(k)
        ),
        (Geometry::FisherRaoSimplex, _) => String::new(),
        (Geometry::Dirichlet, _) => format!(
            "; the exact field gives the data's NLL per token minus ln(Γ(K+T)/Γ(1+T)) = {:.4} \
             (T = T_MAX, up to O(eps))",
            nll::dirichlet_vertex_offset(k)
        ),
    }
}
