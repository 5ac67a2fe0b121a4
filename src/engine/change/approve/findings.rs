//! The re-checks before an approval, in order, stopping at the first problem: the branch still
//! at the head, the diff still the one hashed, the workspace's HEAD still the base, no
//! uncommitted changes to tracked files in the live workspace, the change's worktree untouched,
//! the profile's static checks building or planning the same artefacts, and what a rollback
//! would return to still being what runs.

use std::path::Path;

use crate::engine::change::diff::{DiffLimits, diff_between};
use crate::engine::change::git::{self, ChangeGit};
use crate::engine::change::profile;
use crate::engine::change::record::{Artefacts, ChangeRecord, RollbackTarget};

use super::{ApproveError, Checker, Problem};

/// Paths named in a reason, at most.
const NAMED_PATHS: usize = 5;

/// The first reason the change cannot be approved as it is, or `None`.
pub(super) async fn first_problem(
    checker: &Checker<'_>,
    rec: &ChangeRecord,
) -> Result<Option<Problem>, ApproveError> {
    let git = checker.git();
    let ws = rec.workspace.as_path();
    if let Some(p) = branch_problem(git, rec).await? {
        return Ok(Some(p));
    }
    let diff = diff_between(git, ws, &rec.base, &rec.head, DiffLimits::default()).await?;
    if diff.diff_sha256 != rec.diff_sha256 {
        return Ok(Some(Problem::Stale(format!(
            "the diff {}..{} hashes to {}, not to the proposed {}: the change is not what was \
             reviewed",
            short(&rec.base),
            short(&rec.head),
            diff.diff_sha256,
            rec.diff_sha256
        ))));
    }
    let head = rev(git, ws, "HEAD").await?.unwrap_or_default();
    if head != rec.base {
        return Ok(Some(Problem::HeadMoved {
            from: rec.base.clone(),
            to: head,
        }));
    }
    let dirty = changed_paths(git, ws, "no").await?;
    if !dirty.is_empty() {
        return Ok(Some(Problem::Stale(format!(
            "the live workspace {} has uncommitted changes to tracked files ({}); steward \
             fast-forwards it to the change when applying, so commit or discard them first",
            ws.display(),
            named(&dirty)
        ))));
    }
    if let Some(p) = worktree_problem(git, rec).await? {
        return Ok(Some(p));
    }
    if let Some(p) = artefacts_problem(checker, rec).await {
        return Ok(Some(p));
    }
    Ok(target_problem(checker, rec).await)
}

/// The rollback target is read again: a NixOS switch or a Nomad job update made outside steward
/// since the proposal would send a rollback to an older state than the one running now.
async fn target_problem(checker: &Checker<'_>, rec: &ChangeRecord) -> Option<Problem> {
    let now = profile::rollback_target(
        &checker.profile_env(),
        rec.profile,
        &rec.worktree,
        &rec.base,
        &rec.files,
    )
    .await;
    target_moved(&rec.rollback_target, now.map_err(|e| e.to_string()))
}

fn target_moved(recorded: &RollbackTarget, now: Result<RollbackTarget, String>) -> Option<Problem> {
    let text = |t: &RollbackTarget| serde_json::to_string(t).unwrap_or_default();
    match now {
        Ok(now) if &now == recorded => None,
        Ok(now) => Some(Problem::Stale(format!(
            "what a rollback returns to has moved since the proposal: it was {}, it is {} now, so a \
             rollback would not restore what runs",
            text(recorded),
            text(&now)
        ))),
        Err(e) => Some(Problem::Stale(format!(
            "what a rollback returns to cannot be read now ({e}): the change would be applied \
             without a known way back"
        ))),
    }
}

/// The branch must exist and point at the head.
async fn branch_problem(
    git: &ChangeGit,
    rec: &ChangeRecord,
) -> Result<Option<Problem>, ApproveError> {
    let tip = rev(git, &rec.workspace, &format!("refs/heads/{}", rec.branch)).await?;
    Ok(match tip {
        None => Some(Problem::Stale(format!(
            "the change's branch `{}` no longer exists",
            rec.branch
        ))),
        Some(tip) if tip != rec.head => Some(Problem::Stale(format!(
            "the change's branch `{}` points at {}, not at the proposed head {}: the change is \
             not what was reviewed",
            rec.branch, tip, rec.head
        ))),
        Some(_) => None,
    })
}

/// The worktree the change is applied from must be at the head, with nothing added or changed.
async fn worktree_problem(
    git: &ChangeGit,
    rec: &ChangeRecord,
) -> Result<Option<Problem>, ApproveError> {
    let wt = rec.worktree.as_path();
    if !wt.is_dir() {
        return Ok(Some(Problem::Stale(format!(
            "the change's worktree {} is gone",
            wt.display()
        ))));
    }
    let head = rev(git, wt, "HEAD").await?.unwrap_or_default();
    if head != rec.head {
        return Ok(Some(Problem::Stale(format!(
            "the change's worktree {} is at {}, not at the change's head {}",
            wt.display(),
            head,
            rec.head
        ))));
    }
    let changed = changed_paths(git, wt, "all").await?;
    if !changed.is_empty() {
        return Ok(Some(Problem::Stale(format!(
            "the change's worktree {} has files changed or added after the change was made ({})",
            wt.display(),
            named(&changed)
        ))));
    }
    Ok(None)
}

/// The profile's static checks, run again on the change's tree, must pass and give the same
/// artefacts (store paths, Nomad modify indexes, compose config hashes).
async fn artefacts_problem(checker: &Checker<'_>, rec: &ChangeRecord) -> Option<Problem> {
    let round = rec.validation.iter().map(|v| v.round).max().unwrap_or(0);
    let report = profile::static_checks(
        &checker.profile_env(),
        rec.profile,
        &rec.worktree,
        &rec.files,
        round,
    )
    .await;
    if let Some(v) = report.validations.iter().find(|v| !v.passed) {
        let exit = v.exit_code.map_or("no exit".to_string(), |c| c.to_string());
        let detail = v.error.clone().unwrap_or_else(|| format!("exit {exit}"));
        return Some(Problem::Stale(format!(
            "the profile's check `{}` fails now ({detail})",
            v.argv.join(" ")
        )));
    }
    let differs = artefact_differences(&rec.artefacts, &report.artefacts);
    (!differs.is_empty()).then(|| {
        Problem::Stale(format!(
            "the artefacts changed since the proposal: {}",
            differs.join("; ")
        ))
    })
}

/// Each artefact that is not what was proposed, named with both values.
pub(super) fn artefact_differences(proposed: &Artefacts, now: &Artefacts) -> Vec<String> {
    fn compare<V: PartialEq + std::fmt::Display>(
        what: &str,
        a: &std::collections::BTreeMap<String, V>,
        b: &std::collections::BTreeMap<String, V>,
        out: &mut Vec<String>,
    ) {
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for k in keys {
            let show = |v: Option<&V>| v.map_or("none".to_string(), |v| v.to_string());
            if a.get(k) != b.get(k) {
                out.push(format!(
                    "{what} of {k}: proposed {}, now {}",
                    show(a.get(k)),
                    show(b.get(k))
                ));
            }
        }
    }
    let mut out = Vec::new();
    compare(
        "store path",
        &proposed.store_paths,
        &now.store_paths,
        &mut out,
    );
    compare(
        "Nomad job modify index",
        &proposed.nomad_modify_index,
        &now.nomad_modify_index,
        &mut out,
    );
    compare(
        "compose config sha256",
        &proposed.compose_config_sha256,
        &now.compose_config_sha256,
        &mut out,
    );
    out
}

/// `rev-parse --verify` of `what` to a commit: `None` when it does not exist.
pub(super) async fn rev(
    git: &ChangeGit,
    dir: &Path,
    what: &str,
) -> Result<Option<String>, ApproveError> {
    let spec = format!("{what}^{{commit}}");
    let args = [
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        &spec,
    ];
    let out = git.raw(dir, &args, &[], git::LIST_CAP).await?;
    match out.status.and_then(|s| s.code()) {
        Some(0) => Ok(Some(git::line(&out.stdout))),
        Some(1) => Ok(None),
        _ => Err(git::failed(dir, &args, &out).into()),
    }
}

/// Paths `git status` reports as changed in `dir` (`untracked`: `no` for tracked files only,
/// `all` for added files too). Without optional locks: steward only reads, never refreshes the
/// index of a checkout it does not own.
async fn changed_paths(
    git: &ChangeGit,
    dir: &Path,
    untracked: &str,
) -> Result<Vec<String>, ApproveError> {
    let untracked = format!("--untracked-files={untracked}");
    let args = [
        "--no-optional-locks",
        "status",
        "--porcelain=v1",
        "-z",
        "--ignore-submodules=none",
        &untracked,
    ];
    let out = git.ok(dir, &args).await?;
    let mut paths = Vec::new();
    let mut fields = out.split(|b| *b == 0).filter(|f| !f.is_empty());
    while let Some(entry) = fields.next() {
        let text = String::from_utf8_lossy(entry);
        paths.push(text.get(3..).unwrap_or_default().to_string());
        // A rename or copy is followed by its old path.
        if matches!(entry.first(), Some(b'R' | b'C')) {
            fields.next();
        }
    }
    Ok(paths)
}

fn named(paths: &[String]) -> String {
    let mut text = paths
        .iter()
        .take(NAMED_PATHS)
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > NAMED_PATHS {
        text.push_str(&format!(" and {} more", paths.len() - NAMED_PATHS));
    }
    text
}

pub(super) fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollback_target_that_moved_or_cannot_be_read_is_stale() {
        let generation = |number: u64| RollbackTarget::Generation {
            number,
            path: format!("/nix/store/{number}-nixos-system"),
        };
        assert!(target_moved(&generation(41), Ok(generation(41))).is_none());
        let moved = target_moved(&generation(41), Ok(generation(42))).unwrap();
        let text = moved.to_string();
        assert!(
            text.contains("\"number\":41") && text.contains("\"number\":42"),
            "{text}"
        );
        assert!(matches!(moved, Problem::Stale(_)));
        let unread = target_moved(&generation(41), Err("no such file".into())).unwrap();
        assert!(unread.to_string().contains("no such file"), "{unread}");
    }
}
