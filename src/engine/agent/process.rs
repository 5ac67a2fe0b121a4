//! The claude process: spawning (optionally inside a PID namespace), signalling its group, and
//! leaving nothing behind.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};
use tokio::sync::OnceCell;

use super::{AgentSpec, argv, environment};
use crate::base::procfs;

const UNSHARE_CANDIDATES: &[&str] = &[
    "/usr/bin/unshare",
    "/bin/unshare",
    "/usr/sbin/unshare",
    "/sbin/unshare",
];
const UNSHARE_FLAGS: &[&str] = &["--pid", "--fork", "--kill-child", "--mount-proc"];

static PIDNS: OnceCell<Option<PathBuf>> = OnceCell::const_new();

/// `unshare` if it can make a PID namespace here (root or CAP_SYS_ADMIN), probed once per process.
/// In the namespace claude is PID 1: when it dies, the kernel kills every tool shell it left,
/// which a process group alone cannot do (tool shells get their own groups). Whether a run uses
/// it is the run's own choice (`AgentSpec::pid_namespace`); only the host's answer is cached.
pub async fn pid_namespace() -> Option<&'static Path> {
    PIDNS.get_or_init(probe_unshare).await.as_deref()
}

async fn probe_unshare() -> Option<PathBuf> {
    let unshare = UNSHARE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| is_executable(p))?;
    let program = unshare.display().to_string();
    let argv: Vec<String> = std::iter::once(program.clone())
        .chain(UNSHARE_FLAGS.iter().map(|f| f.to_string()))
        .chain([program, "--version".to_string()])
        .collect();
    // Through exec like every other child: its own group, killed whole at the timeout.
    let probe = crate::base::exec::Command {
        argv: &argv,
        path_env: "/usr/bin:/bin:/usr/sbin:/sbin",
        cwd: None,
        timeout: Duration::from_secs(5),
        stdout_cap: 4096,
        stderr_tail: 4096,
    };
    match crate::base::exec::run(&probe).await {
        Ok(out) if out.status.is_some_and(|s| s.success()) => Some(unshare),
        _ => {
            tracing::info!(
                "no PID namespace for claude runs (unshare unavailable or not permitted)"
            );
            None
        }
    }
}

pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// claude's process tree as recorded in `run.json`, so that a later steward can end what a dead
/// one left: the group leader with its start time (a reused pid has another), and the HOME every
/// process of the run inherits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// The process that leads claude's group: `unshare` in a PID namespace, else claude.
    pub pid: u32,
    pub pgid: u32,
    /// `/proc/PID/stat` start time (clock ticks after boot) of the leader.
    pub start_ticks: u64,
    /// Start times only compare within one boot.
    pub boot_id: String,
    pub pid_namespace: bool,
    /// claude's private HOME, inherited by every process of the run, tool shells in groups of
    /// their own included.
    pub home: PathBuf,
}

/// Why claude could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(
        "claude binary not found or not executable at {bin} (PATH {path_env}); install @anthropic-ai/claude-code or fix the configured path"
    )]
    NotFound { bin: String, path_env: String },
    #[error("cannot start {claude} in {workspace}: {source}")]
    Start {
        claude: String,
        workspace: String,
        source: std::io::Error,
    },
    #[error("claude exited before steward could record it")]
    Gone,
}

/// Starts claude with stdin/stdout/stderr piped, in its own process group, inside a PID
/// namespace made by `unshare` if given. The group leader dies with steward (see [`crate::base::spawn`]);
/// with `unshare --kill-child` the namespace, so everything claude started, dies with it.
pub async fn spawn(spec: &AgentSpec, unshare: Option<&Path>) -> Result<(Child, Tree), SpawnError> {
    let claude = resolve_bin(&spec.claude_bin, &spec.path_env)?;
    let mut cmd = match unshare {
        Some(unshare) => {
            let mut c = Command::new(unshare);
            c.args(UNSHARE_FLAGS).arg(&claude);
            c
        }
        None => Command::new(&claude),
    };
    cmd.args(argv(spec))
        .env_clear()
        .envs(environment(spec))
        .current_dir(&spec.workspace)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = crate::base::spawn::spawn(cmd)
        .await
        .map_err(|source| SpawnError::Start {
            claude: claude.display().to_string(),
            workspace: spec.workspace.display().to_string(),
            source,
        })?;
    let pid = child.id().ok_or(SpawnError::Gone)?;
    // Not reaped yet, so /proc still has it (as a zombie at worst).
    let start_ticks = procfs::stat(pid).map_or(0, |s| s.start_ticks);
    let tree = Tree {
        pid,
        pgid: pid,
        start_ticks,
        boot_id: procfs::boot_id().unwrap_or_default(),
        pid_namespace: unshare.is_some(),
        home: spec.home.clone(),
    };
    Ok((child, tree))
}

/// Ends what a dead steward's run left running: the recorded group, if its leader is still the
/// process that was recorded (same boot, same start time), and every process that carries the
/// run's HOME and started after it (tool shells leave claude's group). Returns the pids killed.
pub fn end_tree(tree: &Tree) -> Vec<u32> {
    if tree.start_ticks == 0 || procfs::boot_id().as_deref() != Some(tree.boot_id.as_str()) {
        // Another boot: nothing of that run can be alive.
        return Vec::new();
    }
    let mut killed = Vec::new();
    if procfs::stat(tree.pid)
        .is_some_and(|s| s.start_ticks == tree.start_ticks && s.pgid == tree.pgid && !s.is_zombie())
    {
        signal_group(tree.pgid, Signal::SIGKILL);
        killed.push(tree.pid);
    }
    let home = format!("HOME={}", tree.home.display());
    for pid in procfs::pids() {
        if killed.contains(&pid) {
            continue;
        }
        let Some(s) = procfs::stat(pid) else { continue };
        if s.is_zombie() || s.start_ticks < tree.start_ticks || !procfs::environ_has(pid, &home) {
            continue;
        }
        if let Ok(raw) = i32::try_from(pid) {
            let _ = nix::sys::signal::kill(Pid::from_raw(raw), Signal::SIGKILL);
            killed.push(pid);
        }
    }
    killed
}

/// A path is used as is; a bare name (`claude`) is looked up in the run's PATH, as the shell
/// would, so that the wrapper (`unshare`) gets an absolute path.
pub fn resolve_bin(bin: &Path, path_env: &str) -> Result<PathBuf, SpawnError> {
    let found = if bin.components().count() > 1 || bin.is_absolute() {
        is_executable(bin).then(|| bin.to_path_buf())
    } else {
        std::env::split_paths(path_env)
            .map(|dir| dir.join(bin))
            .find(|p| is_executable(p))
    };
    found.ok_or_else(|| SpawnError::NotFound {
        bin: bin.display().to_string(),
        path_env: path_env.to_string(),
    })
}

/// Signals the whole group; a group that is already gone is fine.
pub fn signal_group(pgid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pgid) else { return };
    let _ = killpg(Pid::from_raw(raw), signal);
}

/// Without a PID namespace, tool shells live in their own groups: kill every descendant's group
/// while the tree can still be walked (before claude itself dies). Only groups led by a process of
/// the tree: a descendant may have joined a group of our own session (even ours), which must
/// never be signalled.
pub fn kill_descendant_groups(root: u32) {
    let tree = descendants(root);
    for &pid in &tree {
        if let Some(pgid) = pgid_of(pid)
            && pgid != root
            && tree.contains(&pgid)
        {
            signal_group(pgid, Signal::SIGKILL);
        }
        if let Ok(raw) = i32::try_from(pid) {
            let _ = nix::sys::signal::kill(Pid::from_raw(raw), Signal::SIGKILL);
        }
    }
}

fn pgid_of(pid: u32) -> Option<u32> {
    procfs::stat(pid).map(|s| s.pgid)
}

pub fn descendants(root: u32) -> Vec<u32> {
    let all: Vec<procfs::Stat> = procfs::pids()
        .into_iter()
        .filter_map(procfs::stat)
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|s| s.ppid == parent).map(|s| s.pid));
        i += 1;
    }
    found.remove(0);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_bare_names_in_the_run_path() {
        assert_eq!(
            resolve_bin(Path::new("sh"), "/nonexistent:/bin:/usr/bin").unwrap(),
            PathBuf::from("/bin/sh")
        );
        let err = resolve_bin(Path::new("no-such-claude"), "/bin")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no-such-claude") && err.contains("PATH /bin"),
            "{err}"
        );
        assert!(
            resolve_bin(Path::new("/nonexistent/claude"), "/bin")
                .unwrap_err()
                .to_string()
                .contains("/nonexistent/claude")
        );
        assert!(resolve_bin(Path::new("/bin/sh"), "").is_ok());
    }

    fn sleeper(home: &Path) -> std::process::Child {
        std::process::Command::new("sleep")
            .arg("30")
            .env_clear()
            .env("HOME", home)
            .process_group(0)
            .spawn()
            .unwrap()
    }

    fn dead(child: &mut std::process::Child) -> bool {
        std::thread::sleep(std::time::Duration::from_millis(100));
        child.try_wait().unwrap().is_some()
    }

    use std::os::unix::process::CommandExt as _;

    #[test]
    fn end_tree_kills_the_recorded_group_and_the_run_s_home_only() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("claude-home-a");
        let mut leader = sleeper(&home);
        let stat = procfs::stat(leader.id()).unwrap();
        // A tool shell in a group of its own, carrying the run's HOME.
        let mut tool = sleeper(&home);
        // Another run's process: same shape, another HOME.
        let mut stranger = sleeper(&dir.path().join("claude-home-b"));
        let tree = Tree {
            pid: leader.id(),
            pgid: leader.id(),
            start_ticks: stat.start_ticks,
            boot_id: procfs::boot_id().unwrap(),
            pid_namespace: false,
            home: home.clone(),
        };
        let mut killed = end_tree(&tree);
        killed.sort();
        let mut want = vec![leader.id(), tool.id()];
        want.sort();
        assert_eq!(killed, want);
        assert!(dead(&mut leader) && dead(&mut tool));
        assert!(!dead(&mut stranger), "another run's process was killed");
        let _ = stranger.kill();
        let _ = stranger.wait();
    }

    #[test]
    fn end_tree_never_kills_a_reused_pid() {
        let dir = tempfile::tempdir().unwrap();
        let mut other = sleeper(&dir.path().join("someone-else"));
        let stat = procfs::stat(other.id()).unwrap();
        // The record names this pid, but a process that started at another time.
        let tree = Tree {
            pid: other.id(),
            pgid: other.id(),
            start_ticks: stat.start_ticks - 1,
            boot_id: procfs::boot_id().unwrap(),
            pid_namespace: false,
            home: dir.path().join("claude-home-gone"),
        };
        assert!(end_tree(&tree).is_empty());
        // Nor anything after a reboot.
        let tree = Tree {
            start_ticks: stat.start_ticks,
            boot_id: "another-boot".into(),
            ..tree
        };
        assert!(end_tree(&tree).is_empty());
        assert!(!dead(&mut other));
        let _ = other.kill();
        let _ = other.wait();
    }

    #[test]
    fn finds_own_descendants() {
        use std::os::unix::process::CommandExt;
        // Its own group, like claude; the sleep stays in it (and a foreign group is never hit).
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let found = descendants(child.id());
        assert_eq!(found.len(), 1, "{found:?}");
        kill_descendant_groups(child.id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(descendants(child.id()).is_empty());
    }

    #[test]
    fn never_signals_a_group_led_outside_the_tree() {
        use std::os::unix::process::CommandExt;
        // outer (group leader G) → inner (in G) → sleep (in G). Walking from inner must not hit G.
        let mut outer = std::process::Command::new("sh")
            .args(["-c", "sh -c 'sleep 5 & wait' & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let tree = descendants(outer.id());
        assert_eq!(tree.len(), 2, "{tree:?}");
        let inner = tree
            .iter()
            .copied()
            .find(|p| descendants(*p).len() == 1)
            .unwrap();
        kill_descendant_groups(inner);
        // The sleep dies, so inner and then outer finish by themselves: by exiting, not by SIGKILL.
        let status = outer.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), None, "the foreign group was signalled");
    }
}
