//! Property tests: random bytes and random sizes fed to the data parsers, the checkpoint loader
//! and the size checks must give a value or an error, never a panic; what parses round-trips.

use fisherflow::budget::{self, Estimate, Knob, TrainSizes};
use fisherflow::checkpoint::Checkpoint;
use fisherflow::data::toy::ToySpec;
use fisherflow::data::{Alphabet, SequenceDataset};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Mostly the characters the formats are made of, with some of everything else.
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(vec!['0', '1', '2', '9', ' ', '\n', '>', ';', 'A', 'C', 'G', 'T', '=', '\t']),
            1 => any::<char>(),
        ],
        0..200,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn ids_parser_never_panics(t in text(), k in prop::option::of(0usize..40)) {
        if let Ok(d) = SequenceDataset::parse_ids(&t, "p", k) {
            prop_assert!(d.tokens.iter().all(|&x| (x as usize) < d.vocab));
            prop_assert_eq!(d.tokens.len(), d.n * d.len);
            let again = SequenceDataset::parse_ids(&d.to_ids_text(), "p", Some(d.vocab)).unwrap();
            prop_assert_eq!(again.tokens, d.tokens);
        }
    }

    #[test]
    fn chars_and_fasta_parsers_never_panic(t in text()) {
        let a = Alphabet::new("ACGT", true).unwrap();
        if let Ok(d) = SequenceDataset::parse_chars(&t, "p", &a) {
            prop_assert_eq!(d.tokens.len(), d.n * d.len);
        }
        if let Ok(d) = SequenceDataset::parse_fasta(&t, "p", &a) {
            prop_assert_eq!(d.tokens.len(), d.n * d.len);
            let again = SequenceDataset::parse_fasta(&d.to_fasta_text("s").unwrap(), "p", &a).unwrap();
            prop_assert_eq!(again.tokens, d.tokens);
        }
    }

    #[test]
    fn alphabet_and_toy_specs_never_panic(s in text(), l in any::<u64>(), k in any::<u64>()) {
        let _ = Alphabet::new(&s, true);
        let _ = ToySpec::parse(&format!("toy:{s}"));
        if let Ok(t) = ToySpec::parse(&format!("toy:L={l},K={k}")) {
            prop_assert!(t.len > 0 && t.vocab > 0);
        }
    }

    #[test]
    fn checkpoint_loader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Checkpoint::from_bytes(&bytes, "random");
    }

    #[test]
    fn corrupted_checkpoints_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(),
                                         cut in any::<prop::sample::Index>()) {
        let mut ck = Checkpoint::new();
        ck.insert("w", &[2, 3], vec![1.0; 6]).unwrap();
        ck.set_meta("fisherflow.step", "7");
        let mut b = ck.to_bytes().unwrap();
        let i = pos.index(b.len());
        b[i] = byte;
        let _ = Checkpoint::from_bytes(&b, "flipped");
        let n = cut.index(b.len());
        let _ = Checkpoint::from_bytes(&b[..n], "cut");
    }

    #[test]
    fn size_estimates_never_overflow_or_panic(
        len in any::<usize>(), vocab in any::<usize>(), hidden in any::<usize>(),
        blocks in any::<usize>(), batch in any::<usize>(), data_n in any::<usize>(),
        eval_n in any::<usize>(), ot in any::<bool>(),
    ) {
        let s = TrainSizes { len, vocab, hidden, blocks, time_dim: 64, batch, ot, data_n, eval_n, kernel: 0 };
        let host = |s: &TrainSizes| s.host_bytes(true);
        let knobs = vec![Knob::new("--batch", batch, |s: &mut TrainSizes| s.batch = 512)];
        let r = budget::check(&s, &[Estimate { what: "host memory", limit: Some(1 << 30), need: &host }], &knobs);
        // The check refuses exactly what its estimate puts over the limit.
        prop_assert_eq!(r.is_ok(), host(&s) <= 1 << 30);
        if let Err(e) = r {
            let m = e.to_string();
            prop_assert!(m.contains("host memory"), "{}", m);
        }
        prop_assert!(s.device_bytes() >= s.params());
        let _ = budget::human(s.largest_binding());
    }
}

#[test]
fn the_blamed_flag_is_the_one_that_made_the_run_too_large() {
    let base = TrainSizes {
        len: 4,
        vocab: 20,
        hidden: 512,
        blocks: 2,
        time_dim: 64,
        batch: 512,
        ot: false,
        data_n: 100_000,
        eval_n: 8192,
        kernel: 0,
    };
    let knobs = || {
        vec![
            Knob::new("--batch", "", |s: &mut TrainSizes| s.batch = 512),
            Knob::new("--hidden", "", |s: &mut TrainSizes| s.hidden = 512),
        ]
    };
    let host = |s: &TrainSizes| s.host_bytes(true);
    let limit = Some(base.host_bytes(true) * 4);
    let est = [Estimate {
        what: "host memory",
        limit,
        need: &host,
    }];
    assert!(budget::check(&base, &est, &knobs()).is_ok());
    let wide = TrainSizes {
        hidden: 20_000,
        ..base.clone()
    };
    let m = budget::check(&wide, &est, &knobs())
        .unwrap_err()
        .to_string();
    assert!(m.contains("lower --hidden"), "{m}");
    let big = TrainSizes {
        batch: 10_000_000,
        ..base
    };
    let m = budget::check(&big, &est, &knobs()).unwrap_err().to_string();
    assert!(m.contains("lower --batch"), "{m}");
}

#[test]
fn a_fasta_file_with_a_byte_order_mark_is_read() {
    let d = std::env::temp_dir().join(format!("ff-bom-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let f = d.join("bom.fa");
    std::fs::write(&f, b"\xEF\xBB\xBF>a\nACGT\n>b\nTTGA\n").unwrap();
    let a = Alphabet::new("ACGT", true).unwrap();
    let data = SequenceDataset::read_fasta(&f, &a).unwrap();
    assert_eq!((data.n, data.len), (2, 4));
    std::fs::remove_dir_all(&d).ok();
}
