//! Steward's own git for change sets: every command through [`crate::base::exec`] (argv, clean
//! environment, own process group, timeout, output caps), with no user or system configuration
//! and every repository setting that could run code overridden.
//!
//! The workspace is the agent's playground and its `.git/config` may be hostile: a
//! `core.hooksPath` hook or a `core.fsmonitor` command would otherwise run as steward whenever
//! steward commits or diffs. `-c core.hooksPath=/dev/null` and `-c core.fsmonitor=false` (with
//! the rest of [`GIT_OVERRIDES`]) win over the repository's config for that one command.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::base::exec::{self, RawOutput};
use crate::engine::agent::GIT_OVERRIDES;

use super::worktree::WorktreeError;

/// How long one git command may take. `worktree add` checks out the whole tree; a hang (a lock,
/// a network filesystem) must not hold the run forever.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(300);

/// Output kept from git's listings (`-z` name lists, worktree lists). More is an error, never a
/// partial list read as complete.
pub const LIST_CAP: usize = 8 * 1024 * 1024;

const STDERR_TAIL: usize = 4096;

/// The identity of every commit steward makes, set per command: never the user's git config.
pub const IDENTITY_NAME: &str = "steward";
pub const IDENTITY_EMAIL: &str = "steward@localhost";

/// How steward runs git: the PATH it is found on and a private, empty HOME (so that no
/// `~/.gitconfig`, `~/.config/git` or credential store of the user's is read).
#[derive(Debug, Clone)]
pub struct ChangeGit {
    path_env: String,
    home: Arc<tempfile::TempDir>,
}

impl ChangeGit {
    /// `path_env` is the only PATH git sees (steward's configured PATH for the tools it runs).
    pub fn new(path_env: &str) -> Result<Self, WorktreeError> {
        let home = tempfile::Builder::new()
            .prefix("steward-git-home-")
            .tempdir()
            .map_err(|source| WorktreeError::Io {
                path: std::env::temp_dir(),
                what: "create a private HOME for git",
                source,
            })?;
        Ok(ChangeGit {
            path_env: path_env.to_string(),
            home: Arc::new(home),
        })
    }

    /// Runs `git <overrides> args` in `cwd` and returns what it did, whatever its exit code.
    pub async fn raw(
        &self,
        cwd: &Path,
        args: &[&str],
        extra_env: &[(&str, &str)],
        stdout_cap: usize,
    ) -> Result<RawOutput, WorktreeError> {
        let argv = argv(args);
        let home = self.home.path().to_string_lossy().into_owned();
        let mut env: Vec<(&str, &str)> = vec![
            ("GIT_CONFIG_NOSYSTEM", "1"),
            ("GIT_CONFIG_GLOBAL", "/dev/null"),
            ("HOME", &home),
            ("XDG_CONFIG_HOME", &home),
            ("GIT_TERMINAL_PROMPT", "0"),
            ("GIT_PAGER", "cat"),
            ("PAGER", "cat"),
        ];
        env.extend_from_slice(extra_env);
        exec::run_env_raw(
            &exec::Command {
                argv: &argv,
                path_env: &self.path_env,
                cwd: Some(cwd),
                timeout: GIT_TIMEOUT,
                stdout_cap,
                stderr_tail: STDERR_TAIL,
            },
            &env,
        )
        .await
        .map_err(|source| WorktreeError::Exec {
            command: args.join(" "),
            source,
        })
    }

    /// Runs git and requires exit 0 and complete output: its stdout, else an error naming the
    /// command, the directory and git's own message.
    pub async fn ok(&self, cwd: &Path, args: &[&str]) -> Result<Vec<u8>, WorktreeError> {
        self.ok_env(cwd, args, &[], LIST_CAP).await
    }

    /// [`ChangeGit::ok`] with extra environment and an own stdout cap.
    pub async fn ok_env(
        &self,
        cwd: &Path,
        args: &[&str],
        extra_env: &[(&str, &str)],
        stdout_cap: usize,
    ) -> Result<Vec<u8>, WorktreeError> {
        let out = self.raw(cwd, args, extra_env, stdout_cap).await?;
        if out.status.and_then(|s| s.code()) != Some(0) {
            return Err(failed(cwd, args, &out));
        }
        if out.stdout_truncated {
            return Err(WorktreeError::TooLarge {
                command: args.join(" "),
                cap: stdout_cap,
            });
        }
        Ok(out.stdout)
    }

    /// A yes/no query (`show-ref --quiet`, `diff --quiet`): exit 0 is yes, 1 is no; anything else
    /// (an error, a timeout, a signal) is an error, never read as an answer.
    pub async fn query(&self, cwd: &Path, args: &[&str]) -> Result<bool, WorktreeError> {
        let out = self.raw(cwd, args, &[], LIST_CAP).await?;
        match out.status.and_then(|s| s.code()) {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(failed(cwd, args, &out)),
        }
    }

    /// The environment that makes steward the author and committer of one command.
    pub fn identity_env() -> [(&'static str, &'static str); 4] {
        [
            ("GIT_AUTHOR_NAME", IDENTITY_NAME),
            ("GIT_AUTHOR_EMAIL", IDENTITY_EMAIL),
            ("GIT_COMMITTER_NAME", IDENTITY_NAME),
            ("GIT_COMMITTER_EMAIL", IDENTITY_EMAIL),
        ]
    }
}

/// `git --no-pager -c k=v … args`: the overrides come first so that they bind every subcommand.
fn argv(args: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = vec!["git".into(), "--no-pager".into()];
    // core.hooksPath=/dev/null and core.fsmonitor=false are in GIT_OVERRIDES: a hostile
    // workspace cannot run code through hooks or fsmonitor when steward runs git in it.
    for (key, value) in GIT_OVERRIDES {
        argv.push("-c".into());
        argv.push(format!("{key}={value}"));
    }
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

/// The first repository setting that would make git run a command of the repository's choosing
/// and that `-c` cannot switch off: a filter driver (`filter.<name>.clean`, `.smudge`,
/// `.process`) runs on checkout and on `git add` for every path `.gitattributes` assigns to it.
/// Such a workspace is refused rather than trusted.
pub async fn code_running_setting(
    git: &ChangeGit,
    dir: &Path,
) -> Result<Option<String>, WorktreeError> {
    let out = git.ok(dir, &["config", "--list", "-z"]).await?;
    Ok(out
        .split(|b| *b == 0)
        .filter_map(|entry| entry.split(|b| *b == b'\n').next())
        .map(|key| String::from_utf8_lossy(key).into_owned())
        .find(|key| {
            // Section and variable names are case-insensitive (the subsection is not).
            let key = key.to_ascii_lowercase();
            key.starts_with("filter.")
                && [".clean", ".smudge", ".process"]
                    .iter()
                    .any(|end| key.ends_with(end))
        }))
}

/// The error for a git command that did not exit 0.
pub fn failed(cwd: &Path, args: &[&str], out: &RawOutput) -> WorktreeError {
    let status = match (out.status.and_then(|s| s.code()), out.status) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(_)) => "was killed by a signal".to_string(),
        (None, None) => format!("timed out after {}s", GIT_TIMEOUT.as_secs()),
    };
    WorktreeError::Git {
        command: args.join(" "),
        dir: cwd.to_path_buf(),
        status,
        stderr: out.stderr.trim().to_string(),
    }
}

/// A path git printed (bytes, as `-z` gives them), exactly: paths need not be UTF-8.
pub fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

/// `text` as one line of git output, without its trailing newline.
pub fn line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches('\n')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_and_fsmonitor_are_overridden_before_the_subcommand() {
        let a = argv(&["status"]);
        let hooks = a.iter().position(|x| x == "core.hooksPath=/dev/null");
        let fsmonitor = a.iter().position(|x| x == "core.fsmonitor=false");
        let sub = a.iter().position(|x| x == "status");
        assert!(hooks.is_some() && fsmonitor.is_some());
        assert!(hooks < sub && fsmonitor < sub);
        assert_eq!(a[hooks.unwrap() - 1], "-c");
    }
}
