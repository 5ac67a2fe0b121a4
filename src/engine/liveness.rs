//! Whether the steward that runs a run is still alive. The proof is a lock, not a pid: the
//! running steward holds an exclusive `flock` on `runs/<id>/run.lock` from the run's start to
//! its result, and the kernel drops it when that process dies, however it dies. A pid can be
//! reused by an unrelated process; a lock cannot outlive its holder.
//!
//! `runs list` and `runs show` call [`life`] (it never blocks and changes nothing); recovery
//! calls [`claim_dead`], so that each crashed run is recorded by exactly one steward.

use std::fs::{File, OpenOptions};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;

use crate::base::ledger::{LedgerError, RunDir};

/// The lock file inside a run's directory.
pub const LOCK_FILE: &str = "run.lock";

/// Where a run stands, as far as its record and its lock tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Life {
    /// `result.json` is written.
    Finished,
    /// No result yet, and the steward running it holds its lock.
    Running,
    /// No result, and the steward that ran it is gone: nobody will finish this record except
    /// the next steward that starts (it records the run `crashed`).
    Crashed { reason: String },
    /// The lock could not be examined (e.g. no permission): neither running nor crashed is known.
    Unknown { reason: String },
}

impl Life {
    /// The word `runs list` shows for a run without a result.
    pub fn as_str(&self) -> &'static str {
        match self {
            Life::Finished => "finished",
            Life::Running => "running",
            Life::Crashed { .. } => "crashed",
            Life::Unknown { .. } => "unknown",
        }
    }
}

/// Held by the steward running the run, until its result is written. Dropping it (or the death
/// of the process) releases it.
#[derive(Debug)]
pub struct RunLock {
    _flock: Flock<File>,
}

/// Taken when a run starts, before anything else is recorded in its directory.
pub fn hold(run: &RunDir) -> Result<RunLock, LedgerError> {
    let path = run.file(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| LedgerError::Write {
            path: path.clone(),
            source,
        })?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(flock) => Ok(RunLock { _flock: flock }),
        Err((_, errno)) => Err(LedgerError::Write {
            path,
            source: std::io::Error::from(errno),
        }),
    }
}

/// Where the run stands. `pid` is the steward pid from `run.json`: only consulted for records
/// written before run locks existed.
pub fn life(run: &RunDir, pid: u32) -> Life {
    if run.exists("result.json") {
        return Life::Finished;
    }
    let path = run.file(LOCK_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return legacy_life(pid),
        Err(e) => {
            return Life::Unknown {
                reason: format!("cannot open {}: {e}", path.display()),
            };
        }
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        // Taken, so nobody holds it: released at once by the drop.
        Ok(_) => Life::Crashed {
            reason: format!("the steward process that ran it (pid {pid}) is gone"),
        },
        Err((_, Errno::EWOULDBLOCK)) => Life::Running,
        Err((_, errno)) => Life::Unknown {
            reason: format!("cannot examine {}: {errno}", path.display()),
        },
    }
}

/// A record from before run locks: only the pid can tell, and a live pid may be a reused one.
fn legacy_life(pid: u32) -> Life {
    if pid_alive(pid) {
        Life::Running
    } else {
        Life::Crashed {
            reason: format!("the steward process that ran it (pid {pid}) is gone"),
        }
    }
}

/// For a run without a result: where it stands, and one sentence saying why, for `runs list` and
/// `runs show`.
pub fn unfinished(run: &RunDir, meta: &crate::engine::run::RunMeta) -> (Life, String) {
    let life = life(run, meta.pid);
    let reason = match &life {
        Life::Finished => "finished".to_string(),
        Life::Running => format!("no result yet; stage `{}` (pid {})", meta.stage, meta.pid),
        Life::Crashed { reason } => format!(
            "{reason} during stage `{}`; the next steward start ends what it left and records it `crashed`",
            meta.stage
        ),
        Life::Unknown { reason } => format!("no result; stage `{}`; {reason}", meta.stage),
    };
    (life, reason)
}

/// The lock of a run whose steward is gone, taken so that this process alone records it. None
/// when the run is finished, still running, or being recorded by another steward.
pub fn claim_dead(run: &RunDir, pid: u32) -> Option<RunLock> {
    if run.exists("result.json") {
        return None;
    }
    let path = run.file(LOCK_FILE);
    if !path.exists() && pid_alive(pid) {
        return None;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .ok()?;
    let flock = Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()?;
    // Another recoverer may have written the result between our look and the lock.
    (!run.exists("result.json")).then_some(RunLock { _flock: flock })
}

fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence; EPERM means it exists but belongs to someone else.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(e) => e == Errno::EPERM,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::ledger::Ledger;

    #[test]
    fn a_held_lock_is_running_a_released_one_crashed() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let run = ledger.create_run("g").unwrap();
        let me = std::process::id();
        let lock = hold(&run).unwrap();
        assert_eq!(life(&run, me), Life::Running);
        assert!(
            claim_dead(&run, me).is_none(),
            "a live run is never claimed"
        );
        drop(lock);
        assert!(matches!(life(&run, me), Life::Crashed { .. }));
        let claimed = claim_dead(&run, me).expect("a dead run is claimed");
        assert!(claim_dead(&run, me).is_none(), "and by one recoverer only");
        std::fs::write(run.file("result.json"), "{}").unwrap();
        drop(claimed);
        assert_eq!(life(&run, me), Life::Finished);
        assert!(claim_dead(&run, me).is_none());
    }

    #[test]
    fn records_without_a_lock_fall_back_to_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let run = ledger.create_run("g").unwrap();
        assert_eq!(life(&run, std::process::id()), Life::Running);
        assert!(claim_dead(&run, std::process::id()).is_none());
        // A pid that cannot exist (above the kernel's pid_max).
        let gone = 4_194_304 + 17;
        assert!(matches!(life(&run, gone), Life::Crashed { .. }));
        assert!(claim_dead(&run, gone).is_some());
    }
}
