//! The synthetic DNA source: spec parsing, the forward algorithm against brute-force
//! enumeration, the sampler against the exact probabilities (χ²), class labels in the data
//! layer, the evaluation metrics and atomic output files.

#[path = "support/tmp.rs"]
mod tmp;
use tmp::tmpdir;

use std::collections::HashMap;

use fisherflow::data::dna::{DnaSource, DnaSpec, Split, ALPHABET};
use fisherflow::data::dna_eval::{uniform_noise, KMER_MAX};
use fisherflow::data::file::{check_output, write_atomic};
use fisherflow::data::hmm::Hmm;
use fisherflow::data::metrics::{
    accuracy, duplicate_fraction, jensen_shannon, kmer_jsd, kmer_spectrum,
};
use fisherflow::data::{Alphabet, Format, LabelOptions, Labels, SequenceDataset};
use fisherflow::Error;

fn message(e: Error) -> String {
    e.to_string()
}

fn err<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    message(r.expect_err("an error"))
}

// ---------------------------------------------------------------- spec

#[test]
fn spec_parses_every_key_with_documented_defaults() {
    let d = DnaSpec::parse("dna").unwrap();
    assert_eq!(d, DnaSpec::default());
    assert_eq!(
        (d.len, d.classes, d.motifs, d.width, d.seed),
        (128, 3, 2, 8, 0)
    );
    let s = DnaSpec::parse("dna:L=40, classes=5,motifs=3,width=6,seed=9").unwrap();
    assert_eq!(
        (s.len, s.classes, s.motifs, s.width, s.seed),
        (40, 5, 3, 6, 9)
    );
    assert_eq!(DnaSpec::parse("dna:").unwrap(), DnaSpec::default());
    assert_eq!(DnaSpec::parse(&s.to_string()).unwrap(), s);
    assert!(DnaSpec::is_spec("dna") && DnaSpec::is_spec("dna:L=4"));
    assert!(!DnaSpec::is_spec("dna.fa") && !DnaSpec::is_spec("toy:L=4"));
}

#[test]
fn spec_errors_name_the_key() {
    for (spec, needle) in [
        ("dna:L=0", "L=0 is outside 1..="),
        ("dna:L=2000000", "L=2000000"),
        ("dna:classes=0", "classes=0"),
        ("dna:classes=300", "classes=300"),
        ("dna:motifs=0", "motifs=0"),
        ("dna:width=99", "width=99"),
        ("dna:L=-3", "L=\"-3\" is not a non-negative integer"),
        ("dna:L=1.5", "L=\"1.5\""),
        ("dna:seed=x", "seed=\"x\""),
        ("dna:K=4", "unknown key \"K\""),
        ("dna:l=4", "unknown key \"l\""),
        ("dna:L=4,L=5", "\"L\" given twice"),
        ("dna:L", "\"L\" is not key=value"),
        ("dnaL=4", "expected 'dna:'"),
        ("toy:L=4", "does not start with 'dna'"),
    ] {
        let m = err(DnaSpec::parse(spec));
        assert!(m.contains(spec) && m.contains(needle), "{spec}: {m}");
    }
    // Motifs that cannot differ in half their positions: 2 classes × 3 motifs of width 1.
    let m = err(DnaSource::from_spec("dna:classes=2,motifs=3,width=1"));
    assert!(m.contains("cannot draw 6 motifs of width 1"), "{m}");
}

// ---------------------------------------------------------------- the source

#[test]
fn source_is_deterministic_in_its_seed_and_motifs_differ() {
    let a = DnaSource::from_spec("dna:classes=4,motifs=3,width=8,seed=5").unwrap();
    assert_eq!(
        a,
        DnaSource::from_spec("dna:seed=5,classes=4,motifs=3").unwrap()
    );
    let b = DnaSource::from_spec("dna:classes=4,motifs=3,width=8,seed=6").unwrap();
    assert_ne!(a.motifs(0), b.motifs(0));
    let all: Vec<String> = (0..4)
        .flat_map(|c| a.motifs(c).iter().map(|m| m.consensus()))
        .collect();
    assert_eq!(all.len(), 12);
    for (i, x) in all.iter().enumerate() {
        for y in &all[..i] {
            let d = x.bytes().zip(y.bytes()).filter(|(p, q)| p != q).count();
            assert!(d >= 4, "{x} and {y} differ in {d} positions");
        }
    }
    for c in 0..4 {
        for m in a.motifs(c) {
            assert_eq!(m.class(), c);
            for col in m.pwm() {
                assert!((col.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                assert!(col.iter().cloned().fold(0.0, f64::max) >= 0.8);
            }
            // The consensus scores the maximum and occurs in itself.
            let tokens: Vec<u32> = m
                .consensus()
                .bytes()
                .map(|b| ALPHABET.bytes().position(|a| a == b).unwrap() as u32)
                .collect();
            assert!((m.score(&tokens) - m.max_score()).abs() < 1e-12);
            assert!(m.occurs_in(&tokens));
        }
    }
}

#[test]
fn samples_are_reproducible_labelled_and_prefix_stable() {
    let src = DnaSource::from_spec("dna:L=32,classes=3").unwrap();
    let a = src.sample(300, 1).unwrap();
    assert_eq!((a.n, a.len, a.vocab), (300, 32, 4));
    assert_eq!(a.alphabet.as_deref(), Some("ACGT"));
    assert_eq!(a.classes(), Some(3));
    assert_eq!(a, src.sample(300, 1).unwrap());
    let prefix = src.sample(100, 1).unwrap();
    assert_eq!(prefix.tokens[..], a.tokens[..100 * 32]);
    assert_eq!(prefix.labels().unwrap(), &a.labels().unwrap()[..100]);
    assert_ne!(a.tokens, src.sample(300, 2).unwrap().tokens);
    let held = src.sample_split(300, 1, Split::HeldOut).unwrap();
    assert_ne!(a.tokens, held.tokens);
    let counts = a.labels.as_ref().unwrap().counts();
    assert!(
        counts.iter().all(|&c| (70..=130).contains(&c)),
        "{counts:?}"
    );
    assert!(src.sample(0, 1).is_err());
    assert!(src.sample(usize::MAX / 2, 1).is_err());
}

#[test]
fn hmm_refuses_rows_that_are_not_distributions() {
    let emit = vec![0.25; 8];
    let ok = Hmm::new(
        4,
        vec![0.5, 0.5],
        vec![vec![(0, 1.0)], vec![(1, 1.0)]],
        emit.clone(),
    );
    assert!(ok.is_ok());
    let m = err(Hmm::new(
        4,
        vec![0.5, 0.6],
        vec![vec![(0, 1.0)], vec![(1, 1.0)]],
        emit.clone(),
    ));
    assert!(m.contains("initial distribution"), "{m}");
    let m = err(Hmm::new(
        4,
        vec![1.0, 0.0],
        vec![vec![(0, 0.9)], vec![(1, 1.0)]],
        emit.clone(),
    ));
    assert!(m.contains("transitions of state 0"), "{m}");
    let m = err(Hmm::new(
        4,
        vec![1.0, 0.0],
        vec![vec![(2, 1.0)], vec![(1, 1.0)]],
        emit.clone(),
    ));
    assert!(m.contains("to state 2"), "{m}");
    let m = err(Hmm::new(
        4,
        vec![1.0, 0.0],
        vec![vec![(0, 1.0)], vec![(1, 1.0)]],
        vec![0.25; 7],
    ));
    assert!(m.contains("emissions"), "{m}");
    let m = err(ok.unwrap().log_likelihood(&[0, 4]));
    assert!(m.contains("token 4"), "{m}");
}

/// `p(x)` for every sequence of length `l` (index: x read as a base-4 number), summed over every
/// hidden path one by one.
fn brute_force(h: &Hmm, l: usize) -> Vec<f64> {
    let n = 4usize.pow(l as u32);
    let mut p = vec![0.0; n];
    // Every path with its probability, extended one state at a time.
    let mut paths: Vec<(Vec<usize>, f64)> = (0..h.states())
        .filter(|&s| h.init()[s] > 0.0)
        .map(|s| (vec![s], h.init()[s]))
        .collect();
    for _ in 1..l {
        paths = paths
            .into_iter()
            .flat_map(|(z, pz)| {
                let last = *z.last().unwrap();
                h.transitions(last).iter().map(move |&(t, pt)| {
                    let mut z2 = z.clone();
                    z2.push(t);
                    (z2, pz * pt)
                })
            })
            .collect();
    }
    for (z, pz) in &paths {
        for (x, px) in p.iter_mut().enumerate() {
            let mut e = *pz;
            for (t, &s) in z.iter().enumerate() {
                let tok = (x / 4usize.pow((l - 1 - t) as u32)) % 4;
                e *= h.emission(s)[tok];
            }
            *px += e;
        }
    }
    p
}

fn decode(x: usize, l: usize) -> Vec<u32> {
    (0..l)
        .map(|t| ((x / 4usize.pow((l - 1 - t) as u32)) % 4) as u32)
        .collect()
}

#[test]
fn forward_algorithm_matches_brute_force_enumeration() {
    for (spec, l) in [
        ("dna:L=5,classes=2,motifs=1,width=3,seed=3", 5),
        ("dna:L=4,classes=3,motifs=2,width=2,seed=1", 4),
        ("dna:L=4,classes=1,motifs=1,width=4,seed=2", 4),
    ] {
        let src = DnaSource::from_spec(spec).unwrap();
        let c_count = src.classes();
        let exact: Vec<Vec<f64>> = (0..c_count).map(|c| brute_force(src.hmm(c), l)).collect();
        let mut mixture_total = 0.0;
        for (c, pc) in exact.iter().enumerate() {
            let total: f64 = pc.iter().sum();
            assert!(
                (total - 1.0).abs() < 1e-12,
                "{spec} class {c}: Σ p = {total}"
            );
        }
        for x in 0..4usize.pow(l as u32) {
            let seq = decode(x, l);
            let ll = src.class_log_likelihoods(&seq).unwrap();
            for c in 0..c_count {
                let want = exact[c][x].ln();
                assert!(
                    (ll[c] - want).abs() < 1e-10,
                    "{spec} x={seq:?} c={c}: forward {} brute force {want}",
                    ll[c]
                );
                assert_eq!(src.log_likelihood_given(&seq, c).unwrap(), ll[c]);
            }
            let mix: f64 = exact.iter().map(|p| p[x]).sum::<f64>() / c_count as f64;
            let got = src.log_likelihood(&seq).unwrap();
            assert!((got - mix.ln()).abs() < 1e-10, "{spec} x={seq:?}");
            mixture_total += got.exp();
            let post = src.class_posterior(&seq).unwrap();
            assert!((post.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            for c in 0..c_count {
                let want = exact[c][x] / c_count as f64 / mix;
                assert!((post[c] - want).abs() < 1e-10);
            }
            let best = src.classify(&seq).unwrap() as usize;
            assert!(post.iter().all(|&p| p <= post[best]));
        }
        assert!(
            (mixture_total - 1.0).abs() < 1e-10,
            "{spec}: Σ p(x) = {mixture_total}"
        );
    }
}

#[test]
fn forward_algorithm_is_stable_at_long_lengths() {
    let src = DnaSource::from_spec("dna:L=20000,classes=2").unwrap();
    let ds = src.sample(2, 0).unwrap();
    let ll = src.log_likelihood(ds.row(0)).unwrap();
    // Between a deterministic source (0) and far below uniform noise.
    let per_base = ll / 20000.0;
    assert!(
        per_base.is_finite() && (-1.5..-1.2).contains(&per_base),
        "{per_base}"
    );
    assert!(src.log_likelihood_given(ds.row(0), 2).is_err());
    assert!(src.log_likelihood(&[0, 1, 7]).is_err());
}

/// χ² over (class, sequence) cells, pooling cells with fewer than 5 expected draws.
fn chi_square(counts: &HashMap<(u32, usize), f64>, expected: &[(u32, usize, f64)]) -> (f64, usize) {
    let (mut chi, mut cells) = (0.0, 0);
    let (mut pooled_obs, mut pooled_exp) = (0.0, 0.0);
    for &(c, x, e) in expected {
        let o = counts.get(&(c, x)).copied().unwrap_or(0.0);
        if e < 5.0 {
            pooled_obs += o;
            pooled_exp += e;
        } else {
            chi += (o - e) * (o - e) / e;
            cells += 1;
        }
    }
    if pooled_exp > 0.0 {
        chi += (pooled_obs - pooled_exp).powi(2) / pooled_exp;
        cells += 1;
    }
    (chi, cells - 1)
}

#[test]
fn sampler_matches_the_exact_probabilities() {
    let l = 3;
    let src = DnaSource::from_spec("dna:L=3,classes=2,motifs=1,width=2,seed=4").unwrap();
    let n = 200_000;
    let ds = src.sample(n, 11).unwrap();
    let mut counts: HashMap<(u32, usize), f64> = HashMap::new();
    for i in 0..n {
        let x = ds.row(i).iter().fold(0usize, |a, &t| a * 4 + t as usize);
        *counts.entry((ds.label(i).unwrap(), x)).or_insert(0.0) += 1.0;
    }
    let expected_of = |s: &DnaSource| -> Vec<(u32, usize, f64)> {
        (0..2u32)
            .flat_map(|c| {
                (0..64).map(move |x| {
                    let ll = s.log_likelihood_given(&decode(x, l), c as usize).unwrap();
                    (c, x, n as f64 * 0.5 * ll.exp())
                })
            })
            .collect()
    };
    let (chi, df) = chi_square(&counts, &expected_of(&src));
    // 4 standard deviations above the mean of χ²(df).
    let bound = df as f64 + 4.0 * (2.0 * df as f64).sqrt();
    assert!(chi < bound, "χ² = {chi:.1} with {df} degrees of freedom");
    // The test has power: the same draws against another seed's source fail it by far.
    let other = DnaSource::from_spec("dna:L=3,classes=2,motifs=1,width=2,seed=5").unwrap();
    let (chi_other, _) = chi_square(&counts, &expected_of(&other));
    assert!(
        chi_other > 10.0 * bound,
        "χ² against the wrong source {chi_other:.1}"
    );
}

#[test]
fn sample_mean_log_likelihood_matches_the_exact_entropy() {
    let l = 5;
    let src = DnaSource::from_spec("dna:L=5,classes=2,motifs=1,width=3,seed=3").unwrap();
    let (mut h, mut second) = (0.0, 0.0);
    for x in 0..4usize.pow(l as u32) {
        let ll = src.log_likelihood(&decode(x, l)).unwrap();
        h += ll.exp() * ll;
        second += ll.exp() * ll * ll;
    }
    let sd = (second - h * h).sqrt();
    let n = 20_000;
    let ds = src.sample_split(n, 3, Split::HeldOut).unwrap();
    let mean = src.mean_log_likelihood_per_base(&ds).unwrap() * l as f64;
    let tol = 4.0 * sd / (n as f64).sqrt();
    assert!(
        (mean - h).abs() < tol,
        "sample mean {mean} vs E ln p = {h} ± {tol}"
    );
}

// ---------------------------------------------------------------- labels

fn acgt() -> Alphabet {
    Alphabet::new("ACGT", true).unwrap()
}

#[test]
fn fasta_headers_carry_class_labels() {
    let text = ">a class=2\nAC\nGT\n>b x=1 class=0 more\nTTTT\n; comment\n>c  class=1\nGGGG\n";
    let d = SequenceDataset::parse_fasta(text, "f.fa", &acgt()).unwrap();
    assert_eq!(d.labels(), Some(&[2, 0, 1][..]));
    assert_eq!(
        (d.classes(), d.label(0), d.label(3)),
        (Some(3), Some(2), None)
    );
    let d = SequenceDataset::parse_fasta_classes(text, "f.fa", &acgt(), Some(5)).unwrap();
    assert_eq!(d.classes(), Some(5));
    let plain = SequenceDataset::parse_fasta(">a\nAC\n>b\nGT\n", "f.fa", &acgt()).unwrap();
    assert_eq!((plain.labels(), plain.classes()), (None, None));
    // Written and read back with the labels (the class count is inferred again).
    let back =
        SequenceDataset::parse_fasta(&d.to_fasta_text("s").unwrap(), "g.fa", &acgt()).unwrap();
    assert_eq!((&back.tokens, back.labels()), (&d.tokens, d.labels()));
    assert_eq!(back.classes(), Some(3));
    assert!(d
        .to_fasta_text("s")
        .unwrap()
        .starts_with(">s0 class=2\nACGT\n"));
}

#[test]
fn fasta_label_errors_name_file_and_line() {
    let a = acgt();
    for (text, classes, needle) in [
        (
            ">a class=1\nAC\n>b\nGT\n",
            None,
            "f.fa:3: this header lacks a class= label but the header at line 1",
        ),
        (
            ">a\nAC\n>b class=0\nGT\n",
            None,
            "f.fa:3: this header has a class= label but the header at line 1",
        ),
        (
            ">a class=x\nAC\n",
            None,
            "f.fa:1: class label \"x\" is not a non-negative integer",
        ),
        (">a class=-1\nAC\n", None, "f.fa:1:"),
        (">a class=\nAC\n", None, "f.fa:1: class label \"\""),
        (
            ">a class=1 class=2\nAC\n",
            None,
            "f.fa:1: two class= labels",
        ),
        (
            ">a class=0\nAC\n>b class=3\nGT\n",
            Some(3),
            "f.fa:3: class label 3 is not below the 3 declared classes",
        ),
        (
            ">a class=70000\nAC\n",
            None,
            "f.fa:1: class label 70000 exceeds the maximum",
        ),
    ] {
        let m = err(SequenceDataset::parse_fasta_classes(
            text, "f.fa", &a, classes,
        ));
        assert!(m.contains(needle), "{text:?}: {m}");
    }
    assert!(SequenceDataset::parse_fasta_classes(">a class=0\nAC\n", "f.fa", &a, Some(0)).is_err());
}

#[test]
fn labels_files_parse_and_errors_name_file_and_line() {
    let l = Labels::parse("0\n 2 \n\n1\n", "l.txt", None).unwrap();
    assert_eq!((l.ids.clone(), l.classes), (vec![0, 2, 1], 3));
    assert_eq!(l.counts(), vec![1, 1, 1]);
    assert_eq!(
        Labels::parse(&l.to_text(), "m.txt", Some(4)).unwrap().ids,
        l.ids
    );
    for (text, classes, needle) in [
        (
            "0\nx\n",
            None,
            "l.txt:2: class label \"x\" is not a non-negative integer",
        ),
        ("0\n1.5\n", None, "l.txt:2:"),
        ("0\n-1\n", None, "l.txt:2:"),
        ("0\n1 2\n", None, "l.txt:2: \"1 2\": one class label a line"),
        (
            "0\n\n3\n",
            Some(3),
            "l.txt:3: class label 3 is not below the 3 declared classes",
        ),
        ("\n \n", None, "l.txt: no labels"),
        ("0\n", Some(0), "l.txt: 0 classes declared"),
    ] {
        let m = err(Labels::parse(text, "l.txt", classes));
        assert!(m.contains(needle), "{text:?}: {m}");
    }
    assert!(Labels::new(vec![], None).is_err());
    assert!(Labels::new(vec![0, 3], Some(3)).is_err());
}

#[test]
fn read_labelled_takes_a_labels_file_for_any_format() {
    let d = tmpdir("dna-labelled");
    let ids = d.join("x.txt");
    std::fs::write(&ids, "0 1 2\n\n3 0 1\n").unwrap();
    let lab = d.join("l.txt");
    std::fs::write(&lab, "1\n0\n").unwrap();
    let opts = LabelOptions {
        file: Some(&lab),
        classes: Some(2),
        required: true,
    };
    let ds = SequenceDataset::read_labelled(&ids, Format::Ids, None, None, &opts).unwrap();
    assert_eq!((ds.labels(), ds.classes()), (Some(&[1, 0][..]), Some(2)));
    // Count mismatch, naming both files.
    std::fs::write(&lab, "1\n0\n1\n").unwrap();
    let m = err(SequenceDataset::read_labelled(
        &ids,
        Format::Ids,
        None,
        None,
        &opts,
    ));
    assert!(
        m.contains("l.txt: 3 labels") && m.contains("x.txt has 2 sequences"),
        "{m}"
    );
    // A label at or over the declared count.
    std::fs::write(&lab, "1\n2\n").unwrap();
    let m = err(SequenceDataset::read_labelled(
        &ids,
        Format::Ids,
        None,
        None,
        &opts,
    ));
    assert!(
        m.contains("l.txt:2:") && m.contains("declared classes"),
        "{m}"
    );
    // Headers and a file: given twice.
    let fa = d.join("s.fa");
    std::fs::write(&fa, ">a class=0\nACG\n>b class=1\nTTT\n").unwrap();
    std::fs::write(&lab, "1\n0\n").unwrap();
    let a = acgt();
    let m = err(SequenceDataset::read_labelled(
        &fa,
        Format::Fasta,
        None,
        Some(&a),
        &opts,
    ));
    assert!(
        m.contains("labels given twice") && m.contains("s.fa"),
        "{m}"
    );
    // Headers alone, checked against the declared count with the line.
    let no_file = LabelOptions { file: None, ..opts };
    let ds = SequenceDataset::read_labelled(&fa, Format::Fasta, None, Some(&a), &no_file).unwrap();
    assert_eq!(ds.labels(), Some(&[0, 1][..]));
    let one = LabelOptions {
        classes: Some(1),
        ..no_file
    };
    let m = err(SequenceDataset::read_labelled(
        &fa,
        Format::Fasta,
        None,
        Some(&a),
        &one,
    ));
    assert!(m.contains("s.fa:3:"), "{m}");
    // Required but absent.
    let m = err(SequenceDataset::read_labelled(
        &ids,
        Format::Ids,
        None,
        None,
        &no_file,
    ));
    assert!(m.contains("x.txt: no class labels"), "{m}");
    let plain =
        SequenceDataset::read_labelled(&ids, Format::Ids, None, None, &LabelOptions::default());
    assert_eq!(plain.unwrap().labels, None);
    // with_labels refuses a second set and a wrong count.
    let ds = SequenceDataset::read_ids(&ids, None).unwrap();
    assert!(ds
        .clone()
        .with_labels(Labels::new(vec![0], None).unwrap())
        .is_err());
    let ds = ds
        .with_labels(Labels::new(vec![0, 1], None).unwrap())
        .unwrap();
    assert!(ds
        .with_labels(Labels::new(vec![0, 1], None).unwrap())
        .is_err());
    std::fs::remove_dir_all(&d).unwrap();
}

// ---------------------------------------------------------------- metrics

#[test]
fn kmer_spectra_and_jensen_shannon() {
    let ds = SequenceDataset::parse_ids("0 1 0\n1 1 1\n", "f", Some(2)).unwrap();
    assert_eq!(kmer_spectrum(&ds, 1).unwrap(), vec![2.0 / 6.0, 4.0 / 6.0]);
    // 2-mers: 01, 10, 11, 11 (windows never cross sequences).
    assert_eq!(kmer_spectrum(&ds, 2).unwrap(), vec![0.0, 0.25, 0.25, 0.5]);
    assert_eq!(kmer_spectrum(&ds, 3).unwrap()[0b010], 0.5);
    assert!(kmer_spectrum(&ds, 4).is_err() && kmer_spectrum(&ds, 0).is_err());
    let p = [0.5, 0.5, 0.0];
    let q = [0.0, 0.0, 1.0];
    assert_eq!(jensen_shannon(&p, &p), 0.0);
    assert!((jensen_shannon(&p, &q) - std::f64::consts::LN_2).abs() < 1e-15);
    let r = [0.2, 0.3, 0.5];
    assert!((jensen_shannon(&p, &r) - jensen_shannon(&r, &p)).abs() < 1e-15);
    assert!(jensen_shannon(&p, &r) > 0.0);
    assert_eq!(kmer_jsd(&ds, &ds, 2).unwrap(), 0.0);
    let other = SequenceDataset::parse_ids("0 0 0\n", "g", Some(3)).unwrap();
    assert!(kmer_jsd(&ds, &other, 1).is_err());
}

#[test]
fn duplicates_and_accuracy() {
    let train = SequenceDataset::parse_ids("0 1\n1 1\n", "t", Some(2)).unwrap();
    let s = SequenceDataset::parse_ids("1 1\n0 0\n1 1\n0 1\n", "s", Some(2)).unwrap();
    assert_eq!(duplicate_fraction(&s, &train).unwrap(), 0.75);
    let wrong = SequenceDataset::parse_ids("0 1 1\n", "w", Some(2)).unwrap();
    assert!(duplicate_fraction(&wrong, &train).is_err());
    assert_eq!(accuracy(&[0, 1, 2, 2], &[0, 1, 1, 2]).unwrap(), 0.75);
    assert!(accuracy(&[0], &[0, 1]).is_err() && accuracy(&[], &[]).is_err());
}

#[test]
fn evaluation_puts_samples_beside_data_and_noise() {
    let src = DnaSource::from_spec("dna:L=128,classes=3").unwrap();
    let train = src.sample(3000, 0).unwrap();
    let n = 1500;
    // Exact samples of the held-out split are the data themselves: identical figures.
    let exact = src.sample_split(n, 0, Split::HeldOut).unwrap();
    let r = src.evaluate(&exact, &train).unwrap();
    assert_eq!(r.samples, r.data);
    let (data, noise) = (&r.data, &r.noise);
    assert_eq!(data.kmer_jsd.len(), KMER_MAX);
    assert_eq!(r.reference_n, 10_000);
    // The scale: the data beat noise on every figure, by a wide margin.
    assert!(
        data.log_likelihood_per_base > -4f64.ln() && noise.log_likelihood_per_base < -4f64.ln()
    );
    for (&(k, d), &(_, z)) in data.kmer_jsd.iter().zip(&noise.kmer_jsd) {
        assert!(d < 0.5 * z, "k={k}: data {d} noise {z}");
    }
    let bayes = data.conditional_accuracy.unwrap();
    assert!(bayes > 0.95, "Bayes accuracy {bayes}");
    assert!((noise.conditional_accuracy.unwrap() - 1.0 / 3.0).abs() < 0.06);
    for c in 0..3 {
        let own = data.motif_hit_rate_own.as_ref().unwrap()[c].unwrap();
        assert!(
            own > 0.9 && noise.motif_hit_rate[c] < 0.15,
            "class {c}: {own}"
        );
        assert!(own > data.motif_hit_rate[c]);
    }
    assert_eq!(
        (data.duplicate_fraction, noise.duplicate_fraction),
        (0.0, 0.0)
    );

    // Training sequences as samples: all duplicates. Unlabelled: no accuracy.
    let mut copied = src.sample(n, 0).unwrap();
    copied.labels = None;
    let r = src.evaluate(&copied, &train).unwrap();
    assert_eq!(r.samples.duplicate_fraction, 1.0);
    assert_eq!(
        (
            r.samples.conditional_accuracy,
            r.samples.motif_hit_rate_own.clone()
        ),
        (None, None)
    );
    // Shuffled labels: chance accuracy. Labels beyond the source's classes: refused.
    let shuffled: Vec<u32> = exact
        .labels()
        .unwrap()
        .iter()
        .map(|&c| (c + 1) % 3)
        .collect();
    let mut wrong = exact.clone();
    wrong.labels = Some(Labels::new(shuffled, Some(3)).unwrap());
    let acc = src
        .evaluate(&wrong, &train)
        .unwrap()
        .samples
        .conditional_accuracy
        .unwrap();
    assert!(acc < 0.05, "accuracy with every label wrong: {acc}");
    let mut over = exact.clone();
    over.labels = Some(Labels::new(vec![3; n], Some(4)).unwrap());
    assert!(err(src.evaluate(&over, &train)).contains("class 3"));
    // Noise scores like noise.
    let noise_as_samples = uniform_noise(n, 128, 3, 9).unwrap();
    assert!(uniform_noise(usize::MAX, 2, 3, 9).is_err() && uniform_noise(5, 8, 0, 9).is_err());
    let r = src.evaluate(&noise_as_samples, &train).unwrap();
    assert!(r.samples.log_likelihood_per_base < r.data.log_likelihood_per_base - 0.1);
    // Wrong shapes are refused.
    let short = DnaSource::from_spec("dna:L=64,classes=3")
        .unwrap()
        .sample(10, 0)
        .unwrap();
    assert!(err(src.evaluate(&short, &train)).contains("length 64"));
}

// ---------------------------------------------------------------- output files

#[test]
fn outputs_are_atomic_and_never_clobbered_without_force() {
    let d = tmpdir("dna-files");
    let f = d.join("out.fa");
    write_atomic(&f, b"one", false).unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"one");
    let m = err(write_atomic(&f, b"two", false));
    assert!(m.contains("out.fa") && m.contains("--force"), "{m}");
    assert_eq!(std::fs::read(&f).unwrap(), b"one");
    write_atomic(&f, b"two", true).unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"two");
    let m = err(write_atomic(&d, b"x", true));
    assert!(m.contains("a directory"), "{m}");
    let m = err(check_output(&d.join("missing/out.fa"), true));
    assert!(m.contains("does not exist"), "{m}");
    #[cfg(unix)]
    {
        // Writing through a symbolic link replaces the file it points to; the link stays.
        let link = d.join("link.fa");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let m = err(write_atomic(&link, b"x", false));
        assert!(m.contains("--force"), "{m}");
        write_atomic(&link, b"three", true).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&f).unwrap(), b"three");
        let m = err(check_output(std::path::Path::new("/dev/null"), true));
        assert!(m.contains("special file"), "{m}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty());
    std::fs::remove_dir_all(&d).unwrap();
}
