//! Drift: the workspace's service contracts (desired state) against the snapshot (what runs).
//! A service declared for this host that does not run here, or runs another image, has
//! drifted. Drift is not a change between two snapshots (the closed set of change kinds stays
//! closed): it is its own list, judged afresh on every report, and raised as attention (who can
//! act) and, on request, as one signal per service.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::attention::{Attention, Who};
use super::snapshot::Snapshot;
use crate::base::signal::{Severity, Signal, Source, fingerprint};
use crate::defs::service::ServiceContract;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// No container of the declared name, or one that is not running.
    NotRunning,
    /// Running, with another image than declared.
    Image,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::NotRunning => "not_running",
            DriftKind::Image => "image",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub service: String,
    pub kind: DriftKind,
    /// The container the contract names.
    pub container: String,
    pub declared_image: String,
    /// What runs, if a container of that name exists.
    pub actual_image: Option<String>,
    /// The container's state, or `absent`.
    pub state: String,
    /// The contract file, for the operator and the agent.
    pub contract: String,
}

impl Drift {
    pub fn describe(&self) -> String {
        match self.kind {
            DriftKind::NotRunning => format!(
                "service {} is declared for this host but its container {} is {}",
                self.service, self.container, self.state
            ),
            DriftKind::Image => format!(
                "service {} runs {} instead of the declared {}",
                self.service,
                self.actual_image.as_deref().unwrap_or("?"),
                self.declared_image
            ),
        }
    }
}

/// What the report says of the contracts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Services {
    /// Contracts the workspace declares (all nodes).
    pub declared: usize,
    /// Those whose owner is this host.
    pub here: usize,
    /// Why drift was not judged (contracts unreadable, containers unreadable); `None` when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_judged: Option<String>,
}

/// What the contracts in `workspace` say of `snap`: the summary, the drift, and what needs
/// attention for it (a contract that cannot be read is the operator's to fix: fail closed, never
/// "no drift").
pub fn judge_workspace(
    workspace: &std::path::Path,
    snap: &Snapshot,
) -> (Services, Vec<Drift>, Vec<Attention>) {
    let contracts = match crate::defs::service::load_all(workspace) {
        Ok(c) => c,
        Err(e) => {
            let what = format!("the service contracts cannot be read: {e}");
            let attention = Attention {
                what: what.clone(),
                who: Who::Operator,
                suggestion: "fix the contract named above; drift is not judged until then".into(),
                about: "services".into(),
            };
            let services = Services {
                not_judged: Some(what),
                ..Services::default()
            };
            return (services, Vec::new(), vec![attention]);
        }
    };
    let mut services = Services {
        declared: contracts.len(),
        here: contracts
            .iter()
            .filter(|c| same_host(&c.owner, &snap.host))
            .count(),
        not_judged: None,
    };
    match drift(&contracts, snap) {
        Ok(d) => {
            let attention = d.iter().map(attention).collect();
            (services, d, attention)
        }
        Err(why) => {
            services.not_judged = Some(why);
            (services, Vec::new(), Vec::new())
        }
    }
}

/// The contracts of this host against the snapshot's containers. `Err` when the containers
/// could not be read: nothing can be said then (not "every service is down").
pub fn drift(contracts: &[ServiceContract], snap: &Snapshot) -> Result<Vec<Drift>, String> {
    if let Some(why) = snap.unavailable.get("containers") {
        return Err(format!("the containers could not be read: {why}"));
    }
    Ok(contracts
        .iter()
        .filter(|c| same_host(&c.owner, &snap.host))
        .filter_map(|c| judge(c, snap))
        .collect())
}

fn judge(c: &ServiceContract, snap: &Snapshot) -> Option<Drift> {
    let found = snap.containers.get(&c.container);
    let kind = match found {
        None => DriftKind::NotRunning,
        Some(k) if k.state != "running" => DriftKind::NotRunning,
        Some(k) if normal_image(&k.image) != normal_image(&c.image) => DriftKind::Image,
        Some(_) => return None,
    };
    Some(Drift {
        service: c.name.clone(),
        kind,
        container: c.container.clone(),
        declared_image: c.image.clone(),
        actual_image: found.map(|k| k.image.clone()),
        state: found
            .map(|k| k.state.clone())
            .unwrap_or_else(|| "absent".into()),
        contract: c.file.display().to_string(),
    })
}

/// Host names compare without case, and a short name matches its fully qualified form
/// (`node1` is `node1.lan`): contracts are written by people, host names by installers.
pub fn same_host(owner: &str, host: &str) -> bool {
    let short = |s: &str| s.split('.').next().unwrap_or(s).to_ascii_lowercase();
    owner.eq_ignore_ascii_case(host)
        || ((!owner.contains('.') || !host.contains('.')) && short(owner) == short(host))
}

/// An image reference as Docker resolves it: `nginx` is `docker.io/library/nginx:latest`.
fn normal_image(image: &str) -> String {
    let image = image.trim();
    let (name, pinned) = match image.split_once('@') {
        Some((n, digest)) => (n, Some(digest)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let name = if last.contains(':') || pinned.is_some() {
        name.to_string()
    } else {
        format!("{name}:latest")
    };
    let first = name.split('/').next().unwrap_or_default();
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = match (has_registry, name.contains('/')) {
        (true, _) => name,
        (false, true) => format!("docker.io/{name}"),
        (false, false) => format!("docker.io/library/{name}"),
    };
    match pinned {
        Some(d) => format!("{full}@{d}"),
        None => full,
    }
}

/// Drift needs a person or a run: a container that should run is the agent's to look into; an
/// image that differs may be a deploy not yet written into the contract, so a person decides.
pub fn attention(d: &Drift) -> Attention {
    let what = d.describe();
    let (who, suggestion) = match d.kind {
        DriftKind::NotRunning => (
            Who::Agent,
            format!(
                "steward ask {}",
                super::attention::shell_quote(&format!("investigate: {what}"))
            ),
        ),
        DriftKind::Image => (
            Who::Person,
            format!(
                "decide whether this was meant: deploy {} or update {}",
                d.declared_image, d.contract
            ),
        ),
    };
    Attention {
        what,
        who,
        suggestion,
        about: format!("service {}", d.service),
    }
}

/// One signal per drifted service: the subject is the service, the labels say the drift; the
/// fingerprint (service and kind) lets the router merge the same drift reported again.
pub fn signal(d: &Drift, host: &str) -> Signal {
    let mut labels = BTreeMap::from([
        ("service".to_string(), d.service.clone()),
        ("drift".to_string(), d.kind.as_str().to_string()),
        ("container".to_string(), d.container.clone()),
        ("declared_image".to_string(), d.declared_image.clone()),
        ("state".to_string(), d.state.clone()),
        ("host".to_string(), host.to_string()),
    ]);
    if let Some(actual) = &d.actual_image {
        labels.insert("actual_image".into(), actual.clone());
    }
    Signal {
        source: Source::Drift,
        subject: d.service.clone(),
        fingerprint: fingerprint(&["drift", &d.service, d.kind.as_str()]),
        severity: Severity::Warning,
        labels,
        annotations: BTreeMap::new(),
        payload: serde_json::to_value(d).unwrap_or_default(),
        received: OffsetDateTime::now_utc(),
        truncated: Vec::new(),
    }
    .bounded()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_compare_as_docker_resolves_them() {
        assert_eq!(normal_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(
            normal_image("docker.io/library/nginx:latest"),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(
            normal_image("grafana/grafana:10"),
            "docker.io/grafana/grafana:10"
        );
        assert_eq!(
            normal_image("localhost/busybox"),
            "localhost/busybox:latest"
        );
        assert_eq!(
            normal_image("registry.lan:5000/app"),
            "registry.lan:5000/app:latest"
        );
        assert_ne!(normal_image("nginx:1.27"), normal_image("nginx:1.26"));
    }

    fn snap(host: &str) -> Snapshot {
        Snapshot::empty(host, OffsetDateTime::UNIX_EPOCH)
    }

    fn workspace(services: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in services {
            let d = dir.path().join("services").join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("service.yaml"), text).unwrap();
        }
        dir
    }

    #[test]
    fn unreadable_containers_or_contracts_are_not_judged_never_no_drift() {
        let ws = workspace(&[("web", "owner: h\nimage: nginx\n")]);
        let mut s = snap("h");
        let (services, drift, attention) = judge_workspace(ws.path(), &s);
        assert_eq!(drift.len(), 1, "absent from a readable engine: drift");
        assert_eq!(drift[0].kind, DriftKind::NotRunning);
        assert_eq!(attention[0].who, Who::Agent);
        assert_eq!((services.declared, services.here), (1, 1));

        s.unavailable
            .insert("containers".into(), "no engine".into());
        let (services, drift, attention) = judge_workspace(ws.path(), &s);
        assert!(drift.is_empty() && attention.is_empty());
        assert!(services.not_judged.unwrap().contains("no engine"));

        let ws = workspace(&[("web", "owner: h\n")]);
        let (services, drift, attention) = judge_workspace(ws.path(), &snap("h"));
        assert!(drift.is_empty());
        assert_eq!(attention[0].who, Who::Operator);
        assert!(
            services
                .not_judged
                .unwrap()
                .contains("missing field `image`")
        );
    }

    #[test]
    fn a_drift_signal_names_the_service_and_its_kind() {
        let d = Drift {
            service: "db".into(),
            kind: DriftKind::Image,
            container: "db".into(),
            declared_image: "postgres:16".into(),
            actual_image: Some("postgres:15".into()),
            state: "running".into(),
            contract: "services/db/service.yaml".into(),
        };
        let s = signal(&d, "node1");
        assert_eq!((s.source, s.subject.as_str()), (Source::Drift, "db"));
        assert_eq!(s.labels["drift"], "image");
        assert_eq!(s.labels["actual_image"], "postgres:15");
        let mut not_running = d.clone();
        not_running.kind = DriftKind::NotRunning;
        assert_ne!(s.fingerprint, signal(&not_running, "node1").fingerprint);
        assert_eq!(s.fingerprint, signal(&d, "node2").fingerprint);
    }

    #[test]
    fn hosts_compare_without_case_and_by_short_name() {
        assert!(same_host("node1", "NODE1"));
        assert!(same_host("node1", "node1.lan"));
        assert!(same_host("node1.lan", "node1"));
        assert!(!same_host("node1.lan", "node1.other"));
        assert!(!same_host("node2", "node1"));
    }
}
