//! Class labels of sequences, for class-conditional models.
//!
//! Labels come from the FASTA headers (a word `class=C` in every header, or in none) or from a
//! labels file: one non-negative integer a line, line i labelling sequence i (blank lines are
//! skipped, as in the data formats). The number of classes is either declared (a source's or a
//! model's class count: every label must be below it) or inferred as the largest label + 1.

use std::path::Path;

use super::{perr, read_text, Alphabet, Format, SequenceDataset};
use crate::error::{Error, Result};

/// The most classes a labelled dataset may have (class embeddings are dense tables).
pub const MAX_CLASSES: usize = 1 << 16;

/// The class of every sequence of a dataset and the number of classes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labels {
    /// The class of sequence i, each `< classes`.
    pub ids: Vec<u32>,
    /// Number of classes: declared, or the largest label + 1.
    pub classes: usize,
}

fn check_declared(classes: Option<usize>, source: &str) -> Result<()> {
    match classes {
        Some(k) if k == 0 || k > MAX_CLASSES => Err(Error::InvalidArgument(format!(
            "{source}: {k} classes declared; the number of classes must be in 1..={MAX_CLASSES}"
        ))),
        _ => Ok(()),
    }
}

/// One label from text, checked against the declared class count; the message has no location.
fn parse_label(value: &str, classes: Option<usize>) -> std::result::Result<u32, String> {
    let v: u64 = value
        .parse()
        .map_err(|_| format!("class label {value:?} is not a non-negative integer"))?;
    match classes {
        Some(k) if v >= k as u64 => Err(format!(
            "class label {v} is not below the {k} declared classes (labels are 0..{k})"
        )),
        None if v >= MAX_CLASSES as u64 => Err(format!(
            "class label {v} exceeds the maximum of {MAX_CLASSES} classes"
        )),
        _ => Ok(v as u32),
    }
}

impl Labels {
    /// Labels `ids` with `classes` classes (`None`: the largest label + 1). Errors on no labels, a
    /// label not below the class count, or a class count outside `1..=MAX_CLASSES`.
    pub fn new(ids: Vec<u32>, classes: Option<usize>) -> Result<Self> {
        check_declared(classes, "labels")?;
        let Some(&max) = ids.iter().max() else {
            return Err(Error::Shape("no labels".into()));
        };
        let classes = classes.unwrap_or(max as usize + 1);
        if classes > MAX_CLASSES {
            return Err(Error::Shape(format!(
                "label {max} exceeds the maximum of {MAX_CLASSES} classes"
            )));
        }
        if max as usize >= classes {
            let i = ids.iter().position(|&c| c == max).unwrap_or(0);
            return Err(Error::Shape(format!(
                "label {max} of sequence {i} is not below the {classes} declared classes"
            )));
        }
        Ok(Self { ids, classes })
    }

    /// Parse a labels file's text; `source` names it in errors, which give the line.
    pub fn parse(text: &str, source: &str, classes: Option<usize>) -> Result<Self> {
        check_declared(classes, source)?;
        let mut ids = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let mut words = line.split_whitespace();
            let Some(word) = words.next() else { continue };
            if words.next().is_some() {
                return Err(perr(
                    source,
                    i + 1,
                    format!("{:?}: one class label a line", line.trim()),
                ));
            }
            ids.push(parse_label(word, classes).map_err(|m| perr(source, i + 1, m))?);
        }
        if ids.is_empty() {
            return Err(Error::Parse(format!("{source}: no labels (empty file)")));
        }
        Self::new(ids, classes)
    }

    /// Read a labels file (see [`parse`](Self::parse)).
    pub fn read(path: impl AsRef<Path>, classes: Option<usize>) -> Result<Self> {
        let p = path.as_ref();
        Self::parse(&read_text(p)?, &p.display().to_string(), classes)
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no labels (never, for labels built by [`new`](Self::new)).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// How many sequences each class has.
    pub fn counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.classes];
        for &l in &self.ids {
            c[l as usize] += 1;
        }
        c
    }

    /// The labels file text: one label a line.
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(self.ids.len() * 2);
        for l in &self.ids {
            s.push_str(&l.to_string());
            s.push('\n');
        }
        s
    }
}

/// Collects the `class=` labels of FASTA headers and checks that every header has one or none.
pub(super) struct HeaderLabels<'a> {
    source: &'a str,
    classes: Option<usize>,
    ids: Vec<u32>,
    first_with: Option<usize>,
    first_without: Option<usize>,
}

impl<'a> HeaderLabels<'a> {
    pub(super) fn new(source: &'a str, classes: Option<usize>) -> Result<Self> {
        check_declared(classes, source)?;
        Ok(Self {
            source,
            classes,
            ids: Vec::new(),
            first_with: None,
            first_without: None,
        })
    }

    /// The header text after `>`, at line `line`.
    pub(super) fn push(&mut self, header: &str, line: usize) -> Result<()> {
        let mut found = None;
        for value in header
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("class="))
        {
            if found.is_some() {
                return Err(perr(self.source, line, "two class= labels in one header"));
            }
            found = Some(parse_label(value, self.classes).map_err(|m| perr(self.source, line, m))?);
        }
        let mixed = |other: usize, has: &str| {
            perr(
                self.source,
                line,
                format!(
                    "this header {has} a class= label but the header at line {other} does not \
                     (label every record or none)"
                ),
            )
        };
        match found {
            Some(c) => {
                if let Some(other) = self.first_without {
                    return Err(mixed(other, "has"));
                }
                self.first_with.get_or_insert(line);
                self.ids.push(c);
            }
            None => {
                if let Some(other) = self.first_with {
                    return Err(mixed(other, "lacks"));
                }
                self.first_without.get_or_insert(line);
            }
        }
        Ok(())
    }

    /// `ds` with the collected labels (unchanged when no header had one).
    pub(super) fn attach(self, ds: SequenceDataset) -> Result<SequenceDataset> {
        if self.ids.is_empty() {
            return Ok(ds);
        }
        ds.with_labels(Labels::new(self.ids, self.classes)?)
    }
}

/// Where [`SequenceDataset::read_labelled`] takes labels from and how they are checked.
#[derive(Clone, Copy, Debug, Default)]
pub struct LabelOptions<'a> {
    /// A labels file, one integer a line (any format). Data whose FASTA headers carry labels
    /// and a labels file together are refused as labels given twice.
    pub file: Option<&'a Path>,
    /// The declared number of classes: every label must be below it (`None`: the largest label
    /// + 1).
    pub classes: Option<usize>,
    /// Refuse data that end up without labels.
    pub required: bool,
}

impl SequenceDataset {
    /// The dataset with `labels` attached. Errors when their count is not the number of
    /// sequences or the dataset is already labelled.
    pub fn with_labels(mut self, labels: Labels) -> Result<Self> {
        if self.labels.is_some() {
            return Err(Error::InvalidArgument(
                "the sequences are labelled already (labels given twice)".into(),
            ));
        }
        if labels.len() != self.n {
            return Err(Error::Shape(format!(
                "{} labels for {} sequences",
                labels.len(),
                self.n
            )));
        }
        self.labels = Some(labels);
        Ok(self)
    }

    /// The class of every sequence, when labelled.
    pub fn labels(&self) -> Option<&[u32]> {
        self.labels.as_ref().map(|l| l.ids.as_slice())
    }

    /// The class of sequence `i`, when labelled (`None` also when `i >= n`).
    pub fn label(&self, i: usize) -> Option<u32> {
        self.labels.as_ref().and_then(|l| l.ids.get(i).copied())
    }

    /// The number of classes, when labelled.
    pub fn classes(&self) -> Option<usize> {
        self.labels.as_ref().map(|l| l.classes)
    }

    /// Read a file in `format` (as [`read`](Self::read)) with its class labels: FASTA `class=`
    /// headers, or `opts.file`. Errors name the file and line: a header label missing on some
    /// records, a label that is not an integer or not below `opts.classes`, a labels file whose
    /// count differs from the number of sequences, labels given twice, and (with
    /// `opts.required`) no labels at all.
    pub fn read_labelled(
        path: impl AsRef<Path>,
        format: Format,
        vocab: Option<usize>,
        alphabet: Option<&Alphabet>,
        opts: &LabelOptions<'_>,
    ) -> Result<Self> {
        let p = path.as_ref();
        let src = p.display().to_string();
        check_declared(opts.classes, &src)?;
        let ds = match (format, alphabet) {
            (Format::Fasta, Some(a)) => {
                Self::parse_fasta_classes(&read_text(p)?, &src, a, opts.classes)?
            }
            _ => Self::read(p, format, vocab, alphabet)?,
        };
        match opts.file {
            Some(f) => {
                let fsrc = f.display().to_string();
                if ds.labels.is_some() {
                    return Err(Error::InvalidArgument(format!(
                        "labels given twice: {src} has class= labels in its headers and {fsrc} \
                         is a labels file; use one"
                    )));
                }
                let labels = Labels::read(f, opts.classes)?;
                if labels.len() != ds.n {
                    return Err(Error::Parse(format!(
                        "{fsrc}: {} labels, but {src} has {} sequences (one label a line, \
                         line i for sequence i)",
                        labels.len(),
                        ds.n
                    )));
                }
                ds.with_labels(labels)
            }
            None if opts.required && ds.labels.is_none() => Err(Error::Parse(format!(
                "{src}: no class labels (write class=C in every FASTA header, or give a labels \
                 file)"
            ))),
            None => Ok(ds),
        }
    }
}
