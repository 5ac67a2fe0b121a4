//! Probes: scoped, concurrent observations of the cluster. (Interface; the context helper
//! implements it.)

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bundled::SourceFile;
use crate::redact::Redactor;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{origin}: {message}")]
    Definition { origin: String, message: String },
    #[error("unknown probe `{0}`")]
    Unknown(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeDef {
    pub name: String,
    pub description: String,
    pub kind: ProbeKind,
    pub timeout: Duration,
    pub max_bytes: usize,
    pub parse: ParseMode,
    pub tags: Vec<String>,
    pub origin: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeKind {
    Command {
        argv: Vec<String>,
    },
    Http {
        url: String,
    },
    File {
        path: std::path::PathBuf,
        tail_lines: usize,
    },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ParseMode {
    Text,
    Json,
    Lines,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    Ok,
    Failed,
    TimedOut,
    NotAvailable,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeResult {
    pub name: String,
    pub description: String,
    pub status: ProbeStatus,
    pub output: serde_json::Value,
    pub truncated: bool,
    pub detail: Option<String>,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
}

/// Defaults from config applied to probes that name no timeout or cap.
#[derive(Debug, Clone, Copy)]
pub struct ProbeDefaults {
    pub timeout: Duration,
    pub max_bytes: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub probes: Vec<ProbeDef>,
}

impl Catalog {
    pub fn load(_files: &[SourceFile], _defaults: ProbeDefaults) -> Result<Catalog, ProbeError> {
        Ok(Catalog::default())
    }

    /// Names, `tag:NAME` or `*`; an unknown plain name is an error.
    pub fn select(&self, _names: &[String]) -> Result<Vec<ProbeDef>, ProbeError> {
        Ok(Vec::new())
    }
}

/// Runs every probe concurrently; never fails as a whole.
pub async fn gather(
    _probes: &[ProbeDef],
    _redactor: &Redactor,
    _path_env: &str,
) -> Vec<ProbeResult> {
    Vec::new()
}
