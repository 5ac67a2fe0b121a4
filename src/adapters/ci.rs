//! `steward ci`: a push to main becomes a `deploy-review` run and a deploy decision.
//!
//! The workspace is the pushed repository, so it is untrusted: git runs through
//! [`crate::base::exec::run`] (argv, clean environment, bounded) with every repository setting that
//! could run code overridden, and revisions are resolved to commit ids before anything else
//! sees them.
//!
//! The classification travels in the existing verdict fields (so the verdict schema every goal
//! shares stays stable): a finding with `subject = "classification"` whose `detail` is `clean`,
//! `needs_reboot` or `risky`, and, as a fallback, a summary starting `classification: …`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::base::exec::{self, ExecError};
use crate::base::outcome::{ExitKind, Outcome};
use crate::base::signal::{self, Severity, Signal, Source};
use crate::config::Config;
use crate::engine::agent::{GIT_OVERRIDES, VerdictStatus};
use crate::engine::run::{RunRequest, RunResult};

/// The goal a CI push runs.
pub const GOAL: &str = "deploy-review";

/// How long one git command may take: resolving and diffing two commits is quick even in a big
/// repository; a hang (a lock, a network filesystem) must not hold the CI job forever.
const GIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Output kept from git. A diff of a push touching more than this is truncated, and the run
/// says so rather than reviewing a partial list as if it were complete.
const GIT_STDOUT_CAP: usize = 4 * 1024 * 1024;

/// Changed files listed in the prompt; the rest are counted. The agent can list them itself.
const PROMPT_FILES: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum CiError {
    #[error("--{which} is empty")]
    EmptyRevision { which: &'static str },
    #[error("--{which} `{rev}` is not a revision (it starts with `-`)")]
    OptionLike { which: &'static str, rev: String },
    #[error("workspace {workspace} is not a git repository: {detail}")]
    NotARepo { workspace: String, detail: String },
    #[error("--{which} `{rev}` is not a commit in {workspace}: {detail}")]
    UnknownRevision {
        which: &'static str,
        rev: String,
        workspace: String,
        detail: String,
    },
    #[error("`git {command}` {status}: {stderr}")]
    Git {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`git diff` printed more than {cap} bytes; the change is too large to review")]
    TooLarge { cap: usize },
    #[error("cannot run git: {0}")]
    Exec(#[from] ExecError),
}

impl CiError {
    /// What the operator (or the workflow) got wrong is a usage error; the rest are ours.
    pub fn exit_kind(&self) -> ExitKind {
        match self {
            CiError::EmptyRevision { .. }
            | CiError::OptionLike { .. }
            | CiError::NotARepo { .. }
            | CiError::UnknownRevision { .. }
            | CiError::TooLarge { .. } => ExitKind::Usage,
            CiError::Git { .. } | CiError::Exec(_) => ExitKind::Error,
        }
    }
}

/// One changed path, as `git diff --name-status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedFile {
    /// `A`, `M`, `D`, `T` … (renames are listed as a delete and an add).
    pub status: String,
    pub path: String,
}

/// Both revisions resolved, and what changed between them.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The revisions as CI passed them.
    pub base_arg: String,
    pub head_arg: String,
    /// Commit ids; for a first push, the empty tree's id.
    pub base: String,
    pub head: String,
    /// The base was all zeros (a branch's first push): everything in head counts as added.
    pub first_push: bool,
    pub files: Vec<ChangedFile>,
}

/// A git object id of zeros: what CI passes as `before` on a branch's first push.
pub fn is_zero_rev(rev: &str) -> bool {
    (rev.len() == 40 || rev.len() == 64) && rev.bytes().all(|b| b == b'0')
}

/// Resolves both revisions in the workspace and lists the changed files.
pub async fn inspect(cfg: &Config, base: &str, head: &str) -> Result<Change, CiError> {
    for (which, rev) in [("base", base), ("head", head)] {
        if rev.trim().is_empty() {
            return Err(CiError::EmptyRevision { which });
        }
        // `--end-of-options` guards git too; this gives the clearer message.
        if rev.starts_with('-') {
            return Err(CiError::OptionLike {
                which,
                rev: rev.to_string(),
            });
        }
    }
    let git = Git {
        workspace: &cfg.workspace,
        path_env: &cfg.claude.path,
    };
    let top = git.run(&["rev-parse", "--git-dir"]).await?;
    if let Err(detail) = top {
        return Err(CiError::NotARepo {
            workspace: cfg.workspace.display().to_string(),
            detail,
        });
    }
    let head_id = git.commit("head", head).await?;
    let first_push = is_zero_rev(base);
    let base_id = if first_push {
        // The empty tree in the repository's own hash; nothing is written (no `-w`).
        git.ok(&["hash-object", "-t", "tree", "--stdin"]).await?
    } else {
        git.commit("base", base).await?
    };
    let raw = git
        .ok(&[
            "diff",
            "--name-status",
            "-z",
            "--no-renames",
            "--no-ext-diff",
            "--no-textconv",
            "--end-of-options",
            &base_id,
            &head_id,
            "--",
        ])
        .await?;
    Ok(Change {
        base_arg: base.to_string(),
        head_arg: head.to_string(),
        base: base_id,
        head: head_id,
        first_push,
        files: parse_name_status(&raw),
    })
}

/// Parses `git diff --name-status -z --no-renames`: `STATUS\0PATH\0` pairs.
pub fn parse_name_status(raw: &str) -> Vec<ChangedFile> {
    let mut parts = raw.split('\0').filter(|p| !p.is_empty());
    let mut files = Vec::new();
    while let (Some(status), Some(path)) = (parts.next(), parts.next()) {
        files.push(ChangedFile {
            status: status.to_string(),
            path: path.to_string(),
        });
    }
    files
}

struct Git<'a> {
    workspace: &'a Path,
    path_env: &'a str,
}

impl Git<'_> {
    /// Runs git with the repository's code-running settings overridden. `Ok(Err(stderr))` is a
    /// git that ran and failed; the caller knows what that means.
    async fn run(&self, args: &[&str]) -> Result<Result<String, String>, CiError> {
        let mut argv: Vec<String> = vec!["git".into(), "--no-pager".into()];
        for (key, value) in GIT_OVERRIDES {
            argv.push("-c".into());
            argv.push(format!("{key}={value}"));
        }
        argv.extend(args.iter().map(|a| a.to_string()));
        let out = exec::run(&exec::Command {
            argv: &argv,
            path_env: self.path_env,
            cwd: Some(self.workspace),
            timeout: GIT_TIMEOUT,
            stdout_cap: GIT_STDOUT_CAP,
            stderr_tail: 4096,
        })
        .await?;
        if out.exit_code() == Some(0) {
            if out.stdout_truncated {
                return Err(CiError::TooLarge {
                    cap: GIT_STDOUT_CAP,
                });
            }
            return Ok(Ok(out.stdout));
        }
        if out.timed_out() {
            return Err(CiError::Git {
                command: args.join(" "),
                status: out.describe(GIT_TIMEOUT),
                stderr: out.stderr.trim().to_string(),
            });
        }
        Ok(Err(out.stderr.trim().to_string()))
    }

    async fn ok(&self, args: &[&str]) -> Result<String, CiError> {
        match self.run(args).await? {
            Ok(out) => Ok(out.trim_end_matches('\n').to_string()),
            Err(stderr) => Err(CiError::Git {
                command: args.join(" "),
                status: "failed".into(),
                stderr,
            }),
        }
    }

    /// The commit id `rev` names, or an error naming the revision.
    async fn commit(&self, which: &'static str, rev: &str) -> Result<String, CiError> {
        let peeled = format!("{rev}^{{commit}}");
        let args = [
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &peeled,
        ];
        match self.run(&args).await? {
            Ok(id) => Ok(id.trim().to_string()),
            Err(stderr) => Err(CiError::UnknownRevision {
                which,
                rev: rev.to_string(),
                workspace: self.workspace.display().to_string(),
                detail: if stderr.is_empty() {
                    "unknown revision (not fetched? check out with `fetch-depth: 0`)".into()
                } else {
                    stderr
                },
            }),
        }
    }
}

/// The `changed_files` variable: one `STATUS<TAB>PATH` a line, control characters escaped so a
/// file name cannot forge lines, and at most [`PROMPT_FILES`] of them.
pub fn changed_files_var(files: &[ChangedFile]) -> String {
    if files.is_empty() {
        return "(no files changed)".into();
    }
    let mut lines: Vec<String> = files
        .iter()
        .take(PROMPT_FILES)
        .map(|f| {
            let path: String = if f.path.chars().any(char::is_control) {
                f.path.escape_debug().collect()
            } else {
                f.path.clone()
            };
            format!("{}\t{path}", f.status)
        })
        .collect();
    if files.len() > PROMPT_FILES {
        lines.push(format!(
            "… and {} more (list them with git diff --stat)",
            files.len() - PROMPT_FILES
        ));
    }
    lines.join("\n")
}

/// The signal for a push: subject `ci:<head short>`, one fingerprint per (base, head).
pub fn signal(change: &Change) -> Signal {
    let short: String = change.head.chars().take(12).collect();
    let labels = BTreeMap::from([
        ("base".to_string(), change.base.clone()),
        ("head".to_string(), change.head.clone()),
        ("goal".to_string(), GOAL.to_string()),
    ]);
    Signal {
        source: Source::Ci,
        subject: format!("ci:{short}"),
        fingerprint: signal::fingerprint(&["ci", &change.base, &change.head]),
        severity: Severity::Info,
        labels,
        annotations: BTreeMap::new(),
        payload: serde_json::json!({
            "base": change.base_arg,
            "head": change.head_arg,
            "base_resolved": change.base,
            "head_resolved": change.head,
            "first_push": change.first_push,
            "files": change.files,
        }),
        received: OffsetDateTime::now_utc(),
        truncated: Vec::new(),
    }
}

/// The run for a push. It calls the model whenever a file changed: a review nobody made must
/// never read as "nothing to do" (deploy-review has no deterministic shortcut). A push that
/// changes no file (`--base` = `--head`, or the same tree) has nothing to review: the static
/// checks still run, then the run ends `no_action` without a model call, and
/// [`decide_change`] deploys. It runs inline, never through the daemon, because the CI job
/// waits for the decision.
pub fn request(change: &Change, lock_wait: Duration, dry_run: bool) -> RunRequest {
    let no_model = change.files.is_empty().then(|| {
        format!(
            "no files changed between {} and {}: nothing to review; the model was not called",
            short(&change.base),
            short(&change.head)
        )
    });
    let vars = BTreeMap::from([
        ("base".to_string(), change.base.clone()),
        ("head".to_string(), change.head.clone()),
        (
            "changed_files".to_string(),
            changed_files_var(&change.files),
        ),
    ]);
    RunRequest {
        goal: GOAL.to_string(),
        vars,
        signal: signal(change),
        dry_run,
        force_model: true,
        no_model,
        lock_wait,
    }
}

pub(super) fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployDecision {
    Deploy,
    NeedsApproval,
    Failed,
}

impl DeployDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployDecision::Deploy => "deploy",
            DeployDecision::NeedsApproval => "needs_approval",
            DeployDecision::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    Clean,
    NeedsReboot,
    Risky,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Clean => "clean",
            Classification::NeedsReboot => "needs_reboot",
            Classification::Risky => "risky",
        }
    }

    fn parse(text: &str) -> Option<Classification> {
        let word: String = text
            .trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || *c == ' ')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase()
            .replace(['-', ' '], "_");
        match word.as_str() {
            "clean" => Some(Classification::Clean),
            "needs_reboot" => Some(Classification::NeedsReboot),
            "risky" => Some(Classification::Risky),
            _ => None,
        }
    }
}

/// What CI does with the push, and why.
#[derive(Debug, Clone, Serialize)]
pub struct CiVerdict {
    pub decision: DeployDecision,
    pub classification: Option<Classification>,
    pub reason: String,
    #[serde(skip)]
    pub exit: ExitKind,
}

/// The classification the agent reported: the `classification` finding, else the summary's
/// `classification: …` prefix. Two findings that disagree count as none (a human decides).
pub fn classification(verdict: &crate::engine::agent::AgentVerdict) -> Option<Classification> {
    let from_findings: Vec<Classification> = verdict
        .findings
        .iter()
        .filter(|f| {
            f.get("subject")
                .and_then(|s| s.as_str())
                .is_some_and(|s| s.trim().eq_ignore_ascii_case("classification"))
        })
        .filter_map(|f| f.get("detail").and_then(|d| d.as_str()))
        .filter_map(Classification::parse)
        .collect();
    if let Some(first) = from_findings.first() {
        return from_findings.iter().all(|c| c == first).then_some(*first);
    }
    let summary = verdict.summary.trim_start();
    let rest = summary
        .get(..15)
        .filter(|p| p.eq_ignore_ascii_case("classification:"))
        .map(|_| &summary[15..])?;
    Classification::parse(rest)
}

/// The summary without a leading `classification: WORD` and its punctuation.
fn strip_classification(summary: &str) -> &str {
    let s = summary.trim_start();
    let Some(rest) = s
        .get(..15)
        .filter(|p| p.eq_ignore_ascii_case("classification:"))
        .map(|_| &s[15..])
    else {
        return summary;
    };
    let rest = rest.trim_start();
    let word_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    let after = rest[word_end..].trim_start_matches([',', '.', ';', ':', ' ', '-', '—']);
    if after.is_empty() { summary } else { after }
}

/// The decision for a push: a push that changes no file deploys once its run ended `no_action`
/// (its static checks passed and there was nothing to review); everything else as [`decide`].
pub fn decide_change(
    change: &Change,
    result: &RunResult,
    protected: &crate::defs::change::ProtectedPaths,
) -> CiVerdict {
    if change.files.is_empty() && result.outcome == Outcome::NoAction {
        return CiVerdict {
            decision: DeployDecision::Deploy,
            classification: None,
            reason: result.reason.clone(),
            exit: ExitKind::Ok,
        };
    }
    let verdict = decide(result);
    match protected_file(change, protected) {
        // A reviewer could be talked into calling a change to steward's own files, git hooks or
        // secrets clean; steward does not ask it.
        Some(why) if verdict.decision != DeployDecision::Failed => CiVerdict {
            decision: DeployDecision::NeedsApproval,
            classification: Some(Classification::Risky),
            reason: format!(
                "risky whatever the reviewer says: {why} (the reviewer: {})",
                verdict.reason
            ),
            exit: ExitKind::NeedsHuman,
        },
        _ => verdict,
    }
}

/// The first changed file steward protects, with the rule, if any.
fn protected_file(
    change: &Change,
    protected: &crate::defs::change::ProtectedPaths,
) -> Option<String> {
    change.files.iter().find_map(|f| {
        crate::defs::change::protected_by(&f.path, protected).map(|rule| {
            format!(
                "the push changes `{}`, which steward protects ({rule})",
                f.path
            )
        })
    })
}

/// Maps a finished run to the decision. Only a clean classification of a run that ended `ok`
/// with nothing proposed deploys; anything that stopped the review fails; the rest needs a
/// human.
pub fn decide(result: &RunResult) -> CiVerdict {
    let classification = result.verdict.as_ref().and_then(classification);
    let failed = |exit: ExitKind, reason: String| CiVerdict {
        decision: DeployDecision::Failed,
        classification,
        reason,
        exit,
    };
    match result.outcome {
        Outcome::Aborted => {
            return failed(
                ExitKind::Aborted,
                format!("aborted before the review: {}", result.reason),
            );
        }
        Outcome::Failed => {
            let exit = match result.exit {
                ExitKind::ValidationFailed => ExitKind::ValidationFailed,
                _ => ExitKind::AgentFailed,
            };
            return failed(exit, format!("the review failed: {}", result.reason));
        }
        Outcome::Cancelled => {
            return failed(
                result.exit,
                format!("the review was cancelled: {}", result.reason),
            );
        }
        Outcome::Running | Outcome::Crashed => {
            return failed(ExitKind::Error, "the run did not finish".into());
        }
        Outcome::Ok | Outcome::Fixed | Outcome::NoAction | Outcome::Escalated => {}
    }
    let Some(verdict) = &result.verdict else {
        return failed(
            ExitKind::AgentFailed,
            format!("no verdict from the review ({})", result.reason),
        );
    };
    if verdict.status == VerdictStatus::Failed {
        return failed(
            ExitKind::AgentFailed,
            format!(
                "the reviewer could not review the change: {}",
                verdict.summary
            ),
        );
    }
    // The summary starts with `classification: …`, which the decision already says.
    let summary = strip_classification(&verdict.summary);
    let approval = |reason: String| CiVerdict {
        decision: DeployDecision::NeedsApproval,
        classification,
        reason,
        exit: ExitKind::NeedsHuman,
    };
    match classification {
        None => approval(format!("the reviewer gave no classification: {}", summary)),
        Some(Classification::NeedsReboot) => approval(format!("needs a reboot: {}", summary)),
        Some(Classification::Risky) => approval(format!("risky: {}", summary)),
        Some(Classification::Clean) => {
            if !verdict.proposed_actions.is_empty() || !result.actions_filed.is_empty() {
                approval(format!(
                    "clean, but the reviewer proposes actions: {}",
                    summary
                ))
            } else if result.outcome != Outcome::Ok || verdict.status != VerdictStatus::Ok {
                approval(format!(
                    "clean, but the run ended {} ({})",
                    result.outcome, result.reason
                ))
            } else {
                CiVerdict {
                    decision: DeployDecision::Deploy,
                    classification,
                    reason: format!("clean: {}", summary),
                    exit: ExitKind::Ok,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_status_pairs_parse() {
        let files = parse_name_status("M\0hosts/a.nix\0A\0jobs/web.nomad\0D\0old file\0");
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].status, "M");
        assert_eq!(files[2].path, "old file");
        assert!(parse_name_status("").is_empty());
    }

    #[test]
    fn zero_revisions() {
        assert!(is_zero_rev(&"0".repeat(40)));
        assert!(is_zero_rev(&"0".repeat(64)));
        assert!(!is_zero_rev("0000"));
        assert!(!is_zero_rev(&format!("1{}", "0".repeat(39))));
    }

    #[test]
    fn file_names_cannot_forge_lines() {
        let files = vec![ChangedFile {
            status: "A".into(),
            path: "a\nM\tfake".into(),
        }];
        let var = changed_files_var(&files);
        assert_eq!(var.lines().count(), 1, "{var}");
    }

    fn verdict(summary: &str, findings: serde_json::Value) -> crate::engine::agent::AgentVerdict {
        serde_json::from_value(serde_json::json!({
            "status": "ok", "summary": summary, "findings": findings
        }))
        .unwrap()
    }

    #[test]
    fn classification_from_finding_then_summary() {
        let f = serde_json::json!([
            {"severity": "info", "subject": "hosts/a.nix", "detail": "risky words here"},
            {"severity": "warning", "subject": "classification", "detail": "needs_reboot"}
        ]);
        assert_eq!(
            classification(&verdict("classification: clean", f)),
            Some(Classification::NeedsReboot)
        );
        assert_eq!(
            classification(&verdict(
                "Classification: risky. SSH changes",
                serde_json::json!([])
            )),
            Some(Classification::Risky)
        );
        assert_eq!(
            classification(&verdict("looks fine", serde_json::json!([]))),
            None
        );
        let split = serde_json::json!([
            {"severity": "info", "subject": "classification", "detail": "clean"},
            {"severity": "info", "subject": "classification", "detail": "risky"}
        ]);
        assert_eq!(classification(&verdict("x", split)), None);
    }

    fn result(outcome: &str, exit: &str, verdict: serde_json::Value) -> RunResult {
        serde_json::from_value(serde_json::json!({
            "id": "r", "goal": GOAL, "source": "ci", "subject": "ci:x", "outcome": outcome,
            "exit": exit, "exit_code": 0, "reason": "why",
            "started": "2026-11-22T06:00:00Z", "finished": "2026-11-22T06:01:00Z",
            "duration_ms": 1, "agent_started": true, "cost_usd": 0.0, "num_turns": 1,
            "permission_denials": [], "verdict": verdict, "session_id": "s"
        }))
        .unwrap()
    }

    fn classified(status: &str, class: &str, proposed: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "status": status, "summary": "s",
            "findings": [{"severity": "info", "subject": "classification", "detail": class}],
            "proposed_actions": proposed
        })
    }

    #[test]
    fn decisions() {
        let none = serde_json::json!([]);
        let d = decide(&result("ok", "ok", classified("ok", "clean", none.clone())));
        assert_eq!((d.decision, d.exit), (DeployDecision::Deploy, ExitKind::Ok));
        for class in ["needs_reboot", "risky"] {
            let d = decide(&result(
                "escalated",
                "needs_human",
                classified("needs_attention", class, none.clone()),
            ));
            assert_eq!(
                (d.decision, d.exit),
                (DeployDecision::NeedsApproval, ExitKind::NeedsHuman)
            );
        }
        // Clean, but the model still proposes something: a human looks first.
        let proposed =
            serde_json::json!([{"command": ["reboot"], "rationale": "r", "risk": "low"}]);
        let d = decide(&result(
            "escalated",
            "needs_human",
            classified("ok", "clean", proposed),
        ));
        assert_eq!(d.decision, DeployDecision::NeedsApproval);
        // A risky classification never deploys, even in a run that ended ok.
        let d = decide(&result("ok", "ok", classified("ok", "risky", none.clone())));
        assert_eq!(d.decision, DeployDecision::NeedsApproval);
        let d = decide(&result("aborted", "aborted", serde_json::Value::Null));
        assert_eq!(
            (d.decision, d.exit),
            (DeployDecision::Failed, ExitKind::Aborted)
        );
        let d = decide(&result("failed", "agent_failed", serde_json::Value::Null));
        assert_eq!(
            (d.decision, d.exit),
            (DeployDecision::Failed, ExitKind::AgentFailed)
        );
        let d = decide(&result(
            "escalated",
            "needs_human",
            classified("failed", "clean", none),
        ));
        assert_eq!(
            (d.decision, d.exit),
            (DeployDecision::Failed, ExitKind::AgentFailed)
        );
        let d = decide(&result("no_action", "ok", serde_json::Value::Null));
        assert_eq!(d.decision, DeployDecision::Failed);
    }

    #[test]
    fn reasons_do_not_repeat_the_classification() {
        assert_eq!(
            strip_classification("classification: needs_reboot, kernel params"),
            "kernel params"
        );
        assert_eq!(
            strip_classification("classification: clean"),
            "classification: clean"
        );
        assert_eq!(strip_classification("all fine"), "all fine");
    }
}
