//! The hook's decision in a forked child process, so that nothing the decision does can take
//! the answer down with it. Claude Code treats a hook that dies (a stack overflow aborts the
//! whole process, whatever thread it happens on) or that outlives its timeout as "no opinion";
//! here the parent, which only waits, always answers: a child that crashes or takes longer than
//! its budget is killed and the call is blocked, with the reason.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How long the decision may take: well inside the hook's timeout in claude's settings (30 s),
/// and far above any answer the bounds allow (milliseconds).
pub const DECISION_BUDGET: Duration = Duration::from_secs(5);

/// Largest answer a child may send back.
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Why the decision gave no answer; the hook blocks the call with this as the reason.
#[derive(Debug, thiserror::Error)]
pub enum IsolateError {
    #[error("cannot create a pipe: {0}")]
    Pipe(nix::errno::Errno),
    #[error("cannot fork: {0}")]
    Fork(nix::errno::Errno),
    #[error("the decision took longer than {} ms and was stopped", .0.as_millis())]
    OverBudget(Duration),
    #[error("cannot wait for the decision: {0}")]
    Wait(nix::errno::Errno),
    #[error("cannot read the decision: {0}")]
    Read(std::io::Error),
    #[error("the decision's answer is too large")]
    TooLarge,
    #[error("the decision's answer is unreadable: {0}")]
    Unreadable(serde_json::Error),
    #[error("the decision panicked")]
    Panicked,
    #[error("the decision ended with exit code {0}")]
    Exit(i32),
    #[error("the decision crashed ({0}{hint})", hint = crash_hint(*.0))]
    Crashed(Signal),
    #[error("the decision ended oddly: {0:?}")]
    Odd(WaitStatus),
}

/// What an abort or a segfault most likely was, for the reason.
fn crash_hint(sig: Signal) -> &'static str {
    if matches!(sig, Signal::SIGABRT | Signal::SIGSEGV) {
        ": an abort or a stack overflow"
    } else {
        ""
    }
}

/// Runs `decide` in a forked child and returns what it computed, or why it did not.
///
/// Call it only while the process has a single thread (the hook runs before any runtime or
/// logging starts): after `fork` a child of a multi-threaded process may only call
/// async-signal-safe functions, and the decision allocates.
pub fn decide_in_child<T, F>(budget: Duration, decide: F) -> Result<T, IsolateError>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> T,
{
    let (read, write) = nix::unistd::pipe().map_err(IsolateError::Pipe)?;
    // SAFETY: the caller guarantees a single-threaded process (see above), so the child may
    // allocate and run ordinary code until it exits.
    match unsafe { fork() }.map_err(IsolateError::Fork)? {
        ForkResult::Child => {
            drop(read);
            child(write, decide)
        }
        ForkResult::Parent { child } => {
            drop(write);
            let answer = collect(read, child, budget);
            reap(child, answer)
        }
    }
}

fn child<T: Serialize, F: FnOnce() -> T>(write: OwnedFd, decide: F) -> ! {
    // Never outlive the hook: claude may kill it on its own timeout.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    // A panic must not unwind into the caller's code, which belongs to the parent.
    let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decide));
    let code = match decided.map(|d| serde_json::to_vec(&d)) {
        Ok(Ok(bytes)) => {
            let mut file = std::fs::File::from(write);
            match std::io::Write::write_all(&mut file, &bytes) {
                Ok(()) => 0,
                Err(_) => 3,
            }
        }
        Ok(Err(_)) => 4,
        Err(_) => 5,
    };
    // SAFETY: `_exit` ends the child at once, without running the parent's atexit handlers or
    // flushing stdio buffers it inherited.
    unsafe { nix::libc::_exit(code) }
}

/// Reads the child's answer until end of file, or until the budget is spent.
fn collect(read: OwnedFd, child: Pid, budget: Duration) -> Result<Vec<u8>, IsolateError> {
    let deadline = Instant::now() + budget;
    let mut out = Vec::new();
    let mut file = std::fs::File::from(read);
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) if left.is_zero() => {
                let _ = kill(child, Signal::SIGKILL);
                return Err(IsolateError::OverBudget(budget));
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(IsolateError::Wait(e)),
        }
        if fds[0].revents().is_none_or(|r| r.is_empty()) {
            continue;
        }
        match file.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(IsolateError::Read(e)),
        }
        if out.len() as u64 > MAX_ANSWER {
            let _ = kill(child, Signal::SIGKILL);
            return Err(IsolateError::TooLarge);
        }
    }
}

/// Waits for the child and judges its answer by how it ended.
fn reap<T: DeserializeOwned>(
    child: Pid,
    answer: Result<Vec<u8>, IsolateError>,
) -> Result<T, IsolateError> {
    let status = loop {
        match waitpid(child, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    let bytes = answer?;
    match status {
        Ok(WaitStatus::Exited(_, 0)) => {
            serde_json::from_slice(&bytes).map_err(IsolateError::Unreadable)
        }
        Ok(WaitStatus::Exited(_, 5)) => Err(IsolateError::Panicked),
        Ok(WaitStatus::Exited(_, code)) => Err(IsolateError::Exit(code)),
        Ok(WaitStatus::Signaled(_, sig, _)) => Err(IsolateError::Crashed(sig)),
        Ok(other) => Err(IsolateError::Odd(other)),
        Err(e) => Err(IsolateError::Wait(e)),
    }
}

#[cfg(test)]
mod tests {
    //! The harness is multi-threaded, which the function forbids its callers; glibc's malloc
    //! stays usable in a forked child, so these tests hold here. The real binary is tested in
    //! tests/it/policy_hook.rs.
    use super::*;

    #[test]
    fn the_answer_comes_back() {
        let v: Vec<String> =
            decide_in_child(DECISION_BUDGET, || vec!["allow".to_string()]).unwrap();
        assert_eq!(v, ["allow"]);
    }

    #[test]
    fn an_abort_is_reported_not_shared() {
        let e = decide_in_child::<u8, _>(DECISION_BUDGET, || std::process::abort()).unwrap_err();
        assert!(e.to_string().contains("crashed (SIGABRT"), "{e}");
    }

    #[test]
    fn a_panic_stays_in_the_child() {
        let e = decide_in_child::<u8, _>(DECISION_BUDGET, || panic!("boom")).unwrap_err();
        assert_eq!(e.to_string(), "the decision panicked");
    }

    #[test]
    fn a_decision_over_budget_is_stopped() {
        let start = Instant::now();
        let e = decide_in_child::<u8, _>(Duration::from_millis(200), || {
            std::thread::sleep(Duration::from_secs(30));
            0
        })
        .unwrap_err();
        assert!(e.to_string().contains("longer than 200 ms"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
