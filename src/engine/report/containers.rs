//! Containers through the Docker API (bollard), by name: image and image id, state, exit code
//! (only for a container that ended: Docker says 0 for a running one, which is no exit), restart
//! count, health and whether the kernel OOM-killed it. Works against Docker and podman's
//! Docker-compatible service alike.

use std::collections::BTreeMap;

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;

use super::snapshot::Container;
use crate::base::docker::API_TIMEOUT;
pub use crate::base::docker::{connect, inspect};

/// Containers inspected at most; the rest are named in `unavailable`.
pub const MAX_CONTAINERS: usize = 500;

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
