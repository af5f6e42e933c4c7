//! What several subcommands share: where the data come from, the device flags, and parsers
//! for numeric flags that refuse NaN, infinities and values outside their range.

use std::path::{Path, PathBuf};

use fisherflow::budget;
use fisherflow::data::dna::{DnaSource, DnaSpec, ALPHABET, DEFAULT_TRAIN_SEQUENCES};
use fisherflow::data::toy::{ToySpec, ToyTarget};
use fisherflow::data::{Alphabet, Format, LabelOptions, SequenceDataset};
use fisherflow::device::{self, Backend, Choice};
use fisherflow::gpu::ContextOptions;
use fisherflow::{Error, Result};

/// Sequences drawn from a toy target to train on.
pub const TOY_TRAIN_SEQUENCES: usize = 100_000;

/// Where the data come from.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DataArgs {
    /// `toy:L=4,K=20,seed=0` (independent categoricals, probs softmax(U[0,1))),
    /// `dna:L=128,classes=3,seed=0` (synthetic DNA with exact likelihood; see `fisherflow data`)
    /// or a file: token ids separated by spaces, one sequence a line; characters with
    /// --alphabet; FASTA.
    #[arg(long)]
    pub data: Option<String>,
    /// Characters of the tokens (e.g. ACGT), for character and FASTA files.
    #[arg(long)]
    pub alphabet: Option<String>,
    /// File format [default: fasta for .fa/.fasta/.fna or a leading '>', chars when
    /// --alphabet is given, else ids].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Class labels of a sequence file, one integer a line (set by the commands that read
    /// them).
    #[arg(skip)]
    pub labels: Option<PathBuf>,
}

/// `--cpu` / `--gpu`.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct DeviceArgs {
    /// Run on the CPU backend even when a GPU is available.
    #[arg(long, conflicts_with = "gpu")]
    pub cpu: bool,
    /// Run on the GPU adapter even when it is a software renderer.
    #[arg(long)]
    pub gpu: bool,
}

impl DeviceArgs {
    /// The backend these flags ask for.
    pub fn backend(self) -> Backend {
        match (self.cpu, self.gpu) {
            (true, _) => Backend::Cpu,
            (_, true) => Backend::Gpu,
            _ => Backend::Auto,
        }
    }

    /// The device (the library's automatic choice without flags), reported on stderr.
    pub fn choose(self, opts: &ContextOptions) -> Result<Choice> {
        let choice = device::choose(opts, self.backend())?;
        eprintln!("backend: {}", choice.reason);
        Ok(choice)
    }
}

/// The data set and, for toy data, the true distribution.
pub struct Loaded {
    pub spec: String,
    pub data: SequenceDataset,
    pub target: Option<ToyTarget>,
}

/// Whether `path` ends in a FASTA extension (`.fa`, `.fasta`, `.fna`, `.ffn`, any case).
pub fn fasta_extension(path: &Path) -> bool {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(ext.as_str(), "fa" | "fasta" | "fna" | "ffn")
}

/// The format of `path`: fasta for the usual extensions or a leading '>', chars with an
/// alphabet, else ids.
pub fn guess_format(path: &Path, alphabet: bool) -> Format {
    let fasta_ext = fasta_extension(path);
    let leading = std::fs::File::open(path)
        .ok()
        .and_then(|f| {
            use std::io::BufRead;
            std::io::BufReader::new(f)
                .lines()
                .map_while(|l| l.ok())
                .find(|l| !l.trim().is_empty())
        })
        .is_some_and(|l| {
            l.trim_start_matches('\u{feff}')
                .trim_start()
                .starts_with('>')
        });
    if fasta_ext || leading {
        Format::Fasta
    } else if alphabet {
        Format::Chars
    } else {
        Format::Ids
    }
}

fn is_toy(spec: &str) -> bool {
    spec == "toy" || spec.starts_with("toy:")
}

/// `(sequences, L, K)` of a generated source, known before it is drawn; `None` for a file.
pub fn planned_shape(spec: &str) -> Result<Option<(usize, usize, usize)>> {
    if is_toy(spec) {
        let t = ToySpec::parse(spec)?;
        return Ok(Some((TOY_TRAIN_SEQUENCES, t.len, t.vocab)));
    }
    if DnaSpec::is_spec(spec) {
        let d = DnaSpec::parse(spec)?;
        return Ok(Some((DEFAULT_TRAIN_SEQUENCES, d.len, ALPHABET.len())));
    }
    Ok(None)
}

/// Refuses a data file that could not be held in memory once read (its tokens take up to
/// four bytes per byte of text, beside the text itself).
pub fn check_file_fits(path: &Path) -> Result<()> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::Io(path.display().to_string(), e))?
        .len() as u128;
    let need = len.saturating_mul(5);
    match budget::host_available() {
        Some(avail) if need > avail => Err(Error::InvalidArgument(format!(
            "--data {}: reading its {} needs about {} of memory, more than the {} available",
            path.display(),
            budget::human(len),
            budget::human(need),
            budget::human(avail)
        ))),
        _ => Ok(()),
    }
}

/// The data named `spec` (`seed` draws a toy or dna: training set).
pub fn load(spec: &str, args: &DataArgs, seed: u64) -> Result<Loaded> {
    if args.labels.is_some() && (is_toy(spec) || DnaSpec::is_spec(spec)) {
        return Err(Error::InvalidArgument(format!(
            "--labels labels the sequences of a file; --data {spec} is generated (dna: sources \
             carry their own labels)"
        )));
    }
    if is_toy(spec) {
        let target = ToyTarget::from_spec(if spec == "toy" { "toy:" } else { spec })?;
        let data = target.sample(TOY_TRAIN_SEQUENCES, seed ^ 0x5eed)?;
        return Ok(Loaded {
            spec: spec.to_string(),
            data,
            target: Some(target),
        });
    }
    if DnaSpec::is_spec(spec) {
        let data = DnaSource::from_spec(spec)?.sample(DEFAULT_TRAIN_SEQUENCES, seed)?;
        return Ok(Loaded {
            spec: spec.to_string(),
            data,
            target: None,
        });
    }
    let path = Path::new(spec);
    if !path.is_file() {
        return Err(Error::InvalidArgument(format!(
            "--data {spec:?}: {} (use toy:L=4,K=20 for the toy target)",
            if path.exists() {
                "not a regular file"
            } else {
                "no such file"
            }
        )));
    }
    check_file_fits(path)?;
    let alphabet = args
        .alphabet
        .as_deref()
        .map(|a| Alphabet::new(a, true))
        .transpose()
        .map_err(|e| flag_error("--alphabet", e))?;
    let format = args
        .format
        .unwrap_or_else(|| guess_format(path, alphabet.is_some()));
    if format != Format::Ids && alphabet.is_none() {
        return Err(Error::InvalidArgument(format!(
            "--data {spec}: {format:?} data need --alphabet (the characters of the tokens)"
        )));
    }
    let opts = LabelOptions {
        file: args.labels.as_deref(),
        classes: None,
        required: false,
    };
    let data = SequenceDataset::read_labelled(path, format, None, alphabet.as_ref(), &opts)?;
    Ok(Loaded {
        spec: spec.to_string(),
        data,
        target: None,
    })
}

/// `e`'s message prefixed by the flag that caused it (without the error kind's own prefix).
pub fn flag_error(flag: &str, e: Error) -> Error {
    let msg = match e {
        Error::InvalidArgument(m) | Error::Shape(m) | Error::Parse(m) => m,
        e => e.to_string(),
    };
    Error::InvalidArgument(format!("{flag} {msg}"))
}

fn parse_real(s: &str) -> std::result::Result<f32, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_nan() {
        return Err("NaN is not allowed".into());
    }
    if v.is_infinite() {
        return Err("must be finite".into());
    }
    if v.abs() > f32::MAX as f64 {
        return Err(format!("{s} is too large for f32 (at most {:e})", f32::MAX));
    }
    Ok(v as f32)
}

/// A finite number above 0, in f64 (tolerances).
pub fn positive_f64(s: &str) -> std::result::Result<f64, String> {
    positive(s).map(f64::from)
}

/// A finite real number above zero.
pub fn positive(s: &str) -> std::result::Result<f32, String> {
    let v = parse_real(s)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} must be above 0"))
    }
}

/// A finite real number, zero or above.
pub fn non_negative(s: &str) -> std::result::Result<f32, String> {
    let v = parse_real(s)?;
    if v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} must not be negative"))
    }
}

/// A finite real number in `[0, 1)` (a probability that is not certainty).
pub fn probability(s: &str) -> std::result::Result<f32, String> {
    let v = non_negative(s)?;
    if v < 1.0 {
        Ok(v)
    } else {
        Err(format!("{s} must be below 1"))
    }
}

/// A count in `min..=max` (the flag is named by clap when it is outside).
pub fn count(min: u64, max: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(min..=max.min(usize::MAX as u64))
}
