//! What `steward report` sees of the host at one moment, keyed by identity (a container's name, a
//! socket's protocol, address and port, a unit's name, a mount point, a Nomad job's id) so that
//! two snapshots compare item by item rather than as text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The snapshot's on-disk format; a baseline of another format is not compared.
pub const SNAPSHOT_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub taken: OffsetDateTime,
    pub host: String,
    /// By container name.
    #[serde(default)]
    pub containers: BTreeMap<String, Container>,
    /// Listening sockets by `PROTO ADDRESS:PORT`.
    #[serde(default)]
    pub sockets: BTreeMap<String, Socket>,
    /// Failed systemd units by name.
    #[serde(default)]
    pub failed_units: BTreeMap<String, FailedUnit>,
    /// Real filesystems by mount point.
    #[serde(default)]
    pub filesystems: BTreeMap<String, Filesystem>,
    /// The NixOS system generation, where the host is NixOS.
    #[serde(default)]
    pub nixos: Option<Generation>,
    /// Nomad jobs by id, where a Nomad agent answers.
    #[serde(default)]
    pub nomad_jobs: BTreeMap<String, NomadJob>,
    /// Sources that could not be read, and why: absent is not empty.
    #[serde(default)]
    pub unavailable: BTreeMap<String, String>,
}

impl Snapshot {
    /// A snapshot of `host` taken at `taken` with nothing collected yet.
    pub fn empty(host: &str, taken: OffsetDateTime) -> Snapshot {
        Snapshot {
            format: SNAPSHOT_FORMAT,
            taken,
            host: host.to_string(),
            containers: Default::default(),
            sockets: Default::default(),
            failed_units: Default::default(),
            filesystems: Default::default(),
            nixos: None,
            nomad_jobs: Default::default(),
            unavailable: Default::default(),
        }
    }
}

pub use crate::base::docker::Container;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socket {
    /// `tcp` or `udp` (IPv4 and IPv6 alike: the address says which).
    pub proto: String,
    pub address: String,
    pub port: u16,
    /// The owning process's command name, where /proc lets steward see it.
    #[serde(default)]
    pub process: Option<String>,
    #[serde(default)]
    pub pid: Option<u32>,
}

impl Socket {
    pub fn key(&self) -> String {
        if self.address.contains(':') {
            format!("{} [{}]:{}", self.proto, self.address, self.port)
        } else {
            format!("{} {}:{}", self.proto, self.address, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedUnit {
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filesystem {
    pub device: String,
    pub fstype: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    /// Used share of what an unprivileged user may use, in percent (as `df` shows it).
    pub used_percent: f64,
    #[serde(default)]
    pub inodes_used_percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    pub number: u64,
    /// The store path the generation links to.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NomadJob {
    pub status: String,
    pub version: u64,
    /// Allocations by client status (`running`, `failed`, …).
    #[serde(default)]
    pub allocations: BTreeMap<String, u64>,
    /// Allocations failed, lost, or marked unhealthy by their deployment.
    #[serde(default)]
    pub unhealthy: u64,
}
