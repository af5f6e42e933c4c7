//! The optimizer and column-sampler benchmarks run and report against a same-run baseline.

#[test]
fn optimizer_step_is_measured_against_a_copy() {
    let Some(ctx) = fisherflow::gpu::testing::gpu() else {
        return;
    };
    let rows = fisherflow::bench::optim::run(ctx, true).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.unit, "GB/s");
    assert!(r.name.contains("AdamW"), "{}", r.name);
    assert!(
        r.value > 0.0 && r.baseline > 0.0 && r.ratio.is_finite(),
        "{r:?}"
    );
    assert!(fisherflow::bench::families()
        .iter()
        .any(|(name, _)| *name == "optim"));
}

#[test]
fn the_column_sampler_is_measured_against_the_cpu() {
    let Some(ctx) = fisherflow::gpu::testing::gpu() else {
        return;
    };
    let rows = fisherflow::bench::tensornet::column(ctx, true).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (r.group.as_str(), r.unit.as_str()),
        ("tn-column", "samples/s")
    );
    assert!(r.name.contains("8x8"), "{}", r.name);
    assert!(
        r.value > 0.0 && r.baseline > 0.0 && r.ratio.is_finite(),
        "{r:?}"
    );
    assert!(fisherflow::bench::families()
        .iter()
        .any(|(name, _)| *name == "tn-column"));
}
