//! The live workspace's git side of applying: is it still where the change started (at the base,
//! on the same branch, no edits to tracked files), fast-forwarding it to the change, returning it
//! to the base, and a temporary detached checkout of the base for a `command` rollback. Every
//! git command goes through [`ChangeGit`] (no user config, code-running settings overridden) and
//! is recorded as a [`Step`].

use std::path::Path;
use std::time::Instant;

use time::OffsetDateTime;

use crate::engine::change::git::{self, ChangeGit};
use crate::engine::change::profile::tail;
use crate::engine::change::record::{ChangeRecord, Step};
use crate::engine::change::worktree::WorktreeError;

/// Why the workspace is no longer where the change started (or where it ends), if it is not:
/// the change is stale.
pub(super) async fn not_at_base(
    git: &ChangeGit,
    rec: &ChangeRecord,
) -> Result<Option<String>, WorktreeError> {
    let ws = rec.workspace.as_path();
    if let Some(key) = git::code_running_setting(git, ws).await? {
        return Ok(Some(format!(
            "the workspace sets `{key}`, which would run a command of the repository's choosing \
             when steward checks files out"
        )));
    }
    // At the base (an agent's change), or at the change's head already (a push `steward ci
    // --apply` filed, checked out by the operator): fast-forwarding is then a no-op.
    let head = git::line(&git.ok(ws, &["rev-parse", "--verify", "HEAD"]).await?);
    if head != rec.base && head != rec.head {
        return Ok(Some(format!(
            "the workspace HEAD is {head}, neither the change's base {} nor its head: a commit \
             landed after the proposal",
            rec.base
        )));
    }
    let branch = current_branch(git, ws).await?;
    if branch != rec.workspace_branch {
        let name = |b: &Option<String>| b.clone().unwrap_or_else(|| "no branch".to_string());
        return Ok(Some(format!(
            "the workspace is on {}, but the change was proposed on {}",
            name(&branch),
            name(&rec.workspace_branch)
        )));
    }
    let dirty = git
        .ok(
            ws,
            &["status", "--porcelain=v1", "-z", "--untracked-files=no"],
        )
        .await?;
    if !dirty.is_empty() {
        let paths: Vec<String> = dirty
            .split(|b| *b == 0)
            .filter(|e| e.len() > 3)
            .take(5)
            .map(|e| String::from_utf8_lossy(&e[3..]).into_owned())
            .collect();
        return Ok(Some(format!(
            "the workspace has uncommitted changes to tracked files ({}): steward does not apply \
             over local edits",
            paths.join(", ")
        )));
    }
    Ok(None)
}

/// The branch the workspace is on, `None` for a detached HEAD.
async fn current_branch(git: &ChangeGit, ws: &Path) -> Result<Option<String>, WorktreeError> {
    let args = ["symbolic-ref", "--quiet", "--short", "HEAD"];
    let out = git.raw(ws, &args, &[], git::LIST_CAP).await?;
    match out.status.and_then(|s| s.code()) {
        Some(0) => Ok(Some(git::line(&out.stdout))),
        Some(1) => Ok(None),
        _ => Err(git::failed(ws, &args, &out)),
    }
}

/// `git merge --ff-only HEAD_OF_CHANGE` in the workspace: the repository says what runs.
pub(super) async fn fast_forward(git: &ChangeGit, rec: &ChangeRecord) -> Step {
    let args = ["merge", "--ff-only", "--quiet", rec.head.as_str()];
    git_step(git, &rec.workspace, "fast_forward", &args).await
}

/// `git reset --keep BASE` in the workspace: back to the base, refusing to lose local edits.
pub(super) async fn reset_to_base(git: &ChangeGit, rec: &ChangeRecord) -> Step {
    let args = ["reset", "--keep", "--quiet", rec.base.as_str()];
    git_step(git, &rec.workspace, "reset_workspace", &args).await
}

/// A detached checkout of the base in a fresh directory under `parent`, never the live checkout.
pub(super) async fn checkout_base(
    git: &ChangeGit,
    rec: &ChangeRecord,
    parent: &Path,
) -> (Step, Option<tempfile::TempDir>) {
    let dir = match std::fs::create_dir_all(parent).and_then(|()| {
        tempfile::Builder::new()
            .prefix(&format!("rollback-{}-", rec.id))
            .tempdir_in(parent)
    }) {
        Ok(d) => d,
        Err(e) => {
            let step = failed_step(
                "checkout_base",
                format!("cannot make a directory in {}: {e}", parent.display()),
            );
            return (step, None);
        }
    };
    let path = dir.path().to_string_lossy().into_owned();
    let args = [
        "worktree",
        "add",
        "--detach",
        "--quiet",
        path.as_str(),
        rec.base.as_str(),
    ];
    let step = git_step(git, &rec.workspace, "checkout_base", &args).await;
    let ok = step.ok;
    (step, ok.then_some(dir))
}

/// Removes the base checkout again (and its registration in the workspace repository).
pub(super) async fn remove_checkout(git: &ChangeGit, rec: &ChangeRecord, dir: &Path) -> Step {
    let path = dir.to_string_lossy().into_owned();
    let args = ["worktree", "remove", "--force", path.as_str()];
    git_step(git, &rec.workspace, "remove_base_checkout", &args).await
}

async fn git_step(git: &ChangeGit, ws: &Path, what: &str, args: &[&str]) -> Step {
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let out = git.raw(ws, args, &[], git::LIST_CAP).await;
    let (ok, exit_code, output) = match out {
        Ok(out) => {
            let code = out.status.and_then(|s| s.code());
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), out.stderr);
            (code == Some(0), code, tail(text.trim()))
        }
        Err(e) => (false, None, e.to_string()),
    };
    let mut argv = vec!["git".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    Step {
        what: what.to_string(),
        argv,
        started,
        duration_ms: clock.elapsed().as_millis() as u64,
        ok,
        exit_code,
        output,
        checks: None,
    }
}

/// A step that could not run at all.
pub(super) fn failed_step(what: &str, output: String) -> Step {
    Step {
        what: what.to_string(),
        argv: Vec::new(),
        started: OffsetDateTime::now_utc(),
        duration_ms: 0,
        ok: false,
        exit_code: None,
        output,
        checks: None,
    }
}
