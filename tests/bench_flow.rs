//! Sizes of the Fisher-Flow benchmark and their overrides.

use fisherflow::bench::flow::FlowBenchSize;

#[test]
fn overrides_apply_to_the_named_fields_only() {
    let full = FlowBenchSize::preset(false);
    assert_eq!(full.hidden, 512);
    assert_eq!(full.batch, 512);
    let s = full
        .with_overrides(" steps=7, samples=1024 ,sample_steps=50,")
        .unwrap();
    assert_eq!(s.steps, 7);
    assert_eq!(s.samples, 1024);
    assert_eq!(s.sample_steps, 50);
    assert_eq!((s.hidden, s.batch), (full.hidden, full.batch));
    let q = FlowBenchSize::preset(true)
        .with_overrides("hidden=64,batch=32")
        .unwrap();
    assert_eq!((q.hidden, q.batch), (64, 32));
    assert_eq!(full.with_overrides("").unwrap(), full);
}

#[test]
fn bad_overrides_are_errors() {
    let p = FlowBenchSize::preset(true);
    for bad in [
        "steps",
        "steps=0",
        "steps=-3",
        "steps=x",
        "width=4",
        "samples=1.5",
    ] {
        let e = p.with_overrides(bad);
        assert!(e.is_err(), "{bad:?} accepted");
    }
}

#[test]
fn tiny_run_reports_both_backends() {
    let Some(ctx) = fisherflow::gpu::testing::gpu() else {
        return;
    };
    let size = FlowBenchSize {
        hidden: 16,
        batch: 8,
        steps: 1,
        samples: 8,
        sample_steps: 2,
    };
    let rows = fisherflow::bench::flow::run_with(ctx, size).unwrap();
    // Training, sampling, field evaluations (f32 and f16) and the f16 sampler; the f16 rows
    // only where the adapter has SHADER_F16.
    let f16 = ctx.has_f16() as usize;
    assert_eq!(rows.len(), 3 + 2 * f16, "{rows:?}");
    assert_eq!(rows[0].unit, "steps/s");
    assert_eq!(rows[1].unit, "samples/s");
    let fields = rows.iter().filter(|r| r.unit == "rows/s").count();
    assert_eq!(fields, 1 + f16);
    for r in &rows {
        assert!(r.value > 0.0 && r.baseline > 0.0, "{r:?}");
        assert!(r.name.contains("H=16"), "{}", r.name);
    }
    assert!(rows[0].name.contains("B=8"));
}
