//! `steward report`: a snapshot of the host (containers, listening sockets, failed units, disk
//! use, the NixOS generation, Nomad jobs), compared by identity with the previous baseline, and
//! what of the changes needs attention; and the workspace's service contracts against it
//! (drift). One job per file: [`snapshot`] the model, the collectors ([`containers`],
//! [`sockets`], [`units`], [`disk`], [`nixos`], [`nomad`]), [`diff`], [`attention`],
//! [`drift`] and [`baseline`].

use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

pub mod attention;
pub mod baseline;
pub mod containers;
pub mod diff;
pub mod disk;
pub mod drift;
pub mod ignore;
pub mod logs;
pub mod nixos;
pub mod nomad;
pub mod snapshot;
pub mod sockets;
pub mod units;

use attention::Attention;
use diff::Change;
use snapshot::Snapshot;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ledger(#[from] crate::base::ledger::LedgerError),
}

/// Where the collectors look: the real host, or a test's stand-ins.
pub struct Sources {
    pub host: String,
    pub proc_root: PathBuf,
    pub nixos_profile: PathBuf,
    pub docker_host: Option<String>,
    pub path_env: String,
    /// Where the service contracts are (`WORKSPACE/services/`); `None`: none are judged.
    pub workspace: Option<PathBuf>,
    /// The Nomad agent; `None`: not asked.
    pub nomad: Option<nomad::NomadSource>,
    /// `[report] ignore`: items left out of the snapshot.
    pub ignore: ignore::Ignore,
}

impl Sources {
    pub fn of_host(cfg: &crate::config::Config) -> Sources {
        Sources {
            host: host_name(),
            proc_root: PathBuf::from("/proc"),
            nixos_profile: PathBuf::from("/nix/var/nix/profiles/system"),
            docker_host: cfg.docker.socket(),
            path_env: cfg.claude.path.clone(),
            workspace: Some(cfg.workspace.clone()),
            nomad: Some(nomad::NomadSource::from_env()),
            // Checked when the config is loaded; were it not, ignoring nothing hides nothing.
            ignore: ignore::Ignore::parse(&cfg.report.ignore).unwrap_or_default(),
        }
    }
}

fn host_name() -> String {
    crate::base::procfs::host_name().unwrap_or_else(|| "unknown".into())
}

/// Takes a snapshot; a source that cannot be read is named in `unavailable`, never fatal.
pub async fn take(src: &Sources) -> Snapshot {
    let mut snap = Snapshot::empty(&src.host, OffsetDateTime::now_utc());
    let mut missing = Vec::new();
    match sockets::collect(&src.proc_root) {
        Ok(s) => snap.sockets = s,
        Err(why) => missing.push(("sockets", why)),
    }
    match disk::collect(&src.proc_root.join("self/mountinfo")) {
        Ok(f) => snap.filesystems = f,
        Err(why) => missing.push(("filesystems", why)),
    }
    match units::collect(&src.path_env).await {
        Ok(u) => snap.failed_units = u,
        Err(why) => missing.push(("units", why)),
    }
    match nixos::collect(&src.nixos_profile) {
        Ok(g) => snap.nixos = g,
        Err(why) => missing.push(("nixos", why)),
    }
    if let Some(host) = &src.docker_host {
        let listed = match containers::connect(host) {
            Ok(docker) => containers::collect(&docker).await,
            Err(why) => Err(why),
        };
        match listed {
            Ok(c) => snap.containers = c,
            Err(why) => missing.push(("containers", why)),
        }
    }
    if let Some(agent) = &src.nomad {
        match nomad::collect(agent).await {
            Ok(jobs) => snap.nomad_jobs = jobs.unwrap_or_default(),
            Err(why) => missing.push(("nomad", why)),
        }
    }
    snap.unavailable = missing
        .into_iter()
        .map(|(source, why)| (source.to_string(), why))
        .collect();
    src.ignore.apply(snap)
}

/// What `steward report` says: the snapshot, the baseline it was compared with, the changes and
/// what of them needs attention.
#[derive(Debug, Serialize)]
pub struct Report {
    pub snapshot: Snapshot,
    /// The baseline file compared with; `None` for the first report.
    pub baseline: Option<String>,
    /// Baselines that could not be read (named, kept on disk).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable_baselines: Vec<String>,
    pub changes: Vec<Change>,
    /// The service contracts: how many, and whether drift could be judged.
    pub services: drift::Services,
    /// Declared services of this host that are not as their contract says (desired vs actual,
    /// not a change between snapshots).
    pub drift: Vec<drift::Drift>,
    pub needs_attention: Vec<Attention>,
    /// The file this snapshot was saved as (none with `--no-save`).
    pub saved: Option<String>,
}

/// Snapshots the host, compares with the newest baseline, and (unless `keep` is `None`) saves
/// the snapshot as the new baseline, keeping that many.
pub async fn report(
    src: &Sources,
    state_dir: &Path,
    keep: Option<usize>,
) -> Result<Report, ReportError> {
    let baselines = baseline::Baselines::new(state_dir);
    let latest = baselines.latest()?;
    let snapshot = take(src).await;
    let changes = match &latest.snapshot {
        Some((_, before)) => diff::diff(&src.ignore.apply(before.clone()), &snapshot),
        None => Vec::new(),
    };
    let mut needs_attention = attention::needs_attention(&changes);
    let (services, drift) = match &src.workspace {
        Some(ws) => {
            let (services, drift, attention) = drift::judge_workspace(ws, &snapshot);
            needs_attention.extend(attention);
            (services, drift)
        }
        None => Default::default(),
    };
    let saved = match keep {
        Some(n) => Some(baselines.save(&snapshot, n)?),
        None => None,
    };
    Ok(Report {
        snapshot,
        baseline: latest.snapshot.map(|(name, _)| name),
        unreadable_baselines: latest.unreadable,
        changes,
        services,
        drift,
        needs_attention,
        saved,
    })
}
