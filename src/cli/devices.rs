//! `fisherflow devices`: list adapters, their limits and features, and mark the chosen one.

use fisherflow::gpu::{list_adapters, ContextOptions};
use fisherflow::{Error, Result};

/// Arguments of `fisherflow devices`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(opts: &ContextOptions, _args: Args) -> Result<()> {
    let adapters = list_adapters(opts)?;
    if adapters.is_empty() {
        return Err(Error::NoAdapter(
            "no Vulkan, Metal or DX12 adapter was found. Install your GPU's driver, or Mesa's \
             software Vulkan driver (Debian/Ubuntu: `sudo apt-get install mesa-vulkan-drivers`)"
                .into(),
        ));
    }
    for a in &adapters {
        let mark = if a.selected { "*" } else { " " };
        let i = &a.info;
        println!(
            "{mark} {} [{:?}, {:?}] driver: {} {}",
            i.name, i.backend, i.device_type, i.driver, i.driver_info
        );
        let l = &a.limits;
        let memory = a.memory.map_or("memory not reported".into(), |m| {
            format!("device memory {}", fisherflow::budget::human(m as u128))
        });
        println!(
            "    {memory}, max storage binding {} MiB, max buffer {} MiB, workgroup memory {} KiB, invocations/workgroup {}, workgroups/dim {}",
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroups_per_dimension
        );
        let f = a.features;
        let has = |x: wgpu::Features, n: &'static str| if f.contains(x) { Some(n) } else { None };
        let feats: Vec<&str> = [
            has(wgpu::Features::TIMESTAMP_QUERY, "timestamp-query"),
            has(wgpu::Features::SHADER_F16, "shader-f16"),
            has(wgpu::Features::SUBGROUP, "subgroup"),
            has(wgpu::Features::IMMEDIATES, "immediates"),
        ]
        .into_iter()
        .flatten()
        .collect();
        println!(
            "    features: {}",
            if feats.is_empty() {
                "none of interest".into()
            } else {
                feats.join(", ")
            }
        );
    }
    if !adapters.iter().any(|a| a.selected) {
        // An adapter name filter matched nothing: say so and fail.
        return Err(Error::NoAdapter(format!(
            "no adapter matches {:?} (set by --adapter or FISHERFLOW_ADAPTER)",
            opts.adapter
                .clone()
                .or_else(|| std::env::var(fisherflow::gpu::ADAPTER_ENV).ok())
                .unwrap_or_default()
        )));
    }
    println!("(* = the adapter fisherflow picks; choose another with --adapter NAME or FISHERFLOW_ADAPTER, backends with WGPU_BACKEND)");
    // The same choice `train` and `sample` make without --cpu/--gpu.
    let choice = fisherflow::device::choose(opts, fisherflow::device::Backend::Auto)?;
    println!("train and sample run on: {}", choice.reason);

    Ok(())
}
