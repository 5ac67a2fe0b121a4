//! Removing the worktrees of finished runs: those registered in the workspace repository, inside
//! steward's worktrees directory, on their `steward/<run-id>` branch, whose run the caller says is
//! finished. A worktree whose directory is gone already is only unregistered (`git worktree
//! prune`); nothing outside the worktrees directory or on another branch is touched.

use std::path::{Path, PathBuf};

use super::git::{self, ChangeGit};
use super::worktree::{self, BRANCH_PREFIX, WorktreeError};

/// What [`prune`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PrunedWorktrees {
    /// Run ids whose worktree was removed.
    pub worktrees: Vec<String>,
    /// Run ids whose branch was deleted.
    pub branches: Vec<String>,
}

/// One entry of `git worktree list --porcelain -z`.
#[derive(Debug, Default)]
struct Listed {
    path: PathBuf,
    branch: Option<String>,
}

/// Removes the worktrees under `worktrees_root` whose run `is_finished`, and with
/// `delete_branches` their branches (also for runs whose worktree is gone already).
pub async fn prune(
    git: &ChangeGit,
    workspace: &Path,
    worktrees_root: &Path,
    is_finished: impl Fn(&str) -> bool,
    delete_branches: bool,
) -> Result<PrunedWorktrees, WorktreeError> {
    let mut pruned = PrunedWorktrees::default();
    // Registrations whose directory was deleted by hand go first, so that they are not listed.
    git.ok(workspace, &["worktree", "prune"]).await?;
    let Ok(root) = worktrees_root.canonicalize() else {
        // No worktrees directory: no worktree of steward's can exist; branches may.
        return prune_branches(git, workspace, &is_finished, delete_branches, pruned).await;
    };
    for listed in list(git, workspace).await? {
        let Some(run_id) = steward_run(&listed, &root) else {
            continue;
        };
        if !is_finished(&run_id) {
            continue;
        }
        let path = worktree::utf8(&listed.path)?;
        git.ok(workspace, &["worktree", "remove", "--force", path])
            .await?;
        pruned.worktrees.push(run_id);
    }
    prune_branches(git, workspace, &is_finished, delete_branches, pruned).await
}

/// The run id of a worktree steward made: directly under `root`, named for a valid run id, on
/// the branch of that run id.
fn steward_run(listed: &Listed, root: &Path) -> Option<String> {
    if listed.path.parent() != Some(root) {
        return None;
    }
    let run_id = listed.path.file_name()?.to_str()?.to_string();
    worktree::check_run_id(&run_id).ok()?;
    let expected = format!("refs/heads/{BRANCH_PREFIX}{run_id}");
    (listed.branch.as_deref() == Some(expected.as_str())).then_some(run_id)
}

/// Deletes the `steward/<run-id>` branches of finished runs that no worktree has checked out.
async fn prune_branches(
    git: &ChangeGit,
    workspace: &Path,
    is_finished: &impl Fn(&str) -> bool,
    delete_branches: bool,
    mut pruned: PrunedWorktrees,
) -> Result<PrunedWorktrees, WorktreeError> {
    if !delete_branches {
        return Ok(pruned);
    }
    let in_use: Vec<String> = list(git, workspace)
        .await?
        .into_iter()
        .filter_map(|l| l.branch)
        .collect();
    let prefix = format!("refs/heads/{BRANCH_PREFIX}");
    let refs = git
        .ok(
            workspace,
            &["for-each-ref", "--format=%(refname)", "--", &prefix],
        )
        .await?;
    for full in String::from_utf8_lossy(&refs).lines() {
        let Some(run_id) = full.strip_prefix(&prefix) else {
            continue;
        };
        if worktree::check_run_id(run_id).is_err()
            || !is_finished(run_id)
            || in_use.iter().any(|b| b == full)
        {
            continue;
        }
        let branch = format!("{BRANCH_PREFIX}{run_id}");
        worktree::delete_branch_in(git, workspace, &branch).await?;
        pruned.branches.push(run_id.to_string());
    }
    Ok(pruned)
}

/// The workspace's worktrees, the main checkout included.
async fn list(git: &ChangeGit, workspace: &Path) -> Result<Vec<Listed>, WorktreeError> {
    let out = git
        .ok(workspace, &["worktree", "list", "--porcelain", "-z"])
        .await?;
    Ok(parse_list(&out))
}

/// `--porcelain -z`: attribute fields (`worktree PATH`, `branch REF`, `HEAD SHA`, `detached`,
/// …) each NUL-terminated, an empty field between worktrees.
fn parse_list(out: &[u8]) -> Vec<Listed> {
    let mut all = Vec::new();
    let mut current: Option<Listed> = None;
    for field in out.split(|b| *b == 0) {
        if let Some(path) = field.strip_prefix(b"worktree ") {
            all.extend(current.take());
            current = Some(Listed {
                path: git::path_from_bytes(path),
                branch: None,
            });
        } else if let (Some(branch), Some(cur)) = (field.strip_prefix(b"branch "), &mut current) {
            cur.branch = Some(String::from_utf8_lossy(branch).into_owned());
        }
    }
    all.extend(current);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_porcelain_list_parses_paths_with_newlines() {
        let out = b"worktree /ws\0HEAD abc\0branch refs/heads/main\0\0worktree /st/a\nb\0HEAD abc\0detached\0\0worktree /st/r1\0HEAD abc\0branch refs/heads/steward/r1\0\0";
        let l = parse_list(out);
        assert_eq!(l.len(), 3);
        assert_eq!(l[1].path, PathBuf::from("/st/a\nb"));
        assert_eq!(l[1].branch, None);
        assert_eq!(steward_run(&l[2], Path::new("/st")), Some("r1".into()));
        assert_eq!(steward_run(&l[0], Path::new("/st")), None);
        let other = Listed {
            path: "/st/r2".into(),
            branch: Some("refs/heads/steward/r1".into()),
        };
        assert_eq!(steward_run(&other, Path::new("/st")), None);
    }
}
