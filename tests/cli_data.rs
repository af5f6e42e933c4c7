//! `fisherflow data` and `fisherflow eval --data dna:…` end to end: the FASTA they write and
//! read, and the errors a user sees (non-zero exit, the flag or file named, nothing clobbered).

use std::path::Path;

#[path = "support/cli.rs"]
mod cli;
use cli::{run, text, tmpdir};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    text(&o)
}

fn fails(args: &[&str], needles: &[&str]) {
    let o = run(args);
    let t = text(&o);
    assert!(!o.status.success(), "{args:?} succeeded: {t}");
    assert!(!t.contains("panicked"), "{args:?} panicked: {t}");
    for n in needles {
        assert!(t.contains(n), "{args:?}: {n:?} not in {t}");
    }
}

const SPEC: &str = "dna:L=32,classes=3,seed=0";

#[test]
fn data_writes_labelled_fasta_reproducibly() {
    let d = tmpdir("data-write");
    let f = d.join("train.fa");
    let t = ok(&["data", SPEC, "--n", "300", "--out", s(&f)]);
    assert!(
        t.contains("wrote 300 sequences") && t.contains("class 2 motifs"),
        "{t}"
    );
    let body = std::fs::read_to_string(&f).unwrap();
    let headers: Vec<&str> = body.lines().filter(|l| l.starts_with('>')).collect();
    assert_eq!(headers.len(), 300);
    assert!(headers[0].starts_with(">seq0 class="), "{}", headers[0]);
    assert!(body
        .lines()
        .filter(|l| !l.starts_with('>'))
        .all(|l| l.len() == 32 && l.bytes().all(|b| b"ACGT".contains(&b))));
    // The same seed writes the same bytes; fewer sequences are a prefix; another seed differs.
    let g = d.join("again.fa");
    ok(&["data", SPEC, "--n", "300", "--seed", "0", "--out", s(&g)]);
    assert_eq!(std::fs::read(&g).unwrap(), body.as_bytes());
    ok(&["data", SPEC, "--n", "100", "--out", s(&g), "--force"]);
    let short = std::fs::read_to_string(&g).unwrap();
    assert!(body.starts_with(&short));
    ok(&[
        "data",
        SPEC,
        "--n",
        "300",
        "--seed",
        "1",
        "--out",
        s(&g),
        "--force",
    ]);
    assert_ne!(std::fs::read(&g).unwrap(), body.as_bytes());
    let leftovers = std::fs::read_dir(&d)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp.")
        })
        .count();
    assert_eq!(leftovers, 0);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn data_refuses_bad_input_before_any_work() {
    let d = tmpdir("data-refuse");
    let f = d.join("keep.fa");
    std::fs::write(&f, "mine\n").unwrap();
    let out = s(&f);
    fails(
        &["data", SPEC, "--n", "10", "--out", out],
        &["keep.fa", "exists", "--force"],
    );
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "mine\n");
    fails(
        &["data", SPEC, "--n", "10", "--out", s(&d), "--force"],
        &["a directory"],
    );
    let missing = d.join("no/such/dir/x.fa");
    fails(
        &["data", SPEC, "--n", "10", "--out", s(&missing)],
        &["does not exist"],
    );
    let fresh = d.join("new.fa");
    let o = s(&fresh);
    fails(&["data", SPEC, "--n", "0", "--out", o], &["--n 0"]);
    fails(
        &["data", "dna:L=1048576", "--n", "2000", "--out", o],
        &["--n 2000"],
    );
    fails(&["data", "dna:L=0", "--n", "5", "--out", o], &["L=0"]);
    fails(
        &["data", "dna:L=8,colors=2", "--n", "5", "--out", o],
        &["unknown key \"colors\""],
    );
    fails(
        &["data", "dna:classes=x", "--n", "5", "--out", o],
        &["classes=\"x\""],
    );
    fails(
        &["data", "toy:L=4", "--n", "5", "--out", o],
        &["unknown source"],
    );
    fails(&["data", SPEC, "--out", o], &["--n"]);
    assert!(!fresh.exists());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn eval_reports_every_dna_metric_with_its_scale() {
    let d = tmpdir("data-eval");
    let train = d.join("train.fa");
    let held = d.join("held.fa");
    ok(&["data", SPEC, "--n", "400", "--out", s(&train)]);
    ok(&["data", SPEC, "--n", "300", "--seed", "7", "--out", s(&held)]);
    let t = ok(&[
        "eval",
        "--samples",
        s(&held),
        "--data",
        SPEC,
        "--train",
        s(&train),
    ]);
    for needle in [
        "300 samples",
        "samples       data      noise",
        "log-likelihood per base (nats)",
        "ln 1/4 = -1.3863",
        "1-mer spectrum JSD",
        "6-mer spectrum JSD",
        "motif hit rate, class 2 motifs",
        "among sequences labelled 1",
        "conditional accuracy",
        "Bayes accuracy; chance 0.3333",
        "duplicates of training sequences",
        "against 400 sequences",
    ] {
        assert!(t.contains(needle), "{needle:?} not in\n{t}");
    }
    let dup = |t: &str| -> String {
        let line = t.lines().find(|l| l.starts_with("duplicates")).unwrap();
        line.split_whitespace().nth(4).unwrap().to_string()
    };
    assert_eq!(dup(&t), "0.0000", "{t}");
    // The training set as samples: every one a duplicate, also against the regenerated set.
    let t = ok(&[
        "eval",
        "--samples",
        s(&train),
        "--data",
        SPEC,
        "--train",
        s(&train),
    ]);
    assert_eq!(dup(&t), "1.0000", "{t}");
    let t = ok(&["eval", "--samples", s(&train), "--data", SPEC]);
    assert_eq!(dup(&t), "1.0000", "{t}");
    assert!(
        t.contains("train --data dna:L=32,classes=3,seed=0 --seed 0"),
        "{t}"
    );
    // Unlabelled samples in the chars format, labelled by a file.
    let chars = d.join("s.txt");
    let body = std::fs::read_to_string(&held).unwrap();
    let seqs: Vec<&str> = body.lines().filter(|l| !l.starts_with('>')).collect();
    std::fs::write(&chars, seqs.join("\n")).unwrap();
    let t = ok(&["eval", "--samples", s(&chars), "--data", SPEC]);
    assert!(t.contains("conditional accuracy: n/a"), "{t}");
    let labels = d.join("labels.txt");
    let classes: Vec<&str> = body
        .lines()
        .filter_map(|l| l.split("class=").nth(1))
        .collect();
    std::fs::write(&labels, classes.join("\n")).unwrap();
    let args = [
        "eval",
        "--samples",
        s(&chars),
        "--data",
        SPEC,
        "--labels",
        s(&labels),
    ];
    let t = ok(&args);
    assert!(t.contains("among sequences labelled 2"), "{t}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn eval_refuses_bad_labels_and_mismatched_samples() {
    let d = tmpdir("data-eval-bad");
    let held = d.join("held.fa");
    ok(&["data", SPEC, "--n", "20", "--seed", "3", "--out", s(&held)]);
    let samples = s(&held);
    let labels = d.join("l.txt");
    let lab = s(&labels);
    let base = ["eval", "--samples", samples, "--data", SPEC];
    // Headers and a labels file: labels given twice.
    std::fs::write(&labels, "0\n".repeat(20)).unwrap();
    fails(
        &[&base[..], &["--labels", lab]].concat(),
        &["labels given twice"],
    );
    // Count mismatch, non-integer and out-of-range labels on unlabelled samples.
    let chars = d.join("s.txt");
    let body = std::fs::read_to_string(&held).unwrap();
    let seqs: Vec<&str> = body.lines().filter(|l| !l.starts_with('>')).collect();
    std::fs::write(&chars, seqs.join("\n")).unwrap();
    let cbase = [
        "eval",
        "--samples",
        s(&chars),
        "--data",
        SPEC,
        "--labels",
        lab,
    ];
    std::fs::write(&labels, "0\n".repeat(19)).unwrap();
    fails(&cbase, &["l.txt: 19 labels", "has 20 sequences"]);
    std::fs::write(&labels, format!("{}x\n", "0\n".repeat(19))).unwrap();
    fails(&cbase, &["l.txt:20:", "\"x\""]);
    std::fs::write(&labels, format!("{}3\n", "0\n".repeat(19))).unwrap();
    fails(&cbase, &["l.txt:20:", "3 declared classes"]);
    // Header labels beyond the source's classes, and mixed headers.
    let bad = d.join("bad.fa");
    std::fs::write(&bad, body.replacen("class=", "class=7 x", 1)).unwrap();
    fails(
        &["eval", "--samples", s(&bad), "--data", SPEC],
        &["bad.fa:1:", "3 declared classes"],
    );
    let first = body.lines().next().unwrap();
    std::fs::write(&bad, body.replacen(first, ">seq0", 1)).unwrap();
    fails(
        &["eval", "--samples", s(&bad), "--data", SPEC],
        &["bad.fa:3:", "label every record"],
    );
    // Samples of another length or alphabet; dna options with other data.
    fails(
        &["eval", "--samples", samples, "--data", "dna:L=16,classes=3"],
        &["length 32"],
    );
    std::fs::write(&bad, ">a\nACGU\n").unwrap();
    fails(
        &["eval", "--samples", s(&bad), "--data", SPEC],
        &["bad.fa:2:", "'U'"],
    );
    let toy = [
        "eval",
        "--samples",
        samples,
        "--data",
        "toy:L=4,K=4",
        "--labels",
        lab,
    ];
    fails(&toy, &["--labels", "dna:"]);
    let toy = [
        "eval",
        "--samples",
        samples,
        "--data",
        "toy:L=4,K=4",
        "--train-seed",
        "0",
    ];
    fails(&toy, &["--train-seed", "dna:"]);
    let both = [&base[..], &["--train", samples, "--train-seed", "1"]].concat();
    fails(&both, &["--train-seed", "--train"]);
    let alpha = [&base[..], &["--alphabet", "ACGU"]].concat();
    fails(&alpha, &["--alphabet", "ACGT"]);
    fails(
        &["eval", "--samples", samples, "--data", "dna:L=32,foo=1"],
        &["unknown key"],
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn train_accepts_a_dna_source() {
    let d = tmpdir("data-train");
    let model = d.join("m.safetensors");
    let t = ok(&[
        "train",
        "--data",
        "dna:L=8,classes=2",
        "--steps",
        "3",
        "--batch",
        "8",
        "--hidden",
        "8",
        "--cpu",
        "--eval-samples",
        "0",
        "--out",
        s(&model),
    ]);
    assert!(t.contains("100000 sequences, L=8, K=4"), "{t}");
    assert!(model.exists());
    std::fs::remove_dir_all(&d).unwrap();
}
