//! Whether a `steward serve` lives on a state directory. The proof is a lock, not a pid: the
//! daemon holds an exclusive `flock` on `STATE/daemon.lock` for its whole life, and the kernel
//! drops it when the daemon dies, however it dies. A pid in a `daemon.json` left by a daemon
//! that was killed may since belong to any other process; a lock cannot outlive its holder.
//!
//! `steward serve` takes the lock first, before it recovers anything, so a second daemon on the
//! same state directory stops before it touches the queue. Triggers look at the lock (a shared
//! lock taken and dropped at once) to decide whether to hand their signal to a daemon.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The lock file in the state directory.
pub const LOCK_FILE: &str = "daemon.lock";

/// How long a starting daemon retries a busy lock: a trigger looking at it holds it for a few
/// microseconds, and must not keep a daemon from starting.
const START_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum DaemonLockError {
    #[error(
        "another steward serve runs on this state directory: it holds {path}{holder}; stop it first"
    )]
    Held { path: PathBuf, holder: String },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(LOCK_FILE)
}

/// Held by the daemon for its life; dropping it (or the daemon's death) releases it.
#[derive(Debug)]
pub struct DaemonLock {
    _flock: Flock<File>,
}

/// Takes the daemon's lock, or says who holds it.
pub fn hold(state_dir: &Path) -> Result<DaemonLock, DaemonLockError> {
    let path = path(state_dir);
    let io = |source| DaemonLockError::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    let deadline = Instant::now() + START_RETRY;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(flock) => return Ok(DaemonLock { _flock: flock }),
            Err((f, Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = f;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err((_, Errno::EWOULDBLOCK)) => {
                let holder = crate::daemon::handoff::read_daemon_info(state_dir)
                    .map(|i| format!(" (pid {}, listening on {})", i.pid, i.listen))
                    .unwrap_or_default();
                return Err(DaemonLockError::Held { path, holder });
            }
            Err((_, errno)) => return Err(io(std::io::Error::from(errno))),
        }
    }
}

/// What the lock says about a daemon on the state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// A daemon holds the lock.
    Alive,
    /// Nobody holds it (or it was never created): no daemon runs.
    Absent,
    /// The lock could not be examined (e.g. no permission).
    Unknown(String),
}

/// Looks at the lock without keeping it (a shared lock, dropped at once); never blocks.
pub fn presence(state_dir: &Path) -> Presence {
    let path = path(state_dir);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Presence::Absent,
        Err(e) => return Presence::Unknown(format!("cannot open {}: {e}", path.display())),
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_) => Presence::Absent,
        Err((_, Errno::EWOULDBLOCK)) => Presence::Alive,
        Err((_, errno)) => Presence::Unknown(format!("cannot examine {}: {errno}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_presence_follows_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(presence(dir.path()), Presence::Absent);
        let held = hold(dir.path()).unwrap();
        assert_eq!(presence(dir.path()), Presence::Alive);
        let err = hold(dir.path()).unwrap_err();
        assert!(err.to_string().contains("daemon.lock"), "{err}");
        drop(held);
        assert_eq!(presence(dir.path()), Presence::Absent);
        assert!(hold(dir.path()).is_ok());
    }
}
