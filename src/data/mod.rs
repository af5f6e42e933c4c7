//! Discrete sequence data: [`SequenceDataset`] (n sequences of length L over K tokens, with
//! optional class [`labels`]), readers and writers for integer-id text, character text and
//! FASTA, the toy target of the Dirichlet / Fisher-Flow experiments ([`toy`]), a synthetic DNA
//! source with exact likelihood ([`dna`], an [`hmm`]; its evaluation in [`dna_eval`]),
//! distribution metrics ([`metrics`]) and atomic output files ([`file`](mod@file)).
//!
//! Formats:
//! - **ids**: one sequence per line, whitespace-separated integer token ids in `0..K`. When K is
//!   not given it is inferred as `max id + 1` (ids are 0-based; unseen ids below the maximum
//!   still count as categories).
//! - **chars**: one sequence per line, one character per token, token id = position of the
//!   character in the [`Alphabet`].
//! - **FASTA**: records introduced by a `>` header line, the sequence possibly wrapped over
//!   several lines; one character per token as for `chars`. Lines starting with `;` are comments.
//!   A word `class=C` in a header labels the record with class `C` ([`labels`]); either every
//!   header has one or none does.
//!
//! Blank lines are ignored in every format. All rows must have the same length. Class labels
//! for any format come from a labels file, one integer a line ([`Labels::read`],
//! [`SequenceDataset::read_labelled`]).

pub mod dna;
pub mod dna_eval;
pub mod file;
pub mod hmm;
pub mod labels;
pub mod metrics;
pub mod signal;
pub mod toy;

pub use labels::{LabelOptions, Labels, MAX_CLASSES};
pub use signal::SignalTracks;

use std::path::Path;

use crate::error::{Error, Result};

/// The largest vocabulary a dataset may declare (ids are kept in u32 and per-position counts in
/// dense `L × K` tables).
pub const MAX_VOCAB: usize = 1 << 24;

/// n sequences of length `len` over `vocab` tokens, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceDataset {
    /// Token ids, `n × len` row-major, each `< vocab`.
    pub tokens: Vec<u32>,
    /// Number of sequences.
    pub n: usize,
    /// Sequence length L.
    pub len: usize,
    /// Vocabulary size K.
    pub vocab: usize,
    /// The characters of the tokens, when the data are character sequences.
    pub alphabet: Option<String>,
    /// The class of every sequence and the number of classes, when the data are labelled.
    pub labels: Option<Labels>,
    /// A per-position signal track of every sequence, when given ([`signal`]).
    pub signal: Option<SignalTracks>,
}

/// File formats understood by [`SequenceDataset::read`] and [`SequenceDataset::write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Format {
    /// Whitespace-separated integer ids, one sequence per line.
    Ids,
    /// One character per token, one sequence per line.
    Chars,
    /// FASTA records.
    Fasta,
}

/// An ordered set of distinct characters mapping to token ids `0..K`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alphabet {
    chars: Vec<char>,
    case_insensitive: bool,
}

impl Alphabet {
    /// An alphabet from the characters of `chars` (e.g. `"ACGT"`). With `case_insensitive`,
    /// lower- and upper-case letters map to the same token. Errors on an empty alphabet, a
    /// whitespace character or a duplicate (including duplicates up to case when insensitive).
    pub fn new(chars: &str, case_insensitive: bool) -> Result<Self> {
        let cs: Vec<char> = chars.chars().collect();
        if cs.is_empty() {
            return Err(Error::InvalidArgument("empty alphabet".into()));
        }
        for (i, &c) in cs.iter().enumerate() {
            if c.is_whitespace() || c == '>' || c == ';' {
                return Err(Error::InvalidArgument(format!(
                    "alphabet {chars:?}: character {c:?} is not allowed"
                )));
            }
            for &d in &cs[..i] {
                let same = if case_insensitive {
                    c.to_lowercase().eq(d.to_lowercase())
                } else {
                    c == d
                };
                if same {
                    return Err(Error::InvalidArgument(format!(
                        "alphabet {chars:?}: character {c:?} appears twice"
                    )));
                }
            }
        }
        Ok(Self {
            chars: cs,
            case_insensitive,
        })
    }

    /// Number of characters K.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Always false (an alphabet has at least one character).
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The token id of `c`, if it belongs to the alphabet.
    pub fn index(&self, c: char) -> Option<u32> {
        if let Some(i) = self.chars.iter().position(|&d| d == c) {
            return Some(i as u32);
        }
        if self.case_insensitive {
            return self
                .chars
                .iter()
                .position(|&d| d.to_lowercase().eq(c.to_lowercase()))
                .map(|i| i as u32);
        }
        None
    }

    /// The character of token `id`.
    pub fn char(&self, id: u32) -> Option<char> {
        self.chars.get(id as usize).copied()
    }

    /// The characters as a string.
    pub fn as_string(&self) -> String {
        self.chars.iter().collect()
    }
}

fn perr(source: &str, line: usize, msg: impl std::fmt::Display) -> Error {
    Error::Parse(format!("{source}:{line}: {msg}"))
}

/// The token of character `c` at 0-based column `col` of line `line`.
fn char_token(alphabet: &Alphabet, c: char, col: usize, source: &str, line: usize) -> Result<u32> {
    alphabet.index(c).ok_or_else(|| {
        perr(
            source,
            line,
            format!(
                "character {c:?} (column {}) is not in the alphabet {:?}",
                col + 1,
                alphabet.as_string()
            ),
        )
    })
}

/// Collects rows and checks that they all have the same length.
struct RowBuilder<'a> {
    source: &'a str,
    tokens: Vec<u32>,
    len: Option<usize>,
    first_line: usize,
    n: usize,
}

impl<'a> RowBuilder<'a> {
    fn new(source: &'a str) -> Self {
        Self {
            source,
            tokens: Vec::new(),
            len: None,
            first_line: 0,
            n: 0,
        }
    }

    fn push(&mut self, row: &[u32], line: usize) -> Result<()> {
        if row.is_empty() {
            return Err(perr(self.source, line, "empty sequence"));
        }
        match self.len {
            None => {
                self.len = Some(row.len());
                self.first_line = line;
            }
            Some(l) if l != row.len() => {
                return Err(perr(
                    self.source,
                    line,
                    format!(
                        "sequence of length {} but the sequence at line {} has length {l} \
                         (all sequences must have the same length)",
                        row.len(),
                        self.first_line
                    ),
                ))
            }
            _ => {}
        }
        self.tokens.extend_from_slice(row);
        self.n += 1;
        Ok(())
    }

    fn finish(self, vocab: usize, alphabet: Option<String>) -> Result<SequenceDataset> {
        let Some(len) = self.len else {
            return Err(Error::Parse(format!(
                "{}: no sequences (empty file)",
                self.source
            )));
        };
        Ok(SequenceDataset {
            tokens: self.tokens,
            n: self.n,
            len,
            vocab,
            alphabet,
            labels: None,
            signal: None,
        })
    }
}

fn read_text(path: &Path) -> Result<String> {
    let mut bytes = std::fs::read(path).map_err(|e| Error::Io(path.display().to_string(), e))?;
    // A byte-order mark (as some editors write) is not part of the first line.
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    String::from_utf8(bytes)
        .map_err(|e| Error::Parse(format!("{}: not UTF-8 text: {e}", path.display())))
}

impl SequenceDataset {
    /// A dataset from row-major tokens, checking sizes and that every token is `< vocab`.
    pub fn new(
        tokens: Vec<u32>,
        n: usize,
        len: usize,
        vocab: usize,
        alphabet: Option<String>,
    ) -> Result<Self> {
        if n == 0 || len == 0 || vocab == 0 {
            return Err(Error::Shape(format!(
                "dataset with n={n}, L={len}, K={vocab}: all must be positive"
            )));
        }
        if vocab > MAX_VOCAB {
            return Err(Error::Shape(format!(
                "vocabulary of {vocab} exceeds the maximum {MAX_VOCAB}"
            )));
        }
        if n.checked_mul(len) != Some(tokens.len()) {
            return Err(Error::Shape(format!(
                "{} tokens do not make {n} sequences of length {len}",
                tokens.len()
            )));
        }
        if let Some(a) = &alphabet {
            if a.chars().count() != vocab {
                return Err(Error::Shape(format!(
                    "alphabet {a:?} has {} characters but K = {vocab}",
                    a.chars().count()
                )));
            }
        }
        if let Some(p) = tokens.iter().position(|&t| t as usize >= vocab) {
            return Err(Error::Shape(format!(
                "token {} (sequence {}, position {}) is outside the vocabulary 0..{vocab}",
                tokens[p],
                p / len,
                p % len
            )));
        }
        Ok(Self {
            tokens,
            n,
            len,
            vocab,
            alphabet,
            labels: None,
            signal: None,
        })
    }

    /// Sequence `i` (panics when `i >= n`, like slice indexing).
    pub fn row(&self, i: usize) -> &[u32] {
        &self.tokens[i * self.len..(i + 1) * self.len]
    }

    /// One-hot encoding, `[n, L, K]` row-major (the data points of Fisher-Flow on the sphere).
    pub fn one_hot(&self) -> Vec<f32> {
        let mut out = vec![0.0f32; self.tokens.len() * self.vocab];
        for (p, &t) in self.tokens.iter().enumerate() {
            out[p * self.vocab + t as usize] = 1.0;
        }
        out
    }

    /// Parse the ids format. `source` names the input in error messages. `vocab`: K, or `None`
    /// to infer `max id + 1`.
    pub fn parse_ids(text: &str, source: &str, vocab: Option<usize>) -> Result<Self> {
        if let Some(k) = vocab {
            if k == 0 || k > MAX_VOCAB {
                return Err(Error::Parse(format!(
                    "{source}: vocabulary size {k} must be in 1..={MAX_VOCAB}"
                )));
            }
        }
        let mut b = RowBuilder::new(source);
        let mut row = Vec::new();
        let mut max_id = 0u64;
        for (i, line) in text.lines().enumerate() {
            let ln = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            row.clear();
            for tok in line.split_whitespace() {
                let v: u64 = tok.parse().map_err(|_| {
                    perr(
                        source,
                        ln,
                        format!("{tok:?} is not a non-negative integer id"),
                    )
                })?;
                let limit = vocab.unwrap_or(MAX_VOCAB) as u64;
                if v >= limit {
                    let msg = match vocab {
                        Some(k) => format!("token {v} is outside the vocabulary 0..{k}"),
                        None => format!(
                            "token {v} implies a vocabulary larger than the maximum {MAX_VOCAB}"
                        ),
                    };
                    return Err(perr(source, ln, msg));
                }
                max_id = max_id.max(v);
                row.push(v as u32);
            }
            b.push(&row, ln)?;
        }
        let k = vocab.unwrap_or(max_id as usize + 1);
        b.finish(k, None)
    }

    /// Parse the chars format with `alphabet`.
    pub fn parse_chars(text: &str, source: &str, alphabet: &Alphabet) -> Result<Self> {
        let mut b = RowBuilder::new(source);
        let mut row = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let ln = i + 1;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            row.clear();
            for (col, c) in line.chars().enumerate() {
                row.push(char_token(alphabet, c, col, source, ln)?);
            }
            b.push(&row, ln)?;
        }
        b.finish(alphabet.len(), Some(alphabet.as_string()))
    }

    /// Parse FASTA with `alphabet`. `class=C` words in the headers become the labels, with the
    /// number of classes inferred as the largest label + 1.
    pub fn parse_fasta(text: &str, source: &str, alphabet: &Alphabet) -> Result<Self> {
        Self::parse_fasta_classes(text, source, alphabet, None)
    }

    /// Parse FASTA with `alphabet`, checking the header labels against a declared number of
    /// `classes` (`None`: inferred as the largest label + 1).
    pub fn parse_fasta_classes(
        text: &str,
        source: &str,
        alphabet: &Alphabet,
        classes: Option<usize>,
    ) -> Result<Self> {
        let mut b = RowBuilder::new(source);
        let mut labels = labels::HeaderLabels::new(source, classes)?;
        let mut row: Vec<u32> = Vec::new();
        let mut header_line: Option<usize> = None;
        for (i, line) in text.lines().enumerate() {
            let ln = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with(';') {
                continue;
            }
            if let Some(header) = line.strip_prefix('>') {
                labels.push(header, ln)?;
                if let Some(h) = header_line {
                    if row.is_empty() {
                        return Err(perr(source, h, "FASTA record without a sequence"));
                    }
                    b.push(&row, h)?;
                }
                row.clear();
                header_line = Some(ln);
                continue;
            }
            if header_line.is_none() {
                return Err(perr(
                    source,
                    ln,
                    "sequence data before the first '>' header (not FASTA?)",
                ));
            }
            for (col, c) in line.chars().enumerate() {
                if c.is_whitespace() {
                    continue;
                }
                row.push(char_token(alphabet, c, col, source, ln)?);
            }
        }
        if let Some(h) = header_line {
            if row.is_empty() {
                return Err(perr(source, h, "FASTA record without a sequence"));
            }
            b.push(&row, h)?;
        }
        labels.attach(b.finish(alphabet.len(), Some(alphabet.as_string()))?)
    }

    /// Read the ids format from a file.
    pub fn read_ids(path: impl AsRef<Path>, vocab: Option<usize>) -> Result<Self> {
        let p = path.as_ref();
        Self::parse_ids(&read_text(p)?, &p.display().to_string(), vocab)
    }

    /// Read the chars format from a file.
    pub fn read_chars(path: impl AsRef<Path>, alphabet: &Alphabet) -> Result<Self> {
        let p = path.as_ref();
        Self::parse_chars(&read_text(p)?, &p.display().to_string(), alphabet)
    }

    /// Read FASTA from a file.
    pub fn read_fasta(path: impl AsRef<Path>, alphabet: &Alphabet) -> Result<Self> {
        let p = path.as_ref();
        Self::parse_fasta(&read_text(p)?, &p.display().to_string(), alphabet)
    }

    fn alphabet_for_write(&self) -> Result<Alphabet> {
        let a = self.alphabet.as_deref().ok_or_else(|| {
            Error::InvalidArgument("the dataset has no alphabet; write it as ids".into())
        })?;
        Alphabet::new(a, false)
    }

    /// The ids format as text.
    pub fn to_ids_text(&self) -> String {
        let mut s = String::new();
        for i in 0..self.n {
            let r: Vec<String> = self.row(i).iter().map(|t| t.to_string()).collect();
            s.push_str(&r.join(" "));
            s.push('\n');
        }
        s
    }

    /// The chars format as text (needs an alphabet).
    pub fn to_chars_text(&self) -> Result<String> {
        let a = self.alphabet_for_write()?;
        let mut s = String::with_capacity(self.n * (self.len + 1));
        for i in 0..self.n {
            for &t in self.row(i) {
                s.push(a.char(t).ok_or_else(|| {
                    Error::InvalidArgument(format!("token {t} outside the alphabet"))
                })?);
            }
            s.push('\n');
        }
        Ok(s)
    }

    /// FASTA text (needs an alphabet); headers `>{prefix}{i}`, followed by ` class={c}` when
    /// the data are labelled; sequences wrapped at 80 columns.
    pub fn to_fasta_text(&self, prefix: &str) -> Result<String> {
        self.to_fasta_text_from(prefix, 0)
    }

    /// [`to_fasta_text`](Self::to_fasta_text) with the headers numbered from `first` (for a
    /// file written in chunks).
    pub fn to_fasta_text_from(&self, prefix: &str, first: usize) -> Result<String> {
        let a = self.alphabet_for_write()?;
        let mut s = String::new();
        for i in 0..self.n {
            let id = first + i;
            match self.label(i) {
                Some(c) => s.push_str(&format!(">{prefix}{id} class={c}\n")),
                None => s.push_str(&format!(">{prefix}{id}\n")),
            }
            for chunk in self.row(i).chunks(80) {
                for &t in chunk {
                    s.push(a.char(t).ok_or_else(|| {
                        Error::InvalidArgument(format!("token {t} outside the alphabet"))
                    })?);
                }
                s.push('\n');
            }
        }
        Ok(s)
    }

    /// Read a file in `format`; `vocab` is used by [`Format::Ids`] (None: inferred), `alphabet`
    /// is required by the character formats.
    pub fn read(
        path: impl AsRef<Path>,
        format: Format,
        vocab: Option<usize>,
        alphabet: Option<&Alphabet>,
    ) -> Result<Self> {
        let need = || Error::InvalidArgument("this format needs an alphabet".into());
        match format {
            Format::Ids => Self::read_ids(path, vocab),
            Format::Chars => Self::read_chars(path, alphabet.ok_or_else(need)?),
            Format::Fasta => Self::read_fasta(path, alphabet.ok_or_else(need)?),
        }
    }

    /// The dataset as text in `format` (character formats need an alphabet); FASTA headers
    /// are numbered from `first`.
    pub fn to_text(&self, format: Format, first: usize) -> Result<String> {
        Ok(match format {
            Format::Ids => self.to_ids_text(),
            Format::Chars => self.to_chars_text()?,
            Format::Fasta => self.to_fasta_text_from("seq", first)?,
        })
    }

    /// Write the dataset to `path` in `format` (character formats need an alphabet),
    /// atomically, replacing a regular file that is there ([`file::write_atomic`]).
    pub fn write(&self, path: impl AsRef<Path>, format: Format) -> Result<()> {
        file::write_atomic(path.as_ref(), self.to_text(format, 0)?.as_bytes(), true)
    }

    /// A 64-bit FNV-1a hash of the shape, the tokens, the alphabet and the labels, as 16 hex
    /// digits: what a resumed run compares to know it trains on the same data.
    pub fn content_hash(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for v in [self.n, self.len, self.vocab] {
            eat(&(v as u64).to_le_bytes());
        }
        for &t in &self.tokens {
            eat(&t.to_le_bytes());
        }
        eat(self.alphabet.as_deref().unwrap_or("").as_bytes());
        if let Some(l) = &self.labels {
            eat(&(l.classes as u64).to_le_bytes());
            for &c in &l.ids {
                eat(&c.to_le_bytes());
            }
        }
        if let Some(s) = &self.signal {
            eat(&(s.channels as u64).to_le_bytes());
            for v in &s.values {
                eat(&v.to_le_bytes());
            }
        }
        format!("{h:016x}")
    }
}
