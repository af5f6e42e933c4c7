//! Output files written safely: checked before any work, written to a temporary file in the
//! same directory, flushed to disk and renamed over the destination, so a reader sees the old
//! file or the whole new one. An existing file is replaced only when forced, and something that
//! is not a regular file (a directory, a device, a pipe, a symbolic link) never.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn refuse(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("{}: {why}", path.display()))
}

/// The directory `path` lives in and its file name, when it names a file in an existing
/// directory.
fn dir_and_name(path: &Path) -> Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .ok_or_else(|| refuse(path, "not a file name"))?
        .to_string_lossy()
        .to_string();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(refuse(
            path,
            format!("the directory {} does not exist", dir.display()),
        ));
    }
    Ok((dir, name))
}

/// Checks that `path` may be written: its directory exists and the path is free, or holds a
/// regular file and `force` is set. Call it before the work whose result the file will hold.
pub fn check_output(path: &Path, force: bool) -> Result<()> {
    dir_and_name(path)?;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io(path.display().to_string(), e)),
        Ok(m) if !m.file_type().is_file() => {
            let kind = if m.is_dir() {
                "a directory"
            } else if m.file_type().is_symlink() {
                "a symbolic link"
            } else {
                "a special file"
            };
            Err(refuse(
                path,
                format!("{kind}, not a regular file; refusing to replace it"),
            ))
        }
        Ok(_) if !force => Err(refuse(path, "exists; pass --force to replace it")),
        Ok(_) => Ok(()),
    }
}

/// Writes `bytes` to `path` atomically (see the module docs), after [`check_output`].
pub fn write_atomic(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    check_output(path, force)?;
    let (dir, name) = dir_and_name(path)?;
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let io = |e: std::io::Error| {
        Error::Io(
            format!("{} (writing via {})", path.display(), tmp.display()),
            e,
        )
    };
    // Created here, so removing it on failure never touches another writer's file.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io)?;
    let written = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| {
            drop(f);
            std::fs::rename(&tmp, path)
        })
        .map_err(io);
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
