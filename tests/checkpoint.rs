//! Checkpoints: roundtrip, corruption, truncation, shape checks, atomic save.

#[path = "support/tmp.rs"]
mod tmp;
use tmp::tmpdir;

use fisherflow::checkpoint::Checkpoint;
use fisherflow::kernels::rng::PhiloxStream;
use fisherflow::Error;

fn sample() -> Checkpoint {
    let mut c = Checkpoint::new();
    c.insert(
        "w1",
        &[3, 4],
        (0..12).map(|i| i as f32 * 0.25 - 1.0).collect(),
    )
    .unwrap();
    c.insert("b1", &[4], vec![1.0, -2.0, f32::MIN_POSITIVE, 1e30])
        .unwrap();
    c.insert("scalar", &[], vec![7.5]).unwrap();
    c.set_meta("step", "1200");
    c.set_meta("model", "mlp L=4 K=20");
    c
}

fn is_ck(r: &Result<Checkpoint, Error>) -> bool {
    matches!(r, Err(Error::Checkpoint(_)))
}

#[test]
fn roundtrip_preserves_tensors_and_metadata() {
    let d = tmpdir("ckpt-rt");
    let p = d.join("a.safetensors");
    let c = sample();
    c.save(&p).unwrap();
    let back = Checkpoint::load(&p).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.meta("step").unwrap(), "1200");
    assert_eq!(back.expect("w1", &[3, 4]).unwrap()[5], 0.25);
    // Only the destination is left in the directory (no temporary files).
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    // The header is readable by the reference parser too.
    let bytes = std::fs::read(&p).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("b1").unwrap().shape(), &[4]);
}

#[test]
fn missing_names_shapes_and_keys_are_reported() {
    let c = sample();
    let e = c.expect("w2", &[3, 4]).unwrap_err().to_string();
    assert!(e.contains("w2") && e.contains("missing"), "{e}");
    let e = c.expect("w1", &[4, 3]).unwrap_err().to_string();
    assert!(e.contains("[3, 4]") && e.contains("[4, 3]"), "{e}");
    assert!(c.meta("nope").unwrap_err().to_string().contains("nope"));
    let mut c2 = Checkpoint::new();
    assert!(matches!(
        c2.insert("x", &[2, 2], vec![1.0; 3]),
        Err(Error::Checkpoint(_))
    ));
}

#[test]
fn missing_file_is_a_checkpoint_error() {
    let d = tmpdir("ckpt-missing");
    let r = Checkpoint::load(d.join("none.safetensors"));
    assert!(is_ck(&r));
    assert!(r.unwrap_err().to_string().contains("no such file"));
}

#[test]
fn truncation_at_every_region_is_detected() {
    let bytes = sample().to_bytes().unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let cuts = [
        0,
        1,
        7,
        8,
        9,
        8 + header_len / 2,
        8 + header_len,
        bytes.len() - 4,
        bytes.len() - 1,
    ];
    for &cut in &cuts {
        let r = Checkpoint::from_bytes(&bytes[..cut], "t");
        assert!(
            is_ck(&r),
            "truncation at {cut} of {} was accepted",
            bytes.len()
        );
    }
    // Extra trailing bytes make the data length wrong as well.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0, 0, 0, 0]);
    assert!(is_ck(&Checkpoint::from_bytes(&longer, "t")));
}

#[test]
fn random_corruption_never_panics() {
    let bytes = sample().to_bytes().unwrap();
    let mut rng = PhiloxStream::new(42, 0, 0);
    let mut rejected = 0;
    for _ in 0..2000 {
        let mut b = bytes.clone();
        let flips = 1 + rng.below(4) as usize;
        for _ in 0..flips {
            let p = rng.below(b.len() as u64) as usize;
            b[p] = rng.next_u32() as u8;
        }
        match Checkpoint::from_bytes(&b, "fuzz") {
            Ok(c) => {
                // Accepted only when the structure survived (e.g. a flip inside tensor data).
                assert_eq!(c.tensors.len(), 3);
            }
            Err(Error::Checkpoint(_)) => rejected += 1,
            Err(e) => panic!("unexpected error kind {e}"),
        }
    }
    assert!(rejected > 0);
    // Garbage that is not safetensors at all.
    assert!(is_ck(&Checkpoint::from_bytes(
        b"hello world, not a checkpoint",
        "g"
    )));
    let mut huge = vec![0xffu8; 8];
    huge.extend_from_slice(b"{}");
    assert!(is_ck(&Checkpoint::from_bytes(&huge, "g")));
}

#[test]
fn non_f32_dtypes_are_rejected() {
    let data = [1u8, 2, 3, 4];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::I32, vec![1], &data).unwrap();
    let bytes = safetensors::serialize([("ids", view)], None).unwrap();
    let e = Checkpoint::from_bytes(&bytes, "i32file")
        .unwrap_err()
        .to_string();
    assert!(e.contains("ids") && e.contains("I32"), "{e}");
}

#[test]
fn failed_save_leaves_the_previous_checkpoint_intact() {
    let d = tmpdir("ckpt-atomic");
    let p = d.join("model.safetensors");
    let old = sample();
    old.save(&p).unwrap();
    let mut new = sample();
    new.insert("w1", &[3, 4], vec![9.0; 12]).unwrap();
    let full = new.to_bytes().unwrap().len();
    for fail_after in [0, 8, full / 2, full - 1] {
        let r = new.save_failing_after(&p, fail_after);
        assert!(matches!(r, Err(Error::Checkpoint(_))));
        assert_eq!(Checkpoint::load(&p).unwrap(), old);
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "temporary file left behind"
        );
    }
    // A directory that does not exist: the error names the path.
    let r = new.save(d.join("no/such/dir/x.safetensors"));
    assert!(matches!(r, Err(Error::Checkpoint(_))));
    // Saving for real replaces the file.
    new.save(&p).unwrap();
    assert_eq!(Checkpoint::load(&p).unwrap(), new);
}
