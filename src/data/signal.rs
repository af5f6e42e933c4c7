//! Per-position signal tracks of sequences, for models conditioned on a track (promoter-style
//! conditioning: a real value at every position of a sequence, read by the field network as
//! extra input channels).
//!
//! A track file holds one sequence's track a line: `L` whitespace-separated finite reals, line i
//! belonging to sequence i (blank lines are skipped, as in the data formats). One file is one
//! channel; several files of the same sequences make several channels
//! ([`SignalTracks::stack`]).

use std::path::Path;

use super::{perr, read_text, SequenceDataset};
use crate::error::{Error, Result};

/// The most channels a signal track may have.
pub const MAX_CHANNELS: usize = 64;

/// Real-valued tracks of `n` sequences: `channels` values at each of `len` positions.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalTracks {
    /// Values `[n, len, channels]`, row-major (sequence, then position, then channel).
    pub values: Vec<f32>,
    /// Number of sequences.
    pub n: usize,
    /// Positions per sequence.
    pub len: usize,
    /// Values per position.
    pub channels: usize,
}

impl SignalTracks {
    /// Tracks from `[n, len, channels]` values. Errors on a size mismatch, no sequences, no
    /// positions or channels, more than [`MAX_CHANNELS`] channels, or a value that is not finite.
    pub fn new(values: Vec<f32>, n: usize, len: usize, channels: usize) -> Result<Self> {
        if n == 0 || len == 0 || channels == 0 || channels > MAX_CHANNELS {
            return Err(Error::Shape(format!(
                "signal tracks need sequences, positions and 1..={MAX_CHANNELS} channels (got \
                 {n} × {len} × {channels})"
            )));
        }
        let want = n
            .checked_mul(len)
            .and_then(|v| v.checked_mul(channels))
            .filter(|&w| w == values.len());
        if want.is_none() {
            return Err(Error::Shape(format!(
                "{} signal values for {n} sequences × {len} positions × {channels} channels",
                values.len()
            )));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            let (seq, pos) = (i / (len * channels), i / channels % len);
            return Err(Error::InvalidArgument(format!(
                "signal value {} of sequence {seq} at position {pos} is not finite",
                values[i]
            )));
        }
        Ok(Self {
            values,
            n,
            len,
            channels,
        })
    }

    /// Parse a track file's text (one channel) for sequences of length `len`; `source` names it
    /// in errors, which give the line: a value that is not a number or not finite, a line
    /// without `len` values.
    pub fn parse(text: &str, source: &str, len: usize) -> Result<Self> {
        let mut values = Vec::new();
        let mut n = 0;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let before = values.len();
            for word in line.split_whitespace() {
                let v: f32 = word.parse().map_err(|_| {
                    perr(
                        source,
                        i + 1,
                        format!("signal value {word:?} is not a number"),
                    )
                })?;
                if !v.is_finite() {
                    return Err(perr(
                        source,
                        i + 1,
                        format!("signal value {word:?} is not finite"),
                    ));
                }
                values.push(v);
            }
            let got = values.len() - before;
            if got != len {
                return Err(perr(
                    source,
                    i + 1,
                    format!(
                        "a track of {got} values, but the sequences have length {len} (one \
                         value per position)"
                    ),
                ));
            }
            n += 1;
        }
        if n == 0 {
            return Err(Error::Parse(format!("{source}: no tracks (empty file)")));
        }
        Self::new(values, n, len, 1)
    }

    /// Read a track file (see [`parse`](Self::parse)).
    pub fn read(path: impl AsRef<Path>, len: usize) -> Result<Self> {
        let p = path.as_ref();
        Self::parse(&read_text(p)?, &p.display().to_string(), len)
    }

    /// The channels of `parts` side by side (part j's channels after those of parts before
    /// it). Errors when the parts differ in sequences or length.
    pub fn stack(parts: &[SignalTracks]) -> Result<Self> {
        let Some(first) = parts.first() else {
            return Err(Error::Shape("no signal tracks to stack".into()));
        };
        let (n, len) = (first.n, first.len);
        if let Some(p) = parts.iter().find(|p| (p.n, p.len) != (n, len)) {
            return Err(Error::Shape(format!(
                "signal tracks of {} sequences of length {} beside {n} of length {len}",
                p.n, p.len
            )));
        }
        let channels = parts.iter().map(|p| p.channels).sum();
        let mut values = Vec::with_capacity(n * len * channels);
        for r in 0..n * len {
            for p in parts {
                values.extend_from_slice(&p.values[r * p.channels..][..p.channels]);
            }
        }
        Self::new(values, n, len, channels)
    }

    /// The track of sequence `i`, `[len, channels]`.
    pub fn row(&self, i: usize) -> &[f32] {
        let w = self.len * self.channels;
        &self.values[i * w..][..w]
    }

    /// The tracks of sequences `rows` in that order, `[rows.len(), len, channels]`.
    pub fn gather(&self, rows: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * self.len * self.channels);
        for &i in rows {
            out.extend_from_slice(self.row(i));
        }
        out
    }
}

impl SequenceDataset {
    /// The dataset with the signal tracks `signal` attached (one per sequence). Errors when
    /// their count or length is not the data's, or a track is attached already.
    pub fn with_signal(mut self, signal: SignalTracks) -> Result<Self> {
        if self.signal.is_some() {
            return Err(Error::InvalidArgument(
                "the sequences have a signal track already (given twice)".into(),
            ));
        }
        if (signal.n, signal.len) != (self.n, self.len) {
            return Err(Error::Shape(format!(
                "{} signal tracks of length {} for {} sequences of length {} (one track per \
                 sequence, one value per position)",
                signal.n, signal.len, self.n, self.len
            )));
        }
        self.signal = Some(signal);
        Ok(self)
    }

    /// The signal tracks, when given.
    pub fn signal(&self) -> Option<&SignalTracks> {
        self.signal.as_ref()
    }

    /// Channels of the signal tracks (0: none).
    pub fn signal_channels(&self) -> usize {
        self.signal.as_ref().map_or(0, |s| s.channels)
    }
}
