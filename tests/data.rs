//! Sequence data: parsers, writers, the toy target and metrics.

use fisherflow::data::metrics::{self, JointOver, DEFAULT_SMOOTHING};
use fisherflow::data::toy::{ToySpec, ToyTarget};
use fisherflow::data::{Alphabet, Format, SequenceDataset};
use fisherflow::Error;

fn parse_err(r: Result<SequenceDataset, Error>) -> String {
    match r {
        Err(Error::Parse(m)) => m,
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn ids_format_parses_and_infers_vocab() {
    let d = SequenceDataset::parse_ids("0 1 2\n\n3 0 1\n", "f.txt", None).unwrap();
    assert_eq!((d.n, d.len, d.vocab), (2, 3, 4));
    assert_eq!(d.tokens, vec![0, 1, 2, 3, 0, 1]);
    assert_eq!(d.row(1), &[3, 0, 1]);
    let d = SequenceDataset::parse_ids("0 1\n1 0\n", "f.txt", Some(5)).unwrap();
    assert_eq!(d.vocab, 5);
    let oh = d.one_hot();
    assert_eq!(oh.len(), 2 * 2 * 5);
    assert_eq!(oh[5 + 1], 1.0); // sequence 0, position 1, token 1
    assert_eq!(oh.iter().sum::<f32>(), 4.0);
}

#[test]
fn ids_format_errors_name_file_and_line() {
    let m = parse_err(SequenceDataset::parse_ids("0 1 2\n1 2\n", "f.txt", None));
    assert!(m.starts_with("f.txt:2:") && m.contains("length"), "{m}");
    let m = parse_err(SequenceDataset::parse_ids("0 1\n1 x\n", "f.txt", None));
    assert!(m.starts_with("f.txt:2:") && m.contains("\"x\""), "{m}");
    let m = parse_err(SequenceDataset::parse_ids("0 1\n-1 0\n", "f.txt", None));
    assert!(m.starts_with("f.txt:2:"), "{m}");
    let m = parse_err(SequenceDataset::parse_ids("0 1\n\n0 7\n", "f.txt", Some(4)));
    assert!(m.starts_with("f.txt:3:") && m.contains("vocabulary"), "{m}");
    let m = parse_err(SequenceDataset::parse_ids("\n  \n", "e.txt", None));
    assert!(m.contains("e.txt") && m.contains("empty"), "{m}");
    let m = parse_err(SequenceDataset::parse_ids("0 99999999999\n", "f.txt", None));
    assert!(m.starts_with("f.txt:1:"), "{m}");
    let m = parse_err(SequenceDataset::parse_ids("0\n", "f.txt", Some(usize::MAX)));
    assert!(m.contains("vocabulary size"), "{m}");
}

#[test]
fn chars_and_fasta_formats() {
    let a = Alphabet::new("ACGT", true).unwrap();
    let d = SequenceDataset::parse_chars("ACGT\nttga\n", "s.txt", &a).unwrap();
    assert_eq!(d.tokens, vec![0, 1, 2, 3, 3, 3, 2, 0]);
    assert_eq!(d.alphabet.as_deref(), Some("ACGT"));
    let strict = Alphabet::new("ACGT", false).unwrap();
    let m = parse_err(SequenceDataset::parse_chars(
        "ACGT\nACgT\n",
        "s.txt",
        &strict,
    ));
    assert!(
        m.starts_with("s.txt:2:") && m.contains("'g'") && m.contains("column 3"),
        "{m}"
    );
    let m = parse_err(SequenceDataset::parse_chars("ACGT\nACG\n", "s.txt", &a));
    assert!(m.starts_with("s.txt:2:"), "{m}");

    let fa = ">one\nACG\nT\n; comment\n>two desc\nTTGA\n\n";
    let d = SequenceDataset::parse_fasta(fa, "x.fa", &a).unwrap();
    assert_eq!((d.n, d.len), (2, 4));
    assert_eq!(d.row(1), &[3, 3, 2, 0]);
    let m = parse_err(SequenceDataset::parse_fasta("ACGT\n>a\nACGT\n", "x.fa", &a));
    assert!(m.starts_with("x.fa:1:"), "{m}");
    let m = parse_err(SequenceDataset::parse_fasta(
        ">a\nACGT\n>b\n>c\nACGT\n",
        "x.fa",
        &a,
    ));
    assert!(
        m.starts_with("x.fa:3:") && m.contains("without a sequence"),
        "{m}"
    );
    let m = parse_err(SequenceDataset::parse_fasta(
        ">a\nACGT\n>b\nACN\n",
        "x.fa",
        &a,
    ));
    assert!(m.starts_with("x.fa:4:") && m.contains("'N'"), "{m}");
    let m = parse_err(SequenceDataset::parse_fasta(
        ">a\nACGT\n>b\nAC\n",
        "x.fa",
        &a,
    ));
    assert!(m.starts_with("x.fa:3:") && m.contains("length"), "{m}");
    let m = parse_err(SequenceDataset::parse_fasta("", "x.fa", &a));
    assert!(m.contains("empty"), "{m}");
    assert!(Alphabet::new("ACGA", false).is_err());
    assert!(Alphabet::new("Aa", true).is_err());
    assert!(Alphabet::new("", true).is_err());
}

#[test]
fn writers_roundtrip_through_files() {
    let dir = std::env::temp_dir().join(format!("ff-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = Alphabet::new("ACGT", false).unwrap();
    let t = ToyTarget::from_spec("toy:L=100,K=4,seed=3").unwrap();
    let mut d = t.sample(7, 1).unwrap();
    d.alphabet = Some("ACGT".into());
    for (fmt, name) in [
        (Format::Ids, "s.txt"),
        (Format::Chars, "s.seq"),
        (Format::Fasta, "s.fa"),
    ] {
        let p = dir.join(name);
        d.write(&p, fmt).unwrap();
        let back = SequenceDataset::read(&p, fmt, Some(4), Some(&a)).unwrap();
        assert_eq!(back.tokens, d.tokens, "{fmt:?}");
        assert_eq!((back.n, back.len, back.vocab), (7, 100, 4));
    }
    // Missing files are I/O errors naming the path.
    let e = SequenceDataset::read_ids(dir.join("nope"), None).unwrap_err();
    assert!(matches!(e, Error::Io(..)) && e.to_string().contains("nope"));
    // Character formats need an alphabet.
    let mut plain = d.clone();
    plain.alphabet = None;
    assert!(plain.to_chars_text().is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dataset_new_validates() {
    assert!(SequenceDataset::new(vec![0, 1, 2], 1, 3, 3, None).is_ok());
    assert!(SequenceDataset::new(vec![0, 1, 3], 1, 3, 3, None).is_err());
    assert!(SequenceDataset::new(vec![0, 1], 1, 3, 3, None).is_err());
    assert!(SequenceDataset::new(vec![0, 1, 2], 1, 3, 3, Some("AB".into())).is_err());
}

#[test]
fn toy_spec_parsing() {
    assert_eq!(
        ToySpec::parse("toy").unwrap(),
        ToySpec {
            len: 4,
            vocab: 20,
            seed: 0
        }
    );
    assert_eq!(
        ToySpec::parse("toy:K=40,seed=7").unwrap(),
        ToySpec {
            len: 4,
            vocab: 40,
            seed: 7
        }
    );
    assert_eq!(ToySpec::parse("toy:L=8").unwrap().len, 8);
    for bad in [
        "toy:M=3",
        "toy:L=0",
        "toy:L=x",
        "toy:L",
        "toy:L=2,L=3",
        "toyL=3",
        "data",
        "toy:K=-1",
    ] {
        assert!(
            matches!(ToySpec::parse(bad), Err(Error::Parse(_))),
            "{bad} accepted"
        );
    }
}

#[test]
fn toy_target_is_softmax_of_uniform_and_sampling_converges() {
    let t = ToyTarget::from_spec("toy:L=4,K=20,seed=0").unwrap();
    assert_eq!(t.probs.len(), 80);
    for row in t.probs.chunks(20) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // softmax of values in [0, 1): ratios bounded by e.
        let (mn, mx) = row
            .iter()
            .fold((1.0f64, 0.0f64), |(a, b), &p| (a.min(p), b.max(p)));
        assert!(mx / mn < std::f64::consts::E);
    }
    // Deterministic in the seed, different across seeds.
    assert_eq!(t, ToyTarget::from_spec("toy:seed=0").unwrap());
    assert_ne!(t.probs, ToyTarget::from_spec("toy:seed=1").unwrap().probs);
    // KL(empirical || true) shrinks roughly like (K-1)/(2n).
    let small = metrics::kl_to_target(&t.sample(500, 1).unwrap(), &t.probs).unwrap();
    let big = metrics::kl_to_target(&t.sample(50_000, 2).unwrap(), &t.probs).unwrap();
    assert!(big < small, "{big} !< {small}");
    let expect = 19.0 / (2.0 * 50_000.0);
    assert!(
        big > 0.3 * expect && big < 3.0 * expect,
        "{big} vs {expect}"
    );
    assert_eq!(t.sample(10, 5).unwrap(), t.sample(10, 5).unwrap());
}

#[test]
fn kl_and_tv_hand_checked() {
    let p = [0.5, 0.5];
    let q = [0.25, 0.75];
    let want = 0.5 * (0.5f64 / 0.25).ln() + 0.5 * (0.5f64 / 0.75).ln();
    assert!((metrics::kl(&p, &q) - want).abs() < 1e-15);
    assert_eq!(metrics::kl(&p, &p), 0.0);
    assert!(metrics::kl(&q, &p) > 0.0);
    assert_eq!(metrics::kl(&[1.0, 0.0], &[0.5, 0.5]), 2f64.ln()); // 0 log 0 = 0
    assert_eq!(metrics::kl(&[0.5, 0.5], &[1.0, 0.0]), f64::INFINITY);
    assert_eq!(metrics::tv(&p, &q), 0.25);
    assert_eq!(metrics::tv(&[1.0, 0.0], &[0.0, 1.0]), 1.0);

    // Empirical KL by hand: 4 samples of L=1, K=2, counts (3, 1) vs true (0.5, 0.5).
    let d = SequenceDataset::new(vec![0, 0, 0, 1], 4, 1, 2, None).unwrap();
    let k = metrics::kl_to_target(&d, &[0.5, 0.5]).unwrap();
    let want = 0.75 * (1.5f64).ln() + 0.25 * (0.5f64).ln();
    assert!((k - want).abs() < 1e-12);
    assert!(metrics::kl_to_target(&d, &[1.0]).is_err());
}

#[test]
fn sample_vs_data_metrics() {
    let t = ToyTarget::from_spec("toy:L=3,K=5,seed=4").unwrap();
    let a = t.sample(4000, 1).unwrap();
    let same = metrics::joint_divergence(&a, &a, DEFAULT_SMOOTHING).unwrap();
    assert_eq!(same.over, JointOver::Sequences);
    assert!(same.kl.abs() < 1e-12 && same.tv == 0.0);
    assert!(
        metrics::marginal_kl(&a, &a, DEFAULT_SMOOTHING)
            .unwrap()
            .abs()
            < 1e-12
    );

    // A different distribution is farther than a second sample of the same one.
    let b = t.sample(4000, 2).unwrap();
    let other = ToyTarget::from_spec("toy:L=3,K=5,seed=9")
        .unwrap()
        .sample(4000, 3)
        .unwrap();
    let jb = metrics::joint_divergence(&b, &a, DEFAULT_SMOOTHING).unwrap();
    let jo = metrics::joint_divergence(&other, &a, DEFAULT_SMOOTHING).unwrap();
    assert!(jb.kl > 0.0 && jo.kl > jb.kl && jo.tv > jb.tv);
    assert!((0.0..=1.0).contains(&jo.tv));
    assert!(
        metrics::marginal_kl(&other, &a, DEFAULT_SMOOTHING).unwrap()
            > metrics::marginal_kl(&b, &a, DEFAULT_SMOOTHING).unwrap()
    );

    // Disjoint supports: TV is exactly 1, KL large but finite thanks to smoothing.
    let x = SequenceDataset::new(vec![0, 0, 0, 0], 2, 2, 2, None).unwrap();
    let y = SequenceDataset::new(vec![1, 1, 1, 1], 2, 2, 2, None).unwrap();
    let j = metrics::joint_divergence(&x, &y, DEFAULT_SMOOTHING).unwrap();
    assert_eq!(j.tv, 1.0);
    assert!(j.kl.is_finite() && j.kl > 5.0);

    // K^L over 10^6 falls back to bigrams: L=8, K=10.
    let big = ToyTarget::from_spec("toy:L=8,K=10,seed=1").unwrap();
    let s1 = big.sample(2000, 1).unwrap();
    let j = metrics::joint_divergence(&s1, &s1, DEFAULT_SMOOTHING).unwrap();
    assert_eq!(j.over, JointOver::Bigrams);
    assert!(j.kl.abs() < 1e-12 && j.tv == 0.0);
    // Hand check of the bigram TV: sequences (0,1,1) vs (0,1,0) over L=3, K=101 (K^3 > 10^6):
    // pair (0,1) identical, pair (1,2) disjoint -> TV = (0 + 1)/2.
    let p = SequenceDataset::new(vec![0, 1, 1], 1, 3, 101, None).unwrap();
    let q = SequenceDataset::new(vec![0, 1, 0], 1, 3, 101, None).unwrap();
    let j = metrics::joint_divergence(&p, &q, DEFAULT_SMOOTHING).unwrap();
    assert_eq!(j.over, JointOver::Bigrams);
    assert!((j.tv - 0.5).abs() < 1e-12);
    // Mismatched shapes are errors.
    assert!(metrics::joint_divergence(&p, &a, DEFAULT_SMOOTHING).is_err());
}

#[test]
fn an_output_larger_than_the_free_disk_is_refused_naming_the_flag() {
    let dir = std::env::temp_dir();
    let out = dir.join("fisherflow-disk-check.txt");
    // No file system has 2^120 bytes free; a kilobyte fits anywhere a test can write.
    let err = fisherflow::data::file::check_disk(&out, 1 << 120, "--n 7").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("--n 7") && msg.contains("on disk"), "{msg}");
    fisherflow::data::file::check_disk(&out, 1024, "--n 7").unwrap();
    assert!(!out.exists(), "the check writes nothing");
}
