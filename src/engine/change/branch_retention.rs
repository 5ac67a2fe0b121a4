//! Retention of change-set branches. A change that never became pending (invalid, refused) or
//! that was decided (applied, rolled back, failed, rejected, stale, expired) leaves its
//! `steward/<run-id>` branch in the infrastructure repository for inspection. Once retention
//! removes the run that made it, the branch goes too, so the operator's repository does not
//! collect one branch per change forever.
//!
//! Only what is provably steward's is deleted: a branch named for the record's run, in the
//! record's workspace, still pointing at steward's own commit. A branch someone moved or built
//! on is theirs now: it is kept and named. An open change (pending, approved, applying) is never
//! touched; retention keeps its run anyway.

use serde::Serialize;

use super::git::ChangeGit;
use super::record::{ChangeRecord, ChangeState};
use super::store::{ChangeStore, StoreError};
use super::worktree::BRANCH_PREFIX;

/// What a pass deleted (or, in a dry run, would delete) and kept.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BranchesPruned {
    pub deleted: Vec<String>,
    pub kept: Vec<KeptBranch>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeptBranch {
    pub change: String,
    pub branch: String,
    pub reason: String,
}

/// Deletes the branches of the closed changes whose runs are in `removed_runs`.
pub async fn prune(
    store: &ChangeStore,
    git: &ChangeGit,
    removed_runs: &[String],
    dry_run: bool,
) -> Result<BranchesPruned, StoreError> {
    let mut out = BranchesPruned::default();
    let closed = store
        .list()?
        .into_iter()
        .filter(|r| removed_runs.contains(&r.run) && !still_open(r.state));
    for record in closed {
        let decided = match ours(git, &record).await {
            Ok(false) => continue,
            Ok(true) if dry_run => Ok(()),
            Ok(true) => delete(git, &record).await,
            Err(reason) => Err(reason),
        };
        match decided {
            Ok(()) => out.deleted.push(record.branch.clone()),
            Err(reason) => out.kept.push(KeptBranch {
                change: record.id.clone(),
                branch: record.branch.clone(),
                reason,
            }),
        }
    }
    Ok(out)
}

fn still_open(state: ChangeState) -> bool {
    matches!(
        state,
        ChangeState::Pending | ChangeState::Approved | ChangeState::Applying
    )
}

/// `Ok(true)`: the branch exists and is steward's to delete; `Ok(false)`: nothing to delete
/// (the branch or the workspace is gone); `Err`: it exists but is not provably steward's.
async fn ours(git: &ChangeGit, record: &ChangeRecord) -> Result<bool, String> {
    let named_for_run = record
        .branch
        .strip_prefix(BRANCH_PREFIX)
        .is_some_and(|rest| rest.starts_with(record.run.as_str()));
    if !named_for_run {
        return Err(format!("not named {BRANCH_PREFIX}{}", record.run));
    }
    if !record.workspace.is_dir() {
        return Ok(false);
    }
    let reference = format!("refs/heads/{}", record.branch);
    let tip = git
        .raw(
            &record.workspace,
            &["rev-parse", "--verify", "--quiet", &reference],
            &[],
            4096,
        )
        .await
        .map_err(|e| e.to_string())?;
    match tip.status.and_then(|s| s.code()) {
        Some(0) => {}
        Some(1) => return Ok(false),
        _ => return Err(format!("git rev-parse {reference} failed")),
    }
    let tip = String::from_utf8_lossy(&tip.stdout).trim().to_string();
    if tip != record.head {
        return Err(format!(
            "it points at {tip}, not at steward's commit {}: someone moved it",
            record.head
        ));
    }
    Ok(true)
}

async fn delete(git: &ChangeGit, record: &ChangeRecord) -> Result<(), String> {
    git.ok(
        &record.workspace,
        &["branch", "--quiet", "-D", "--", &record.branch],
    )
    .await
    .map(drop)
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(["-c", "user.email=t@t", "-c", "user.name=t"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A change record of `run` in `state`, its branch made in `ws` at a commit of its own.
    fn change(store: &ChangeStore, ws: &Path, run: &str, state: ChangeState) -> ChangeRecord {
        let branch = format!("steward/{run}");
        git(ws, &["checkout", "-q", "-b", &branch, "main"]);
        std::fs::write(ws.join(run), run).unwrap();
        git(ws, &["add", run]);
        git(ws, &["commit", "-qm", run]);
        let head = git(ws, &["rev-parse", "HEAD"]);
        git(ws, &["checkout", "-q", "main"]);
        let mut record = ChangeRecord::sample(state, time::OffsetDateTime::now_utc());
        record.run = run.into();
        record.branch = branch;
        record.head = head;
        record.workspace = ws.to_path_buf();
        store.create(&record).unwrap();
        record
    }

    #[tokio::test]
    async fn closed_changes_of_removed_runs_lose_their_branch_unless_someone_moved_it() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        git(&ws, &["init", "-q", "-b", "main"]);
        git(&ws, &["commit", "-q", "--allow-empty", "-m", "base"]);
        let store = ChangeStore::open(&tmp.path().join("state")).unwrap();
        change(&store, &ws, "r-invalid", ChangeState::Invalid);
        change(&store, &ws, "r-pending", ChangeState::Pending);
        change(&store, &ws, "r-kept-run", ChangeState::Rejected);
        change(&store, &ws, "r-moved", ChangeState::Expired);
        // Someone built on the expired change's branch: it is theirs now.
        git(&ws, &["checkout", "-q", "steward/r-moved"]);
        git(&ws, &["commit", "-q", "--allow-empty", "-m", "mine"]);
        git(&ws, &["checkout", "-q", "main"]);
        let git_ = ChangeGit::new("/usr/bin:/bin").unwrap();
        let removed: Vec<String> = ["r-invalid", "r-pending", "r-moved"]
            .map(String::from)
            .to_vec();
        let branches = || {
            git(
                &ws,
                &["branch", "--list", "steward/*", "--format=%(refname:short)"],
            )
        };

        let dry = prune(&store, &git_, &removed, true).await.unwrap();
        assert_eq!(dry.deleted, ["steward/r-invalid"]);
        assert!(
            branches().contains("steward/r-invalid"),
            "a dry run deletes nothing"
        );

        let done = prune(&store, &git_, &removed, false).await.unwrap();
        assert_eq!(done.deleted, ["steward/r-invalid"]);
        assert_eq!(done.kept.len(), 1);
        assert_eq!(done.kept[0].branch, "steward/r-moved");
        assert!(
            done.kept[0].reason.contains("someone moved it"),
            "{:?}",
            done.kept
        );
        let left = branches();
        assert!(!left.contains("steward/r-invalid"), "{left}");
        // Open, moved, and of a run retention kept: all still there.
        for b in ["steward/r-pending", "steward/r-moved", "steward/r-kept-run"] {
            assert!(left.contains(b), "{b} gone: {left}");
        }
        // Again: nothing left to do, nothing said twice.
        let again = prune(&store, &git_, &removed, false).await.unwrap();
        assert!(again.deleted.is_empty());
    }
}
