//! The change record: what steward knows about one change set, from proposal to its end. One
//! JSON file per change, `STATE/changes/<state>/<id>.json`, moved between state directories by
//! [`super::store::ChangeStore`]. Every field says what happened; nothing is inferred later.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::defs::change::Profile;

/// Bumped when a field changes meaning; a record of another format is refused, never guessed.
pub const CHANGE_FORMAT: u32 = 1;

/// How long a pending change waits for a human before it expires.
pub const CHANGE_TTL_SECS: i64 = 7 * 24 * 3600;

/// Where a change is in its life. `pending` and `approved` are open; the rest are final except
/// `applying`, which a crash can leave behind (recovery marks it `failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeState {
    /// Validated, waiting for an operator.
    Pending,
    /// An operator approved it; steward applies it next.
    Approved,
    /// steward is applying, verifying or rolling it back.
    Applying,
    /// Applied and verified; the workspace branch was fast-forwarded to it.
    Applied,
    /// Applied, a check failed, and the rollback ran and verified.
    RolledBack,
    /// Applying or rolling back failed: a human must look at the host.
    Failed,
    /// An operator said no.
    Rejected,
    /// Its base, diff or artefacts no longer match what was proposed.
    Stale,
    /// Nobody decided in time.
    Expired,
    /// It never passed the static phase (or steward's diff check).
    Invalid,
}

impl ChangeState {
    /// Later states last: when a crash leaves a record in two directories, the later one wins.
    pub const ALL: [ChangeState; 10] = [
        ChangeState::Pending,
        ChangeState::Approved,
        ChangeState::Applying,
        ChangeState::Applied,
        ChangeState::RolledBack,
        ChangeState::Failed,
        ChangeState::Rejected,
        ChangeState::Stale,
        ChangeState::Expired,
        ChangeState::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeState::Pending => "pending",
            ChangeState::Approved => "approved",
            ChangeState::Applying => "applying",
            ChangeState::Applied => "applied",
            ChangeState::RolledBack => "rolled_back",
            ChangeState::Failed => "failed",
            ChangeState::Rejected => "rejected",
            ChangeState::Stale => "stale",
            ChangeState::Expired => "expired",
            ChangeState::Invalid => "invalid",
        }
    }

    /// Still waiting for a decision or for steward to act on one.
    pub fn is_open(self) -> bool {
        matches!(self, ChangeState::Pending | ChangeState::Approved)
    }
}

impl std::fmt::Display for ChangeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One file of the change, as the diff says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeFile {
    pub path: String,
    /// `added`, `modified`, `deleted`, `renamed`, `copied`, `type_changed`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    pub added: u64,
    pub removed: u64,
    #[serde(default)]
    pub binary: bool,
}

/// Which part of the static phase a validator is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidatorSource {
    /// The goal's `[change] validate`.
    Goal,
    /// Bundled with the profile (`nix flake check`, `nomad job validate`, ...).
    Profile,
}

/// One validator run on the changed tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub argv: Vec<String>,
    pub source: ValidatorSource,
    /// 0 for the first attempt, then one per repair round.
    pub round: u8,
    pub passed: bool,
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub timed_out: bool,
    pub duration_ms: u64,
    /// stdout and stderr, redacted and capped (the end is kept: that is where errors are).
    pub output: String,
    /// Why it could not run at all (not found, ...), when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the profile built or planned, which an approval is bound to as much as to the diff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artefacts {
    /// NixOS: the built system's store path per host.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub store_paths: BTreeMap<String, String>,
    /// Nomad: the Job Modify Index `nomad job plan` reported, per job file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nomad_modify_index: BTreeMap<String, u64>,
    /// Compose: sha256 of `compose config` output per project file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub compose_config_sha256: BTreeMap<String, String>,
}

impl Artefacts {
    pub fn is_empty(&self) -> bool {
        self.store_paths.is_empty()
            && self.nomad_modify_index.is_empty()
            && self.compose_config_sha256.is_empty()
    }
}

/// What the operator would see change on the host, as the profile's planning tells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlastRadius {
    /// NixOS: units that would be restarted, reloaded, started or stopped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<String>,
    /// Nomad: `create`, `destroy`, `update`, `in-place update` counts per job.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nomad: BTreeMap<String, BTreeMap<String, u64>>,
    /// Compose: services that would be recreated, per project file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub compose_services: BTreeMap<String, Vec<String>>,
    /// What the planning could not tell (an empty list above is "nothing", not "unknown",
    /// only when no note says otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Exactly what a rollback returns to: never "previous".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RollbackTarget {
    /// `command` and `compose`: the files (and the rollback argv) of this commit.
    BaseCommit { sha: String },
    /// NixOS: this system generation (number and store path).
    Generation { number: u64, path: String },
    /// Nomad: these job versions, per job.
    JobVersions { versions: BTreeMap<String, u64> },
}

/// One step of applying, verifying or rolling back, as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// `apply`, `test`, `switch`, `verify`, `rollback`, `verify_rollback`, `fast_forward`, ...
    pub what: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub argv: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    pub duration_ms: u64,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Redacted, capped output or the check results, whichever the step has.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<serde_json::Value>,
}

/// A state change, who made it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub to: ChangeState,
    /// `steward`, `cli:<user>`, `web:<session>`, `--by WHO`.
    pub by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Everything about one change set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub format: u32,
    pub id: String,
    pub state: ChangeState,
    /// The run that proposed it.
    pub run: String,
    pub goal: String,
    pub subject: String,
    pub intent: String,
    /// The live checkout (canonical), whose branch is fast-forwarded on success.
    pub workspace: PathBuf,
    /// The workspace's branch at proposal time (`main`), or `None` for a detached HEAD.
    pub workspace_branch: Option<String>,
    /// The workspace's HEAD the change starts from (full sha).
    pub base: String,
    /// `steward/<run-id>`.
    pub branch: String,
    /// steward's commit on `branch`.
    pub head: String,
    /// The worktree the change was made in (kept while the change is open).
    pub worktree: PathBuf,
    pub diff_sha256: String,
    pub files: Vec<ChangeFile>,
    pub profile: Profile,
    /// The goal's `[change] edit` globs and `validate` argv when the change was proposed: a
    /// change re-checked later (rebased at approval) is judged by the rules it was made under.
    pub edit: Vec<String>,
    pub validate: Vec<Vec<String>>,
    /// `command` profile: the argv, as the goal had them when the change was proposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Vec<String>>,
    /// Every validator run, every round.
    pub validation: Vec<Validation>,
    /// Repair rounds the agent used (0: the first attempt passed or none were allowed).
    #[serde(default)]
    pub repair_rounds: u8,
    #[serde(default)]
    pub artefacts: Artefacts,
    #[serde(default)]
    pub blast_radius: BlastRadius,
    pub rollback_target: RollbackTarget,
    /// The goal's post-action checks (names), run after applying and after rolling back.
    pub post_checks: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Why the change is in its state, for the non-obvious ones (invalid, stale, failed, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Applying, verifying and rolling back, step by step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Applied, and the profile says the host must reboot for all of it to take effect.
    #[serde(default)]
    pub reboot_needed: bool,
    pub history: Vec<Transition>,
}

impl ChangeRecord {
    /// A fresh change id: `c-` and 12 hex digits.
    pub fn new_id() -> String {
        let hex = uuid::Uuid::new_v4().simple().to_string();
        format!("c-{}", &hex[..12])
    }

    /// Ids are file names: refuse anything that could leave the directory.
    pub fn valid_id(id: &str) -> bool {
        id.len() <= 64
            && id.starts_with("c-")
            && id[2..].len() >= 4
            && id[2..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
    }

    /// Who approved it, if anyone did.
    pub fn approved_by(&self) -> Option<&str> {
        self.history
            .iter()
            .rev()
            .find(|t| t.to == ChangeState::Approved)
            .map(|t| t.by.as_str())
    }

    /// Every validator of the last round passed.
    pub fn validation_passed(&self) -> bool {
        let last = self.validation.iter().map(|v| v.round).max();
        self.validation
            .iter()
            .filter(|v| Some(v.round) == last)
            .all(|v| v.passed)
    }
}

#[cfg(test)]
impl ChangeRecord {
    /// A record for tests: a pending-looking `command` change of run `r-1`.
    pub(crate) fn sample(state: ChangeState, created: OffsetDateTime) -> ChangeRecord {
        ChangeRecord {
            format: CHANGE_FORMAT,
            id: ChangeRecord::new_id(),
            state,
            run: "r-1".into(),
            goal: "change".into(),
            subject: "intent".into(),
            intent: "bump".into(),
            workspace: "/ws".into(),
            workspace_branch: Some("main".into()),
            base: "a".repeat(40),
            branch: "steward/r-1".into(),
            head: "b".repeat(40),
            worktree: "/state/worktrees/r-1".into(),
            diff_sha256: "c".repeat(64),
            files: Vec::new(),
            profile: Profile::Command,
            edit: vec!["**".into()],
            validate: vec![],
            apply: Some(vec!["true".into()]),
            rollback: Some(vec!["true".into()]),
            validation: Vec::new(),
            repair_rounds: 0,
            artefacts: Artefacts::default(),
            blast_radius: BlastRadius {
                nomad: std::collections::BTreeMap::new(),
                ..BlastRadius::default()
            },
            rollback_target: RollbackTarget::BaseCommit {
                sha: "a".repeat(40),
            },
            post_checks: vec![],
            created,
            expires: created + time::Duration::days(7),
            reason: String::new(),
            steps: Vec::new(),
            reboot_needed: false,
            history: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_safe_file_names() {
        let id = ChangeRecord::new_id();
        assert!(ChangeRecord::valid_id(&id), "{id}");
        for bad in [
            "",
            "c-",
            "c-../x",
            "x-1234",
            "c-12/34",
            "c-.abc",
            &"c-a".repeat(40),
        ] {
            assert!(!ChangeRecord::valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn states_are_snake_case_on_disk_and_later_states_last() {
        assert_eq!(
            serde_json::to_string(&ChangeState::RolledBack).unwrap(),
            "\"rolled_back\""
        );
        for s in ChangeState::ALL {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(ChangeState::ALL[0], ChangeState::Pending);
    }
}
