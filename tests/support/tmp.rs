//! Temporary directories of the tests: one per name and test process, emptied when made and
//! removed when dropped (whether the test passed or panicked).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A fresh, empty directory under the system's temporary directory, removed on drop.
#[derive(Debug)]
pub struct TmpDir(PathBuf);

/// The directory `ff-test-{name}-{pid}`, empty.
pub fn tmpdir(name: &str) -> TmpDir {
    let d = std::env::temp_dir().join(format!("ff-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("a temporary directory");
    TmpDir(d)
}

impl TmpDir {
    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for TmpDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TmpDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
