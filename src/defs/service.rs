//! Service contracts: `services/<name>/service.yaml` in the workspace, the desired state of one
//! service (owner node, image, exposure, dependencies, healthcheck, restart policy, persistence
//! paths, runtime variables). Read by the report (drift), the run context, the post-action
//! checks and the agent's `service_contract` tool.
//!
//! One job per file: [`parse`] reads one file (YAML → a contract, every error with its line and
//! field), [`healthcheck`] turns the `healthcheck` mapping into a check of steward's own
//! vocabulary, and this file walks `services/` and checks what spans files (dependencies).

mod healthcheck;
mod parse;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::defs::check::CheckDef;

/// The file every service directory must hold.
pub const CONTRACT_FILE: &str = "service.yaml";
/// A contract file larger than this is refused unread (a contract is a page, not a data set).
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// More service directories than this are refused: a bound on what one report or run reads.
pub const MAX_SERVICES: usize = 256;
/// A service name (its directory), a dependency or a container name: a safe path component.
const MAX_NAME_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
    /// Well-formed or not, the file does not make a contract: where, and which field.
    #[error("{}:{line}: field `{field}`: {message}", file.display())]
    Field {
        file: PathBuf,
        line: u64,
        field: String,
        message: String,
    },
    #[error("{}: a service directory without {CONTRACT_FILE}", dir.display())]
    Missing { dir: PathBuf },
    #[error(
        "{}: `{name}` is not a service name (letters, digits, `_`, `.`, `-`; starting with a letter or digit; at most {MAX_NAME_LEN})",
        dir.display()
    )]
    BadName { dir: PathBuf, name: String },
    #[error("{}: more than {MAX_SERVICES} service directories", dir.display())]
    TooMany { dir: PathBuf },
    #[error("{}: {size} bytes, more than the {MAX_FILE_BYTES} a contract may have", file.display())]
    TooLarge { file: PathBuf, size: u64 },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Whether a port is meant to be reached from outside the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Public,
    Internal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

/// One port the service listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exposure {
    pub port: u16,
    pub protocol: Protocol,
    pub visibility: Visibility,
}

/// Docker's restart policies, spelled as `docker run --restart` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    Always,
    OnFailure,
    UnlessStopped,
}

/// One declared service, as the workspace says it should be.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceContract {
    /// The directory name under `services/`.
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// The host name of the node that runs it.
    pub owner: String,
    /// The image it runs (`nginx:1.27`, `registry.lan/app@sha256:…`).
    pub image: String,
    /// The container's name on its node (default: the service's name).
    pub container: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub exposure: Vec<Exposure>,
    /// Other declared services it needs.
    pub dependencies: Vec<String>,
    /// Named `<service>-health`; a post-action check of runs about the service.
    pub healthcheck: Option<CheckDef>,
    pub restart: Option<RestartPolicy>,
    /// Absolute paths whose data must survive the container.
    pub persistence: Vec<PathBuf>,
    /// Names of the runtime variables it reads (never their values: secrets stay out).
    pub variables: Vec<String>,
}

/// Every contract under `WORKSPACE/services/*/service.yaml`, sorted by name. No `services/`
/// directory is no contracts, not an error; plain files beside the directories (a README) are
/// not services. A dependency must name another declared service.
pub fn load_all(workspace: &Path) -> Result<Vec<ServiceContract>, ServiceError> {
    let dir = workspace.join("services");
    let mut parsed = Vec::new();
    for (name, path) in service_dirs(&dir)? {
        parsed.push(parse::read(&name, &path.join(CONTRACT_FILE))?);
    }
    check_dependencies(&parsed)?;
    Ok(parsed.into_iter().map(|p| p.contract).collect())
}

/// The contract of the service `name`, if the workspace declares it.
pub fn find(workspace: &Path, name: &str) -> Result<Option<ServiceContract>, ServiceError> {
    Ok(load_all(workspace)?.into_iter().find(|c| c.name == name))
}

/// Whether `name` may be a service, dependency or container name.
pub fn is_safe_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_NAME_LEN
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The service directories, sorted by name, each a safe name; `services/` absent is none.
fn service_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, ServiceError> {
    let io = |source| ServiceError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        // Follows symlinks: a linked service directory is a service directory.
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_safe_name(&name) {
            return Err(ServiceError::BadName { dir: path, name });
        }
        if !path.join(CONTRACT_FILE).is_file() {
            return Err(ServiceError::Missing { dir: path });
        }
        out.push((name, path));
        if out.len() > MAX_SERVICES {
            return Err(ServiceError::TooMany {
                dir: dir.to_path_buf(),
            });
        }
    }
    out.sort();
    Ok(out)
}

fn check_dependencies(all: &[parse::Parsed]) -> Result<(), ServiceError> {
    for p in all {
        let c = &p.contract;
        for (dep, line) in c.dependencies.iter().zip(&p.dependency_lines) {
            if !all.iter().any(|o| &o.contract.name == dep) {
                return Err(ServiceError::Field {
                    file: c.file.clone(),
                    line: *line,
                    field: "dependencies".into(),
                    message: format!("`{dep}` is not a declared service (no services/{dep}/)"),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
