//! `[docker]` in steward.toml: the container engine steward reads (`steward report`) and
//! watches (`steward serve`: crash capture).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerConfig {
    /// The Docker (or podman) API socket, as `DOCKER_HOST` writes it: `unix:///run/docker.sock`.
    /// Empty: `/run/docker.sock` or `/var/run/docker.sock` where one exists, else none.
    pub host: String,
    /// `steward serve` watches the engine's events and captures crashes.
    pub watch: bool,
    /// Log lines captured from a container that died (at once, and again after `recapture_secs`).
    pub log_lines: usize,
    /// Seconds after a death when the logs are captured again (the restarted container's first
    /// lines, or what was flushed late).
    pub recapture_secs: u64,
    /// Deaths of one container within `acute_window_secs` that make it acutely flapping.
    pub acute_deaths: usize,
    pub acute_window_secs: u64,
    /// Deaths within `chronic_window_secs` that make it chronically flapping.
    pub chronic_deaths: usize,
    pub chronic_window_secs: u64,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            host: String::new(),
            watch: true,
            log_lines: 100,
            recapture_secs: 5,
            acute_deaths: 3,
            acute_window_secs: 600,
            chronic_deaths: 10,
            chronic_window_secs: 86_400,
        }
    }
}

impl DockerConfig {
    /// The API to use, if any: the configured one, else a socket that exists.
    pub fn socket(&self) -> Option<String> {
        if !self.host.is_empty() {
            return Some(self.host.clone());
        }
        ["/run/docker.sock", "/var/run/docker.sock"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .map(|p| format!("unix://{p}"))
    }
}
