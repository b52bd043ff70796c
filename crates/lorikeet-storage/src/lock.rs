//! One process per SQLite file: the exclusive lock on `<database>.lock`.
//!
//! Two servers writing one SQLite file would each keep their own in-memory state
//! (sessions, counters, queues) and overwrite each other's rows, so a store opened
//! for serving ([`crate::connect`]) takes an advisory `flock(2)` on a file next to
//! the database and refuses to open while another process holds it. The kernel
//! drops the lock when the holder's file is closed, which also happens when the
//! process dies in any way (`kill -9` included), so a crash never leaves a stale
//! lock behind. The holder writes its pid into the file for the error message.
//!
//! `flock` locks belong to an open file, not to a process, so a second open in the
//! same process is refused too; tests that open one file twice use the unlocked
//! open (`crate::sqlite::open_unlocked`). On systems other than Unix no lock is taken.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::StoreError;

/// A held lock on `<database>.lock`, shared by the clones of one store and given
/// up when [`Held::release`] is called or the last clone is dropped.
#[derive(Debug, Clone, Default)]
pub(crate) struct Held(Arc<Mutex<Option<File>>>);

impl Held {
    /// No lock (in-memory databases, the unlocked open).
    pub(crate) fn none() -> Self {
        Held::default()
    }

    /// Gives the lock up now (the store is closing). Idempotent.
    pub(crate) fn release(&self) {
        let file = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(f) = file {
            // Forget our pid before unlocking; closing the file unlocks.
            let _ = f.set_len(0);
        }
    }
}

/// Takes the lock for the SQLite database at `database`, or says who holds it.
pub(crate) fn acquire(database: &Path) -> Result<Held, StoreError> {
    let database = absolute(database);
    let path = lock_path(&database);
    let lock_error = |e: std::io::Error| StoreError::LockFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    // Not truncated on open: the file holds the current holder's pid.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(lock_error)?;
    match try_lock(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(StoreError::Locked {
                database: database.display().to_string(),
                pid: text.trim().parse().ok(),
            });
        }
        Err(e) => return Err(lock_error(e)),
    }
    let write_pid = |f: &mut File| -> std::io::Result<()> {
        f.set_len(0)?;
        f.rewind()?;
        writeln!(f, "{}", std::process::id())
    };
    write_pid(&mut file).map_err(lock_error)?;
    Ok(Held(Arc::new(Mutex::new(Some(file)))))
}

#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<()> {
    use rustix::fs::{flock, FlockOperation};
    flock(file, FlockOperation::NonBlockingLockExclusive).map_err(std::io::Error::from)
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<()> {
    Ok(())
}

/// The database path made absolute, with symbolic links resolved where the path
/// exists, so that every spelling of one file finds the same lock file.
fn absolute(database: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(database) {
        return p;
    }
    // Not created yet: resolve its directory.
    let dir = match database.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), database.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => database.to_path_buf(),
    }
}

/// `<database>.lock`.
fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}
