//! The kernel layer: the one way every WGSL kernel of the crate is defined, launched and
//! checked.
//!
//! A [`ShaderDef`] is a WGSL module assembled from preludes of `shaders/lib/` and one file of
//! `shaders/`, optionally storage-generic (compiled with f32 or f16 storage). A [`KernelDef`]
//! is one entry point of it: its parameter type (a [`Params`] struct declared with
//! [`gpu_params!`](crate::gpu_params), whose layout a test compares with the WGSL struct), the
//! names of its bindings in order, and its workgroup size. [`KernelDef::launch`] records it:
//! it builds the uniform, binds the arguments, folds large grids into two dimensions and splits
//! row-shaped work into chunks that fit the adapter's storage binding limit.
//!
//! # Binding convention
//! Binding 0 of group 0 holds the parameters (when the kernel has any). A shader names its
//! other bindings once ([`ShaderDef::slots`]: binding `i + 1` is `slots[i]`), and a kernel
//! lists the names it uses ([`KernelDef::bindings`]), in the order its arguments are passed.
//! Each entry point uses every binding of its list.

use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::gpu::binding::{plan_chunks, Arg, Chunk};
use crate::gpu::{GpuContext, Kernel, Precision, Recorder, Shader};

/// Invocations per workgroup of most kernels (`WG` in `shaders/lib/grid.wgsl`).
pub const WG: u32 = 256;

/// Which compiled form of a [`ShaderDef`] a launch uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// f32 storage, scalar rows: every shader has it.
    Base,
    /// f16 storage ([`ShaderDef::storage_generic`] shaders).
    F16,
    /// Rows of `vec4<f32>` ([`ShaderDef::width_generic`] shaders).
    Vec4,
}

impl From<Precision> for Variant {
    fn from(p: Precision) -> Self {
        match p {
            Precision::F32 => Variant::Base,
            Precision::F16 => Variant::F16,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Generic {
    None,
    Storage,
    Width,
}

/// A WGSL module: preludes and a body joined at compile time, in one or two variants.
///
/// - A storage-generic shader is written against the aliases `E` (scalar) and `E4` (vec4) of
///   its storage type; the layer prepends `alias E = f32;` ([`Variant::Base`]) or
///   `enable f16; alias E = f16;` ([`Variant::F16`]). Loads convert to f32 (`f32(x[i])`),
///   stores convert back (`E(v)`).
/// - A width-generic shader is written against the row element `V` and `vdot(a, b)`; the
///   layer prepends `alias V = f32;` ([`Variant::Base`]) or `alias V = vec4<f32>;`
///   ([`Variant::Vec4`]).
pub struct ShaderDef {
    name: &'static str,
    parts: &'static [&'static str],
    slots: &'static [&'static str],
    generic: Generic,
    compiled: [OnceLock<(String, String)>; 2],
}

impl std::fmt::Debug for ShaderDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShaderDef")
            .field("name", &self.name)
            .field("generic", &self.generic)
            .finish()
    }
}

const F32_STORAGE: &str = "alias E = f32;\nalias E4 = vec4<f32>;\n";
const F16_STORAGE: &str = "enable f16;\nalias E = f16;\nalias E4 = vec4<f16>;\n";
const SCALAR_ROWS: &str = "alias V = f32;\nfn vdot(a: V, b: V) -> f32 { return a * b; }\n";
const VEC4_ROWS: &str = "alias V = vec4<f32>;\nfn vdot(a: V, b: V) -> f32 { return dot(a, b); }\n";

impl ShaderDef {
    /// A shader from its parts (preludes first, then the body), in [`Variant::Base`] only.
    pub const fn new(name: &'static str, parts: &'static [&'static str]) -> Self {
        Self::make(name, parts, Generic::None)
    }

    /// A storage-generic shader (see the type's docs).
    pub const fn storage_generic(name: &'static str, parts: &'static [&'static str]) -> Self {
        Self::make(name, parts, Generic::Storage)
    }

    /// A width-generic shader (see the type's docs).
    pub const fn width_generic(name: &'static str, parts: &'static [&'static str]) -> Self {
        Self::make(name, parts, Generic::Width)
    }

    const fn make(name: &'static str, parts: &'static [&'static str], generic: Generic) -> Self {
        Self {
            name,
            parts,
            slots: &[],
            generic,
            compiled: [OnceLock::new(), OnceLock::new()],
        }
    }

    /// The names of the shader's bindings: binding `i + 1` of group 0 is `slots[i]` (binding 0
    /// holds the parameters). Every `var` the WGSL declares at a binding has that binding's
    /// name, so one slot never goes by two names (a test checks it).
    pub const fn slots(mut self, slots: &'static [&'static str]) -> Self {
        self.slots = slots;
        self
    }

    /// The base name (the file stem of the body).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The binding names, from binding 1.
    pub fn slot_names(&self) -> &'static [&'static str] {
        self.slots
    }

    /// The binding number of the slot called `name`.
    pub fn slot(&self, name: &str) -> Option<u32> {
        self.slots
            .iter()
            .position(|s| *s == name)
            .map(|i| i as u32 + 1)
    }

    /// The variants this shader compiles in.
    pub fn variants(&self) -> &'static [Variant] {
        match self.generic {
            Generic::None => &[Variant::Base],
            Generic::Storage => &[Variant::Base, Variant::F16],
            Generic::Width => &[Variant::Base, Variant::Vec4],
        }
    }

    /// The assembled source of variant `v`.
    pub fn shader(&'static self, v: Variant) -> Result<Shader> {
        let (slot, header, suffix) = match (self.generic, v) {
            (Generic::None, Variant::Base) => (0, "", ""),
            (Generic::Storage, Variant::Base) => (0, F32_STORAGE, ""),
            (Generic::Storage, Variant::F16) => (1, F16_STORAGE, "_f16"),
            (Generic::Width, Variant::Base) => (0, SCALAR_ROWS, ""),
            (Generic::Width, Variant::Vec4) => (1, VEC4_ROWS, "_v4"),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "shader {} has no {v:?} variant",
                    self.name
                )))
            }
        };
        let (name, source) = self.compiled[slot].get_or_init(|| {
            let mut src = header.to_string();
            for part in self.parts {
                src.push_str(part);
                if !part.ends_with('\n') {
                    src.push('\n');
                }
            }
            (format!("{}{suffix}", self.name), src)
        });
        Ok(Shader::new(name, source))
    }
}

/// One field of a parameter struct: its name and byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field's name (the same in Rust and WGSL).
    pub name: &'static str,
    /// Byte offset.
    pub offset: usize,
}

/// The memory layout of a parameter struct, compared with its WGSL twin by a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamsLayout {
    /// The Rust type's name.
    pub name: &'static str,
    /// Size in bytes (a multiple of 16, as uniform buffers require).
    pub size: usize,
    /// Every field; names starting with `_` are padding.
    pub fields: &'static [Field],
}

/// A kernel's parameters: a `#[repr(C)]` plain-old-data struct uploaded as the uniform at
/// binding 0. Declare one with [`gpu_params!`](crate::gpu_params).
pub trait Params: bytemuck::Pod {
    /// The struct's layout.
    const LAYOUT: ParamsLayout;
}

/// The parameters of a kernel without a uniform block.
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct NoParams;

impl Params for NoParams {
    const LAYOUT: ParamsLayout = ParamsLayout {
        name: "NoParams",
        size: 0,
        fields: &[],
    };
}

/// Declare a kernel parameter struct: `#[repr(C)]`, `Pod`, and a [`Params`] impl recording its
/// layout. Fields are `u32`, `i32` or `f32` (or arrays of them for padding); the WGSL struct
/// must have the same fields in the same order, padding included (a test checks it).
///
/// ```
/// fisherflow::gpu_params! {
///     /// Parameters of my kernel.
///     pub struct MyParams {
///         pub n: u32,
///         pub scale: f32,
///         pub _pad: [u32; 2],
///     }
/// }
/// ```
#[macro_export]
macro_rules! gpu_params {
    ($(#[$m:meta])* $vis:vis struct $name:ident {
        $($(#[$fm:meta])* $fvis:vis $f:ident : $t:ty),* $(,)?
    }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name { $($(#[$fm])* $fvis $f: $t),* }

        impl $crate::gpu::Params for $name {
            const LAYOUT: $crate::gpu::ParamsLayout = $crate::gpu::ParamsLayout {
                name: stringify!($name),
                size: std::mem::size_of::<$name>(),
                fields: &[$($crate::gpu::Field {
                    name: stringify!($f),
                    offset: std::mem::offset_of!($name, $f),
                }),*],
            };
        }
    };
}

/// One entry point of a [`ShaderDef`] with everything needed to launch and check it.
#[derive(Debug)]
pub struct KernelDef {
    /// The module it lives in.
    pub shader: &'static ShaderDef,
    /// The entry point's name.
    pub entry: &'static str,
    /// The layout of its parameters (`None`: no uniform block).
    pub params: Option<ParamsLayout>,
    /// The slots it binds ([`ShaderDef::slots`]), in the order its arguments are passed.
    pub bindings: &'static [&'static str],
    /// Invocations per workgroup (the product of `@workgroup_size`).
    pub workgroup: u32,
}

/// How many workgroups a launch runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// One invocation per item: `ceil(n / workgroup)` workgroups. Kernels recover the item as
    /// `thread_index(wid, nwg, lid)` (`shaders/lib/grid.wgsl`) and return past the end.
    Threads(u64),
    /// Exactly `n` workgroups; kernels recover the index as `group_index(wid, nwg)`.
    Groups(u64),
    /// An explicit grid (tiled kernels).
    Grid([u32; 3]),
    /// `rows` rows, `per_group` rows a workgroup, split into chunks so that every
    /// [`Arg::Rows`] binding fits the storage binding limit; the parameters of each chunk are
    /// made from its [`Chunk`].
    Rows {
        /// Rows in all.
        rows: u64,
        /// Rows handled by one workgroup.
        per_group: u32,
    },
}

/// A `u32` from a size, or a limit error naming `what`.
pub fn u32_of(x: impl TryInto<u32> + Copy + std::fmt::Display, what: &str) -> Result<u32> {
    x.try_into()
        .map_err(|_| Error::Limit(format!("{what} = {x} exceeds the 32-bit range of a kernel")))
}

impl KernelDef {
    /// An entry point with bindings `bindings` (after the parameters), no parameters and
    /// [`WG`] invocations per workgroup; chain [`KernelDef::params`] and
    /// [`KernelDef::workgroup`] to change those.
    pub const fn new(
        shader: &'static ShaderDef,
        entry: &'static str,
        bindings: &'static [&'static str],
    ) -> Self {
        Self {
            shader,
            entry,
            params: None,
            bindings,
            workgroup: WG,
        }
    }

    /// The parameter type.
    pub const fn params<P: Params>(mut self) -> Self {
        self.params = Some(P::LAYOUT);
        self
    }

    /// Invocations per workgroup.
    pub const fn workgroup(mut self, n: u32) -> Self {
        self.workgroup = n;
        self
    }

    /// `shader::entry`.
    pub fn label(&self) -> String {
        format!("{}::{}", self.shader.name, self.entry)
    }

    /// The compiled pipeline of variant `v`.
    pub fn compiled(&'static self, ctx: &GpuContext, v: Variant) -> Result<Kernel> {
        ctx.kernel(&self.shader.shader(v)?, self.entry)
    }

    /// Record the kernel (f32 storage) over `work` with `args` bound in order; `params` makes
    /// the parameters of each dispatch from the part of the work it covers.
    pub fn launch<P: Params>(
        &'static self,
        ctx: &GpuContext,
        rec: &mut Recorder,
        work: Work,
        args: &[Arg<'_>],
        params: impl Fn(Chunk) -> P,
    ) -> Result<()> {
        self.launch_as(ctx, rec, Variant::Base, work, args, params)
    }

    /// [`KernelDef::launch`] of variant `v` (a [`Precision`] converts into one).
    ///
    /// Everything is built before anything is recorded, so an error leaves `rec` untouched.
    pub fn launch_as<P: Params>(
        &'static self,
        ctx: &GpuContext,
        rec: &mut Recorder,
        v: impl Into<Variant>,
        work: Work,
        args: &[Arg<'_>],
        params: impl Fn(Chunk) -> P,
    ) -> Result<()> {
        let v = v.into();
        let what = || self.label();
        let want = self.params.map_or("NoParams", |l| l.name);
        if P::LAYOUT.name != want {
            return Err(Error::InvalidArgument(format!(
                "{}: launched with parameters {}, declared with {want}",
                what(),
                P::LAYOUT.name
            )));
        }
        if args.len() != self.bindings.len() {
            return Err(Error::InvalidArgument(format!(
                "{}: {} arguments for the bindings {:?}",
                what(),
                args.len(),
                self.bindings
            )));
        }
        let slots = self
            .bindings
            .iter()
            .map(|n| {
                self.shader.slot(n).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "{}: the shader has no binding called {n:?}",
                        what()
                    ))
                })
            })
            .collect::<Result<Vec<u32>>>()?;
        if v == Variant::F16 {
            Precision::F16.check(ctx)?;
        }
        let kernel = self.compiled(ctx, v)?;
        let row_bytes: Vec<u64> = args.iter().filter_map(Arg::row_bytes).collect();
        let plan: Vec<(Chunk, u64)> = match work {
            Work::Rows { rows, per_group } => {
                let lim = ctx.limits();
                let chunks = if row_bytes.is_empty() {
                    vec![(0, rows)]
                } else {
                    plan_chunks(
                        ctx.max_binding(),
                        lim.min_storage_buffer_offset_alignment as u64,
                        &row_bytes,
                        rows,
                    )?
                };
                chunks
                    .into_iter()
                    .map(|(first, n)| (Chunk { first, rows: n }, n.div_ceil(per_group as u64)))
                    .collect()
            }
            _ if !row_bytes.is_empty() => {
                return Err(Error::InvalidArgument(format!(
                    "{}: row-chunked arguments need Work::Rows",
                    what()
                )))
            }
            Work::Threads(n) => vec![(
                Chunk { first: 0, rows: n },
                n.div_ceil(self.workgroup as u64),
            )],
            Work::Groups(n) => vec![(Chunk { first: 0, rows: n }, n)],
            Work::Grid(g) => vec![(
                Chunk {
                    first: 0,
                    rows: g.iter().map(|&v| v as u64).product(),
                },
                0,
            )],
        };
        let mut ops = Vec::with_capacity(plan.len());
        for (chunk, groups) in plan {
            let grid = match work {
                Work::Grid(g) => g,
                _ => ctx.grid(u32_of(groups, &format!("{} workgroups", what()))?)?,
            };
            let uniform = (P::LAYOUT.size > 0).then(|| ctx.uniform(&params(chunk)));
            let mut entries = Vec::with_capacity(args.len() + 1);
            if let Some(u) = &uniform {
                entries.push(wgpu::BindGroupEntry {
                    binding: 0,
                    resource: u.as_entire_binding(),
                });
            }
            for (a, &binding) in args.iter().zip(&slots) {
                entries.push(wgpu::BindGroupEntry {
                    binding,
                    resource: a.resource(ctx, &what, chunk)?,
                });
            }
            ops.push((ctx.bind_entries(&kernel, &entries)?, grid));
        }
        for (bg, grid) in ops {
            rec.dispatch(&kernel, &bg, grid);
        }
        Ok(())
    }
}
