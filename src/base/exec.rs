//! Running an argv the way steward runs every command of its own (probes, checks, approved
//! actions, rollbacks): never through a shell, with a clean environment, in its own process
//! group, bounded in time and output. Claude itself is run by `agent::process`, which needs more.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// After the process group is killed, how long to wait for the pipes to close. Only a process
/// that left the group (setsid) can hold them longer; its output is then abandoned.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// What to run and within which limits.
#[derive(Debug, Clone)]
pub struct Command<'a> {
    pub argv: &'a [String],
    /// The only PATH the command sees; nothing else of steward's environment reaches it.
    pub path_env: &'a str,
    pub cwd: Option<&'a Path>,
    pub timeout: Duration,
    /// Bytes of stdout kept from the start.
    pub stdout_cap: usize,
    /// Bytes of stderr kept from the end, where errors usually are.
    pub stderr_tail: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("empty argv")]
    EmptyArgv,
    /// The program does not exist: for probes and checks, "not available here".
    #[error("`{program}` not found ({why})")]
    NotFound { program: String, why: String },
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("cannot wait for `{program}`: {source}")]
    Wait {
        program: String,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct Output {
    /// None when the command timed out (its process group was killed).
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stdout_truncated: bool,
    pub stderr: String,
}

impl Output {
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    pub fn exit_code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    pub fn signal(&self) -> Option<i32> {
        self.status.and_then(|s| s.signal())
    }

    /// `exited with code 3`, `was killed by signal 9`, `timed out`.
    pub fn describe(&self, timeout: Duration) -> String {
        match (self.exit_code(), self.signal()) {
            (Some(c), _) => format!("exited with code {c}"),
            (None, Some(s)) => format!("was killed by signal {s}"),
            (None, None) => format!(
                "timed out after {}s; process group killed",
                timeout.as_secs_f64()
            ),
        }
    }
}

/// Runs the command to its end or its timeout. The whole process group is killed afterwards in
/// both cases: on a timeout to stop the work, on a normal exit so that a background child left
/// holding the pipes is not orphaned.
pub async fn run(cmd: &Command<'_>) -> Result<Output, ExecError> {
    run_env(cmd, &[]).await
}

/// [`run`] with variables added to the clean environment (e.g. `SYSTEMD_PAGER` for
/// `systemctl`), set after `PATH`, `LANG` and `LC_ALL` and so able to replace them.
pub async fn run_env(cmd: &Command<'_>, extra_env: &[(&str, &str)]) -> Result<Output, ExecError> {
    let raw = run_env_raw(cmd, extra_env).await?;
    Ok(Output {
        status: raw.status,
        stdout: String::from_utf8_lossy(&raw.stdout).into_owned(),
        stdout_truncated: raw.stdout_truncated,
        stderr: raw.stderr,
    })
}

/// [`Output`] with stdout as the bytes the command wrote: for output that is not text or must be
/// hashed exactly (git's `-z` lists, where paths may be any bytes; a diff's digest).
#[derive(Debug, Clone)]
pub struct RawOutput {
    /// None when the command timed out (its process group was killed).
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr: String,
}

/// [`run_env`] keeping stdout's bytes as they were written.
pub async fn run_env_raw(
    cmd: &Command<'_>,
    extra_env: &[(&str, &str)],
) -> Result<RawOutput, ExecError> {
    let (program, args) = cmd.argv.split_first().ok_or(ExecError::EmptyArgv)?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", cmd.path_env)
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = cmd.cwd {
        command.current_dir(dir);
    }
    // Forked by steward's spawner thread: the kernel kills it if steward dies (see `spawn`).
    let mut child = match crate::base::spawn::spawn(command).await {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let why = if program.contains('/') {
                format!("{program} does not exist")
            } else {
                "not found in PATH".to_string()
            };
            return Err(ExecError::NotFound {
                program: program.clone(),
                why,
            });
        }
        Err(source) => {
            return Err(ExecError::Spawn {
                program: program.clone(),
                source,
            });
        }
    };
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(nix::unistd::Pid::from_raw);
    // If this future is dropped (the run was cancelled), the whole group goes, not only the
    // leader that `kill_on_drop` reaches.
    let mut guard = GroupGuard(pgid);
    let out_task = child
        .stdout
        .take()
        .map(|s| tokio::spawn(read_head(s, cmd.stdout_cap)));
    let err_task = child
        .stderr
        .take()
        .map(|s| tokio::spawn(read_tail(s, cmd.stderr_tail)));

    let waited = tokio::time::timeout(cmd.timeout, child.wait()).await;
    // The group id cannot be reused while a member lives, so this cannot hit an unrelated
    // process in practice.
    guard.kill();
    let status = match waited {
        Ok(Ok(status)) => Some(status),
        Ok(Err(source)) => {
            return Err(ExecError::Wait {
                program: program.clone(),
                source,
            });
        }
        Err(_) => {
            // Reap the leader so that it does not linger as a zombie.
            let _ = child.wait().await;
            None
        }
    };
    let drain_out = async {
        match out_task {
            Some(t) => match tokio::time::timeout(DRAIN_GRACE, t).await {
                Ok(Ok(v)) => v,
                _ => (Vec::new(), false),
            },
            None => (Vec::new(), false),
        }
    };
    let drain_err = async {
        match err_task {
            Some(t) => match tokio::time::timeout(DRAIN_GRACE, t).await {
                Ok(Ok(v)) => v,
                _ => Vec::new(),
            },
            None => Vec::new(),
        }
    };
    let ((stdout, stdout_truncated), stderr) = tokio::join!(drain_out, drain_err);
    Ok(RawOutput {
        status,
        stdout,
        stdout_truncated,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// Kills the command's process group when dropped, unless that was done already.
struct GroupGuard(Option<nix::unistd::Pid>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads everything, keeping the first `cap` bytes. The rest is read and dropped rather than
/// left in the pipe, so that a chatty command finishes instead of blocking on a full pipe.
async fn read_head<R: AsyncRead + Unpin>(mut r: R, cap: usize) -> (Vec<u8>, bool) {
    let mut kept: Vec<u8> = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, truncated)
}

/// Reads everything, keeping the last `cap` bytes.
async fn read_tail<R: AsyncRead + Unpin>(mut r: R, cap: usize) -> Vec<u8> {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * cap {
                    kept.drain(..kept.len() - cap);
                }
            }
        }
    }
    if kept.len() > cap {
        kept.drain(..kept.len() - cap);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn cmd(argv: &[String], timeout_ms: u64) -> Command<'_> {
        Command {
            argv,
            path_env: "/usr/bin:/bin",
            cwd: None,
            timeout: Duration::from_millis(timeout_ms),
            stdout_cap: 8,
            stderr_tail: 8,
        }
    }

    #[tokio::test]
    async fn output_is_capped_and_the_environment_is_clean() {
        let a = argv(&["env"]);
        let out = run(&cmd(&a, 5000)).await.unwrap();
        assert_eq!(out.exit_code(), Some(0));
        assert!(out.stdout_truncated);
        assert_eq!(out.stdout.len(), 8);
        let a = argv(&["printenv", "HOME"]);
        assert_eq!(run(&cmd(&a, 5000)).await.unwrap().exit_code(), Some(1));
    }

    #[tokio::test]
    async fn extra_env_reaches_the_command_and_nothing_else_does() {
        let a = argv(&["printenv", "SYSTEMD_PAGER", "SYSTEMD_COLORS", "HOME"]);
        let mut c = cmd(&a, 5000);
        c.stdout_cap = 1024;
        let out = run_env(&c, &[("SYSTEMD_PAGER", ""), ("SYSTEMD_COLORS", "0")])
            .await
            .unwrap();
        // printenv exits 1 because HOME is missing: the environment is still clean.
        assert_eq!(out.exit_code(), Some(1));
        assert_eq!(out.stdout, "\n0\n");
    }

    #[tokio::test]
    async fn raw_output_keeps_bytes_that_are_not_utf8() {
        let a = argv(&["printf", "a\\377\\0b"]);
        let mut c = cmd(&a, 5000);
        c.stdout_cap = 1024;
        let raw = run_env_raw(&c, &[]).await.unwrap();
        assert_eq!(raw.stdout, b"a\xff\0b");
        assert!(!raw.stdout_truncated);
        // The text form replaces what is not UTF-8.
        assert_eq!(run(&c).await.unwrap().stdout, "a\u{fffd}\0b");
    }

    #[tokio::test]
    async fn a_missing_program_is_not_found() {
        let a = argv(&["steward-no-such-program"]);
        assert!(matches!(
            run(&cmd(&a, 1000)).await,
            Err(ExecError::NotFound { .. })
        ));
        assert!(matches!(
            run(&cmd(&[], 1000)).await,
            Err(ExecError::EmptyArgv)
        ));
    }

    #[tokio::test]
    async fn a_timeout_kills_the_group() {
        let a = argv(&["sleep", "30"]);
        let t = std::time::Instant::now();
        let out = run(&cmd(&a, 200)).await.unwrap();
        assert!(out.timed_out());
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(
            out.describe(Duration::from_millis(200))
                .contains("timed out")
        );
    }
}
