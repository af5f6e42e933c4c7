//! `fisherflow data`: draw a synthetic data set to a FASTA file; and the evaluation of samples
//! against a `dna:` source (`fisherflow eval --data dna:…`).

use std::path::{Path, PathBuf};

use fisherflow::data::dna::{DnaSource, DnaSpec, ALPHABET, DEFAULT_TRAIN_SEQUENCES, MAX_TOKENS};
use fisherflow::data::dna_eval::{DnaFigures, DnaReport};
use fisherflow::data::file::{check_disk, check_output, write_atomic};
use fisherflow::data::{Alphabet, Format, LabelOptions, SequenceDataset};
use fisherflow::{Error, Result};

use super::common::guess_format;

/// Arguments of `fisherflow data`.
#[derive(clap::Args)]
pub struct Args {
    /// The source: `dna:L=128,classes=3,motifs=2,width=8,seed=0` (every key optional; these are
    /// the defaults). A class-conditional HMM over ACGT with GC/AT-rich regimes and planted
    /// motifs per class.
    source: String,
    /// Number of sequences.
    #[arg(long)]
    n: usize,
    /// Seed of the draw: `train --data SPEC --seed S` trains on the first 100,000 sequences of
    /// seed S (sequence i is the same whatever --n).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output FASTA file (`>seqI class=C` headers), written atomically.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    force: bool,
}

/// `fisherflow data`.
pub fn run(a: Args) -> Result<()> {
    if !DnaSpec::is_spec(&a.source) {
        return Err(Error::InvalidArgument(format!(
            "unknown source {:?}: `fisherflow data` draws from dna:L=128,classes=3,seed=0 \
             (keys L, classes, motifs, width, seed)",
            a.source
        )));
    }
    let spec = DnaSpec::parse(&a.source)?;
    if a.n == 0 || a.n.checked_mul(spec.len).is_none_or(|t| t > MAX_TOKENS) {
        return Err(Error::InvalidArgument(format!(
            "--n {}: need 1 or more sequences and at most {MAX_TOKENS} bases in all (L = {})",
            a.n, spec.len
        )));
    }
    check_output(&a.out, a.force)?;
    // A FASTA record: `>seqN class=C` and the bases in lines of 80.
    let header = 16 + a.n.ilog10() as u128;
    let record = header + spec.len as u128 + spec.len.div_ceil(80) as u128;
    let need = record * a.n as u128;
    check_disk(&a.out, need, &format!("--n {}", a.n))?;
    // The sequences, their text and the written copy are in memory at once.
    if let Some(free) = fisherflow::budget::host_available() {
        if 3 * need > free {
            return Err(Error::InvalidArgument(format!(
                "--n {}: writing {} of FASTA needs about {} of host memory, more than the {} available",
                a.n,
                fisherflow::budget::human(need),
                fisherflow::budget::human(3 * need),
                fisherflow::budget::human(free)
            )));
        }
    }
    let source = DnaSource::new(&spec)?;
    let data = source.sample(a.n, a.seed)?;
    write_atomic(&a.out, data.to_fasta_text("seq")?.as_bytes(), a.force)?;
    let counts = data.labels.as_ref().map(|l| l.counts()).unwrap_or_default();
    eprintln!(
        "wrote {} sequences of {spec} (seed {}) to {}; sequences per class: {counts:?}",
        a.n,
        a.seed,
        a.out.display()
    );
    for c in 0..source.classes() {
        let motifs: Vec<String> = source.motifs(c).iter().map(|m| m.consensus()).collect();
        eprintln!("  class {c} motifs (consensus): {}", motifs.join(" "));
    }
    Ok(())
}

/// The options of `fisherflow eval` that belong to a `dna:` source.
#[derive(clap::Args, Clone, Debug)]
pub struct DnaEvalArgs {
    /// The class of every sample, one integer a line (dna: sources; FASTA samples may carry
    /// `class=` headers instead). Enables the conditional accuracy.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// The training sequences, for the duplicate count (dna: sources; default: the set
    /// `train --data SPEC --seed S` draws, with S from --train-seed).
    #[arg(long)]
    train: Option<PathBuf>,
    /// Seed of the regenerated training set (without --train; default 0).
    #[arg(long)]
    train_seed: Option<u64>,
}

/// Refuses the options of [`DnaEvalArgs`] with data that are not a `dna:` source.
pub fn refuse_dna_options(a: &DnaEvalArgs) -> Result<()> {
    if a.labels.is_some() || a.train.is_some() || a.train_seed.is_some() {
        return Err(Error::InvalidArgument(
            "--labels, --train and --train-seed are for --data dna:… sources, whose true \
             likelihood and class posterior are known"
                .into(),
        ));
    }
    Ok(())
}

fn read_acgt(
    path: &Path,
    format: Option<Format>,
    labels: &LabelOptions,
) -> Result<SequenceDataset> {
    let acgt = Alphabet::new(ALPHABET, true)?;
    let format = format.unwrap_or_else(|| guess_format(path, true));
    SequenceDataset::read_labelled(path, format, Some(4), Some(&acgt), labels)
}

/// `fisherflow eval --data dna:…`: every metric of [`DnaSource::evaluate`] with its scale.
pub fn eval_dna(
    spec: &str,
    samples_path: &Path,
    samples_format: Option<Format>,
    alphabet: Option<&str>,
    a: &DnaEvalArgs,
) -> Result<()> {
    if alphabet.is_some_and(|s| !s.eq_ignore_ascii_case(ALPHABET)) {
        return Err(Error::InvalidArgument(format!(
            "--alphabet {alphabet:?}: a dna: source is over {ALPHABET}"
        )));
    }
    let source = DnaSource::from_spec(spec)?;
    let opts = LabelOptions {
        file: a.labels.as_deref(),
        classes: Some(source.classes()),
        required: false,
    };
    let samples = read_acgt(samples_path, samples_format, &opts)?;
    source.check(&samples, &samples_path.display().to_string())?;
    if a.train.is_some() && a.train_seed.is_some() {
        return Err(Error::InvalidArgument(
            "--train-seed regenerates the training set; it does not apply with --train".into(),
        ));
    }
    let (train, train_name) = match &a.train {
        Some(p) => (
            read_acgt(p, None, &LabelOptions::default())?,
            p.display().to_string(),
        ),
        None => {
            let seed = a.train_seed.unwrap_or(0);
            (
                source.sample(DEFAULT_TRAIN_SEQUENCES, seed)?,
                format!("the training set of `train --data {spec} --seed {seed}`"),
            )
        }
    };
    source.check(&train, &train_name)?;
    let report = source.evaluate(&samples, &train)?;
    print_report(&source, &report, train.n, &train_name);
    Ok(())
}

fn row(name: &str, f: impl Fn(&DnaFigures) -> String, r: &DnaReport, scale: &str) {
    let line = format!(
        "{name:<44} {:>10} {:>10} {:>10}  {scale}",
        f(&r.samples),
        f(&r.data),
        f(&r.noise)
    );
    println!("{}", line.trim_end());
}

fn print_report(source: &DnaSource, r: &DnaReport, train_n: usize, train_name: &str) {
    let n = r.samples.n;
    println!("{}: {n} samples", source.spec());
    println!(
        "scale: data = {n} held-out sequences of the source (its own value), noise = {n} \
         uniformly random sequences with random labels"
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "", "samples", "data", "noise"
    );
    row(
        "log-likelihood per base (nats)",
        |f| format!("{:.4}", f.log_likelihood_per_base),
        r,
        &format!("(a uniform model: ln 1/4 = {:.4})", -(4f64.ln())),
    );
    for (i, &(k, _)) in r.samples.kmer_jsd.iter().enumerate() {
        row(
            &format!("{k}-mer spectrum JSD vs reference (nats)"),
            |f| format!("{:.5}", f.kmer_jsd[i].1),
            r,
            &if i == 0 {
                format!("({} reference sequences; at most ln 2)", r.reference_n)
            } else {
                String::new()
            },
        );
    }
    let labelled = r.samples.motif_hit_rate_own.is_some();
    let own = |f: &DnaFigures, c: usize| match f.motif_hit_rate_own.as_ref().map(|v| v[c]) {
        Some(Some(v)) => format!("{v:.3}"),
        _ => "-".to_string(),
    };
    for c in 0..source.classes() {
        row(
            &format!("motif hit rate, class {c} motifs"),
            |f| format!("{:.3}", f.motif_hit_rate[c]),
            r,
            if c == 0 {
                "(fraction of sequences with a hit)"
            } else {
                ""
            },
        );
        if labelled {
            row(
                &format!("  among sequences labelled {c}"),
                |f| own(f, c),
                r,
                "",
            );
        }
    }
    match r.samples.conditional_accuracy {
        Some(_) => row(
            "conditional accuracy (argmax p(c|x) = label)",
            |f| format!("{:.4}", f.conditional_accuracy.unwrap_or(f64::NAN)),
            r,
            &format!(
                "(data: Bayes accuracy; chance {:.4})",
                1.0 / source.classes() as f64
            ),
        ),
        None => println!(
            "conditional accuracy: n/a (the samples carry no labels: give --labels FILE or \
             class= FASTA headers)"
        ),
    }
    row(
        "duplicates of training sequences",
        |f| format!("{:.4}", f.duplicate_fraction),
        r,
        &format!("(against {train_n} sequences: {train_name})"),
    );
}
