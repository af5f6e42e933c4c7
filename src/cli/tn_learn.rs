//! `fisherflow tn learn` and `fisherflow tn compare`: parse, check every input before any
//! work, run the library's loop or comparison, print and write the results.

use std::path::PathBuf;

use fisherflow::gpu::ContextOptions;
use fisherflow::plot::line_chart_svg;
use fisherflow::tensornet::{
    chains_on_gpu, check_column_size, column_table_bytes, compare as run_compare,
    learn as run_learn, BetaResult, Boundary, CompareOptions, Estimate, FredkinWeight, GpuChains,
    IsingLattice, IsingModel, MpsModel, ProposalKind, RoundReport, TableWeight,
};
use fisherflow::{Error, Result};
use serde_json::json;

use super::super::common::DeviceArgs;
use super::{
    boundary, check_output, exact_observables, finite_positive, learn_options, onsager,
    write_atomic, Target,
};

/// Options shared by the learning loop of `learn` and `compare`.
#[derive(clap::Args)]
pub(crate) struct LearnCommon {
    /// Bond dimension of the model.
    #[arg(long, default_value_t = 8)]
    pub chi: usize,
    /// Number of chains.
    #[arg(long, default_value_t = 64)]
    pub chains: usize,
    /// Recorded steps per chain and round.
    #[arg(long, default_value_t = 400)]
    pub steps: usize,
    /// Unrecorded steps at the start of each round.
    #[arg(long, default_value_t = 50)]
    pub burn_in: usize,
    /// Local Metropolis sweeps after each MPS move while learning.
    #[arg(long, default_value_t = 1)]
    pub local_sweeps: usize,
    /// Keep every k-th state of each chain as training data.
    #[arg(long, default_value_t = 2)]
    pub keep_every: usize,
    /// Adam steps of the fit after each round.
    #[arg(long, default_value_t = 200)]
    pub fit_steps: usize,
    /// Minibatch of the fit.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Adam learning rate of the fit (on log-entries).
    #[arg(long, default_value_t = 0.02, allow_hyphen_values = true)]
    pub lr: f64,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the chains run. On a GPU, disconnected chains on Ising and Fredkin targets run
    /// whole there (proposals, energies, accept, local sweeps); a table target draws its
    /// proposals there and accepts on the CPU; connected proposals run on the CPU.
    #[command(flatten)]
    pub dev: DeviceArgs,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
}

impl LearnCommon {
    fn check(&self) -> Result<()> {
        finite_positive("--lr", self.lr)?;
        for (flag, v) in [
            ("--chi", self.chi),
            ("--chains", self.chains),
            ("--steps", self.steps),
            ("--batch", self.batch),
        ] {
            if v == 0 {
                return Err(Error::InvalidArgument(format!("{flag} must be at least 1")));
            }
        }
        if self.fit_steps > 0 && !(1..=self.steps).contains(&self.keep_every) {
            return Err(Error::InvalidArgument(
                "--keep-every must lie in 1..=--steps when fitting".into(),
            ));
        }
        Ok(())
    }
}

/// Arguments of `fisherflow tn learn`.
#[derive(clap::Args)]
pub(crate) struct LearnArgs {
    /// Target: ising (L×L couplings J, field h), fredkin, or table (a file of log-weights).
    #[arg(long, default_value = "ising")]
    target: String,
    /// Ising: number of columns.
    #[arg(long, default_value_t = 4)]
    lx: usize,
    /// Ising: spins per column.
    #[arg(long, default_value_t = 4)]
    ly: usize,
    /// Ising: open, cylinder (periodic within columns) or torus.
    #[arg(long, default_value = "cylinder")]
    boundary: String,
    /// Ising: inverse temperature (> 0).
    #[arg(
        long,
        default_value_t = 0.440_686_793_509_771_5,
        allow_hyphen_values = true
    )]
    beta: f64,
    /// Ising: coupling J of every bond.
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    coupling: f64,
    /// Ising: field h at every site.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    field: f64,
    /// Fredkin: number of sites (even).
    #[arg(long, default_value_t = 12)]
    n: usize,
    /// Fredkin: valley-to-peak rate c in (0, 1).
    #[arg(long, default_value_t = 0.7)]
    c: f64,
    /// Table: file of d^N log-weights, one a line, configuration index Σ x_i d^i.
    #[arg(long)]
    table: Option<PathBuf>,
    /// Table: states per site.
    #[arg(long, default_value_t = 2)]
    states: usize,
    /// Learning rounds.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// MPS move: disconnected (fresh samples) or connected (noise, then exact denoising).
    #[arg(long, default_value = "disconnected")]
    proposal: String,
    /// Noise time of connected proposals (flip rate 1).
    #[arg(long, default_value_t = 0.2, allow_hyphen_values = true)]
    noise_time: f64,
    /// Write the rounds and final estimates as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    common: LearnCommon,
}

fn proposal(name: &str, t: f64) -> Result<ProposalKind> {
    match name {
        "disconnected" => Ok(ProposalKind::Disconnected),
        "connected" => {
            finite_positive("--noise-time", t)?;
            Ok(ProposalKind::Connected { t })
        }
        _ => Err(Error::InvalidArgument(format!(
            "--proposal must be disconnected or connected, got `{name}`"
        ))),
    }
}

fn target(a: &LearnArgs) -> Result<Target> {
    match a.target.as_str() {
        "ising" => {
            finite_positive("--beta", a.beta)?;
            if !a.coupling.is_finite() || !a.field.is_finite() {
                return Err(Error::InvalidArgument(format!(
                    "--coupling and --field must be finite, got {} and {}",
                    a.coupling, a.field
                )));
            }
            let lat = IsingLattice::new(a.lx, a.ly, boundary(&a.boundary)?)?;
            MpsModel::check_product(lat.n(), 2, a.common.chi).map_err(|e| {
                Error::Limit(format!("--chi {} on {} spins: {e}", a.common.chi, lat.n()))
            })?;
            let nb = lat.bonds().len();
            Ok(Target::Ising(IsingModel::with_couplings(
                lat,
                a.beta,
                vec![a.coupling; nb],
                vec![a.field; lat.n()],
            )?))
        }
        "fredkin" => Ok(Target::Fredkin(FredkinWeight::new(a.n, a.c)?)),
        "table" => {
            let path = a.table.as_ref().ok_or_else(|| {
                Error::InvalidArgument("--target table needs --table FILE".into())
            })?;
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Io(path.display().to_string(), e))?;
            Ok(Target::Table(TableWeight::parse(
                &text,
                a.states,
                &path.display().to_string(),
            )?))
        }
        t => Err(Error::InvalidArgument(format!(
            "--target must be ising, fredkin or table, got `{t}`"
        ))),
    }
}

fn est_json(e: &Estimate) -> serde_json::Value {
    json!({
        "mean": e.mean, "se": e.se, "tau": e.autocorr.tau,
        "tau_reliable": e.autocorr.reliable, "samples": e.samples,
    })
}

fn round_json(r: &RoundReport) -> serde_json::Value {
    json!({
        "round": r.round, "acceptance": r.acceptance,
        "observables": [est_json(&r.estimates[0]), est_json(&r.estimates[1])],
        "ess_per_second": r.ess_per_second, "seconds_mcmc": r.seconds_mcmc,
        "seconds_fit": r.seconds_fit,
        "nll": r.fit.map(|f| [f.nll_before, f.nll_after]),
    })
}

fn tau_text(e: &Estimate) -> String {
    format!(
        "{}{:.1}",
        if e.autocorr.reliable { "" } else { ">" },
        e.autocorr.tau
    )
}

/// Run `fisherflow tn learn`.
pub(crate) fn learn(opts: &ContextOptions, a: LearnArgs) -> Result<()> {
    a.common.check()?;
    if a.rounds == 0 {
        return Err(Error::InvalidArgument("--rounds must be at least 1".into()));
    }
    let kind = proposal(&a.proposal, a.noise_time)?;
    check_output(a.json.as_ref(), a.common.force)?;
    let t = target(&a)?;
    let model = t.start_model(a.common.chi, a.common.seed)?;
    let lo = learn_options(&a.common, kind, a.common.seed);
    lo.validate(t.as_dyn().n_sites())?;
    let exact = exact_observables(&t)?;
    let gpu = a.common.dev.choose(opts)?.context;
    let tgt = t.as_dyn();
    if let Some(ctx) = &gpu {
        GpuChains::check_size(ctx, a.common.chains, tgt.n_sites())
            .map_err(|e| Error::Limit(format!("--chains {}: {e}", a.common.chains)))?;
    }
    let names = tgt.observable_names();
    println!(
        "tn learn: {} target, N = {}, model chi = {} ({} free parameters), {} chains, {} proposals, chains on {}",
        a.target,
        tgt.n_sites(),
        model.chi_max(),
        model.n_params(),
        a.common.chains,
        a.proposal,
        match (&gpu, kind) {
            (Some(c), ProposalKind::Disconnected) if chains_on_gpu(tgt) =>
                format!("{} (every Metropolis–Hastings step)", c.describe()),
            (Some(c), ProposalKind::Disconnected) => format!(
                "the CPU, proposals drawn on {} (a table target has no GPU form)",
                c.describe()
            ),
            (Some(_), _) => "the CPU (connected proposals have no GPU path)".to_string(),
            (None, _) => "the CPU".to_string(),
        }
    );
    let (_, reports) = run_learn(tgt, model, &lo, a.rounds, gpu.as_ref(), &mut |r| {
        let e = &r.estimates;
        println!(
            "round {}: acceptance {:.3}; {} = {:.5} ± {:.5} (tau {}); {} = {:.5} ± {:.5} (tau {}); ESS/s {:.0} / {:.0}; chains {:.2} s, fit {:.2} s{}",
            r.round,
            r.acceptance,
            names[0],
            e[0].mean,
            e[0].se,
            tau_text(&e[0]),
            names[1],
            e[1].mean,
            e[1].se,
            tau_text(&e[1]),
            r.ess_per_second[0],
            r.ess_per_second[1],
            r.seconds_mcmc,
            r.seconds_fit,
            r.fit.map_or(String::new(), |f| format!(", NLL {:.3} -> {:.3}", f.nll_before, f.nll_after))
        );
    })?;
    let last = reports.last().expect("rounds ≥ 1");
    let mut finals = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let e = &last.estimates[i];
        let ex = exact.map(|x| x[i]);
        match ex {
            Some(x) => println!(
                "final {name} = {:.5} ± {:.5}   (exact {x:.5}, {:+.2} s.e.)",
                e.mean,
                e.se,
                (e.mean - x) / e.se
            ),
            None => println!("final {name} = {:.5} ± {:.5}", e.mean, e.se),
        }
        finals.push(json!({"name": name, "estimate": est_json(e), "exact": ex}));
    }
    if let Target::Ising(m) = &t {
        let (u, mm) = onsager(m.beta());
        println!("infinite lattice (Onsager), J = 1: u = {u:.5}, spontaneous m = {mm:.5}");
    }
    if let Some(path) = &a.json {
        let doc = json!({
            "target": a.target, "n_sites": tgt.n_sites(), "chi": a.common.chi,
            "proposal": a.proposal, "rounds": reports.iter().map(round_json).collect::<Vec<_>>(),
            "final": finals,
        });
        write_atomic(
            path,
            serde_json::to_string_pretty(&doc)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Arguments of `fisherflow tn compare`.
#[derive(clap::Args)]
pub(crate) struct CompareArgs {
    /// Linear size L of the L × L lattice.
    #[arg(long, default_value_t = 16)]
    l: usize,
    /// open, cylinder or torus.
    #[arg(long, default_value = "cylinder")]
    boundary: String,
    /// Inverse temperatures, visited in order (the model anneals from one to the next).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.3,0.35,0.4,0.42,0.44,0.46,0.5,0.6",
        allow_hyphen_values = true
    )]
    betas: Vec<f64>,
    /// Learning rounds at each temperature.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Recorded Metropolis sweeps per chain.
    #[arg(long, default_value_t = 4000)]
    sweeps: usize,
    /// Recorded MPS-proposal steps per chain.
    #[arg(long, default_value_t = 1000)]
    tn_steps: usize,
    /// Noise time of connected proposals.
    #[arg(long, default_value_t = 0.1, allow_hyphen_values = true)]
    noise_time: f64,
    /// Also propose from the exact MPS of the lattice's cylinder part (χ = 2^L, kept sparse:
    /// O(N) per sample, N·2^L·4 bytes of environments), corrected by Metropolis–Hastings: the
    /// exact law on a cylinder or open lattice, a proposal on a torus.
    #[arg(long)]
    column: bool,
    /// Fit steps of the column model after each learning round on a torus (its couplings and
    /// fields by maximum likelihood on the rounds' chain states; 0 proposes from the torus's
    /// cylinder part unchanged).
    #[arg(long, default_value_t = 30)]
    column_fit_steps: usize,
    /// SVG chart of effective samples per second against β.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Write every figure as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    common: LearnCommon,
}

fn method_json(r: &BetaResult) -> serde_json::Value {
    json!({
        "beta": r.beta, "learn_seconds": r.learn_seconds,
        "onsager_energy": r.onsager.0, "onsager_m": r.onsager.1,
        "exact": r.exact.map(|e| [e.energy, e.abs_m]),
        "transfer_log_z_energy": r.transfer.map(|t| [t.0, t.1]),
        "model_nll": r.model_nll, "model_kl": r.model_kl,
        "column_learn_seconds": r.column_learn_seconds,
        "rounds": r.rounds.iter().map(round_json).collect::<Vec<_>>(),
        "methods": r.methods.iter().map(|m| json!({
            "method": m.method, "acceptance": m.acceptance, "seconds": m.seconds,
            "steps": m.steps, "energy": est_json(&m.estimates[0]),
            "abs_m": est_json(&m.estimates[1]), "ess_per_second": m.ess_per_second,
        })).collect::<Vec<_>>(),
    })
}

/// Run `fisherflow tn compare`.
pub(crate) fn compare(opts: &ContextOptions, a: CompareArgs) -> Result<()> {
    a.common.check()?;
    for &b in &a.betas {
        finite_positive("--betas", b)?;
    }
    finite_positive("--noise-time", a.noise_time)?;
    check_output(a.chart.as_ref(), a.common.force)?;
    check_output(a.json.as_ref(), a.common.force)?;
    let co = CompareOptions {
        l: a.l,
        boundary: boundary(&a.boundary)?,
        betas: a.betas.clone(),
        chi: a.common.chi,
        rounds: a.rounds,
        learn: learn_options(&a.common, ProposalKind::Disconnected, a.common.seed),
        sweeps: a.sweeps,
        tn_steps: a.tn_steps,
        burn_in: a.common.burn_in,
        connected_t: a.noise_time,
        column: a.column,
        column_fit_steps: a.column_fit_steps,
        seed: a.common.seed,
    };
    co.validate()?;
    let gpu = a.common.dev.choose(opts)?.context;
    if let Some(ctx) = &gpu {
        GpuChains::check_size(ctx, a.common.chains, a.l.saturating_mul(a.l))
            .map_err(|e| Error::Limit(format!("--chains {}: {e}", a.common.chains)))?;
        // (A column the CPU cannot hold either is refused by the comparison's own check.)
        let cyl = IsingLattice::new(a.l, a.l, Boundary::Cylinder);
        let fits_host = cyl.is_ok_and(|lat| check_column_size(&lat).is_ok());
        let table = column_table_bytes(a.l.saturating_mul(a.l), a.l);
        if a.column && fits_host && table > ctx.max_binding() as u128 {
            return Err(Error::Limit(format!(
                "column proposals at --l {}: the column MPS's table of {table} bytes exceeds \
                 the adapter's storage binding of {} bytes (run --column with --cpu)",
                a.l,
                ctx.max_binding()
            )));
        }
    }
    let where_ = gpu.as_ref().map_or("the CPU (1 thread)".to_string(), |c| {
        format!("{} (Metropolis and connected on the CPU)", c.describe())
    });
    println!(
        "tn compare: {0}x{0} {1}, chi = {2}, {3} chains; independence proposals on {where_}",
        a.l, a.boundary, a.common.chi, a.common.chains,
    );
    println!("| β | method | acceptance | τ_E | τ_\\|m\\| | ESS/s E | ESS/s \\|m\\| | ⟨E⟩/N | ⟨\\|m\\|⟩ | reference E/N, \\|m\\| | learn s |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let results = run_compare(&co, gpu.as_ref(), &mut |r| {
        let reference = match (r.exact, r.transfer) {
            (Some(e), _) => format!("{:.4}, {:.4} (exact)", e.energy, e.abs_m),
            (None, Some((_, u))) => format!(
                "{u:.4} (exact {0}×{0}); ∞: {1:.4}, {2:.4}",
                a.l, r.onsager.0, r.onsager.1
            ),
            (None, None) => format!("∞: {:.4}, {:.4} (Onsager)", r.onsager.0, r.onsager.1),
        };
        let kl = r
            .model_kl
            .map_or(String::new(), |k| format!(", KL(π‖Pθ) = {k:.2} nats"));
        let col = if r.column_learn_seconds > 0.0 {
            format!("; column model learned in {:.1} s", r.column_learn_seconds)
        } else {
            String::new()
        };
        eprintln!(
            "β = {}: model NLL {:.2} nats on Metropolis states{kl}; learning {:.1} s{col}",
            r.beta, r.model_nll, r.learn_seconds
        );
        for m in &r.methods {
            let e = &m.estimates;
            println!(
                "| {} | {} | {:.3} | {} | {} | {:.0} | {:.0} | {:.4} ± {:.4} | {:.4} ± {:.4} | {reference} | {:.0} |",
                r.beta,
                m.method,
                m.acceptance,
                tau_text(&e[0]),
                tau_text(&e[1]),
                m.ess_per_second[0],
                m.ess_per_second[1],
                e[0].mean,
                e[0].se,
                e[1].mean,
                e[1].se,
                r.learn_seconds
            );
        }
    })?;
    if let Some(path) = &a.chart {
        let mut series = Vec::new();
        for (i, obs) in ["|m|", "E"].iter().enumerate() {
            for (j, m) in results[0].methods.iter().enumerate() {
                let name = m.method;
                let pts = results
                    .iter()
                    .map(|r| (r.beta, r.methods[j].ess_per_second[1 - i]))
                    .collect();
                series.push((format!("{name} {obs}"), pts));
            }
        }
        let svg = line_chart_svg(
            &format!(
                "Effective samples/s on {0}x{0} {3} Ising (chi = {1}, {2})",
                a.l,
                a.common.chi,
                if gpu.is_some() {
                    "disconnected on the GPU"
                } else {
                    "1 CPU thread"
                },
                a.boundary
            ),
            "beta",
            "effective samples per second",
            &series,
        )?;
        write_atomic(path, svg.as_bytes())?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &a.json {
        let doc = json!({
            "l": a.l, "boundary": a.boundary, "chi": a.common.chi, "chains": a.common.chains,
            "results": results.iter().map(method_json).collect::<Vec<_>>(),
        });
        write_atomic(
            path,
            serde_json::to_string_pretty(&doc)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
