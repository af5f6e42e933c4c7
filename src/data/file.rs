//! Output files written safely: checked before any work, written to a temporary file in the
//! same directory, flushed to disk and renamed over the destination, so a reader sees the old
//! file or the whole new one. An existing file is replaced only when forced; something that is
//! not a regular file (a directory, a device, a pipe) never. A symbolic link is followed: the
//! file it points to is what gets written. A temporary is removed when writing fails, when the
//! writer is dropped unfinished, and (through [`remove_pending`]) when the process is stopped
//! by a signal; one left by a killed process is removed by the next writer of the same file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

fn refuse(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("{}: {why}", path.display()))
}

/// Temporaries being written by this process.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pending() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every temporary this process is writing (for a signal handler's thread that is about
/// to end the process; the destinations are left as they were).
pub fn remove_pending() {
    for p in pending().drain(..) {
        let _ = std::fs::remove_file(p);
    }
}

/// Where writing `path` really goes: a symbolic link is followed to the path it names (which
/// need not exist yet).
pub fn resolve(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let t =
                    std::fs::read_link(&p).map_err(|e| Error::Io(p.display().to_string(), e))?;
                p = match p.parent() {
                    Some(d) if t.is_relative() => d.join(t),
                    _ => t,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(refuse(path, "too many levels of symbolic links"))
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

/// Checks that the file system holding `path` has room for `need` bytes (where the free space
/// is known), blaming `flag` (e.g. `--n 1000000`).
pub fn check_disk(path: &Path, need: u128, flag: &str) -> Result<()> {
    let file = resolve(path)?;
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
    match crate::budget::disk_available(dir.unwrap_or(Path::new("."))) {
        Some(free) if need > free => Err(Error::InvalidArgument(format!(
            "{flag}: the output takes up to {} on disk, more than the {} free for {}",
            crate::budget::human(need),
            crate::budget::human(free),
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Checks that `path` may be written: its directory exists and is writable, and the path (after
/// following symbolic links) is free, or holds a regular file and `force` is set. Call it
/// before the work whose result the file will hold. Returns the file that will be written.
pub fn check_output(path: &Path, force: bool) -> Result<PathBuf> {
    let target = resolve(path)?;
    let (dir, _) = dir_and_name(&target)?;
    match std::fs::metadata(&target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Io(path.display().to_string(), e)),
        Ok(m) if !m.file_type().is_file() => {
            let kind = if m.is_dir() {
                "a directory"
            } else {
                "a special file (device, pipe or socket)"
            };
            return Err(refuse(
                path,
                format!("{kind}, not a regular file; refusing to replace it"),
            ));
        }
        Ok(_) if !force => return Err(refuse(path, "exists; pass --force to replace it")),
        Ok(_) => {}
    }
    if dir_is_read_only(&dir) {
        return Err(refuse(
            path,
            format!("the directory {} is not writable", dir.display()),
        ));
    }
    Ok(target)
}

#[cfg(unix)]
fn dir_is_read_only(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) != 0 }
}

#[cfg(not(unix))]
fn dir_is_read_only(dir: &Path) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().readonly())
}

/// Refuses an output that is one of the inputs (the same file, whatever the path says).
pub fn check_not_input(output: &Path, inputs: &[&Path]) -> Result<()> {
    let Ok(out) = std::fs::canonicalize(output) else {
        return Ok(()); // does not exist yet, so it is no input
    };
    for input in inputs {
        if std::fs::canonicalize(input).is_ok_and(|i| i == out) {
            return Err(refuse(
                output,
                format!("is the input {}; choose another output", input.display()),
            ));
        }
    }
    Ok(())
}

/// Whether process `pid` is running (`true` where that cannot be known).
fn alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Removes temporaries of `name` in `dir` left by processes that no longer run.
fn remove_stale(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().to_string();
        let pid = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('.').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !alive(pid) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// A file being written atomically: bytes go to a temporary beside the destination, and
/// [`commit`](Self::commit) renames it over the destination. Dropped without a commit, the
/// temporary is removed and the destination is left as it was.
pub struct AtomicFile {
    shown: PathBuf,
    target: PathBuf,
    dir: PathBuf,
    tmp: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl AtomicFile {
    /// Starts writing `path` (after [`check_output`]).
    pub fn create(path: &Path, force: bool) -> Result<Self> {
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let target = check_output(path, force)?;
        let (dir, name) = dir_and_name(&target)?;
        remove_stale(&dir, &name);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp.{}.{serial}", std::process::id()));
        // Created here, so removing it on failure never touches another writer's file.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| {
                Error::Io(
                    format!("{} (creating {})", path.display(), tmp.display()),
                    e,
                )
            })?;
        pending().push(tmp.clone());
        Ok(Self {
            shown: path.to_path_buf(),
            target,
            dir,
            tmp,
            file: Some(std::io::BufWriter::with_capacity(1 << 20, file)),
        })
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::Io(
            format!(
                "{} (writing via {})",
                self.shown.display(),
                self.tmp.display()
            ),
            e,
        )
    }

    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let r = match self.file.as_mut() {
            Some(f) => f.write_all(bytes),
            None => Err(std::io::Error::other("already committed")),
        };
        r.map_err(|e| self.io(e))
    }

    /// Flushes the temporary to disk and renames it over the destination.
    pub fn commit(mut self) -> Result<()> {
        let Some(f) = self.file.take() else {
            return Err(self.io(std::io::Error::other("already committed")));
        };
        let done = f
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&self.tmp, &self.target));
        if let Err(e) = done {
            let _ = std::fs::remove_file(&self.tmp);
            pending().retain(|p| p != &self.tmp);
            return Err(self.io(e));
        }
        pending().retain(|p| p != &self.tmp);
        // Persist the rename itself (best effort: not every platform can open a directory).
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
            pending().retain(|p| p != &self.tmp);
        }
    }
}

/// Writes `bytes` to `path` atomically (see the module docs), after [`check_output`].
pub fn write_atomic(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let mut f = AtomicFile::create(path, force)?;
    f.write(bytes)?;
    f.commit()
}
