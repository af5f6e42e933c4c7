//! The optimizer benchmark runs and reports bandwidth against a same-run copy.

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
