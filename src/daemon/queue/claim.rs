//! Whether the process that claimed a job still lives. The proof is a lock, not a pid: the
//! claimer holds an exclusive `flock` on `queue/claims/<job>.lock` from the claim until the job
//! leaves `running` (finished, requeued, cancelled), and the kernel drops it when that process
//! dies. A job's `claimed_by` pid is kept for the record only: after a crash it may name any
//! other process.
//!
//! Every claim, release and look at a claim happens under the queue's lock (a [`Session`]), so
//! a claim file is never removed while another process is about to lock it.
//!
//! [`Session`]: super::Session

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The folder of claim locks inside `queue/`.
pub const DIR: &str = "claims";

/// A held claim: the job's lock, released when dropped (or when the claimer dies).
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    _flock: Flock<File>,
}

impl Claim {
    /// Removes the claim file, then drops the lock (under the queue's lock: see the module docs).
    pub fn release(self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}

fn path(queue_dir: &Path, job: &str) -> PathBuf {
    queue_dir.join(DIR).join(format!("{job}.lock"))
}

/// What the claim lock of a running job says.
pub enum Claimer {
    /// Its claimer holds it: the job is being worked on.
    Alive,
    /// Nobody held it, and now this process does: the claimer is gone.
    Gone(Claim),
}

/// Takes the claim of `job` without waiting: `Gone` is the lock, now ours; `Alive` means
/// another process (or another handle of this one) holds it.
pub fn take(queue_dir: &Path, job: &str) -> std::io::Result<Claimer> {
    let path = path(queue_dir, job);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(flock) => Ok(Claimer::Gone(Claim {
            path,
            _flock: flock,
        })),
        Err((_, Errno::EWOULDBLOCK)) => Ok(Claimer::Alive),
        Err((_, errno)) => Err(std::io::Error::from(errno)),
    }
}
