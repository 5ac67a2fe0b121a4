//! Containers through the Docker API (bollard), by name: image and image id, state, exit code
//! (only for a container that ended: Docker says 0 for a running one, which is no exit), restart
//! count, health and whether the kernel OOM-killed it. Works against Docker and podman's
//! Docker-compatible service alike.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;

use super::snapshot::Container;

/// How long one API call may take: a hung engine must not hang the report.
const API_TIMEOUT: Duration = Duration::from_secs(10);
/// Containers inspected at most; the rest are named in `unavailable`.
pub const MAX_CONTAINERS: usize = 500;

/// Connects to the engine at `host` (`unix:///…`, as `DOCKER_HOST` writes it).
pub fn connect(host: &str) -> Result<Docker, String> {
    Docker::connect_with_unix(host, API_TIMEOUT.as_secs(), bollard::API_DEFAULT_VERSION)
        .map_err(|e| format!("cannot reach the Docker API at {host}: {e}"))
}

/// Every container the engine knows (running or not), by name.
pub async fn collect(docker: &Docker) -> Result<BTreeMap<String, Container>, String> {
    let options = ListContainersOptionsBuilder::default().all(true).build();
    let listed = tokio::time::timeout(API_TIMEOUT, docker.list_containers(Some(options)))
        .await
        .map_err(|_| "the Docker API did not answer the container list in time".to_string())?
        .map_err(|e| format!("the Docker API: {e}"))?;
    let mut out = BTreeMap::new();
    for summary in listed.into_iter().take(MAX_CONTAINERS) {
        let Some(id) = summary.id else { continue };
        if let Some((name, c)) = inspect(docker, &id).await {
            out.insert(name, c);
        }
    }
    Ok(out)
}

/// One container's facts; `None` when it went away between the list and the inspect.
pub async fn inspect(docker: &Docker, id: &str) -> Option<(String, Container)> {
    let info = tokio::time::timeout(API_TIMEOUT, docker.inspect_container(id, None))
        .await
        .ok()?
        .ok()?;
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
    Some((name, container))
}
