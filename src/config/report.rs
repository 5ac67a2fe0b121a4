//! `[report]` in steward.toml: how many `steward report` baselines are kept.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Baselines kept in `STATE/baseline/` (the newest; `--keep` overrides it).
    pub keep: usize,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig { keep: 10 }
    }
}
