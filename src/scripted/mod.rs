//! A scripted Anthropic Messages API on loopback, for tests, benchmarks and `steward doctor`.
//! (Interface; the agent helper implements it.)

use std::net::SocketAddr;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ScriptedError {
    #[error("{path}: {message}")]
    Scenario { path: String, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
}

#[derive(Debug, Clone, Default)]
pub struct Scenario;

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScriptedError> {
        Err(ScriptedError::Scenario { path: path.display().to_string(), message: "not implemented".into() })
    }
}

/// A running server; dropped → stopped.
pub struct Server {
    pub addr: SocketAddr,
}

pub async fn start(_scenario: Scenario, addr: SocketAddr) -> Result<Server, ScriptedError> {
    Err(ScriptedError::Bind { addr: addr.to_string(), source: std::io::Error::other("not implemented") })
}
