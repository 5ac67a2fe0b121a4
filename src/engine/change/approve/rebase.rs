//! The workspace moved on after the proposal: the change is replayed onto the new HEAD in a new
//! worktree on a new branch (never in the live checkout), with `git apply` (a clean apply or
//! nothing: no merge, no merge drivers), committed by steward, judged by steward's diff check
//! with the globs it was made under, and validated again. If all of that passes, it is filed
//! as a new pending change (new id, same intent, goal and run) that needs its own approval,
//! and the old one is `stale`, its reason naming the new one. Otherwise the old one is `stale`
//! with the reason, and the new worktree and branch are removed.

use time::OffsetDateTime;

use crate::defs::change::{ChangeError, ChangeSpec, ProtectedPaths};
use crate::engine::change::diff::{DiffLimits, patch_between};
use crate::engine::change::diff_check::{self, DiffVerdict, MAX_DIFF_BYTES};
use crate::engine::change::diff_files::record_files;
use crate::engine::change::record::{ChangeRecord, ChangeState, Transition};
use crate::engine::change::worktree::{Worktree, WorktreeError};
use crate::engine::change::{profile, static_phase};

use super::findings::short;
use super::{ApproveError, Checker, Problem, Verdict, mark};

/// What replaying the change came to.
enum Replayed {
    /// The new change, not filed yet, and its worktree.
    Passed(Box<ChangeRecord>),
    /// Why the change cannot move to the new HEAD.
    Refused(String),
}

/// Replays `rec` onto `to`; files the new change or marks the old one stale.
pub(super) async fn rebase_or_refuse(
    checker: &Checker<'_>,
    rec: &ChangeRecord,
    from: &str,
    to: &str,
) -> Result<Verdict, ApproveError> {
    let moved = format!("workspace HEAD moved from {} to {}", short(from), short(to));
    let new_id = ChangeRecord::new_id();
    let name = format!("{}-{}", rec.run, new_id);
    let Some(root) = rec.worktree.parent() else {
        let why = format!("{moved}; the change's worktree has no directory to put another in");
        return refuse(checker, rec, why);
    };
    let wt = match Worktree::create(checker.git(), &rec.workspace, root, &name).await {
        Ok(wt) => wt,
        Err(e) => return refuse(checker, rec, format!("{moved}; cannot rebase: {e}")),
    };
    let replayed = replay(checker, rec, &wt, &new_id).await;
    match replayed {
        Ok(Replayed::Passed(new)) => file(checker, rec, *new, &moved).await,
        Ok(Replayed::Refused(why)) => {
            discard(wt).await;
            refuse(checker, rec, format!("{moved}; {why}"))
        }
        Err(e) => {
            discard(wt).await;
            Err(e)
        }
    }
}

fn refuse(checker: &Checker<'_>, rec: &ChangeRecord, why: String) -> Result<Verdict, ApproveError> {
    Ok(Verdict::Refused(mark(
        checker.store,
        &rec.id,
        &Problem::Stale(why),
    )?))
}

/// The old change becomes `stale` naming the new one first (so that it cannot be approved
/// meanwhile), then the new one is filed.
async fn file(
    checker: &Checker<'_>,
    rec: &ChangeRecord,
    new: ChangeRecord,
    moved: &str,
) -> Result<Verdict, ApproveError> {
    let why = format!(
        "{moved}; rebased as {}, which needs its own approval",
        new.id
    );
    let old = match mark(checker.store, &rec.id, &Problem::Stale(why)) {
        Ok(old) => old,
        Err(e) => {
            // Decided meanwhile (rejected, approved elsewhere): the new change is not filed.
            let _ = super::remove_worktree(checker.git(), &new).await;
            return Err(e);
        }
    };
    checker.store.create(&new)?;
    Ok(Verdict::Rebased {
        old,
        new: Box::new(new),
    })
}

/// Applies the change's patch in `wt`, commits it, and judges the result as a new change.
async fn replay(
    checker: &Checker<'_>,
    rec: &ChangeRecord,
    wt: &Worktree,
    new_id: &str,
) -> Result<Replayed, ApproveError> {
    let git = checker.git();
    let limits = DiffLimits {
        text_cap: MAX_DIFF_BYTES + 1,
        ..DiffLimits::default()
    };
    let patch = patch_between(git, &rec.workspace, &rec.base, &rec.head, limits.max_bytes).await?;
    let patch_file = tempfile::NamedTempFile::new().map_err(|source| WorktreeError::Io {
        path: std::env::temp_dir(),
        what: "write the change's patch",
        source,
    })?;
    std::fs::write(patch_file.path(), &patch).map_err(|source| WorktreeError::Io {
        path: patch_file.path().to_path_buf(),
        what: "write the change's patch",
        source,
    })?;
    let patch_path = patch_file.path().to_string_lossy().into_owned();
    // Exactly as the patch says: no whitespace leniency a repository setting could ask for.
    let args = [
        "-c",
        "apply.ignoreWhitespace=no",
        "apply",
        "--index",
        "--whitespace=nowarn",
        &patch_path,
    ];
    let applied = git.raw(&wt.path, &args, &[], 64 * 1024).await?;
    if applied.status.and_then(|s| s.code()) != Some(0) {
        return Ok(Replayed::Refused(format!(
            "the change does not apply cleanly onto {}: {}",
            short(&wt.base),
            applied.stderr.trim()
        )));
    }
    if wt.commit(&rec.intent).await?.is_none() {
        return Ok(Replayed::Refused(format!(
            "{} already contains the change: nothing is left to apply",
            short(&wt.base)
        )));
    }
    let diff = wt.diff(limits).await?;
    let (files, mut refusals) = wt.changed_files(&diff).await?;
    let spec = match spec_of(rec) {
        Ok(spec) => spec,
        Err(e) => {
            return Ok(Replayed::Refused(format!(
                "its `[change]` rules do not load: {e}"
            )));
        }
    };
    let protected = ProtectedPaths::for_workspace(checker.cfg, &rec.workspace);
    match diff_check::check(&spec, &protected, &files, &diff.text) {
        Ok(DiffVerdict::NoChange) => {
            return Ok(Replayed::Refused("the rebased change is empty".into()));
        }
        Ok(DiffVerdict::Change) => {}
        Err(found) => refusals.extend(found),
    }
    if !refusals.is_empty() {
        let list: Vec<String> = refusals.iter().map(|r| r.to_string()).collect();
        return Ok(Replayed::Refused(format!(
            "steward's diff check refuses the rebased change: {}",
            list.join("; ")
        )));
    }
    validate(checker, rec, wt, new_id, &diff).await
}

/// The static phase and the rollback target of the rebased change, then its record.
async fn validate(
    checker: &Checker<'_>,
    rec: &ChangeRecord,
    wt: &Worktree,
    new_id: &str,
    diff: &crate::engine::change::diff::Diff,
) -> Result<Replayed, ApproveError> {
    let env = checker.profile_env();
    let files = record_files(diff);
    let report = static_phase::run(&env, rec.profile, &wt.path, &rec.validate, &files, 0).await;
    if let Some(v) = report.validations.iter().find(|v| !v.passed) {
        let exit = v.exit_code.map_or("no exit".to_string(), |c| c.to_string());
        let detail = v.error.clone().unwrap_or_else(|| format!("exit {exit}"));
        return Ok(Replayed::Refused(format!(
            "the rebased change fails validation: `{}` ({detail})",
            v.argv.join(" ")
        )));
    }
    let target = match profile::rollback_target(&env, rec.profile, &wt.path, &wt.base, &files).await
    {
        Ok(t) => t,
        Err(e) => {
            return Ok(Replayed::Refused(format!(
                "no rollback target for the rebased change: {e}"
            )));
        }
    };
    let now = OffsetDateTime::now_utc();
    let ttl = time::Duration::hours(checker.cfg.change.ttl_hours.min(i64::MAX as u64) as i64);
    let reason = format!(
        "rebased from {} onto {} (the workspace's HEAD moved); needs its own approval",
        rec.id,
        short(&wt.base)
    );
    let new = ChangeRecord {
        id: new_id.to_string(),
        state: ChangeState::Pending,
        base: wt.base.clone(),
        branch: wt.branch.clone(),
        head: diff.head.clone(),
        worktree: wt.path.clone(),
        diff_sha256: diff.diff_sha256.clone(),
        files,
        validation: report.validations,
        repair_rounds: 0,
        artefacts: report.artefacts,
        blast_radius: report.blast_radius,
        rollback_target: target,
        created: now,
        expires: now + ttl,
        reason: reason.clone(),
        steps: Vec::new(),
        reboot_needed: false,
        history: vec![Transition {
            at: now,
            to: ChangeState::Pending,
            by: "steward".into(),
            note: reason,
        }],
        ..rec.clone()
    };
    Ok(Replayed::Passed(Box::new(new)))
}

/// The `[change]` rules the change was made under, from its record.
fn spec_of(rec: &ChangeRecord) -> Result<ChangeSpec, ChangeError> {
    let mut t = toml::map::Map::new();
    let strings =
        |v: &[String]| toml::Value::Array(v.iter().cloned().map(toml::Value::String).collect());
    t.insert("edit".into(), strings(&rec.edit));
    t.insert(
        "validate".into(),
        toml::Value::Array(rec.validate.iter().map(|a| strings(a)).collect()),
    );
    let profile = serde_json::to_value(rec.profile)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    t.insert("profile".into(), toml::Value::String(profile));
    for (key, argv) in [("apply", &rec.apply), ("rollback", &rec.rollback)] {
        if let Some(a) = argv {
            t.insert(key.into(), strings(a));
        }
    }
    ChangeSpec::from_value(&toml::Value::Table(t))
}

/// Removes a rebase attempt's worktree and branch; a failure leaves them for `prune`.
async fn discard(wt: Worktree) {
    if let Err(e) = wt.remove(true).await {
        tracing::warn!("cannot remove the rebase attempt's worktree: {e}");
    }
}
