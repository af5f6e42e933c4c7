//! The GPU context: a wgpu device and queue (owned, or borrowed from a host application), the
//! adapter's limits and features, and a cache of compiled compute pipelines.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// Environment variable: a case-insensitive substring of the adapter name to use.
pub const ADAPTER_ENV: &str = "FISHERFLOW_ADAPTER";

/// A WGSL source file, compiled once per context.
#[derive(Clone, Copy, Debug)]
pub struct Shader {
    /// A short name used in labels and error messages (the file stem).
    pub name: &'static str,
    /// The WGSL text.
    pub source: &'static str,
}

impl Shader {
    /// A shader from its name and WGSL source (usually `include_str!`).
    pub const fn new(name: &'static str, source: &'static str) -> Self {
        Self { name, source }
    }
}

/// How to choose an adapter when fisherflow creates its own device.
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Case-insensitive substring of the adapter name. `None` reads `FISHERFLOW_ADAPTER`, and
    /// when that is unset too, picks the best adapter (discrete > integrated > virtual > CPU).
    pub adapter: Option<String>,
    /// Backends to look at. `None` reads `WGPU_BACKEND` (e.g. `vulkan`, `metal`, `dx12`), and
    /// when that is unset too, uses every backend compiled in.
    pub backends: Option<wgpu::Backends>,
}

/// One adapter as seen by [`list_adapters`].
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    /// Adapter information reported by the driver.
    pub info: wgpu::AdapterInfo,
    /// The adapter's limits.
    pub limits: wgpu::Limits,
    /// The adapter's features.
    pub features: wgpu::Features,
    /// Whether [`GpuContext::new`] with the same options would pick this adapter.
    pub selected: bool,
    /// Device-local memory in bytes: the sum of the Vulkan memory heaps flagged device-local
    /// (on a software renderer, the host memory it allocates from). `None` on other backends,
    /// where wgpu reports no total; there only the binding limits are checked before a run, and
    /// an allocation that fails is reported as [`Error::OutOfMemory`].
    pub memory: Option<u64>,
}

/// The device-local heaps of a Vulkan physical device, in bytes.
fn device_local_bytes(instance: &ash::Instance, phd: ash::vk::PhysicalDevice) -> Option<u64> {
    // SAFETY: `phd` belongs to `instance`, which outlives the call; the query is read-only.
    let props = unsafe { instance.get_physical_device_memory_properties(phd) };
    let heaps = &props.memory_heaps[..props.memory_heap_count as usize];
    let total: u64 = heaps
        .iter()
        .filter(|h| h.flags.contains(ash::vk::MemoryHeapFlags::DEVICE_LOCAL))
        .map(|h| h.size)
        .sum();
    (total > 0).then_some(total)
}

/// [`AdapterSummary::memory`] of `adapter`.
fn adapter_memory(adapter: &wgpu::Adapter) -> Option<u64> {
    if adapter.get_info().backend != wgpu::Backend::Vulkan {
        return None;
    }
    // SAFETY: as for [`GpuContext::device_memory`].
    let hal = unsafe { adapter.as_hal::<wgpu::hal::api::Vulkan>() }?;
    device_local_bytes(
        hal.shared_instance().raw_instance(),
        hal.raw_physical_device(),
    )
}

/// Optional features fisherflow uses when the adapter has them.
fn wanted_features() -> wgpu::Features {
    wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP
}

fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn backend_rank(b: wgpu::Backend) -> u32 {
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    }
}

fn make_instance(opts: &ContextOptions) -> wgpu::Instance {
    let backends = opts
        .backends
        .or_else(wgpu::Backends::from_env)
        .unwrap_or(wgpu::Backends::all());
    let flags = wgpu::InstanceFlags::empty().with_env();
    // Vulkan is the only backend built for these platforms.
    #[cfg(all(unix, not(target_vendor = "apple"), not(target_os = "android")))]
    if backends.contains(wgpu::Backends::VULKAN) {
        if let Some(instance) = vulkan_compute_instance(flags) {
            return instance;
        }
    }
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    desc.flags = flags;
    wgpu::Instance::new(desc)
}

/// A Vulkan instance without the window-system surface extensions (Xlib, XCB, Wayland), which
/// compute never uses: with them enabled, Mesa's device-selection layer connects to the Wayland
/// and X servers while the adapters are listed, which on a headless machine prints
/// "XDG_RUNTIME_DIR is invalid or not set" for every command. `None` when Vulkan cannot start
/// (the caller then lets wgpu report why).
#[cfg(all(unix, not(target_vendor = "apple"), not(target_os = "android")))]
fn vulkan_compute_instance(flags: wgpu::InstanceFlags) -> Option<wgpu::Instance> {
    use wgpu::hal;
    const WINDOW_SYSTEMS: [&[u8]; 3] = [
        b"VK_KHR_xlib_surface",
        b"VK_KHR_xcb_surface",
        b"VK_KHR_wayland_surface",
    ];
    let desc = hal::InstanceDescriptor {
        name: "fisherflow",
        flags,
        memory_budget_thresholds: Default::default(),
        backend_options: Default::default(),
        telemetry: None,
        display: None,
    };
    let drop_window_systems: Box<hal::vulkan::CreateInstanceCallback<'_>> = Box::new(|args| {
        args.extensions
            .retain(|e| !WINDOW_SYSTEMS.contains(&e.to_bytes()));
    });
    // SAFETY: the descriptor is valid; the instance never creates a surface, so leaving out
    // the extensions that only surfaces need removes nothing it uses.
    let raw =
        unsafe { hal::vulkan::Instance::init_with_callback(&desc, Some(drop_window_systems)) }
            .ok()?;
    // SAFETY: `raw` is a valid Vulkan instance that wgpu now owns.
    Some(unsafe { wgpu::Instance::from_hal::<hal::api::Vulkan>(raw) })
}

fn adapter_filter(opts: &ContextOptions) -> Option<String> {
    opts.adapter
        .clone()
        .or_else(|| std::env::var(ADAPTER_ENV).ok())
        .filter(|s| !s.trim().is_empty())
}

/// Index of the adapter that would be chosen among `infos`, or an error saying why none fits.
fn choose(infos: &[wgpu::AdapterInfo], filter: Option<&str>) -> Result<usize> {
    if infos.is_empty() {
        return Err(Error::NoAdapter(
            "no Vulkan, Metal or DX12 adapter was found. Install your GPU's driver, or Mesa's \
             software Vulkan driver (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`) to \
             run on the CPU"
                .into(),
        ));
    }
    if let Some(f) = filter {
        let needle = f.to_lowercase();
        return infos
            .iter()
            .position(|i| i.name.to_lowercase().contains(&needle))
            .ok_or_else(|| {
                let names: Vec<String> = infos
                    .iter()
                    .map(|i| format!("{} ({:?})", i.name, i.backend))
                    .collect();
                Error::NoAdapter(format!(
                    "no adapter name contains {f:?}; available: {}",
                    names.join(", ")
                ))
            });
    }
    let best = (0..infos.len())
        .min_by_key(|&i| {
            (
                type_rank(infos[i].device_type),
                backend_rank(infos[i].backend),
                i,
            )
        })
        .expect("non-empty");
    Ok(best)
}

/// Every adapter fisherflow can see with these options, marking the one it would use.
pub fn list_adapters(opts: &ContextOptions) -> Result<Vec<AdapterSummary>> {
    let instance = make_instance(opts);
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let infos: Vec<_> = adapters.iter().map(|a| a.get_info()).collect();
    let selected = choose(&infos, adapter_filter(opts).as_deref()).ok();
    Ok(adapters
        .iter()
        .enumerate()
        .map(|(i, a)| AdapterSummary {
            info: infos[i].clone(),
            limits: a.limits(),
            features: a.features(),
            selected: selected == Some(i),
            memory: adapter_memory(a),
        })
        .collect())
}

/// A compiled compute entry point with its bind-group layout (group 0).
#[derive(Clone, Debug)]
pub struct Kernel {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
    pub(crate) label: Arc<str>,
}

impl Kernel {
    /// `shader::entry`, used in profiles and error messages.
    pub fn label(&self) -> &str {
        &self.label
    }
    /// The wgpu pipeline, for callers that encode it themselves.
    pub fn pipeline(&self) -> &wgpu::ComputePipeline {
        &self.pipeline
    }
    /// The layout of bind group 0.
    pub fn bind_group_layout(&self) -> &wgpu::BindGroupLayout {
        &self.layout
    }
}

/// Choices the kernels would otherwise make from the adapter: for tests that exercise every
/// code path on one adapter, and for embedders who want to cap what fisherflow binds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tuning {
    /// Bind at most this many bytes of a storage buffer at once (larger tensors are split
    /// into chunks); `None`: the adapter's limit.
    pub max_binding: Option<u64>,
    /// Invocations that share one row of the row kernels (a power of two up to 256; 0: the
    /// GPU choice from the row length on any adapter); `None`: chosen from the row length and
    /// the adapter.
    pub row_lanes: Option<u32>,
}

/// The GPU runtime: device, queue, limits and a pipeline cache.
///
/// Create one with [`GpuContext::new`] (fisherflow picks the adapter) or borrow a host
/// application's device with [`GpuContext::from_device`]. It is cheap to share by reference;
/// all methods take `&self`.
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    features: wgpu::Features,
    owned: bool,
    tuning: Tuning,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    kernels: Mutex<HashMap<(&'static str, String), Kernel>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.info.name)
            .field("backend", &self.info.backend)
            .field("owned", &self.owned)
            .finish()
    }
}

impl GpuContext {
    /// Create a device on the adapter chosen by `FISHERFLOW_ADAPTER` / `WGPU_BACKEND`, or the
    /// best one available.
    pub fn new() -> Result<Self> {
        Self::with_options(&ContextOptions::default())
    }

    /// Create a device on the adapter chosen by `opts`.
    pub fn with_options(opts: &ContextOptions) -> Result<Self> {
        let instance = make_instance(opts);
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        let infos: Vec<_> = adapters.iter().map(|a| a.get_info()).collect();
        let idx = choose(&infos, adapter_filter(opts).as_deref())?;
        let adapter = &adapters[idx];
        let features = adapter.features() & wanted_features();
        // Ask for everything the adapter offers: storage bindings, workgroup memory and buffer
        // sizes well above WebGPU's defaults on most hardware.
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("fisherflow"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| Error::Device(format!("{}: {e}", infos[idx].name)))?;
        // Errors outside our error scopes (there should be none) are logged, not fatal.
        device.on_uncaptured_error(Arc::new(|e| {
            eprintln!("fisherflow: uncaptured wgpu error: {e}")
        }));
        let mut ctx = Self::from_device(device, queue);
        ctx.owned = true;
        Ok(ctx)
    }

    /// Borrow a host application's device and queue (both are cheap handles). fisherflow
    /// uses only the features and limits the device was created with.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        let info = device.adapter_info();
        let limits = device.limits();
        let features = device.features();
        Self {
            device,
            queue,
            info,
            limits,
            features,
            owned: false,
            tuning: Tuning::default(),
            modules: Mutex::new(HashMap::new()),
            kernels: Mutex::new(HashMap::new()),
        }
    }

    /// The same device and queue with other [`Tuning`] (and caches of its own).
    pub fn tuned(&self, tuning: Tuning) -> Self {
        Self {
            tuning,
            owned: self.owned,
            ..Self::from_device(self.device.clone(), self.queue.clone())
        }
    }

    /// The tuning in effect.
    pub fn tuning(&self) -> &Tuning {
        &self.tuning
    }

    /// The largest storage binding kernels use: the adapter's limit, or less when
    /// [`Tuning::max_binding`] says so.
    pub fn max_binding(&self) -> u64 {
        let adapter = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        self.tuning.max_binding.map_or(adapter, |m| m.min(adapter))
    }

    /// The adapter's device-local memory in bytes (see [`AdapterSummary::memory`]).
    pub fn device_memory(&self) -> Option<u64> {
        if self.info.backend != wgpu::Backend::Vulkan {
            return None;
        }
        // SAFETY: the guard only borrows the live device for a read-only query of its
        // physical device; nothing is created or destroyed.
        let hal = unsafe { self.device.as_hal::<wgpu::hal::api::Vulkan>() }?;
        device_local_bytes(
            hal.shared_instance().raw_instance(),
            hal.raw_physical_device(),
        )
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }
    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }
    /// The adapter this device runs on.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }
    /// The device's limits.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }
    /// The device's features.
    pub fn features(&self) -> wgpu::Features {
        self.features
    }
    /// Whether fisherflow created this device (as opposed to borrowing it).
    pub fn is_owned(&self) -> bool {
        self.owned
    }
    /// Whether the device can write GPU timestamps (needed by the profiler).
    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }
    /// Whether shaders may use `f16`.
    pub fn has_f16(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F16)
    }
    /// A one-line description: `name (backend, type)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    /// Run `f` inside out-of-memory and validation error scopes and turn a captured wgpu
    /// error into an [`Error`].
    pub fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let val = pollster::block_on(val.pop());
        let oom = pollster::block_on(oom.pop());
        if let Some(e) = oom {
            return Err(Error::OutOfMemory(format!("{what}: {e}")));
        }
        if let Some(e) = val {
            return Err(Error::Validation(format!("{what}: {e}")));
        }
        Ok(out)
    }

    /// The compiled pipeline for `shader`'s entry point `entry`, compiled on first use and
    /// cached for the life of the context.
    pub fn kernel(&self, shader: &Shader, entry: &str) -> Result<Kernel> {
        let key = (shader.name, entry.to_string());
        if let Some(k) = self.kernels.lock().unwrap().get(&key) {
            return Ok(k.clone());
        }
        let module = {
            let mut modules = self.modules.lock().unwrap();
            match modules.get(shader.name) {
                Some(m) => m.clone(),
                None => {
                    let m = self.scoped(&format!("compiling shader {}", shader.name), || {
                        self.device
                            .create_shader_module(wgpu::ShaderModuleDescriptor {
                                label: Some(shader.name),
                                source: wgpu::ShaderSource::Wgsl(shader.source.into()),
                            })
                    })?;
                    modules.insert(shader.name, m.clone());
                    m
                }
            }
        };
        let label: Arc<str> = format!("{}::{}", shader.name, entry).into();
        let pipeline = self.scoped(&format!("creating pipeline {label}"), || {
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&label),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
        })?;
        let layout = pipeline.get_bind_group_layout(0);
        let k = Kernel {
            pipeline,
            layout,
            label,
        };
        self.kernels.lock().unwrap().insert(key, k.clone());
        Ok(k)
    }

    /// A bind group for `kernel` from explicit entries (the kernel layer's binding).
    pub fn bind_entries(
        &self,
        kernel: &Kernel,
        entries: &[wgpu::BindGroupEntry<'_>],
    ) -> Result<wgpu::BindGroup> {
        self.scoped(&format!("binding {}", kernel.label), || {
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&kernel.label),
                layout: &kernel.layout,
                entries,
            })
        })
    }

    /// A small uniform buffer holding `value` (kernel parameters).
    pub fn uniform<T: bytemuck::Pod>(&self, value: &T) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// A workgroup grid for `n` workgroups that respects the per-dimension limit: `[n, 1, 1]`
    /// when it fits, else `[x, ceil(n / x), 1]`. Kernels recover the linear workgroup index as
    /// `wid.x + wid.y * num_workgroups.x` and return early when it is `>= n`.
    pub fn grid(&self, n: u32) -> Result<[u32; 3]> {
        let max = self.limits.max_compute_workgroups_per_dimension.max(1);
        if n <= max {
            return Ok([n.max(1), 1, 1]);
        }
        let y = n.div_ceil(max);
        if y > max {
            return Err(Error::Limit(format!(
                "{n} workgroups exceed {max}×{max}; split the work"
            )));
        }
        Ok([max, y, 1])
    }

    /// Wait until all submitted work has finished.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Device(format!("waiting for the GPU: {e}")))
    }
}
