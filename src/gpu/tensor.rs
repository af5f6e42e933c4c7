//! Typed GPU tensors: a storage buffer of `f32` (or `u32`) plus a row-major shape.

use crate::error::{Error, Result};
use crate::gpu::GpuContext;

/// Element types a [`GpuTensor`] can hold.
pub trait Element: bytemuck::Pod + Copy + Default + Send + Sync + 'static {
    /// Name used in messages.
    const NAME: &'static str;
}
impl Element for f32 {
    const NAME: &'static str = "f32";
}
impl Element for u32 {
    const NAME: &'static str = "u32";
}
impl Element for i32 {
    const NAME: &'static str = "i32";
}
impl Element for half::f16 {
    const NAME: &'static str = "f16";
}

/// A GPU storage buffer (or a range of one, [`GpuTensor::view`]) with a row-major shape and
/// element type `T`.
///
/// The buffer may be larger than the tensor (padding to 4 bytes); `len()` counts elements.
#[derive(Clone, Debug)]
pub struct GpuTensor<T: Element = f32> {
    buffer: wgpu::Buffer,
    offset: u64,
    shape: Vec<usize>,
    _t: std::marker::PhantomData<T>,
}

/// Usages every tensor buffer gets: storage plus copies both ways.
pub const TENSOR_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

fn numel(shape: &[usize]) -> Result<usize> {
    shape.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d)
            .ok_or_else(|| Error::Shape(format!("shape {shape:?} overflows")))
    })
}

fn byte_len<T>(n: usize) -> u64 {
    // Buffers are padded to a multiple of 4 bytes (copy alignment) and are never empty.
    ((n * std::mem::size_of::<T>()) as u64).div_ceil(4).max(1) * 4
}

impl<T: Element> GpuTensor<T> {
    fn check_size(ctx: &GpuContext, shape: &[usize]) -> Result<u64> {
        let n = numel(shape)?;
        let bytes = byte_len::<T>(n);
        let max = ctx.limits().max_buffer_size;
        if bytes > max {
            return Err(Error::Limit(format!(
                "tensor {shape:?} of {} needs {bytes} bytes; the adapter's largest buffer is {max} bytes",
                T::NAME
            )));
        }
        Ok(bytes)
    }

    /// A zero-filled tensor.
    pub fn zeros(ctx: &GpuContext, shape: &[usize]) -> Result<Self> {
        let size = Self::check_size(ctx, shape)?;
        let buffer = ctx.scoped("allocating a tensor", || {
            ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("tensor"),
                size,
                usage: TENSOR_USAGE,
                mapped_at_creation: false,
            })
        })?;
        Ok(Self {
            buffer,
            offset: 0,
            shape: shape.to_vec(),
            _t: Default::default(),
        })
    }

    /// The elements `offset .. offset + numel(shape)` of this tensor as a tensor of `shape`,
    /// sharing its buffer. Kernels bind it at its byte offset, which must be a multiple of the
    /// adapter's storage offset alignment (256 bytes at most).
    pub fn view(&self, offset: usize, shape: &[usize]) -> Result<Self> {
        let n = numel(shape)?;
        if offset.checked_add(n).is_none_or(|e| e > self.len()) {
            return Err(Error::Shape(format!(
                "a view of {shape:?} at element {offset} leaves a tensor of {} elements",
                self.len()
            )));
        }
        Ok(Self {
            buffer: self.buffer.clone(),
            offset: self.offset + offset as u64,
            shape: shape.to_vec(),
            _t: Default::default(),
        })
    }

    /// The tensor's first byte in its buffer (0 unless it is a [`GpuTensor::view`]).
    pub fn byte_offset(&self) -> u64 {
        self.offset * std::mem::size_of::<T>() as u64
    }

    /// A tensor holding `data` with the given shape.
    pub fn from_slice(ctx: &GpuContext, data: &[T], shape: &[usize]) -> Result<Self> {
        let n = numel(shape)?;
        if n != data.len() {
            return Err(Error::Shape(format!(
                "shape {shape:?} holds {n} elements but {} were given",
                data.len()
            )));
        }
        let t = Self::zeros(ctx, shape)?;
        t.write(ctx, data)?;
        Ok(t)
    }

    /// Overwrite the whole tensor from host memory (queued; ordered before later submits).
    pub fn write(&self, ctx: &GpuContext, data: &[T]) -> Result<()> {
        if data.len() != self.len() {
            return Err(Error::Shape(format!(
                "writing {} elements into a tensor of shape {:?}",
                data.len(),
                self.shape
            )));
        }
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let at = self.byte_offset();
        if bytes.len().is_multiple_of(4) && at.is_multiple_of(4) {
            ctx.queue().write_buffer(&self.buffer, at, bytes);
        } else if self.offset == 0 {
            let mut padded = bytes.to_vec();
            padded.resize(bytes.len().div_ceil(4) * 4, 0);
            ctx.queue().write_buffer(&self.buffer, 0, &padded);
        } else {
            return Err(Error::InvalidArgument(format!(
                "writing a view at byte {at}: views of sub-word elements must be word-aligned"
            )));
        }
        Ok(())
    }

    /// Copy the tensor back to host memory (waits for the GPU).
    pub fn to_vec(&self, ctx: &GpuContext) -> Result<Vec<T>> {
        let at = self.byte_offset();
        if !at.is_multiple_of(4) {
            return Err(Error::InvalidArgument(format!(
                "reading a view at byte {at}: views must start on a 4-byte boundary"
            )));
        }
        let bytes = read_buffer(ctx, &self.buffer, at, byte_len::<T>(self.len()))?;
        let n = self.len();
        let mut out = vec![T::default(); n];
        bytemuck::cast_slice_mut::<T, u8>(&mut out)
            .copy_from_slice(&bytes[..n * std::mem::size_of::<T>()]);
        Ok(out)
    }

    /// The same buffer seen with another shape of the same element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Self> {
        if numel(shape)? != self.len() {
            return Err(Error::Shape(format!(
                "cannot reshape {:?} to {shape:?}",
                self.shape
            )));
        }
        Ok(Self {
            buffer: self.buffer.clone(),
            offset: self.offset,
            shape: shape.to_vec(),
            _t: Default::default(),
        })
    }

    /// The underlying wgpu buffer (all of it, also for a view).
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
    /// The shape, row-major.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Size of the data in bytes (without padding).
    pub fn bytes(&self) -> u64 {
        (self.len() * std::mem::size_of::<T>()) as u64
    }
    /// The tensor's bytes as a binding resource (the whole buffer unless it is a view).
    pub fn binding(&self) -> wgpu::BindingResource<'_> {
        if self.offset == 0 {
            return self.buffer.as_entire_binding();
        }
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: self.byte_offset(),
            size: std::num::NonZeroU64::new(self.bytes().div_ceil(4).max(1) * 4),
        })
    }
}

/// Read `size` bytes of `buffer` starting at `offset` back to the host (waits for the GPU).
pub fn read_buffer(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    offset: u64,
    size: u64,
) -> Result<Vec<u8>> {
    let size = size.div_ceil(4) * 4;
    let staging = ctx.scoped("allocating a read-back buffer", || {
        ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size: size.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    })?;
    ctx.scoped("copying a buffer for read-back", || {
        let mut enc = ctx
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("read-back"),
            });
        enc.copy_buffer_to_buffer(buffer, offset, &staging, 0, size);
        ctx.queue().submit([enc.finish()]);
    })?;
    let (tx, rx) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    ctx.wait()?;
    rx.recv()
        .map_err(|_| Error::Device("read-back was never completed".into()))?
        .map_err(|e| Error::Device(format!("mapping a read-back buffer: {e}")))?;
    let view = staging
        .get_mapped_range(..)
        .map_err(|e| Error::Device(format!("reading a mapped buffer: {e:?}")))?;
    let out = view.to_vec();
    drop(view);
    staging.unmap();
    Ok(out)
}
