//! `fisherflow sample` (streamed to disk chunk by chunk) and `fisherflow eval`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use fisherflow::budget::{self, MAX_SAMPLE_STEPS};
use fisherflow::checkpoint::Checkpoint;
use fisherflow::data::dna::DnaSpec;
use fisherflow::data::file::{check_not_input, check_output, AtomicFile};
use fisherflow::data::{Alphabet, Format, Labels, SequenceDataset};
use fisherflow::flow::{
    meta, sample_into, Adaptive, FlowModel, SampleClasses, SampleConfig, Solver,
};
use fisherflow::gpu::ContextOptions;
use fisherflow::kernels::Precision;
use fisherflow::{Error, Result};

use super::common::{self, flag_error, guess_format, DataArgs, DeviceArgs};
use super::{report, signals, tracks};

/// Arguments of `fisherflow sample`.
#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct SampleArgs {
    /// A checkpoint written by `fisherflow train`.
    #[arg(long)]
    model: PathBuf,
    /// The class of every sample, or a file of labels, one integer a line, one per sample
    /// (a model trained with --conditional; without it, the null class). Sampled FASTA
    /// headers carry the class (`class=C`).
    #[arg(long, value_name = "C|FILE")]
    class: Option<String>,
    /// Classifier-free guidance weight w: the field is v_null + w·(v_c − v_null) (1: the
    /// class's field alone; 0: the null class's; above 1: sharper class features, at two
    /// field evaluations per step). Needs a model trained with --cond-drop.
    #[arg(long, default_value_t = SampleConfig::default().guidance,
          value_parser = super::common::non_negative)]
    guidance: f32,
    /// The per-position signal track of each sample (a model trained with --signal): L reals a
    /// line, line i for sample i, as many lines as --n. Repeat for more channels, one file each,
    /// as in training.
    #[arg(long)]
    signal: Vec<PathBuf>,
    /// Number of sequences.
    #[arg(long, default_value_t = SampleConfig::default().n,
          value_parser = super::common::count(1, u64::MAX))]
    n: usize,
    /// Integration steps (fixed-step solvers).
    #[arg(long, default_value_t = SampleConfig::default().steps,
          value_parser = super::common::count(1, MAX_SAMPLE_STEPS as u64))]
    steps: usize,
    /// Integrator: euler (1st order), midpoint (2nd), rk4 (4th), or dopri5 (adaptive 5(4),
    /// steps chosen by --rtol and --atol).
    #[arg(long, value_enum, default_value_t = SampleConfig::default().solver)]
    solver: Solver,
    /// Relative tolerance of dopri5.
    #[arg(long, default_value_t = Adaptive::default().rtol, value_parser = super::common::positive_f64)]
    rtol: f64,
    /// Absolute tolerance of dopri5.
    #[arg(long, default_value_t = Adaptive::default().atol, value_parser = super::common::positive_f64)]
    atol: f64,
    /// Seed of the prior draws.
    #[arg(long, default_value_t = SampleConfig::default().seed)]
    seed: u64,
    /// Output file, written atomically as the samples are drawn.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing --out.
    #[arg(long)]
    force: bool,
    /// Output format [default: with the model's alphabet, fasta for an --out ending in .fa,
    /// .fasta, .fna or .ffn, chars otherwise; ids for a model without an alphabet].
    #[arg(long, value_enum)]
    format: Option<Format>,
    #[command(flatten)]
    device: DeviceArgs,
    /// Storage of the network's weights and activations: f16 runs on the GPU only (it needs
    /// the adapter's SHADER_F16 feature; implies --gpu).
    #[arg(long, value_enum, default_value_t = SampleConfig::default().precision)]
    precision: Precision,
}

/// Bytes of `n` sequences of length `l` over `k` tokens in `format`, at most.
fn output_bytes(format: Format, n: usize, l: usize, k: usize) -> u128 {
    let per_token = match format {
        Format::Ids => (k.max(2) - 1).ilog10() as u64 + 2,
        Format::Chars | Format::Fasta => 1,
    };
    let line_breaks = match format {
        Format::Fasta => l.div_ceil(80) as u64 + 1,
        _ => 1,
    };
    let header = match format {
        Format::Fasta => 5 + n.max(1).ilog10() as u64 + 1,
        _ => 0,
    };
    budget::bytes(&[n, l], per_token).saturating_add(budget::bytes(&[n], line_breaks + header))
}

/// The classes `--class` asks for: a class number, or a file of labels (one per sample).
fn sample_classes(class: Option<&str>, model: &FlowModel) -> Result<SampleClasses> {
    let Some(c) = class else {
        return Ok(SampleClasses::Null);
    };
    if let Ok(c) = c.trim().parse::<u32>() {
        return Ok(SampleClasses::All(c));
    }
    let path = std::path::Path::new(c);
    if !path.is_file() {
        return Err(Error::InvalidArgument(format!(
            "--class {c}: neither a class number nor a labels file"
        )));
    }
    if model.config.cond.classes == 0 {
        return Err(Error::InvalidArgument(format!(
            "--class {c}: the model is unconditional (train it with --conditional)"
        )));
    }
    let labels = Labels::read(path, Some(model.config.cond.classes))
        .map_err(|e| flag_error("--class", e))?;
    Ok(SampleClasses::Each(labels.ids.into()))
}

/// `fisherflow sample`.
pub fn sample(opts: &ContextOptions, a: SampleArgs) -> Result<()> {
    check_output(&a.out, a.force).map_err(|e| flag_error("--out", e))?;
    check_not_input(&a.out, &[&a.model]).map_err(|e| flag_error("--out", e))?;
    if a.precision == Precision::F16 && a.device.cpu {
        return Err(Error::InvalidArgument(
            "--precision f16 runs on the GPU backend; drop --cpu".into(),
        ));
    }
    let ck = Checkpoint::load(&a.model)?;
    let model = FlowModel::from_checkpoint(&ck)?;
    let (l, k) = (model.config.mlp.seq_len, model.config.mlp.categories);
    let alphabet = meta::alphabet(&ck);
    let format = a.format.unwrap_or(match alphabet {
        Some(_) if common::fasta_extension(&a.out) => Format::Fasta,
        Some(_) => Format::Chars,
        None => Format::Ids,
    });
    if format != Format::Ids && alphabet.is_none() {
        return Err(Error::InvalidArgument(format!(
            "--format {format:?}: {} was trained on token ids without an alphabet; use --format ids",
            a.model.display()
        )));
    }
    let need = output_bytes(format, a.n, l, k);
    fisherflow::data::file::check_disk(&a.out, need, &format!("--n {}", a.n))?;
    let device = DeviceArgs {
        gpu: a.device.gpu || a.precision == Precision::F16,
        ..a.device
    };
    model.config.cond.check_signal(a.signal.len(), "--signal")?;
    let signal = tracks::read(&a.signal, l, a.n, "--n is")?.map(Arc::new);
    let choice = device.choose(opts)?;
    let classes = sample_classes(a.class.as_deref(), &model)?;
    model
        .config
        .cond
        .check_sampling(&classes, a.guidance, a.n)?;
    if let Some(w) = model.config.cond.guidance_warning(a.guidance) {
        eprintln!("{w}");
    }
    let sc = SampleConfig {
        n: a.n,
        steps: a.steps,
        solver: a.solver,
        adaptive: Adaptive {
            rtol: a.rtol,
            atol: a.atol,
            ..Default::default()
        },
        seed: a.seed,
        chunk: None,
        precision: a.precision,
        classes,
        guidance: a.guidance,
        signal,
    };
    let mut out = AtomicFile::create(&a.out, a.force)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(sc.n as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} sequences  {per_sec}  [{elapsed_precise} < {eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    signals::graceful();
    let t0 = Instant::now();
    let mut done = 0usize;
    let stats = sample_into(choice.device(), &model, &sc, &mut |rows| {
        if signals::stop_requested() {
            return Err(signals::stopped(&format!(
                "{} was left as it was",
                a.out.display()
            )));
        }
        let n = rows.len() / l;
        let mut chunk = SequenceDataset::new(rows.to_vec(), n, l, k, alphabet.clone())?;
        let ids: Option<Vec<u32>> = (done..done + n).map(|i| sc.classes.of(i)).collect();
        chunk.labels = ids
            .map(|v| Labels::new(v, Some(model.config.cond.classes)))
            .transpose()?;
        out.write(chunk.to_text(format, done)?.as_bytes())?;
        done += n;
        match &bar {
            Some(pb) => pb.set_position(done as u64),
            None if done < a.n => eprintln!("sampled {done}/{} sequences", a.n),
            None => {}
        }
        Ok(())
    })?;
    out.commit()?;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} sequences to {} ({}, {} field evaluations per sequence, {} network, {:.1}s, \
         {:.0} samples/s)",
        a.n,
        a.out.display(),
        a.solver.name(),
        stats.evaluations,
        a.precision,
        secs,
        a.n as f64 / secs
    );
    Ok(())
}

/// Arguments of `fisherflow eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// Generated sequences (same formats as the data).
    #[arg(long)]
    samples: PathBuf,
    /// Format of the samples file [default: guessed as for --data].
    #[arg(long, value_enum)]
    samples_format: Option<Format>,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    dna: super::data::DnaEvalArgs,
}

/// `fisherflow eval`.
pub fn eval(a: EvalArgs) -> Result<()> {
    let spec = a.data.data.clone().ok_or_else(|| {
        Error::InvalidArgument("--data is required (toy:..., dna:... or a file)".into())
    })?;
    if !a.samples.is_file() {
        return Err(Error::InvalidArgument(format!(
            "--samples {}: no such file",
            a.samples.display()
        )));
    }
    if DnaSpec::is_spec(&spec) {
        let (fmt, alphabet) = (a.samples_format, a.data.alphabet.as_deref());
        return super::data::eval_dna(&spec, &a.samples, fmt, alphabet, &a.dna);
    }
    super::data::refuse_dna_options(&a.dna)?;
    common::check_file_fits(&a.samples)?;
    let loaded = common::load(&spec, &a.data, 0)?;
    let alphabet = a
        .data
        .alphabet
        .as_deref()
        .or(loaded.data.alphabet.as_deref())
        .map(|s| Alphabet::new(s, true))
        .transpose()
        .map_err(|e| flag_error("--alphabet", e))?;
    let format = a
        .samples_format
        .unwrap_or_else(|| guess_format(&a.samples, alphabet.is_some()));
    let samples = SequenceDataset::read(
        &a.samples,
        format,
        Some(loaded.data.vocab),
        alphabet.as_ref(),
    )?;
    if samples.len != loaded.data.len {
        return Err(Error::Shape(format!(
            "{}: the samples have length {}, the data {}",
            a.samples.display(),
            samples.len,
            loaded.data.len
        )));
    }
    println!(
        "{} samples of length {} over {} tokens",
        samples.n, samples.len, samples.vocab
    );
    report::print_scaled(&[("samples", &samples)], &loaded)
}
