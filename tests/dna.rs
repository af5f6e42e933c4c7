//! Class labels in the data layer (FASTA headers, labels files) and atomic output files.

use fisherflow::data::file::{check_output, write_atomic};
use fisherflow::data::{Alphabet, Format, LabelOptions, Labels, SequenceDataset};
use fisherflow::Error;

fn message(e: Error) -> String {
    e.to_string()
}

fn err<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    message(r.expect_err("an error"))
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

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ff-dna-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn read_labelled_takes_a_labels_file_for_any_format() {
    let d = tmpdir("labelled");
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
// ---------------------------------------------------------------- output files

#[test]
fn outputs_are_atomic_and_never_clobbered_without_force() {
    let d = tmpdir("files");
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
        let link = d.join("link.fa");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let m = err(write_atomic(&link, b"x", true));
        assert!(m.contains("symbolic link"), "{m}");
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
