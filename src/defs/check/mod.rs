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
//!
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

mod exec;
pub mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use toml::Spanned;

use crate::config::line_col;
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

impl std::str::FromStr for Phase {
    type Err = String;

    /// Accepts the spellings an operator is likely to type (`invariants`, `post-action`).
    fn from_str(s: &str) -> Result<Phase, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "static" => Ok(Phase::Static),
            "preflight" | "pre" => Ok(Phase::Preflight),
            "post" | "post-action" | "post_action" => Ok(Phase::Post),
            "invariant" | "invariants" => Ok(Phase::Invariant),
            other => Err(format!(
                "unknown phase `{other}` (expected static, preflight, post or invariant)"
            )),
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
pub struct Pattern(pub regex::Regex);

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl Pattern {
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
        stdout_matches: Option<Pattern>,
        stdout_not_matches: Option<Pattern>,
        json_field: Option<JsonExpect>,
        /// Output (stderr and stdout) that means the facility is absent here, not broken: e.g.
        /// `systemctl` on a host whose PID 1 is not systemd.
        unavailable_when: Option<Pattern>,
    },
    Http {
        url: String,
        status: Vec<u16>,
        body_matches: Option<Pattern>,
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
        contains: Option<Pattern>,
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
            for def in parse_file(file)? {
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

// ---------------------------------------------------------------------------------------------
// Parsing

/// The file as this module sees it: only `check`; other top-level keys belong to other modules.
#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    check: Vec<Spanned<RawCheck>>,
}

type S<T> = Option<Spanned<T>>;

/// Every key any kind accepts; which ones a kind allows is checked afterwards so that the error
/// can say "`url` is not valid for kind `command`" rather than just "unknown field".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: Spanned<String>,
    description: S<String>,
    kind: S<String>,
    timeout_secs: S<f64>,
    #[serde(default)]
    tags: Vec<String>,
    // command
    argv: S<Vec<String>>,
    exit_code: S<i32>,
    stdout_matches: S<String>,
    stdout_not_matches: S<String>,
    json_field: S<String>,
    equals: S<toml::Value>,
    less_than: S<f64>,
    greater_than: S<f64>,
    #[serde(rename = "in")]
    in_: S<Vec<toml::Value>>,
    unavailable_when: S<String>,
    // http
    url: S<String>,
    status: S<StatusSpec>,
    body_matches: S<String>,
    max_latency_ms: S<u64>,
    // tcp
    host: S<String>,
    port: S<u16>,
    // systemd
    unit: S<String>,
    state: S<String>,
    // mount, file
    path: S<String>,
    options: S<Vec<String>>,
    fstype: S<String>,
    exists: S<bool>,
    max_age_secs: S<u64>,
    contains: S<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StatusSpec {
    One(u16),
    Many(Vec<u16>),
}

fn parse_file(file: &SourceFile) -> Result<Vec<CheckDef>, CheckError> {
    let raw: RawFile = toml::from_str(&file.text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| line_col(&file.text, s.start))
            .unwrap_or((0, 0));
        CheckError::Parse {
            origin: file.origin.clone(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    raw.check
        .into_iter()
        .map(|c| {
            let at = line_col(&file.text, c.span().start);
            build(file, at, c.into_inner())
        })
        .collect()
}

/// Turns one raw table into a definition, naming the field and its line on any problem.
fn build(
    file: &SourceFile,
    table_line: (usize, usize),
    raw: RawCheck,
) -> Result<CheckDef, CheckError> {
    let name = raw.name.get_ref().trim().to_string();
    // (line, column) of a value, like `table_line` for the table.
    let line_of = |span: std::ops::Range<usize>| line_col(&file.text, span.start);
    let err =
        |(line, column): (usize, usize), field: &str, message: String| CheckError::Definition {
            origin: file.origin.clone(),
            line,
            column,
            name: name.clone(),
            field: field.to_string(),
            message,
        };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(err(
            line_of(raw.name.span()),
            "name",
            "must be non-empty and use only letters, digits, `-`, `_` and `.`".into(),
        ));
    }
    let description = match &raw.description {
        Some(d) if !d.get_ref().trim().is_empty() => d.get_ref().trim().to_string(),
        Some(d) => return Err(err(line_of(d.span()), "description", "is empty".into())),
        None => {
            return Err(err(
                table_line,
                "description",
                "is required (a human reads it when the check fails)".into(),
            ));
        }
    };
    let Some(kind_name) = &raw.kind else {
        return Err(err(
            table_line,
            "kind",
            "is required (command, http, tcp, systemd, mount or file)".into(),
        ));
    };
    let timeout = match &raw.timeout_secs {
        None => DEFAULT_TIMEOUT,
        Some(t) if t.get_ref().is_finite() && *t.get_ref() > 0.0 && *t.get_ref() <= 86_400.0 => {
            Duration::from_secs_f64(*t.get_ref())
        }
        Some(t) => {
            return Err(err(
                line_of(t.span()),
                "timeout_secs",
                "must be a positive number of seconds (at most a day)".into(),
            ));
        }
    };

    // Which optional keys each kind accepts; anything else present is an error.
    let present: Vec<(&str, Option<std::ops::Range<usize>>)> = vec![
        ("argv", raw.argv.as_ref().map(|v| v.span())),
        ("exit_code", raw.exit_code.as_ref().map(|v| v.span())),
        (
            "stdout_matches",
            raw.stdout_matches.as_ref().map(|v| v.span()),
        ),
        (
            "stdout_not_matches",
            raw.stdout_not_matches.as_ref().map(|v| v.span()),
        ),
        ("json_field", raw.json_field.as_ref().map(|v| v.span())),
        ("equals", raw.equals.as_ref().map(|v| v.span())),
        ("less_than", raw.less_than.as_ref().map(|v| v.span())),
        ("greater_than", raw.greater_than.as_ref().map(|v| v.span())),
        ("in", raw.in_.as_ref().map(|v| v.span())),
        (
            "unavailable_when",
            raw.unavailable_when.as_ref().map(|v| v.span()),
        ),
        ("url", raw.url.as_ref().map(|v| v.span())),
        ("status", raw.status.as_ref().map(|v| v.span())),
        ("body_matches", raw.body_matches.as_ref().map(|v| v.span())),
        (
            "max_latency_ms",
            raw.max_latency_ms.as_ref().map(|v| v.span()),
        ),
        ("host", raw.host.as_ref().map(|v| v.span())),
        ("port", raw.port.as_ref().map(|v| v.span())),
        ("unit", raw.unit.as_ref().map(|v| v.span())),
        ("state", raw.state.as_ref().map(|v| v.span())),
        ("path", raw.path.as_ref().map(|v| v.span())),
        ("options", raw.options.as_ref().map(|v| v.span())),
        ("fstype", raw.fstype.as_ref().map(|v| v.span())),
        ("exists", raw.exists.as_ref().map(|v| v.span())),
        ("max_age_secs", raw.max_age_secs.as_ref().map(|v| v.span())),
        ("contains", raw.contains.as_ref().map(|v| v.span())),
    ];
    let allowed: &[&str] = match kind_name.get_ref().as_str() {
        "command" => &[
            "argv",
            "exit_code",
            "stdout_matches",
            "stdout_not_matches",
            "json_field",
            "equals",
            "less_than",
            "greater_than",
            "in",
            "unavailable_when",
        ],
        "http" => &["url", "status", "body_matches", "max_latency_ms"],
        "tcp" => &["host", "port"],
        "systemd" => &["unit", "state"],
        "mount" => &["path", "options", "fstype"],
        "file" => &["path", "exists", "max_age_secs", "contains"],
        other => {
            return Err(err(
                line_of(kind_name.span()),
                "kind",
                format!(
                    "unknown kind `{other}` (expected command, http, tcp, systemd, mount or file)"
                ),
            ));
        }
    };
    let kind_str = kind_name.get_ref().as_str();
    for (key, span) in &present {
        if let Some(span) = span
            && !allowed.contains(key)
        {
            return Err(err(
                line_of(span.clone()),
                key,
                format!("is not valid for kind `{kind_str}`"),
            ));
        }
    }

    let regex = |field: &str, v: &S<String>| -> Result<Option<Pattern>, CheckError> {
        match v {
            None => Ok(None),
            Some(s) => regex::Regex::new(s.get_ref())
                .map(|r| Some(Pattern(r)))
                .map_err(|e| err(line_of(s.span()), field, format!("invalid regex: {e}"))),
        }
    };
    let required = |field: &str, v: &S<String>| -> Result<String, CheckError> {
        match v {
            Some(s) if !s.get_ref().trim().is_empty() => Ok(s.get_ref().trim().to_string()),
            Some(s) => Err(err(line_of(s.span()), field, "is empty".into())),
            None => Err(err(
                table_line,
                field,
                format!("is required for kind `{kind_str}`"),
            )),
        }
    };
    let absolute = |field: &str, v: &S<String>| -> Result<PathBuf, CheckError> {
        let p = PathBuf::from(required(field, v)?);
        if !p.is_absolute() {
            let line = v.as_ref().map(|s| line_of(s.span())).unwrap_or(table_line);
            return Err(err(line, field, "must be an absolute path".into()));
        }
        Ok(p)
    };

    let kind = match kind_str {
        "command" => {
            let argv = match &raw.argv {
                Some(a) if !a.get_ref().is_empty() && !a.get_ref()[0].is_empty() => {
                    a.get_ref().clone()
                }
                Some(a) => {
                    return Err(err(
                        line_of(a.span()),
                        "argv",
                        "must name a program (argv[0])".into(),
                    ));
                }
                None => {
                    return Err(err(
                        table_line,
                        "argv",
                        "is required for kind `command` (a list; no shell is used)".into(),
                    ));
                }
            };
            let comparators: Vec<(&str, JsonCompare, std::ops::Range<usize>)> = [
                raw.equals.as_ref().map(|v| {
                    (
                        "equals",
                        JsonCompare::Equals(toml_to_json(v.get_ref())),
                        v.span(),
                    )
                }),
                raw.less_than
                    .as_ref()
                    .map(|v| ("less_than", JsonCompare::LessThan(*v.get_ref()), v.span())),
                raw.greater_than.as_ref().map(|v| {
                    (
                        "greater_than",
                        JsonCompare::GreaterThan(*v.get_ref()),
                        v.span(),
                    )
                }),
                raw.in_.as_ref().map(|v| {
                    (
                        "in",
                        JsonCompare::In(v.get_ref().iter().map(toml_to_json).collect()),
                        v.span(),
                    )
                }),
            ]
            .into_iter()
            .flatten()
            .collect();
            let json_field = match (&raw.json_field, comparators.len()) {
                (None, 0) => None,
                (None, _) => {
                    let (key, _, span) = &comparators[0];
                    return Err(err(
                        line_of(span.clone()),
                        key,
                        "needs `json_field` to say what to compare".into(),
                    ));
                }
                (Some(f), 0) => {
                    return Err(err(
                        line_of(f.span()),
                        "json_field",
                        "needs one of `equals`, `less_than`, `greater_than`, `in`".into(),
                    ));
                }
                (Some(f), 1) => {
                    let field = f.get_ref().trim().to_string();
                    if field.is_empty() {
                        return Err(err(line_of(f.span()), "json_field", "is empty".into()));
                    }
                    let compare = comparators
                        .into_iter()
                        .next()
                        .map(|(_, c, _)| c)
                        .ok_or_else(|| err(table_line, "json_field", "no comparator".into()))?;
                    Some(JsonExpect { field, compare })
                }
                (Some(_), _) => {
                    let (key, _, span) = &comparators[1];
                    return Err(err(
                        line_of(span.clone()),
                        key,
                        "only one of `equals`, `less_than`, `greater_than`, `in` may be given"
                            .into(),
                    ));
                }
            };
            CheckKind::Command {
                argv,
                exit_code: raw.exit_code.as_ref().map(|v| *v.get_ref()).unwrap_or(0),
                stdout_matches: regex("stdout_matches", &raw.stdout_matches)?,
                stdout_not_matches: regex("stdout_not_matches", &raw.stdout_not_matches)?,
                json_field,
                unavailable_when: regex("unavailable_when", &raw.unavailable_when)?,
            }
        }
        "http" => {
            let url = required("url", &raw.url)?;
            let line = raw
                .url
                .as_ref()
                .map(|s| line_of(s.span()))
                .unwrap_or(table_line);
            match reqwest::Url::parse(&url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                Ok(u) => {
                    return Err(err(
                        line,
                        "url",
                        format!("scheme `{}` is not http or https", u.scheme()),
                    ));
                }
                Err(e) => return Err(err(line, "url", format!("invalid URL: {e}"))),
            }
            let status = match &raw.status {
                None => vec![200],
                Some(s) => {
                    let list = match s.get_ref() {
                        StatusSpec::One(c) => vec![*c],
                        StatusSpec::Many(v) => v.clone(),
                    };
                    if list.is_empty() || list.iter().any(|c| !(100..=599).contains(c)) {
                        return Err(err(
                            line_of(s.span()),
                            "status",
                            "must be an HTTP status (100-599) or a non-empty list of them".into(),
                        ));
                    }
                    list
                }
            };
            CheckKind::Http {
                url,
                status,
                body_matches: regex("body_matches", &raw.body_matches)?,
                max_latency_ms: raw.max_latency_ms.as_ref().map(|v| *v.get_ref()),
            }
        }
        "tcp" => {
            let host = required("host", &raw.host)?;
            let port = match &raw.port {
                Some(p) if *p.get_ref() != 0 => *p.get_ref(),
                Some(p) => return Err(err(line_of(p.span()), "port", "must not be 0".into())),
                None => {
                    return Err(err(table_line, "port", "is required for kind `tcp`".into()));
                }
            };
            CheckKind::Tcp { host, port }
        }
        "systemd" => CheckKind::Systemd {
            unit: required("unit", &raw.unit)?,
            state: match &raw.state {
                None => "active".to_string(),
                Some(_) => required("state", &raw.state)?,
            },
        },
        "mount" => CheckKind::Mount {
            path: absolute("path", &raw.path)?,
            options: raw
                .options
                .as_ref()
                .map(|v| v.get_ref().clone())
                .unwrap_or_default(),
            fstype: raw.fstype.as_ref().map(|v| v.get_ref().clone()),
        },
        "file" => CheckKind::File {
            path: absolute("path", &raw.path)?,
            exists: raw.exists.as_ref().map(|v| *v.get_ref()).unwrap_or(true),
            max_age_secs: raw.max_age_secs.as_ref().map(|v| *v.get_ref()),
            contains: regex("contains", &raw.contains)?,
        },
        // Unknown kinds were rejected above.
        other => return Err(err(table_line, "kind", format!("unknown kind `{other}`"))),
    };
    if let CheckKind::File {
        exists: false,
        max_age_secs,
        contains,
        ..
    } = &kind
        && (max_age_secs.is_some() || contains.is_some())
    {
        return Err(err(
            table_line,
            "exists",
            "`exists = false` cannot be combined with `max_age_secs` or `contains`".into(),
        ));
    }
    Ok(CheckDef {
        name,
        description,
        kind,
        timeout,
        tags: raw.tags,
        origin: format!("{}:{}:{}", file.origin, table_line.0, table_line.1),
    })
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => serde_json::Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => serde_json::Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect::<serde_json::Map<_, _>>(),
        ),
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
