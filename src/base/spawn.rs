//! Every child steward starts (claude's group leader, probes, checks, executors, rollbacks) is
//! forked from one long-lived thread with `PR_SET_PDEATHSIG`: when steward dies, however it dies
//! (`kill -9`, the OOM killer, a panic), the kernel SIGKILLs those children too.
//!
//! Why one thread: the kernel sends the parent-death signal when the *thread* that forked the
//! child exits, not when the process does. tokio forks from whichever thread polls the future: a
//! worker, the main thread, or a blocking-pool thread that exits after a few idle seconds, which
//! would kill a healthy child. The spawner thread is never stopped, so for it "thread exits" and
//! "steward exits" are the same event.

use std::io;
use std::sync::OnceLock;
use std::sync::mpsc;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

type Job = Box<dyn FnOnce() + Send>;

static SPAWNER: OnceLock<Result<mpsc::Sender<Job>, String>> = OnceLock::new();

fn spawner() -> io::Result<&'static mpsc::Sender<Job>> {
    let started = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("steward-spawner".into())
            .spawn(move || {
                // `tx` lives in a static, so this loop never ends while the process runs.
                for job in rx {
                    job();
                }
            })
            .map(|_| tx)
            .map_err(|e| e.to_string())
    });
    match started {
        Ok(tx) => Ok(tx),
        Err(e) => Err(io::Error::other(format!(
            "cannot start steward's spawner thread: {e}"
        ))),
    }
}

/// Starts `cmd` from the spawner thread, so that the kernel kills the child when steward dies.
/// Must be called inside a tokio runtime (the child is registered with it).
pub async fn spawn(mut cmd: tokio::process::Command) -> io::Result<tokio::process::Child> {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed. prctl and getppid are plain system calls; the error path builds an
    // io::Error from a raw errno, which does not allocate.
    unsafe {
        cmd.pre_exec(move || die_with(parent));
    }
    let handle = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _runtime = handle.enter();
        // If the caller is gone, the child is dropped here (and killed if it asked for that).
        let _ = tx.send(spawn_retrying_busy(&mut cmd));
    });
    spawner()?
        .send(job)
        .map_err(|_| io::Error::other("steward's spawner thread is gone"))?;
    rx.await
        .map_err(|_| io::Error::other("steward's spawner thread dropped the request"))?
}

/// `ETXTBSY` ("text file busy") is transient: the program was just written, and another
/// process forked while its file was open for writing still holds that descriptor until it
/// execs. Spawning again shortly after succeeds, as Go's os/exec and others do.
fn spawn_retrying_busy(cmd: &mut tokio::process::Command) -> io::Result<tokio::process::Child> {
    let busy = nix::errno::Errno::ETXTBSY as i32;
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(busy) && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// In the child: SIGKILL when the forking thread (the spawner, so steward) exits.
fn die_with(parent: Pid) -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
    // steward may have died between fork and prctl: this child was then reparented already and
    // the signal will never come, so it must not start at all.
    if nix::unistd::getppid() != parent {
        return Err(io::Error::from(Errno::ESRCH));
    }
    Ok(())
}

/// For a steward process started by claude (`steward mcp serve`): die with claude. Call it on
/// the main thread, before any other thread exists: the setting belongs to the calling thread,
/// and the kernel looks at the main thread's when the parent dies.
pub fn die_with_parent() -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The state letter of `/proc/PID/stat` (`Z` for a killed, unreaped child).
    fn state(pid: u32) -> Option<char> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        text[text.rfind(')')? + 1..].trim_start().chars().next()
    }

    #[tokio::test]
    async fn a_missing_program_is_not_found() {
        let cmd = tokio::process::Command::new("/nonexistent/steward-test");
        let err = spawn(cmd).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    /// The caveat this module exists for: a child forked by a thread that then exits would be
    /// killed by its death signal. Spawned through the spawner, it lives on.
    #[test]
    fn a_child_outlives_the_thread_that_asked_for_it() {
        let pid = std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut cmd = tokio::process::Command::new("sleep");
                cmd.arg("30");
                spawn(cmd).await.unwrap().id().unwrap()
            })
        })
        .join()
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let alive = state(pid);
        let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        assert!(
            alive.is_some_and(|s| s != 'Z'),
            "the child died with the thread that asked for it: {alive:?}"
        );
    }

    /// A program whose file is still open for writing for a moment (ETXTBSY) starts once it is
    /// closed; one that stays busy fails with the kernel's error, not a hang.
    #[tokio::test]
    async fn a_program_busy_for_a_moment_still_starts() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("just-written");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let writer = std::fs::OpenOptions::new()
            .write(true)
            .open(&script)
            .unwrap();
        let held = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(writer);
        });
        let child = spawn(tokio::process::Command::new(&script)).await;
        held.join().unwrap();
        assert!(child.unwrap().wait().await.unwrap().success());

        let _forever = std::fs::OpenOptions::new()
            .write(true)
            .open(&script)
            .unwrap();
        let err = spawn(tokio::process::Command::new(&script))
            .await
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::errno::Errno::ETXTBSY as i32));
    }

    #[test]
    fn spawning_from_many_runtimes_and_threads_works() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let cmd = tokio::process::Command::new("true");
                        spawn(cmd).await.unwrap().wait().await.unwrap().success()
                    })
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap());
        }
    }
}
