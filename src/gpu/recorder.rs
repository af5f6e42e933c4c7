//! A recorder: a replayable list of GPU operations (dispatches, copies, clears) that is
//! encoded into one command buffer, either fisherflow's own (one submit) or a host
//! application's [`wgpu::CommandEncoder`].
//!
//! A recording owns handles to its pipelines, bind groups and buffers, so it can be built once
//! (for example a whole training step) and submitted every step without allocating anything.

use crate::error::Result;
use crate::gpu::{GpuContext, Kernel};

#[derive(Clone, Debug)]
enum Op {
    Dispatch {
        pipeline: wgpu::ComputePipeline,
        bind_group: wgpu::BindGroup,
        groups: [u32; 3],
        label: std::sync::Arc<str>,
    },
    Copy {
        src: wgpu::Buffer,
        src_offset: u64,
        dst: wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    },
    Clear {
        buffer: wgpu::Buffer,
        offset: u64,
        size: Option<u64>,
    },
}

/// A list of GPU operations, encoded in order: built once, replayed with one submit each time,
/// or encoded into a host application's command encoder.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    ops: Vec<Op>,
}

impl Recorder {
    /// An empty recording.
    pub fn new() -> Self {
        Self::default()
    }

    /// Dispatch `kernel` with `bind_group` over a `groups` workgroup grid.
    pub fn dispatch(&mut self, kernel: &Kernel, bind_group: &wgpu::BindGroup, groups: [u32; 3]) {
        self.ops.push(Op::Dispatch {
            pipeline: kernel.pipeline.clone(),
            bind_group: bind_group.clone(),
            groups,
            label: kernel.label.clone(),
        });
    }

    /// Copy `size` bytes between buffers.
    pub fn copy(
        &mut self,
        src: &wgpu::Buffer,
        src_offset: u64,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    ) {
        self.ops.push(Op::Copy {
            src: src.clone(),
            src_offset,
            dst: dst.clone(),
            dst_offset,
            size,
        });
    }

    /// Fill a buffer range with zeros (`size = None`: to the end).
    pub fn clear(&mut self, buffer: &wgpu::Buffer, offset: u64, size: Option<u64>) {
        self.ops.push(Op::Clear {
            buffer: buffer.clone(),
            offset,
            size,
        });
    }

    /// Append every operation of `other`.
    pub fn extend(&mut self, other: &Recorder) {
        self.ops.extend(other.ops.iter().cloned());
    }

    /// Number of recorded operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    /// Number of recorded dispatches.
    pub fn dispatches(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| matches!(o, Op::Dispatch { .. }))
            .count()
    }
    /// Labels of the recorded dispatches, in order.
    pub fn dispatch_labels(&self) -> Vec<String> {
        self.ops
            .iter()
            .filter_map(|o| match o {
                Op::Dispatch { label, .. } => Some(label.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Encode every operation into `encoder`: consecutive dispatches share one compute pass
    /// (wgpu inserts the barriers between dependent dispatches). Use this to embed fisherflow
    /// work in a host application's frame; the host submits the encoder.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut i = 0;
        while i < self.ops.len() {
            match &self.ops[i] {
                Op::Dispatch { .. } => {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("fisherflow"),
                        timestamp_writes: None,
                    });
                    while let Some(Op::Dispatch {
                        pipeline,
                        bind_group,
                        groups,
                        ..
                    }) = self.ops.get(i)
                    {
                        pass.set_pipeline(pipeline);
                        pass.set_bind_group(0, bind_group, &[]);
                        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                        i += 1;
                    }
                }
                op => {
                    encode_transfer(encoder, op);
                    i += 1;
                }
            }
        }
    }

    /// Encode with one compute pass per dispatch, each bracketed by timestamp writes into
    /// `profiler`'s query set (starting at query `2 * first`).
    fn encode_profiled(&self, encoder: &mut wgpu::CommandEncoder, query_set: &wgpu::QuerySet) {
        let mut q = 0u32;
        for op in &self.ops {
            match op {
                Op::Dispatch {
                    pipeline,
                    bind_group,
                    groups,
                    label,
                } => {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(label),
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set,
                            beginning_of_pass_write_index: Some(q),
                            end_of_pass_write_index: Some(q + 1),
                        }),
                    });
                    pass.set_pipeline(pipeline);
                    pass.set_bind_group(0, bind_group, &[]);
                    pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                    q += 2;
                }
                op => encode_transfer(encoder, op),
            }
        }
    }

    /// Encode into a fresh command buffer and submit it (one submit). Validation and
    /// out-of-memory errors come back as [`crate::Error`]. Does not wait for the GPU.
    pub fn submit(&self, ctx: &GpuContext) -> Result<wgpu::SubmissionIndex> {
        ctx.scoped("submitting recorded work", || {
            let mut enc = ctx
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("fisherflow"),
                });
            self.encode(&mut enc);
            ctx.queue().submit([enc.finish()])
        })
    }

    /// Submit and wait for completion.
    pub fn run(&self, ctx: &GpuContext) -> Result<()> {
        self.submit(ctx)?;
        ctx.wait()
    }

    /// Submit with a timestamp around every dispatch and return each dispatch's label and GPU
    /// time in nanoseconds, in order. Needs [`GpuContext::has_timestamps`].
    pub fn run_profiled(&self, ctx: &GpuContext) -> Result<Vec<(String, f64)>> {
        let n = self.dispatches() as u32;
        if !ctx.has_timestamps() {
            return Err(crate::Error::Device(format!(
                "{} has no TIMESTAMP_QUERY feature; GPU times cannot be measured",
                ctx.describe()
            )));
        }
        if n == 0 {
            self.run(ctx)?;
            return Ok(Vec::new());
        }
        let count = 2 * n;
        let bytes = count as u64 * 8;
        let (query_set, resolve) = ctx.scoped("creating timestamp queries", || {
            let qs = ctx.device().create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            });
            let resolve = ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            (qs, resolve)
        })?;
        ctx.scoped("submitting profiled work", || {
            let mut enc = ctx
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("profiled"),
                });
            self.encode_profiled(&mut enc, &query_set);
            enc.resolve_query_set(&query_set, 0..count, &resolve, 0);
            ctx.queue().submit([enc.finish()]);
        })?;
        let raw = crate::gpu::read_buffer(ctx, &resolve, 0, bytes)?;
        let ticks: &[u64] = bytemuck::cast_slice(&raw);
        let period = ctx.queue().get_timestamp_period() as f64;
        Ok(self
            .dispatch_labels()
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let dt = ticks[2 * i + 1].wrapping_sub(ticks[2 * i]) as f64 * period;
                (l, dt)
            })
            .collect())
    }
}

fn encode_transfer(encoder: &mut wgpu::CommandEncoder, op: &Op) {
    match op {
        Op::Copy {
            src,
            src_offset,
            dst,
            dst_offset,
            size,
        } => encoder.copy_buffer_to_buffer(src, *src_offset, dst, *dst_offset, *size),
        Op::Clear {
            buffer,
            offset,
            size,
        } => encoder.clear_buffer(buffer, *offset, *size),
        Op::Dispatch { .. } => unreachable!("dispatches are encoded in passes"),
    }
}
