//! Reading what `nomad` says: `job plan` (job ID, Job Modify Index, per-group update counts),
//! `job inspect` (version, stopped), and the deployment outcome `job run` monitors. Strict:
//! anything but the format Nomad prints (`tests/data/nomad/SOURCES.md`) is an error.

use std::collections::BTreeMap;

/// Longer output than this is not a plan or a job steward reads.
const MAX_TEXT: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn err(msg: impl Into<String>) -> ParseError {
    ParseError(msg.into())
}

/// A job ID steward will put in an argv: what Nomad accepts (no whitespace or control
/// characters), without the quotes and backslashes `%q` would escape, and never starting with
/// `-` (it would be read as a flag).
pub fn valid_job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && !id.starts_with('-')
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\')
}

/// What `nomad job plan` says about one job file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub job: String,
    pub modify_index: u64,
    /// Update type (`create`, `destroy`, `in-place update`, `create/destroy update`, ...) →
    /// allocations, summed over the job's task groups.
    pub updates: BTreeMap<String, u64>,
    /// The dry run could not place every allocation (`- WARNING: Failed to place ...`).
    pub placement_failed: bool,
}

pub fn plan(text: &str) -> Result<Plan, ParseError> {
    let text = plain(text)?;
    let (diff, dry_run) = text
        .split_once("\nScheduler dry-run:\n")
        .ok_or_else(|| err("no `Scheduler dry-run:` section"))?;
    let mut lines = diff.lines().filter(|l| !l.trim().is_empty());
    let job = lines
        .next()
        .and_then(|l| quoted(strip_marker(l), "Job: "))
        .ok_or_else(|| err("the plan does not start with `Job: \"ID\"`"))?;
    if !valid_job_id(&job) {
        return Err(err(format!("`{job}` is not a job ID steward accepts")));
    }
    let mut updates = BTreeMap::new();
    for line in lines {
        let line = strip_marker(line).trim_start();
        if line.starts_with("Job: ") {
            return Err(err("more than one job in the plan (multiregion?)"));
        }
        if line.starts_with("Task Group: \"") {
            group_updates(line, &mut updates)?;
        }
    }
    let mut indexes = dry_run
        .lines()
        .filter_map(|l| l.strip_prefix("Job Modify Index: "));
    let modify_index = match (indexes.next(), indexes.next()) {
        (Some(n), None) => number(n, "Job Modify Index")?,
        (None, _) => {
            return Err(err(
                "no `Job Modify Index:` line (multiregion jobs have none)",
            ));
        }
        (Some(_), Some(_)) => return Err(err("more than one `Job Modify Index:` line")),
    };
    let placement_failed = dry_run
        .lines()
        .any(|l| l.starts_with("- WARNING: Failed to place"));
    Ok(Plan {
        job,
        modify_index,
        updates,
        placement_failed,
    })
}

/// `Task Group: "cache" (7 create, 1 in-place update)` → adds the counts.
fn group_updates(line: &str, updates: &mut BTreeMap<String, u64>) -> Result<(), ParseError> {
    let rest = &line["Task Group: \"".len()..];
    let (_, counts) = rest
        .split_once('"')
        .ok_or_else(|| err(format!("unterminated task group name in `{}`", cut(line))))?;
    let counts = counts.trim();
    if counts.is_empty() {
        return Ok(());
    }
    let inner = counts
        .strip_prefix('(')
        .and_then(|c| c.strip_suffix(')'))
        .ok_or_else(|| err(format!("`{}` has no `(N type, …)` counts", cut(line))))?;
    for part in inner.split(", ") {
        let (n, kind) = part
            .split_once(' ')
            .ok_or_else(|| err(format!("`{}` is not `N type`", cut(part))))?;
        let valid_kind = !kind.is_empty()
            && kind.len() <= 40
            && kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || "/- ".contains(c));
        if !valid_kind {
            return Err(err(format!("`{}` is not an update type", cut(kind))));
        }
        let n = number(n, "an update count")?;
        let sum = updates.entry(kind.to_string()).or_insert(0);
        *sum = sum.saturating_add(n);
    }
    Ok(())
}

/// The job as `nomad job inspect JOB` prints it: `{"Job": {...}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobState {
    pub version: u64,
    pub stopped: bool,
}

pub fn inspect(text: &str, job: &str) -> Result<JobState, ParseError> {
    if text.len() > MAX_TEXT {
        return Err(err("the job is too long to be read"));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| err(format!("not JSON: {e}")))?;
    let spec = value
        .get("Job")
        .filter(|j| j.is_object())
        .ok_or_else(|| err("no `Job` object"))?;
    match spec.get("ID").and_then(|v| v.as_str()) {
        Some(id) if id == job => {}
        Some(id) => return Err(err(format!("it is job `{}`, not `{job}`", cut(id)))),
        None => return Err(err("the job has no `ID`")),
    }
    let version = spec
        .get("Version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| err("the job has no numeric `Version`"))?;
    let stopped = match spec.get("Stop") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => return Err(err("`Stop` is not a boolean")),
    };
    Ok(JobState { version, stopped })
}

/// The deployment `job run` monitored, as its last status block says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: String,
    pub status: String,
    pub job_version: Option<u64>,
}

/// `None`: no deployment was monitored (system and batch jobs make none). With one, its
/// outcome is the last block whose `ID` is the monitored deployment's; later blocks of an
/// `auto_revert` deployment are not the change's.
pub fn deployment(text: &str) -> Result<Option<Deployment>, ParseError> {
    let text = plain(text)?;
    let Some(id) = text.lines().find_map(|l| {
        let (_, rest) = l.split_once("Monitoring deployment \"")?;
        rest.split_once('"').map(|(id, _)| id.to_string())
    }) else {
        return Ok(None);
    };
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(err(format!("`{}` is not a deployment ID", cut(&id))));
    }
    let mut found: Option<Deployment> = None;
    let mut block: Option<Deployment> = None;
    for (key, value) in text.lines().filter_map(kv) {
        match key {
            "ID" => {
                block = Some(Deployment {
                    id: value.to_string(),
                    status: String::new(),
                    job_version: None,
                })
            }
            "Job Version" => {
                if let Some(b) = block.as_mut() {
                    b.job_version = Some(number(value, "Job Version")?);
                }
            }
            "Status" => {
                if let Some(mut b) = block.take() {
                    if !value.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        || value.is_empty()
                    {
                        return Err(err(format!("`{}` is not a deployment status", cut(value))));
                    }
                    b.status = value.to_string();
                    if b.id.starts_with(&id) || id.starts_with(&b.id) {
                        found = Some(b);
                    }
                }
            }
            _ => {}
        }
    }
    found
        .map(Some)
        .ok_or_else(|| err(format!("no status of the monitored deployment `{id}`")))
}

/// `Key   = value` of Nomad's `formatKV` (aligned, maybe indented).
fn kv(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.trim().split_once(" = ").or_else(|| {
        // An empty value ends in ` =` (e.g. `Description =`).
        line.trim().strip_suffix(" =").map(|k| (k, ""))
    })?;
    Some((key.trim_end(), value.trim()))
}

/// The line without a diff marker (`+/- `, `+ `, `- `) at its start.
fn strip_marker(line: &str) -> &str {
    ["+/- ", "+ ", "- "]
        .iter()
        .find_map(|m| line.strip_prefix(m))
        .unwrap_or(line)
}

/// `<prefix>"value"` → value (the whole rest must be the quoted value).
fn quoted(line: &str, prefix: &str) -> Option<String> {
    let inner = line
        .strip_prefix(prefix)?
        .strip_prefix('"')?
        .strip_suffix('"')?;
    (!inner.contains('"')).then(|| inner.to_string())
}

fn number(text: &str, what: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    if t.is_empty() || t.len() > 20 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(format!("{what} `{}` is not a number", cut(t))));
    }
    t.parse().map_err(|e| err(format!("{what} `{t}`: {e}")))
}

/// The text without ANSI colour sequences (there should be none with `-no-color`), bounded.
fn plain(text: &str) -> Result<String, ParseError> {
    if text.len() > MAX_TEXT {
        return Err(err("the output is too long to be read"));
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    Ok(out)
}

/// At most 80 characters of untrusted text, for messages.
fn cut(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests;
