//! Checkpoints: named f32 tensors plus string metadata, stored in the safetensors format.
//!
//! [`Checkpoint::save`] writes to a temporary file in the destination's directory, flushes it to
//! disk (`fsync`), then renames it over the destination, so a crash or an I/O failure never
//! leaves a half-written checkpoint and never destroys the previous one. The metadata is
//! written in sorted key order: one checkpoint always gives the same bytes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::data::file::AtomicFile;
use crate::error::{Error, Result};

/// Named f32 tensors (`name -> (shape, row-major values)`) and string metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// Tensors by name: shape and row-major data (`data.len() == shape.product()`).
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    /// Free-form metadata stored in the safetensors header (`__metadata__`).
    pub metadata: BTreeMap<String, String>,
}

fn ck(msg: String) -> Error {
    Error::Checkpoint(msg)
}

impl Checkpoint {
    /// An empty checkpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) a tensor; errors when `data.len()` does not match `shape`.
    pub fn insert(&mut self, name: &str, shape: &[usize], data: Vec<f32>) -> Result<()> {
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| ck(format!("tensor '{name}': shape {shape:?} overflows")))?;
        if n != data.len() {
            return Err(ck(format!(
                "tensor '{name}': shape {shape:?} holds {n} values but {} were given",
                data.len()
            )));
        }
        self.tensors
            .insert(name.to_string(), (shape.to_vec(), data));
        Ok(())
    }

    /// Set a metadata entry.
    pub fn set_meta(&mut self, key: &str, value: impl Into<String>) {
        self.metadata.insert(key.to_string(), value.into());
    }

    /// The metadata value for `key`, or an error naming the missing key.
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.metadata
            .get(key)
            .map(|s| s.as_str())
            .ok_or_else(|| ck(format!("metadata key '{key}' is missing")))
    }

    /// The data of tensor `name`, checked to have exactly `shape`.
    pub fn expect(&self, name: &str, shape: &[usize]) -> Result<&[f32]> {
        match self.tensors.get(name) {
            None => {
                let have: Vec<&str> = self.tensors.keys().map(|s| s.as_str()).collect();
                Err(ck(format!(
                    "tensor '{name}' is missing (the checkpoint has {have:?})"
                )))
            }
            Some((s, _)) if s.as_slice() != shape => Err(ck(format!(
                "tensor '{name}' has shape {s:?}, expected {shape:?}"
            ))),
            Some((_, d)) => Ok(d),
        }
    }

    /// Serialize to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (name, (shape, data)) in &self.tensors {
            let n: usize = shape.iter().product();
            if n != data.len() {
                return Err(ck(format!(
                    "tensor '{name}': shape {shape:?} holds {n} values but has {}",
                    data.len()
                )));
            }
            let mut b = Vec::with_capacity(data.len() * 4);
            for v in data {
                b.extend_from_slice(&v.to_le_bytes());
            }
            bytes.push((name.clone(), shape.clone(), b));
        }
        let mut views = Vec::with_capacity(bytes.len());
        for (name, shape, b) in &bytes {
            let v = TensorView::new(Dtype::F32, shape.clone(), b)
                .map_err(|e| ck(format!("tensor '{name}': {e}")))?;
            views.push((name.as_str(), v));
        }
        let bytes = safetensors::serialize(views, None::<HashMap<String, String>>)
            .map_err(|e| ck(format!("serializing: {e}")))?;
        with_sorted_metadata(bytes, &self.metadata)
    }

    /// Parse safetensors bytes (`what` names the source in error messages). Only f32 tensors
    /// are accepted.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Self> {
        if bytes.len() < 8 {
            return Err(ck(format!(
                "{what}: {} bytes is too short for a safetensors file (truncated?)",
                bytes.len()
            )));
        }
        let st = SafeTensors::deserialize(bytes).map_err(|e| {
            ck(format!(
                "{what}: not a valid safetensors file (corrupt or truncated): {e}"
            ))
        })?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| ck(format!("{what}: bad safetensors header: {e}")))?;
        let mut out = Checkpoint::new();
        if let Some(m) = header.metadata() {
            for (k, v) in m {
                out.metadata.insert(k.clone(), v.clone());
            }
        }
        for (name, view) in st.iter() {
            if view.dtype() != Dtype::F32 {
                return Err(ck(format!(
                    "{what}: tensor '{name}' has dtype {:?}; only F32 is supported",
                    view.dtype()
                )));
            }
            let raw = view.data();
            let n = view
                .shape()
                .iter()
                .try_fold(4usize, |a, &d| a.checked_mul(d));
            if n != Some(raw.len()) {
                return Err(ck(format!(
                    "{what}: tensor '{name}' of shape {:?} has {} bytes, not 4 per value",
                    view.shape(),
                    raw.len(),
                )));
            }
            let data: Vec<f32> = raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            out.tensors
                .insert(name.to_string(), (view.shape().to_vec(), data));
        }
        Ok(out)
    }

    /// Load a checkpoint file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ck(format!("{}: no such file", path.display()))
            } else {
                ck(format!("{}: cannot read: {e}", path.display()))
            }
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Save atomically (see [`crate::data::file`]): temporary file in the same directory,
    /// fsync, rename over `path` (over the file it points to, when `path` is a symbolic link).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.save_impl(path.as_ref(), None)
    }

    /// Test hook: behaves like [`save`](Self::save) but fails after writing `fail_after` bytes
    /// of the temporary file, as a full disk or a crash would. The destination must be left as
    /// it was.
    #[doc(hidden)]
    pub fn save_failing_after(&self, path: impl AsRef<Path>, fail_after: usize) -> Result<()> {
        self.save_impl(path.as_ref(), Some(fail_after))
    }

    fn save_impl(&self, path: &Path, fail_after: Option<usize>) -> Result<()> {
        let bytes = self.to_bytes()?;
        let as_ck = |e: Error| match e {
            Error::InvalidArgument(m) => ck(m),
            Error::Io(p, e) => ck(format!("{p}: {e}")),
            e => e,
        };
        let mut f = AtomicFile::create(path, true).map_err(as_ck)?;
        match fail_after {
            Some(n) if n < bytes.len() => {
                f.write(&bytes[..n]).map_err(as_ck)?;
                Err(ck(format!(
                    "writing {}: simulated write failure",
                    path.display()
                )))
            }
            _ => {
                f.write(&bytes).map_err(as_ck)?;
                f.commit().map_err(as_ck)
            }
        }
    }
}

/// Safetensors bytes without metadata, given the metadata in sorted key order (safetensors
/// writes its own map in hash order, so two saves of one checkpoint would differ).
fn with_sorted_metadata(bytes: Vec<u8>, meta: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    if meta.is_empty() {
        return Ok(bytes);
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n])
        .map_err(|e| ck(format!("serializing: {e}")))?
        .trim_end();
    let tensors = header
        .strip_prefix('{')
        .and_then(|h| h.strip_suffix('}'))
        .ok_or_else(|| ck("serializing: unexpected safetensors header".into()))?;
    let meta = serde_json::to_string(meta).map_err(|e| ck(format!("serializing: {e}")))?;
    let sep = if tensors.is_empty() { "" } else { "," };
    let mut header = format!("{{\"__metadata__\":{meta}{sep}{tensors}}}").into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}
