//! An exclusive `flock` on a lock file, held until dropped: the one way a store serialises its
//! writers. Blocking; never taken twice by one caller (a second `flock` on another descriptor of
//! the same file in the same process waits for the first forever).

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

/// Holds the lock until dropped.
pub struct FileLock {
    _flock: Flock<File>,
}

/// Opens (creating) `path` and waits for an exclusive lock on it.
pub fn lock_exclusive(path: &Path) -> std::io::Result<FileLock> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let flock =
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| std::io::Error::from(e))?;
    Ok(FileLock { _flock: flock })
}
