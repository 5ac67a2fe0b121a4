//! Service contracts: `services/<name>/service.yaml` in the workspace, the desired state of one
//! service (owner node, image, exposure, dependencies, healthcheck, restart policy, persistence
//! paths, runtime variables). Read by the report (drift), the run context, the post-action
//! checks and the agent's `service_contract` tool.
//!
//! Placeholder interface landed by the lead so that several parts can be built against it at
//! once; the `contracts` work fills in the format and the parser.

use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
}

/// One declared service, as the workspace says it should be.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceContract {
    /// The directory name under `services/`.
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
}

/// Every contract under `WORKSPACE/services/*/service.yaml`, sorted by name. No `services/`
/// directory is no contracts, not an error.
pub fn load_all(_workspace: &Path) -> Result<Vec<ServiceContract>, ServiceError> {
    Ok(Vec::new())
}

/// The contract of the service `name`, if the workspace declares it.
pub fn find(workspace: &Path, name: &str) -> Result<Option<ServiceContract>, ServiceError> {
    Ok(load_all(workspace)?.into_iter().find(|c| c.name == name))
}
