//! `[report]` in steward.toml: how many `steward report` baselines are kept, and how often
//! `steward serve` raises the drift of the declared services as signals.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Baselines kept in `STATE/baseline/` (the newest; `--keep` overrides it).
    pub keep: usize,
    /// `steward serve` judges the service contracts every this many seconds and raises each
    /// drift as a signal (`steward report --signal`, on its own). 0, the default: never.
    pub signal_every_secs: u64,
    /// `TYPE NAME` patterns (`*` matches any run) of items left out of the host snapshot:
    /// `engine/report/ignore.rs`.
    pub ignore: Vec<String>,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            keep: 10,
            signal_every_secs: 0,
            ignore: Vec::new(),
        }
    }
}

/// The item types an `ignore` pattern may name, as the report's changes name them.
pub const IGNORE_TYPES: [&str; 5] = ["container", "socket", "unit", "filesystem", "nomad_job"];
/// `ignore` patterns at most; each at most this many bytes.
pub const MAX_IGNORE_PATTERNS: usize = 256;
pub const MAX_IGNORE_PATTERN_BYTES: usize = 256;

/// The `ignore` patterns as (type, name glob); an error names the wrong one and why.
pub fn parse_ignore(patterns: &[String]) -> Result<Vec<(String, String)>, String> {
    if patterns.len() > MAX_IGNORE_PATTERNS {
        return Err(format!("at most {MAX_IGNORE_PATTERNS} patterns"));
    }
    patterns.iter().map(|p| parse_one(p)).collect()
}

fn parse_one(pattern: &str) -> Result<(String, String), String> {
    if pattern.len() > MAX_IGNORE_PATTERN_BYTES {
        return Err(format!(
            "`{pattern}`: longer than {MAX_IGNORE_PATTERN_BYTES} bytes"
        ));
    }
    let Some((ty, name)) = pattern.split_once(' ') else {
        return Err(format!(
            "`{pattern}`: expected `TYPE NAME`, TYPE one of {}",
            IGNORE_TYPES.join(", ")
        ));
    };
    if !IGNORE_TYPES.contains(&ty) {
        return Err(format!(
            "`{pattern}`: unknown type `{ty}` (one of {})",
            IGNORE_TYPES.join(", ")
        ));
    }
    if name.trim().is_empty() {
        return Err(format!("`{pattern}`: the name pattern is empty"));
    }
    Ok((ty.to_string(), name.to_string()))
}
