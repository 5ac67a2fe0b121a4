//! A proposal: one note the agent suggested, as steward files it. What the agent wrote is
//! bounded (title, tags, body, notes per run) and redacted before anything is stored.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::base::redact::Redactor;

/// Where a proposal is: waiting for a human, or decided.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProposalState {
    Pending,
    Accepted,
    Rejected,
}

impl ProposalState {
    pub const ALL: [ProposalState; 3] = [
        ProposalState::Pending,
        ProposalState::Accepted,
        ProposalState::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProposalState::Pending => "pending",
            ProposalState::Accepted => "accepted",
            ProposalState::Rejected => "rejected",
        }
    }
}

impl std::fmt::Display for ProposalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who decided, when, and (a rejection) why; an acceptance names the note it wrote.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Decision {
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The note file an acceptance wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Proposal {
    pub id: String,
    pub state: ProposalState,
    pub title: String,
    pub tags: Vec<String>,
    pub body: String,
    /// The run whose verdict carried it, and that run's goal.
    pub run: String,
    pub goal: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// What steward cut to fit the limits (empty: nothing), so the reviewer knows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trimmed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// The bounds on what one run may propose.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_run: usize,
    pub title_chars: usize,
    pub tags: usize,
    pub tag_chars: usize,
    pub body_bytes: usize,
    /// Pending proposals kept at most; a run's proposals beyond it are not filed (and said so).
    pub pending: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_run: 5,
            title_chars: 120,
            tags: 8,
            tag_chars: 40,
            body_bytes: 8 * 1024,
            pending: 200,
        }
    }
}

/// The proposals in a verdict's `knowledge` array, bounded and redacted. Entries that are not
/// an object with a non-empty `title` and `body` are skipped and named in the second list.
pub fn from_verdict(
    notes: &[serde_json::Value],
    run: &str,
    goal: &str,
    redactor: &Redactor,
    limits: &Limits,
) -> (Vec<Proposal>, Vec<String>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (i, v) in notes.iter().enumerate() {
        if out.len() == limits.per_run {
            skipped.push(format!(
                "note {}: more than {} notes in one run",
                i + 1,
                limits.per_run
            ));
            continue;
        }
        match one(v, run, goal, redactor, limits) {
            Ok(p) => out.push(p),
            Err(why) => skipped.push(format!("note {}: {why}", i + 1)),
        }
    }
    (out, skipped)
}

fn one(
    v: &serde_json::Value,
    run: &str,
    goal: &str,
    redactor: &Redactor,
    limits: &Limits,
) -> Result<Proposal, String> {
    let text = |key: &str| -> Result<String, String> {
        let s = v.get(key).and_then(|s| s.as_str()).map(str::trim);
        match s {
            Some(s) if !s.is_empty() => Ok(redactor.redact(s)),
            _ => Err(format!("no `{key}`")),
        }
    };
    let mut trimmed = Vec::new();
    let title = bound_chars(&text("title")?, limits.title_chars, "title", &mut trimmed);
    let title = title.replace(['\n', '\r'], " ");
    let body = bound_bytes(&text("body")?, limits.body_bytes, &mut trimmed);
    let tags = tags(v.get("tags"), goal, redactor, limits, &mut trimmed);
    Ok(Proposal {
        id: new_id(),
        state: ProposalState::Pending,
        title,
        tags,
        body,
        run: run.to_string(),
        goal: goal.to_string(),
        created: OffsetDateTime::now_utc(),
        trimmed,
        decision: None,
    })
}

/// Tags as a note needs them: one lowercase word each (inner whitespace becomes `-`), bounded in
/// number and length; none left, the goal's name (a note without tags is never selected).
fn tags(
    v: Option<&serde_json::Value>,
    goal: &str,
    redactor: &Redactor,
    limits: &Limits,
    trimmed: &mut Vec<String>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let given = v.and_then(|t| t.as_array()).cloned().unwrap_or_default();
    for t in given.iter().filter_map(|t| t.as_str()) {
        let word = redactor
            .redact(t.trim())
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join("-");
        let word: String = word.chars().take(limits.tag_chars).collect();
        if !word.is_empty() && !out.contains(&word) {
            out.push(word);
        }
    }
    if out.len() > limits.tags {
        trimmed.push(format!(
            "tags: kept the first {} of {}",
            limits.tags,
            out.len()
        ));
        out.truncate(limits.tags);
    }
    if out.is_empty() {
        trimmed.push(format!("tags: none given, tagged with the goal `{goal}`"));
        out.push(goal.to_lowercase());
    }
    out
}

fn bound_chars(s: &str, max: usize, what: &str, trimmed: &mut Vec<String>) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    trimmed.push(format!("{what}: cut to {max} of {n} characters"));
    s.chars().take(max).collect()
}

fn bound_bytes(s: &str, max: usize, trimmed: &mut Vec<String>) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    trimmed.push(format!("body: cut to {end} of {} bytes", s.len()));
    s[..end].to_string()
}

/// `k-` and 12 hex digits: safe in a file name and a URL path.
fn new_id() -> String {
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("k-{}", &rand[..12])
}

/// Whether `id` has the shape [`new_id`] makes (anything else is never a path).
pub(super) fn valid_id(id: &str) -> bool {
    id.strip_prefix("k-")
        .is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn notes_are_bounded_redacted_and_malformed_ones_named() {
        let limits = Limits {
            per_run: 2,
            title_chars: 5,
            tags: 1,
            body_bytes: 4,
            ..Limits::default()
        };
        let redactor = Redactor::new(vec!["hunter22".into()]);
        let notes = vec![
            json!({"title": "A long title", "tags": ["NFS Server", "b"], "body": "pw hunter22"}),
            json!({"title": "", "body": "x"}),
            json!({"title": "t", "tags": [], "body": "b"}),
            json!({"title": "t3", "tags": ["x"], "body": "b"}),
        ];
        let (ps, skipped) = from_verdict(&notes, "r1", "Incident", &redactor, &limits);
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].title, "A lon");
        assert_eq!(ps[0].tags, ["nfs-server"]);
        assert_eq!(ps[0].body, "pw [");
        assert_eq!(ps[0].trimmed.len(), 3, "{:?}", ps[0].trimmed);
        assert_eq!(ps[1].tags, ["incident"]);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped[0].contains("no `title`"));
        assert!(skipped[1].contains("more than 2"));
        assert!(valid_id(&ps[0].id));
        assert!(!valid_id("../x") && !valid_id("k-../../etc/pa"));
        let full = from_verdict(&notes[..1], "r", "g", &redactor, &Limits::default()).0;
        assert_eq!(full[0].body, "pw [REDACTED:known]");
    }
}
