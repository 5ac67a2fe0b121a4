//! `[report]` in steward.toml: where `steward report` finds what it snapshots.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// The Docker (or podman) API socket, as `DOCKER_HOST` writes it: `unix:///run/docker.sock`.
    /// Empty: `/run/docker.sock` or `/var/run/docker.sock` where one exists, else no containers.
    pub docker_host: String,
    /// Baselines kept in `STATE/baseline/` (the newest; `--keep` overrides it).
    pub keep: usize,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            docker_host: String::new(),
            keep: 10,
        }
    }
}

impl ReportConfig {
    /// The Docker API to ask, if any: the configured one, else a socket that exists.
    pub fn docker_socket(&self) -> Option<String> {
        if !self.docker_host.is_empty() {
            return Some(self.docker_host.clone());
        }
        ["/run/docker.sock", "/var/run/docker.sock"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .map(|p| format!("unix://{p}"))
    }
}
