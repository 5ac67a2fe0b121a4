//! One container's facts through the Docker API (bollard), for every layer that reads them: the
//! report's collector, the Docker watch and the `container` check. Works against Docker and
//! podman's Docker-compatible service alike.

use std::time::Duration;

use bollard::Docker;
use serde::{Deserialize, Serialize};

/// How long one API call may take: a hung engine must not hang the report.
pub const API_TIMEOUT: Duration = Duration::from_secs(10);
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub image: String,
    /// The image's id (content digest), where the engine says.
    #[serde(default)]
    pub image_id: Option<String>,
    /// `running`, `exited`, `restarting`, …
    pub state: String,
    /// Only for a container that has exited: absent is not 0.
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub restart_count: u64,
    /// `healthy`, `unhealthy`, `starting`; absent without a healthcheck.
    #[serde(default)]
    pub health: Option<String>,
    #[serde(default)]
    pub oom_killed: bool,
}

/// Connects to the engine at `host` (`unix:///…`, as `DOCKER_HOST` writes it).
pub fn connect(host: &str) -> Result<Docker, String> {
    Docker::connect_with_unix(host, API_TIMEOUT.as_secs(), bollard::API_DEFAULT_VERSION)
        .map_err(|e| format!("cannot reach the Docker API at {host}: {e}"))
}

/// One container's facts; `None` when it went away between the list and the inspect.
pub async fn inspect(docker: &Docker, id: &str) -> Option<(String, Container)> {
    look(docker, id).await.ok().flatten()
}

/// One container's facts by name or id: `Ok(None)` when the engine knows no such container,
/// `Err` when the engine could not be asked (down, slow, refusing).
pub async fn look(docker: &Docker, id: &str) -> Result<Option<(String, Container)>, String> {
    let answer = tokio::time::timeout(API_TIMEOUT, docker.inspect_container(id, None))
        .await
        .map_err(|_| "the Docker API did not answer in time".to_string())?;
    let info = match answer {
        Ok(info) => info,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => return Ok(None),
        Err(e) => return Err(format!("the Docker API: {e}")),
    };
    let name = info
        .name
        .as_deref()
        .unwrap_or(id)
        .trim_start_matches('/')
        .to_string();
    let state = info.state.unwrap_or_default();
    let status = state
        .status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".into());
    let ended = matches!(status.as_str(), "exited" | "dead");
    let container = Container {
        id: info.id.unwrap_or_else(|| id.to_string()),
        image: info
            .config
            .and_then(|c| c.image)
            .unwrap_or_else(|| "?".into()),
        image_id: info.image,
        exit_code: if ended { state.exit_code } else { None },
        state: status,
        restart_count: info
            .restart_count
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0),
        health: state
            .health
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty() && s != "none"),
        oom_killed: state.oom_killed.unwrap_or(false),
    };
    Ok(Some((name, container)))
}
