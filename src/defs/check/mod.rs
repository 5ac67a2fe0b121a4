//! Checks: typed, deterministic observations with an expectation. The model proposes; checks are
//! how steward decides.
//!
//! Checks live beside probes in `context/*.toml` as `[[check]]` tables. This module parses those
//! tables itself (and ignores everything else in the files, `[[probe]]` included) so that the two
//! definition kinds can evolve independently.
//!
//! Keys (unknown keys, and keys of another kind, are rejected with file and line):
//!
//! | kind | keys (required in bold) |
//! |---|---|
//! | all | **name**, **description**, **kind**, `timeout_secs` (default 10), `tags` |
//! | `command` | **argv** (no shell), `exit_code` (0), `stdout_matches`, `stdout_not_matches` (regex), `json_field` (`/json/pointer` or `dotted.path`) with one of `equals`, `less_than`, `greater_than`, `in = [...]`; `unavailable_when` (regex on stderr+stdout when the exit code is wrong) |
//! | `http` | **url**, `status` (200, or a list), `body_matches`, `max_latency_ms` |
//! | `tcp` | **host**, **port** |
//! | `systemd` | **unit**, `state` (`active`; compared with ActiveState, then SubState) |
//! | `mount` | **path** (absolute, compared literally), `options = ["ro", …]`, `fstype` |
//! | `file` | **path** (absolute), `exists` (true), `max_age_secs` (mtime), `contains` (regex) |
//! | `container` | **container** (name or id), `running` (true), `healthy` (false), `restarts_below` (N), `not_oom_killed` (true) |
//!
//! A `container` check is `unavailable` where no Docker API socket is configured or found.
//! A missing program (and `systemctl` where PID 1 is not systemd) gives `unavailable`: reported,
//! never a failure. `error` means steward could not evaluate the check and counts as a failure.
//!
//! ```toml
//! [[check]]
//! name = "api-healthy"
//! description = "The API answers its health endpoint quickly"
//! kind = "http"
//! url = "http://127.0.0.1:8080/health"
//! status = 200            # or [200, 204]
//! body_matches = "ok"
//! max_latency_ms = 500
//! timeout_secs = 5
//! tags = ["invariant"]
//! ```

mod build;
mod container;
mod exec;
pub mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use crate::defs::bundled::SourceFile;

pub use exec::{CheckEnv, run_checks, run_checks_in};
pub use validate::{PhaseReport, ValidateReport, validate, validate_in};

/// Whether a goal calls the model when the deterministic checks say nothing is wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelPolicy {
    /// Always call the model (once the static and preflight checks pass).
    #[default]
    Always,
    /// Deterministic first: only when a check fails or a probe signals attention.
    OnAttention,
}

/// Used when a check names no `timeout_secs`: long enough for a slow health endpoint, short
/// enough that a hung one cannot stall a run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Malformed TOML, an unknown key, or a value of the wrong type.
    #[error("{origin}:{line}:{column}: {message}")]
    Parse {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Well-formed TOML that does not make a valid check.
    #[error("{origin}:{line}:{column}: check `{name}`: field `{field}`: {message}")]
    Definition {
        origin: String,
        line: usize,
        column: usize,
        name: String,
        field: String,
        message: String,
    },
    /// `second` is where the name is defined again (`FILE:LINE:COL`), `first` where it was first.
    #[error("{second}: check `{name}` is already defined at {first}")]
    Duplicate {
        name: String,
        first: String,
        second: String,
        /// The file of `second`: the one in error.
        file: String,
    },
    #[error("unknown check `{name}` (known: {known})")]
    Unknown { name: String, known: String },
}

/// When a check runs, relative to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before anything: declarations parse. Failure aborts; nothing is run.
    Static,
    /// Before the agent may change anything. Failure aborts.
    Preflight,
    /// After the agent: the goal's success criteria. Failure fails the run.
    Post,
    /// Before and after every run: a pass turning into a fail is a regression.
    Invariant,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Static,
        Phase::Preflight,
        Phase::Post,
        Phase::Invariant,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Static => "static",
            Phase::Preflight => "preflight",
            Phase::Post => "post",
            Phase::Invariant => "invariant",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A phase name no spelling matches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown phase `{0}` (expected static, preflight, post or invariant)")]
pub struct UnknownPhase(pub String);

impl std::str::FromStr for Phase {
    type Err = UnknownPhase;

    /// Accepts the spellings an operator is likely to type (`invariants`, `post-action`).
    fn from_str(s: &str) -> Result<Phase, UnknownPhase> {
        match s.trim().to_ascii_lowercase().as_str() {
            "static" => Ok(Phase::Static),
            "preflight" | "pre" => Ok(Phase::Preflight),
            "post" | "post-action" | "post_action" => Ok(Phase::Post),
            "invariant" | "invariants" => Ok(Phase::Invariant),
            other => Err(UnknownPhase(other.to_string())),
        }
    }
}

/// A goal's `[checks]` table: which checks run in which phase (names or `tag:X`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoalChecks {
    #[serde(rename = "static")]
    pub static_: Vec<String>,
    pub preflight: Vec<String>,
    pub post: Vec<String>,
    pub invariants: Vec<String>,
    /// argv run when post-action checks fail (or an invariant regresses). Never a shell string.
    pub rollback: Option<Vec<String>>,
    /// `on_attention`: skip the model when every check is green and no probe needs attention.
    pub model: ModelPolicy,
}

impl GoalChecks {
    pub fn names(&self, phase: Phase) -> &[String] {
        match phase {
            Phase::Static => &self.static_,
            Phase::Preflight => &self.preflight,
            Phase::Post => &self.post,
            Phase::Invariant => &self.invariants,
        }
    }
}

/// A compiled regular expression that serialises as its source text.
#[derive(Debug, Clone)]
pub struct CheckRegex(pub regex::Regex);

impl Serialize for CheckRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl CheckRegex {
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// How a JSON field of a command's stdout is compared.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonCompare {
    Equals(serde_json::Value),
    LessThan(f64),
    GreaterThan(f64),
    In(Vec<serde_json::Value>),
}

#[derive(Debug, Clone, Serialize)]
pub struct JsonExpect {
    /// As written: `/a/b/0` (JSON pointer) or `a.b.0` (dotted path).
    pub field: String,
    pub compare: JsonCompare,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckKind {
    Command {
        argv: Vec<String>,
        exit_code: i32,
        stdout_matches: Option<CheckRegex>,
        stdout_not_matches: Option<CheckRegex>,
        json_field: Option<JsonExpect>,
        /// Output (stderr and stdout) that means the facility is absent here, not broken: e.g.
        /// `systemctl` on a host whose PID 1 is not systemd.
        unavailable_when: Option<CheckRegex>,
    },
    Http {
        url: String,
        status: Vec<u16>,
        body_matches: Option<CheckRegex>,
        max_latency_ms: Option<u64>,
    },
    Tcp {
        host: String,
        port: u16,
    },
    Systemd {
        unit: String,
        /// Compared with ActiveState, then SubState (so `running` and `exited` work too).
        state: String,
    },
    Mount {
        path: PathBuf,
        options: Vec<String>,
        fstype: Option<String>,
    },
    File {
        path: PathBuf,
        exists: bool,
        max_age_secs: Option<u64>,
        contains: Option<CheckRegex>,
    },
    /// One container, through the Docker API (`[docker] host`).
    Container {
        /// Its name (or id).
        container: String,
        /// Its state is `running` (default).
        running: bool,
        /// Its healthcheck says `healthy` (a container without one fails this).
        healthy: bool,
        /// Its restart count is below this.
        restarts_below: Option<u64>,
        /// The kernel did not OOM-kill it (default).
        not_oom_killed: bool,
    },
}

impl CheckKind {
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Command { .. } => "command",
            CheckKind::Http { .. } => "http",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Systemd { .. } => "systemd",
            CheckKind::Mount { .. } => "mount",
            CheckKind::File { .. } => "file",
            CheckKind::Container { .. } => "container",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckDef {
    pub name: String,
    pub description: String,
    #[serde(flatten)]
    pub kind: CheckKind,
    #[serde(rename = "timeout_secs", serialize_with = "ser_secs")]
    pub timeout: Duration,
    pub tags: Vec<String>,
    /// `FILE:LINE:COL` of the `[[check]]` table, for messages.
    pub origin: String,
}

fn ser_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// The facility the check needs is absent here (no `systemctl`, no `consul`): reported, but
    /// not a failure.
    Unavailable,
    /// steward could not evaluate the check (spawn or I/O error). Counted as a failure, because a
    /// check that cannot be evaluated proves nothing.
    Error,
}

impl CheckStatus {
    /// Whether this result blocks: `fail` and `error` do, `pass` and `unavailable` do not.
    pub fn is_failure(self) -> bool {
        matches!(self, CheckStatus::Fail | CheckStatus::Error)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
            CheckStatus::Unavailable => "unavailable",
            CheckStatus::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckResult {
    pub name: String,
    pub description: String,
    pub kind: String,
    pub status: CheckStatus,
    /// What was seen (exit code, status, state, age…), `null` when nothing could be observed.
    pub observed: serde_json::Value,
    /// The expectation in words, e.g. `exit 0, stdout not matching /\S/`.
    pub expected: String,
    pub detail: Option<String>,
    pub duration_ms: u64,
}

impl CheckResult {
    /// A copy safe to put in a prompt or a record: secrets removed from the observed output and
    /// the detail (a command check may print a token), and the expectation text.
    pub fn redacted(&self, redactor: &crate::base::redact::Redactor) -> CheckResult {
        fn walk(v: &serde_json::Value, r: &crate::base::redact::Redactor) -> serde_json::Value {
            match v {
                serde_json::Value::String(s) => serde_json::Value::String(r.redact(s)),
                serde_json::Value::Array(a) => {
                    serde_json::Value::Array(a.iter().map(|x| walk(x, r)).collect())
                }
                serde_json::Value::Object(m) => serde_json::Value::Object(
                    m.iter().map(|(k, x)| (k.clone(), walk(x, r))).collect(),
                ),
                other => other.clone(),
            }
        }
        CheckResult {
            observed: walk(&self.observed, redactor),
            detail: self.detail.as_deref().map(|d| redactor.redact(d)),
            expected: redactor.redact(&self.expected),
            ..self.clone()
        }
    }
}

/// The `[[check]]` tables of every context file, by name.
#[derive(Debug, Clone, Default)]
pub struct CheckSet {
    pub checks: Vec<CheckDef>,
}

impl CheckSet {
    /// Parses the `[[check]]` tables of the given files. Names must be unique across files.
    pub fn load(files: &[SourceFile]) -> Result<CheckSet, CheckError> {
        let mut checks: Vec<CheckDef> = Vec::new();
        for file in files {
            for def in build::parse_file(file)? {
                if let Some(prev) = checks.iter().find(|c| c.name == def.name) {
                    return Err(CheckError::Duplicate {
                        name: def.name.clone(),
                        first: prev.origin.clone(),
                        second: def.origin.clone(),
                        file: file.origin.clone(),
                    });
                }
                checks.push(def);
            }
        }
        Ok(CheckSet { checks })
    }

    pub fn get(&self, name: &str) -> Option<&CheckDef> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Names, `tag:NAME` or `*`, in order, without duplicates. An unknown plain name is an error
    /// (a typo must not silently drop a safety check); a tag may match nothing.
    pub fn select(&self, names: &[String]) -> Result<Vec<CheckDef>, CheckError> {
        let mut out: Vec<CheckDef> = Vec::new();
        let push = |c: &CheckDef, out: &mut Vec<CheckDef>| {
            if !out.iter().any(|o| o.name == c.name) {
                out.push(c.clone());
            }
        };
        for sel in names {
            let sel = sel.trim();
            if sel == "*" {
                for c in &self.checks {
                    push(c, &mut out);
                }
            } else if let Some(tag) = sel.strip_prefix("tag:") {
                for c in self
                    .checks
                    .iter()
                    .filter(|c| c.tags.iter().any(|t| t == tag))
                {
                    push(c, &mut out);
                }
            } else {
                let c = self.get(sel).ok_or_else(|| CheckError::Unknown {
                    name: sel.to_string(),
                    known: self
                        .checks
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
                push(c, &mut out);
            }
        }
        Ok(out)
    }

    /// The checks a goal runs in one phase.
    pub fn for_phase(&self, goal: &GoalChecks, phase: Phase) -> Result<Vec<CheckDef>, CheckError> {
        self.select(goal.names(phase))
    }
}

/// Counts by status, for summaries.
pub fn tally(results: &[CheckResult]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for r in results {
        *m.entry(r.status.as_str()).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests;
