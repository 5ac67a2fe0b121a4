//! Two snapshots compared by identity, into a closed set of change kinds. A source that could
//! not be read in either snapshot is not compared item by item (an unreachable Docker API is
//! not every container removed): its becoming unreadable or readable again is the change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::snapshot::{Container, Filesystem, NomadJob, Snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    StateChanged,
    ImageChanged,
    Restarted,
    PortOpened,
    PortClosed,
    ThresholdCrossed,
    GenerationChanged,
}

/// What a change is about: `container`, `socket`, `unit`, `filesystem`, `nixos`, `nomad_job`
/// or `source` (a part of the snapshot itself), and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub identity: Identity,
    pub before: Value,
    pub after: Value,
}

fn change(kind: ChangeKind, ty: &str, name: &str, before: Value, after: Value) -> Change {
    Change {
        kind,
        identity: Identity {
            kind: ty.into(),
            name: name.into(),
        },
        before,
        after,
    }
}

/// Use above these percentages is a band of its own: moving between bands is a change.
pub const DISK_THRESHOLDS: [f64; 3] = [80.0, 90.0, 95.0];

/// The snapshot sources, as `unavailable` names them.
const SOURCES: [&str; 5] = ["containers", "sockets", "units", "filesystems", "nomad"];

pub fn diff(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    for source in SOURCES {
        let (was, is) = (
            before.unavailable.get(source),
            after.unavailable.get(source),
        );
        match (was, is) {
            (None, None) => compare_source(source, before, after, &mut out),
            (None, Some(why)) => out.push(change(
                ChangeKind::StateChanged,
                "source",
                source,
                json!("readable"),
                json!({ "unreadable": why }),
            )),
            (Some(why), None) => out.push(change(
                ChangeKind::StateChanged,
                "source",
                source,
                json!({ "unreadable": why }),
                json!("readable"),
            )),
            (Some(_), Some(_)) => {}
        }
    }
    if before.nixos != after.nixos {
        out.push(change(
            ChangeKind::GenerationChanged,
            "nixos",
            "system",
            json!(before.nixos),
            json!(after.nixos),
        ));
    }
    out
}

fn compare_source(source: &str, before: &Snapshot, after: &Snapshot, out: &mut Vec<Change>) {
    match source {
        "containers" => containers(&before.containers, &after.containers, out),
        "sockets" => out.extend(
            presence(&before.sockets, &after.sockets, "socket")
                .into_iter()
                .map(port_change),
        ),
        "units" => units(before, after, out),
        "filesystems" => filesystems(&before.filesystems, &after.filesystems, out),
        "nomad" => nomad_jobs(&before.nomad_jobs, &after.nomad_jobs, out),
        _ => {}
    }
}

/// The items only one snapshot has: removed, then added.
fn presence<T: Serialize>(
    before: &BTreeMap<String, T>,
    after: &BTreeMap<String, T>,
    ty: &str,
) -> Vec<Change> {
    let removed = before
        .iter()
        .filter(|(name, _)| !after.contains_key(*name))
        .map(|(name, was)| change(ChangeKind::Removed, ty, name, json!(was), Value::Null));
    let added = after
        .iter()
        .filter(|(name, _)| !before.contains_key(*name))
        .map(|(name, is)| change(ChangeKind::Added, ty, name, Value::Null, json!(is)));
    removed.chain(added).collect()
}

/// A socket appearing is a port opened; one going, a port closed.
fn port_change(mut c: Change) -> Change {
    c.kind = match c.kind {
        ChangeKind::Added => ChangeKind::PortOpened,
        _ => ChangeKind::PortClosed,
    };
    c
}

fn containers(
    before: &BTreeMap<String, Container>,
    after: &BTreeMap<String, Container>,
    out: &mut Vec<Change>,
) {
    out.extend(presence(before, after, "container"));
    for (name, was) in before {
        let Some(is) = after.get(name) else { continue };
        if was.image != is.image || was.image_id != is.image_id {
            let pick = |c: &Container| json!({ "image": c.image, "image_id": c.image_id });
            out.push(change(
                ChangeKind::ImageChanged,
                "container",
                name,
                pick(was),
                pick(is),
            ));
        }
        if is.restart_count > was.restart_count {
            let pick = |c: &Container| json!({ "restart_count": c.restart_count });
            out.push(change(
                ChangeKind::Restarted,
                "container",
                name,
                pick(was),
                pick(is),
            ));
        }
        let state = |c: &Container| json!({ "state": c.state, "exit_code": c.exit_code, "health": c.health, "oom_killed": c.oom_killed });
        if state(was) != state(is) {
            out.push(change(
                ChangeKind::StateChanged,
                "container",
                name,
                state(was),
                state(is),
            ));
        }
    }
}

/// A job's new version is its generation changing (a deploy); its status or allocations
/// changing is a state change.
fn nomad_jobs(
    before: &BTreeMap<String, NomadJob>,
    after: &BTreeMap<String, NomadJob>,
    out: &mut Vec<Change>,
) {
    out.extend(presence(before, after, "nomad_job"));
    for (id, was) in before {
        let Some(is) = after.get(id) else { continue };
        if was.version != is.version {
            let pick = |j: &NomadJob| json!({ "version": j.version });
            out.push(change(
                ChangeKind::GenerationChanged,
                "nomad_job",
                id,
                pick(was),
                pick(is),
            ));
        }
        let state = |j: &NomadJob| json!({ "status": j.status, "allocations": j.allocations, "unhealthy": j.unhealthy });
        if state(was) != state(is) {
            out.push(change(
                ChangeKind::StateChanged,
                "nomad_job",
                id,
                state(was),
                state(is),
            ));
        }
    }
}

fn units(before: &Snapshot, after: &Snapshot, out: &mut Vec<Change>) {
    for (name, unit) in &after.failed_units {
        if !before.failed_units.contains_key(name) {
            let is = json!({ "failed": true, "description": unit.description });
            out.push(change(
                ChangeKind::StateChanged,
                "unit",
                name,
                json!({ "failed": false }),
                is,
            ));
        }
    }
    for (name, unit) in &before.failed_units {
        if !after.failed_units.contains_key(name) {
            let was = json!({ "failed": true, "description": unit.description });
            out.push(change(
                ChangeKind::StateChanged,
                "unit",
                name,
                was,
                json!({ "failed": false }),
            ));
        }
    }
}

/// The band of a percentage: how many thresholds it is at or above.
fn band(percent: f64) -> usize {
    DISK_THRESHOLDS.iter().filter(|t| percent >= **t).count()
}

fn filesystems(
    before: &BTreeMap<String, Filesystem>,
    after: &BTreeMap<String, Filesystem>,
    out: &mut Vec<Change>,
) {
    out.extend(presence(before, after, "filesystem"));
    for (mount, was) in before {
        let Some(is) = after.get(mount) else { continue };
        let inodes = |f: &Filesystem| f.inodes_used_percent.unwrap_or(0.0);
        if band(was.used_percent) != band(is.used_percent) || band(inodes(was)) != band(inodes(is))
        {
            let pick = |f: &Filesystem| json!({ "used_percent": f.used_percent, "inodes_used_percent": f.inodes_used_percent });
            out.push(change(
                ChangeKind::ThresholdCrossed,
                "filesystem",
                mount,
                pick(was),
                pick(is),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::report::snapshot::Snapshot;

    fn snap() -> Snapshot {
        Snapshot::empty("h", time::OffsetDateTime::UNIX_EPOCH)
    }

    fn container(image: &str, state: &str, restarts: u64) -> Container {
        Container {
            id: "id".into(),
            image: image.into(),
            image_id: None,
            state: state.into(),
            exit_code: None,
            restart_count: restarts,
            health: None,
            oom_killed: false,
        }
    }

    fn kinds(changes: &[Change]) -> Vec<ChangeKind> {
        changes.iter().map(|c| c.kind).collect()
    }

    #[test]
    fn a_container_compared_by_name_image_restarts_and_state() {
        let mut a = snap();
        a.containers
            .insert("web".into(), container("nginx:1", "running", 0));
        let mut b = snap();
        b.containers
            .insert("web".into(), container("nginx:2", "running", 3));
        assert_eq!(
            kinds(&diff(&a, &b)),
            vec![ChangeKind::ImageChanged, ChangeKind::Restarted]
        );
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn an_unreadable_source_is_one_change_not_every_item_removed() {
        let mut a = snap();
        a.containers
            .insert("web".into(), container("nginx:1", "running", 0));
        let mut b = snap();
        b.unavailable
            .insert("containers".into(), "no engine".into());
        let changes = diff(&a, &b);
        assert_eq!(kinds(&changes), vec![ChangeKind::StateChanged]);
        assert_eq!(changes[0].identity.kind, "source");
        let attention = crate::engine::report::attention::needs_attention(&changes);
        assert_eq!(
            attention[0].who,
            crate::engine::report::attention::Who::Operator
        );
    }

    #[test]
    fn disk_use_changes_only_when_it_crosses_a_threshold() {
        let fs = |pct: f64| Filesystem {
            device: "/dev/vda".into(),
            fstype: "ext4".into(),
            size_bytes: 100,
            used_bytes: pct as u64,
            used_percent: pct,
            inodes_used_percent: Some(1.0),
        };
        let (mut a, mut b) = (snap(), snap());
        a.filesystems.insert("/".into(), fs(70.0));
        b.filesystems.insert("/".into(), fs(79.9));
        assert!(diff(&a, &b).is_empty());
        b.filesystems.insert("/".into(), fs(91.0));
        let changes = diff(&a, &b);
        assert_eq!(kinds(&changes), vec![ChangeKind::ThresholdCrossed]);
        let attention = crate::engine::report::attention::needs_attention(&changes);
        assert_eq!(attention.len(), 1, "rising is attention");
        assert!(crate::engine::report::attention::needs_attention(&diff(&b, &a)).is_empty());
    }
}
