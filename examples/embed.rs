//! Embedding fisherflow kernels in an application that owns its wgpu device.
//!
//! The host creates the device and queue itself, lends them to fisherflow, records a geodesic
//! interpolation (slerp) and a tangent projection into its *own* command encoder, submits,
//! and checks the result against fisherflow's f64 reference.
//!
//! `cargo run --example embed`

use fisherflow::gpu::{GpuContext, GpuTensor, Recorder};
use fisherflow::kernels::sphere::{self, reference};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // --- the host application's own device -------------------------------------------------
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))?;
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))?;
    println!("host device on {}", adapter.get_info().name);

    // --- lend it to fisherflow (Device and Queue are cheap handles) -------------------------
    let ctx = GpuContext::from_device(device.clone(), queue.clone());

    // Two batches of points on the positive orthant of S^{K-1}: [B, L, K] = [2, 3, 4].
    let (b, l, k) = (2, 3, 4);
    let p0: Vec<f32> = (0..b * l * k).map(|i| 1.0 + (i % 5) as f32).collect();
    let p1: Vec<f32> = (0..b * l * k).map(|i| 1.0 + ((i * 7) % 3) as f32).collect();
    let to_sphere = |p: &[f32]| -> Vec<f32> {
        p.chunks(k)
            .flat_map(|r| {
                let s: f32 = r.iter().sum();
                r.iter().map(move |v| (v / s).sqrt())
            })
            .collect()
    };
    let (x0h, x1h) = (to_sphere(&p0), to_sphere(&p1));
    let times = [0.25f32, 0.9];
    let shape = [b, l, k];
    let x0 = GpuTensor::from_slice(&ctx, &x0h, &shape)?;
    let x1 = GpuTensor::from_slice(&ctx, &x1h, &shape)?;
    let t = sphere::times_tensor(&ctx, &times)?;
    let xt = GpuTensor::<f32>::zeros(&ctx, &shape)?;
    let v = GpuTensor::from_slice(&ctx, &vec![0.5f32; b * l * k], &shape)?;
    let pv = GpuTensor::<f32>::zeros(&ctx, &shape)?;

    // --- record into fisherflow's recorder, encode into the host's encoder ------------------
    let mut rec = Recorder::new();
    sphere::slerp(&ctx, &mut rec, &x0, &x1, &t, &xt)?;
    sphere::proj_tangent(&ctx, &mut rec, &xt, &v, &pv)?;
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("host frame"),
    });
    // ... the host's own passes could come before ...
    rec.encode(&mut encoder);
    // ... and after.
    queue.submit([encoder.finish()]);

    // --- check against the f64 reference -------------------------------------------------------
    let f = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
    let t64: Vec<f64> = times.iter().map(|&a| a as f64).collect();
    let want_xt = reference::slerp(&f(&x0h), &f(&x1h), &t64, l, k);
    let want_pv = reference::proj_tangent(&want_xt, &vec![0.5; b * l * k], k);
    let got_xt = xt.to_vec(&ctx)?;
    let got_pv = pv.to_vec(&ctx)?;
    let err = |g: &[f32], w: &[f64]| {
        g.iter()
            .zip(w)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max)
    };
    let (e1, e2) = (err(&got_xt, &want_xt), err(&got_pv, &want_pv));
    println!("slerp max error {e1:.2e}, tangent projection max error {e2:.2e}");
    if e1 > 1e-5 || e2 > 1e-5 {
        return Err("results differ from the reference".into());
    }
    println!("ok: fisherflow kernels ran inside the host's command encoder");
    Ok(())
}
