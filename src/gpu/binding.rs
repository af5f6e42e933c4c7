//! The bindings of a launch: [`Arg`] (a whole buffer, a range, rows bound chunk by chunk, or a
//! resource made by the caller) and [`plan_chunks`], which splits row-shaped work so that every
//! binding fits the adapter's storage binding limit and starts at an aligned offset.

use std::num::NonZeroU64;

use crate::error::{Error, Result};
use crate::gpu::{Element, GpuContext, GpuTensor};

/// The part of the work one dispatch covers: rows `first .. first + rows` for
/// [`Work::Rows`](crate::gpu::Work::Rows), otherwise everything (`first = 0`, `rows` = the item or group count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// First row of the dispatch.
    pub first: u64,
    /// Rows of the dispatch.
    pub rows: u64,
}

/// One binding of a launch.
#[derive(Clone, Debug)]
pub enum Arg<'a> {
    /// A whole buffer.
    Whole(&'a wgpu::Buffer),
    /// `size` bytes from byte `offset` (aligned to the adapter's storage offset alignment).
    Range {
        /// The buffer.
        buffer: &'a wgpu::Buffer,
        /// First byte.
        offset: u64,
        /// Bytes.
        size: u64,
    },
    /// Rows of `row_bytes` bytes from byte `offset`, bound chunk by chunk ([`Work::Rows`](crate::gpu::Work::Rows)).
    Rows {
        /// The buffer.
        buffer: &'a wgpu::Buffer,
        /// Byte offset of row 0 (aligned).
        offset: u64,
        /// Bytes per row.
        row_bytes: u64,
    },
    /// A binding made by the caller (e.g. an unaligned view with its offset in the params).
    Resource(wgpu::BindingResource<'a>),
}

impl<'a, T: Element> From<&'a GpuTensor<T>> for Arg<'a> {
    fn from(t: &'a GpuTensor<T>) -> Self {
        if t.byte_offset() == 0 {
            Arg::Whole(t.buffer())
        } else {
            Arg::Range {
                buffer: t.buffer(),
                offset: t.byte_offset(),
                size: t.bytes().div_ceil(4).max(1) * 4,
            }
        }
    }
}

impl<'a> Arg<'a> {
    /// The rows of `t`, `row_len` elements each, for [`Work::Rows`](crate::gpu::Work::Rows).
    pub fn rows<T: Element>(t: &'a GpuTensor<T>, row_len: usize) -> Self {
        Arg::Rows {
            buffer: t.buffer(),
            offset: t.byte_offset(),
            row_bytes: (row_len * std::mem::size_of::<T>()) as u64,
        }
    }

    pub(super) fn row_bytes(&self) -> Option<u64> {
        match self {
            Arg::Rows { row_bytes, .. } => Some(*row_bytes),
            _ => None,
        }
    }

    pub(super) fn resource(
        &self,
        ctx: &GpuContext,
        what: &dyn Fn() -> String,
        chunk: Chunk,
    ) -> Result<wgpu::BindingResource<'a>> {
        let max = ctx.max_binding();
        let align = ctx.limits().min_storage_buffer_offset_alignment.max(4) as u64;
        let range = |buffer: &'a wgpu::Buffer, offset: u64, size: u64| {
            if !offset.is_multiple_of(align) {
                return Err(Error::InvalidArgument(format!(
                    "{}: binding offset {offset} is not a multiple of the adapter's alignment {align}",
                    what()
                )));
            }
            if size > max {
                return Err(Error::Limit(format!(
                    "{}: a binding of {size} bytes exceeds the storage binding limit of {max} bytes",
                    what()
                )));
            }
            if offset.checked_add(size).is_none_or(|e| e > buffer.size()) {
                return Err(Error::Shape(format!(
                    "{}: {size} bytes at offset {offset} run past a buffer of {} bytes",
                    what(),
                    buffer.size()
                )));
            }
            Ok(wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer,
                offset,
                size: NonZeroU64::new(size.max(4)),
            }))
        };
        match self {
            Arg::Whole(b) => range(b, 0, b.size()),
            Arg::Range {
                buffer,
                offset,
                size,
            } => range(buffer, *offset, *size),
            Arg::Rows {
                buffer,
                offset,
                row_bytes,
            } => range(
                buffer,
                offset + chunk.first * row_bytes,
                chunk.rows * row_bytes,
            ),
            Arg::Resource(r) => Ok(r.clone()),
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Split `rows` rows into consecutive `(first_row, rows)` chunks so that, for every tensor in
/// a launch (one row of it is `row_bytes[i]` bytes), each chunk fits in `max_binding` bytes and
/// starts at an offset that is a multiple of `align`.
pub fn plan_chunks(
    max_binding: u64,
    align: u64,
    row_bytes: &[u64],
    rows: u64,
) -> Result<Vec<(u64, u64)>> {
    let align = align.max(1);
    let mut step = 1u64;
    let mut per = u64::MAX;
    for &rb in row_bytes {
        if rb == 0 {
            return Err(Error::Shape("rows of zero bytes".into()));
        }
        if rb > max_binding {
            return Err(Error::Limit(format!(
                "one row of {rb} bytes exceeds the storage binding limit of {max_binding} bytes"
            )));
        }
        let s = align / gcd(rb, align);
        step = step / gcd(step, s) * s;
        per = per.min(max_binding / rb);
    }
    per -= per % step;
    if per == 0 {
        return Err(Error::Limit(format!(
            "rows of {row_bytes:?} bytes cannot be chunked to offset alignment {align} within \
             {max_binding} bytes"
        )));
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows {
        let n = per.min(rows - start);
        out.push((start, n));
        start += n;
    }
    Ok(out)
}
