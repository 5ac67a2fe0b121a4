//! The one record every trigger produces: nothing downstream knows which adapter spoke.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub mod bound;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Timer,
    Alertmanager,
    OnFailure,
    Manual,
    Ci,
    Webhook,
    /// `steward serve`'s watch of the Docker engine: a container died.
    Docker,
    /// `steward report --signal`: a declared service is not as its contract says.
    Drift,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Timer => "timer",
            Source::Alertmanager => "alertmanager",
            Source::OnFailure => "on_failure",
            Source::Manual => "manual",
            Source::Ci => "ci",
            Source::Webhook => "webhook",
            Source::Docker => "docker",
            Source::Drift => "drift",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signal {
    pub source: Source,
    /// What the signal is about: a goal, a unit, an alert's identity.
    pub subject: String,
    /// Dedup key: equal fingerprints merge while queued or running.
    pub fingerprint: String,
    pub severity: Severity,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Untrusted text (alert annotations, operator free text): fenced when it reaches a prompt.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The adapter's raw input, kept for the record.
    #[serde(default)]
    pub payload: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub received: OffsetDateTime,
    /// The fields cut to their bound (`subject`, `labels.alertname`, …; see [`bound`]), in the
    /// order they were cut; absent when nothing was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
}

impl Signal {
    /// An operator asking for a goal on the command line.
    pub fn manual(goal: &str, vars: &BTreeMap<String, String>) -> Signal {
        let mut labels = BTreeMap::new();
        labels.insert("goal".to_string(), goal.to_string());
        Signal {
            source: Source::Manual,
            subject: goal.to_string(),
            fingerprint: fingerprint(&["manual", goal]),
            severity: Severity::Info,
            labels,
            annotations: vars.clone(),
            payload: serde_json::json!({ "goal": goal, "vars": vars }),
            received: OffsetDateTime::now_utc(),
            truncated: Vec::new(),
        }
    }
}

/// A short stable hash of the parts, used for dedup keys and ids.
pub fn fingerprint(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..8])
}
