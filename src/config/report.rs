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
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            keep: 10,
            signal_every_secs: 0,
        }
    }
}
