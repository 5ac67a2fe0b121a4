//! The git side of a change set: a worktree of the workspace repository per run, at its HEAD on
//! the branch `steward/<run-id>`, outside the live checkout (under steward's state directory).
//! The agent edits there; steward commits what it left ([`Worktree::commit`]), reads the change
//! against the base ([`Worktree::diff`], in `diff.rs`) and removes the worktree when the run is
//! done ([`Worktree::remove`], or `prune.rs` for many). The live checkout is never written.

use std::path::{Path, PathBuf};

use super::git::{self, ChangeGit};

/// The branch every change-set worktree is on is `BRANCH_PREFIX` + the run id.
pub const BRANCH_PREFIX: &str = "steward/";

/// Longest run id accepted as a branch and directory name.
const RUN_ID_MAX: usize = 128;

/// Subject lines of steward's commits are cut to this many characters of the intent.
const SUBJECT_INTENT_MAX: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error("run id `{run_id}` cannot name a branch and a directory: {why}")]
    BadRunId { run_id: String, why: &'static str },
    #[error("workspace {} is not a git repository: {detail}", workspace.display())]
    NotARepo { workspace: PathBuf, detail: String },
    #[error("workspace {} is a git repository with no commits: there is no HEAD to start a change from", workspace.display())]
    NoCommits { workspace: PathBuf },
    #[error("branch `{branch}` exists already in {}: a change set never reuses a branch", workspace.display())]
    BranchExists { branch: String, workspace: PathBuf },
    #[error("workspace {} sets `{key}`, which would run a command of the repository's choosing when steward checks out or stages files; refused", workspace.display())]
    RunsCode { workspace: PathBuf, key: String },
    #[error("steward cannot write {}, the workspace's git directory ({why}); a change run adds its worktree and branch there: under the systemd units add it to ReadWritePaths=", path.display())]
    ReadOnly { path: PathBuf, why: String },
    #[error("worktree directory {} exists already", path.display())]
    DirExists { path: PathBuf },
    #[error("worktrees directory {} is inside the live checkout {}", root.display(), workspace.display())]
    RootInsideWorkspace { root: PathBuf, workspace: PathBuf },
    #[error("path {} is not UTF-8, and git's argv needs it as text", path.display())]
    NonUtf8Path { path: PathBuf },
    #[error("cannot {what} at {}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("cannot run `git {command}`: {source}")]
    Exec {
        command: String,
        source: crate::base::exec::ExecError,
    },
    #[error("`git {command}` in {} {status}: {stderr}", dir.display())]
    Git {
        command: String,
        dir: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("`git {command}` wrote more than {cap} bytes: refused rather than read in part")]
    TooLarge { command: String, cap: usize },
    #[error("cannot parse the output of `git {command}`: {detail}")]
    Parse { command: String, detail: String },
}

/// One run's worktree: where it is, what it started from.
#[derive(Debug)]
pub struct Worktree {
    pub(super) git: ChangeGit,
    /// The live checkout's top level (canonical).
    pub workspace: PathBuf,
    /// The worktree's directory, `<worktrees_root>/<run-id>`.
    pub path: PathBuf,
    pub run_id: String,
    /// `steward/<run-id>`.
    pub branch: String,
    /// The full sha of the workspace's HEAD when the worktree was made.
    pub base: String,
}

/// The commit [`Worktree::commit`] made (or found) at the worktree's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub sha: String,
}

impl Worktree {
    /// What [`Worktree::create`] refuses about the workspace itself (not a repository's top
    /// level, no commit, code-running settings), checked before a run records anything.
    pub async fn check_workspace(git: &ChangeGit, workspace: &Path) -> Result<(), WorktreeError> {
        let top = toplevel(git, workspace).await?;
        refuse_code_running(git, &top).await?;
        head_commit(git, &top).await?;
        writable_git_dir(git, &top).await
    }

    /// A worktree of `workspace` at its HEAD, on a new branch `steward/<run_id>`, in
    /// `<worktrees_root>/<run_id>`. Refuses a workspace that is not the top level of a git
    /// repository with a commit, an existing branch or directory, a root inside the checkout,
    /// and a run id that is not a safe ref and path component.
    pub async fn create(
        git: &ChangeGit,
        workspace: &Path,
        worktrees_root: &Path,
        run_id: &str,
    ) -> Result<Worktree, WorktreeError> {
        check_run_id(run_id)?;
        let workspace = toplevel(git, workspace).await?;
        refuse_code_running(git, &workspace).await?;
        let base = head_commit(git, &workspace).await?;
        let branch = format!("{BRANCH_PREFIX}{run_id}");
        let ref_name = format!("refs/heads/{branch}");
        let exists = git
            .query(
                &workspace,
                &["show-ref", "--verify", "--quiet", "--", &ref_name],
            )
            .await?;
        if exists {
            return Err(WorktreeError::BranchExists { branch, workspace });
        }
        let root = prepare_root(&workspace, worktrees_root)?;
        let path = root.join(run_id);
        if path.symlink_metadata().is_ok() {
            return Err(WorktreeError::DirExists { path });
        }
        let path_text = utf8(&path)?;
        git.ok(
            &workspace,
            &[
                "worktree", "add", "--quiet", "-b", &branch, path_text, &base,
            ],
        )
        .await?;
        Ok(Worktree {
            git: git.clone(),
            workspace,
            path,
            run_id: run_id.to_string(),
            branch,
            base,
        })
    }

    /// Stages everything in the worktree and commits it as steward, the message naming the run
    /// and the intent. `None` when nothing changed since the base: no change is not an error.
    /// Commits the agent made itself (the hook denies them) stay in the history and in the diff.
    pub async fn commit(&self, intent: &str) -> Result<Option<Commit>, WorktreeError> {
        refuse_code_running(&self.git, &self.path).await?;
        self.git.ok(&self.path, &["add", "-A", "--", "."]).await?;
        let unchanged = self
            .git
            .query(
                &self.path,
                &["diff", "--cached", "--quiet", "--no-ext-diff"],
            )
            .await?;
        if unchanged {
            let head = self.head().await?;
            return Ok((head != self.base).then_some(Commit { sha: head }));
        }
        let message = commit_message(&self.run_id, intent);
        let user_name = format!("user.name={}", git::IDENTITY_NAME);
        let user_email = format!("user.email={}", git::IDENTITY_EMAIL);
        let args = [
            "-c",
            &user_name,
            "-c",
            &user_email,
            "commit",
            "--quiet",
            "--no-verify",
            "--cleanup=verbatim",
            "-m",
            &message,
        ];
        self.git
            .ok_env(&self.path, &args, &ChangeGit::identity_env(), git::LIST_CAP)
            .await?;
        Ok(Some(Commit {
            sha: self.head().await?,
        }))
    }

    /// The same worktree judged against another base: a push already on the checkout (CI),
    /// whose change is `base..HEAD`. `base` must be a full commit id the caller resolved.
    pub fn with_base(mut self, base: &str) -> Worktree {
        self.base = base.to_string();
        self
    }

    /// The live checkout's branch (`main`), or `None` when its HEAD is detached.
    pub async fn workspace_branch(&self) -> Result<Option<String>, WorktreeError> {
        let args = ["symbolic-ref", "--quiet", "--short", "HEAD"];
        let out = self.git.raw(&self.workspace, &args, &[], 4096).await?;
        match out.status.and_then(|s| s.code()) {
            Some(0) => Ok(Some(git::line(&out.stdout))),
            // Exit 1 with --quiet: HEAD is not a symbolic ref (detached).
            Some(1) => Ok(None),
            _ => Err(git::failed(&self.workspace, &args, &out)),
        }
    }

    /// The worktree's HEAD, a full sha.
    pub async fn head(&self) -> Result<String, WorktreeError> {
        head_commit(&self.git, &self.path).await
    }

    /// Removes the worktree (`git worktree remove --force`: what the agent left is discarded)
    /// and, when `delete_branch`, its branch.
    pub async fn remove(self, delete_branch: bool) -> Result<(), WorktreeError> {
        let path = utf8(&self.path)?;
        self.git
            .ok(&self.workspace, &["worktree", "remove", "--force", path])
            .await?;
        if delete_branch {
            delete_branch_in(&self.git, &self.workspace, &self.branch).await?;
        }
        Ok(())
    }
}

/// Deletes `branch` (forced: its commits were never merged when the change was rejected).
pub(super) async fn delete_branch_in(
    git: &ChangeGit,
    workspace: &Path,
    branch: &str,
) -> Result<(), WorktreeError> {
    git.ok(workspace, &["branch", "--quiet", "-D", "--", branch])
        .await
        .map(drop)
}

/// A run id is used as a directory name and a ref component: only `[A-Za-z0-9._-]`, not
/// starting with `.` or `-`, no `..`, not ending with `.lock` or `.`.
pub fn check_run_id(run_id: &str) -> Result<(), WorktreeError> {
    let bad = |why| {
        Err(WorktreeError::BadRunId {
            run_id: run_id.to_string(),
            why,
        })
    };
    if run_id.is_empty() {
        return bad("it is empty");
    }
    if run_id.len() > RUN_ID_MAX {
        return bad("it is longer than 128 characters");
    }
    if !run_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return bad("only letters, digits, `.`, `_` and `-` are allowed");
    }
    if run_id.starts_with(['.', '-']) {
        return bad("it starts with `.` or `-`");
    }
    if run_id.contains("..") {
        return bad("it contains `..`");
    }
    if run_id.ends_with('.') || run_id.ends_with(".lock") {
        return bad("it ends with `.` or `.lock`");
    }
    Ok(())
}

/// The canonical top level of the repository `workspace` is, which must be `workspace` itself.
async fn toplevel(git: &ChangeGit, workspace: &Path) -> Result<PathBuf, WorktreeError> {
    let not_a_repo = |detail: String| WorktreeError::NotARepo {
        workspace: workspace.to_path_buf(),
        detail,
    };
    let canonical = workspace
        .canonicalize()
        .map_err(|e| not_a_repo(format!("cannot resolve it: {e}")))?;
    let args = ["rev-parse", "--show-toplevel"];
    let out = git.raw(&canonical, &args, &[], git::LIST_CAP).await?;
    if out.status.and_then(|s| s.code()) != Some(0) {
        return Err(not_a_repo(out.stderr.trim().to_string()));
    }
    let top = git::path_from_bytes(out.stdout.strip_suffix(b"\n").unwrap_or(&out.stdout));
    let top = top.canonicalize().unwrap_or(top);
    if top != canonical {
        return Err(not_a_repo(format!(
            "it is inside the repository {}, not its top level",
            top.display()
        )));
    }
    Ok(canonical)
}

/// The repository's common git directory must be writable: `git worktree add` records the
/// worktree and its branch there. A read-only mount (systemd's `ProtectSystem=strict`) is found
/// here, before the run, not halfway into it.
async fn writable_git_dir(git: &ChangeGit, top: &Path) -> Result<(), WorktreeError> {
    let out = git
        .ok(
            top,
            &["rev-parse", "--path-format=absolute", "--git-common-dir"],
        )
        .await?;
    let dir = git::path_from_bytes(out.strip_suffix(b"\n").unwrap_or(&out));
    nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).map_err(|e| WorktreeError::ReadOnly {
        path: dir.clone(),
        why: e.desc().to_string(),
    })
}

/// [`WorktreeError::RunsCode`] when the repository at `dir` configures a filter driver.
async fn refuse_code_running(git: &ChangeGit, dir: &Path) -> Result<(), WorktreeError> {
    match git::code_running_setting(git, dir).await? {
        Some(key) => Err(WorktreeError::RunsCode {
            workspace: dir.to_path_buf(),
            key,
        }),
        None => Ok(()),
    }
}

/// The full sha of HEAD in `dir`, or [`WorktreeError::NoCommits`].
async fn head_commit(git: &ChangeGit, dir: &Path) -> Result<String, WorktreeError> {
    let args = ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"];
    let out = git.raw(dir, &args, &[], git::LIST_CAP).await?;
    match out.status.and_then(|s| s.code()) {
        Some(0) => Ok(git::line(&out.stdout)),
        Some(1) => Err(WorktreeError::NoCommits {
            workspace: dir.to_path_buf(),
        }),
        _ => Err(git::failed(dir, &args, &out)),
    }
}

/// Creates `worktrees_root` if needed and returns it canonical; it must lie outside the
/// checkout, or the agent's worktree would be part of the live tree.
fn prepare_root(workspace: &Path, worktrees_root: &Path) -> Result<PathBuf, WorktreeError> {
    std::fs::create_dir_all(worktrees_root).map_err(|source| WorktreeError::Io {
        path: worktrees_root.to_path_buf(),
        what: "create the worktrees directory",
        source,
    })?;
    let root = worktrees_root
        .canonicalize()
        .map_err(|source| WorktreeError::Io {
            path: worktrees_root.to_path_buf(),
            what: "resolve the worktrees directory",
            source,
        })?;
    if root.starts_with(workspace) {
        return Err(WorktreeError::RootInsideWorkspace {
            root,
            workspace: workspace.to_path_buf(),
        });
    }
    Ok(root)
}

/// `path` as text for git's argv.
pub(super) fn utf8(path: &Path) -> Result<&str, WorktreeError> {
    path.to_str().ok_or_else(|| WorktreeError::NonUtf8Path {
        path: path.to_path_buf(),
    })
}

/// `steward/<run>: <intent's first line, cut>`, then the whole intent and a `Steward-Run`
/// trailer, so that `git log` alone says which run made the commit and why.
fn commit_message(run_id: &str, intent: &str) -> String {
    let first = intent.lines().next().unwrap_or("").trim();
    let mut subject: String = first.chars().take(SUBJECT_INTENT_MAX).collect();
    if first.chars().count() > SUBJECT_INTENT_MAX {
        subject.push('…');
    }
    if subject.is_empty() {
        subject = "change".to_string();
    }
    format!(
        "{BRANCH_PREFIX}{run_id}: {subject}\n\nIntent:\n{}\n\nSteward-Run: {run_id}\n",
        intent.trim_end()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_that_are_not_safe_components_are_refused() {
        for ok in ["r1", "2026-11-30T15-41-21-ab12", "a.b_c-d"] {
            assert!(check_run_id(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in [
            "", "../x", "a/b", ".x", "-x", "a..b", "x.lock", "x.", "a b", "a\nb", "é", &long,
        ] {
            let err = check_run_id(bad).unwrap_err();
            assert!(err.to_string().contains("cannot name a branch"), "{bad}");
        }
    }

    #[test]
    fn the_message_names_the_run_and_the_intent() {
        let m = commit_message("r-1", "add authentication\nto every public service");
        assert!(m.starts_with("steward/r-1: add authentication\n\n"));
        assert!(m.contains("to every public service"));
        assert!(m.ends_with("Steward-Run: r-1\n"));
        let long = commit_message("r", &"x".repeat(100));
        assert!(long.lines().next().unwrap().ends_with('…'));
    }
}
