//! The host as a run sees it: the snapshot of `steward report` (its collectors run once per run,
//! bounded in time), compared with the snapshot of the subject's last run (else the newest host
//! baseline, else nothing: a first run), the changes' "needs attention", and what the snapshot
//! flags as it stands (a failed unit, a container that ended badly, a filesystem over 80 %).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::last_run::{LastRun, LastRuns};
use crate::engine::report::attention::{self, Attention};
use crate::engine::report::baseline::Baselines;
use crate::engine::report::diff::{self, Change, DISK_THRESHOLDS};
use crate::engine::report::ignore::Ignore;
use crate::engine::report::snapshot::Snapshot;
use crate::engine::report::{self, Sources};

/// How long the snapshot may take before the run goes on without it.
pub const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(20);

/// What the snapshot was compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "with", rename_all = "snake_case")]
pub enum Compared {
    /// The snapshot the subject's last run took.
    LastRun { run: String },
    /// The subject has no earlier run: the newest baseline of `steward report`.
    Baseline { name: String },
    /// Nothing to compare with.
    FirstRun,
    /// This run has no snapshot of its own (see `HostContext::problems`).
    NoSnapshot,
}

/// One item the snapshot flags as it stands, and the name a probe's output would show it by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    pub what: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostContext {
    pub subject: String,
    #[serde(skip)]
    pub snapshot: Option<Snapshot>,
    pub compared: Compared,
    pub changes: Vec<Change>,
    pub attention: Vec<Attention>,
    /// Flagged by the snapshot now, whether or not it changed.
    pub standing: Vec<Flag>,
    /// Why part of the picture is missing (no snapshot, an unreadable last-run file, a snapshot
    /// source that could not be read): said in the prompt, never silently dropped.
    pub problems: Vec<String>,
    /// The subject's last run, for the probes' "unchanged since run X".
    #[serde(skip)]
    pub last: Option<LastRun>,
}

impl HostContext {
    /// The subject's last run, when this run's snapshot was compared with it and nothing
    /// changed (and no part of the picture is missing).
    pub fn unchanged_since(&self) -> Option<&str> {
        match &self.compared {
            Compared::LastRun { run } if self.changes.is_empty() && self.problems.is_empty() => {
                Some(run)
            }
            _ => None,
        }
    }
}

/// Takes the snapshot (bounded by [`SNAPSHOT_TIMEOUT`]) and compares it.
pub async fn gather(src: &Sources, state_dir: &Path, subject: &str) -> HostContext {
    let snapshot = tokio::time::timeout(SNAPSHOT_TIMEOUT, report::take(src))
        .await
        .ok();
    let mut problems = Vec::new();
    if snapshot.is_none() {
        problems.push(format!(
            "the host snapshot was not taken: its collectors took over {} s",
            SNAPSHOT_TIMEOUT.as_secs()
        ));
    }
    let last = match LastRuns::new(state_dir).load(subject) {
        Ok(l) => l,
        Err(e) => {
            problems.push(format!("the subject's last run cannot be read: {e}"));
            None
        }
    };
    compare(subject, snapshot, last, state_dir, &src.ignore, problems)
}

/// Compares `snapshot` with the last run's, else the newest baseline.
pub fn compare(
    subject: &str,
    snapshot: Option<Snapshot>,
    last: Option<LastRun>,
    state_dir: &Path,
    ignore: &Ignore,
    mut problems: Vec<String>,
) -> HostContext {
    let earlier = last
        .as_ref()
        .and_then(|l| Some((l.snapshot.clone()?, l.snapshot_run.clone()?)));
    let (compared, before) = match (&snapshot, earlier) {
        (None, _) => (Compared::NoSnapshot, None),
        (Some(_), Some((s, run))) => (Compared::LastRun { run }, Some(s)),
        (Some(_), None) => match Baselines::new(state_dir).latest() {
            Ok(l) => match l.snapshot {
                Some((name, s)) => (Compared::Baseline { name }, Some(s)),
                None => (Compared::FirstRun, None),
            },
            Err(e) => {
                problems.push(format!("the host baseline cannot be read: {e}"));
                (Compared::FirstRun, None)
            }
        },
    };
    let changes = match (&before, &snapshot) {
        // Filtered again: the earlier snapshot may predate the operator's ignore patterns.
        (Some(b), Some(s)) => diff::diff(&ignore.apply(b.clone()), s),
        _ => Vec::new(),
    };
    if let Some(s) = &snapshot {
        problems.extend(
            s.unavailable
                .iter()
                .map(|(source, why)| format!("snapshot source {source} not read: {why}")),
        );
    }
    HostContext {
        subject: subject.to_string(),
        attention: attention::needs_attention(&changes),
        standing: snapshot.as_ref().map(standing).unwrap_or_default(),
        snapshot,
        compared,
        changes,
        problems,
        last,
    }
}

/// What the snapshot flags as it stands.
pub fn standing(s: &Snapshot) -> Vec<Flag> {
    let flag = |what: String, name: &str| Flag {
        what,
        name: name.to_string(),
    };
    let mut out: Vec<Flag> = s
        .failed_units
        .keys()
        .map(|u| flag(format!("unit {u} failed"), u))
        .collect();
    for (name, c) in &s.containers {
        let bad = if c.oom_killed {
            Some("was OOM-killed".to_string())
        } else if c.health.as_deref() == Some("unhealthy") {
            Some("is unhealthy".to_string())
        } else if c.state == "restarting" {
            Some("is restarting".to_string())
        } else {
            match (c.state.as_str(), c.exit_code) {
                ("exited" | "dead", Some(0)) => None,
                ("exited" | "dead", Some(code)) => Some(format!("exited {code}")),
                ("dead", None) => Some("is dead".to_string()),
                _ => None,
            }
        };
        if let Some(bad) = bad {
            out.push(flag(format!("container {name} {bad}"), name));
        }
    }
    let low = DISK_THRESHOLDS[0];
    for (mount, f) in &s.filesystems {
        let inodes = f.inodes_used_percent.unwrap_or(0.0);
        if f.used_percent >= low || inodes >= low {
            out.push(flag(
                format!(
                    "{mount} is {}% full ({}% of inodes)",
                    f.used_percent, inodes
                ),
                mount,
            ));
        }
    }
    for (job, j) in &s.nomad_jobs {
        let failed = j.allocations.get("failed").copied().unwrap_or(0);
        if j.status == "dead" || failed > 0 {
            out.push(flag(
                format!(
                    "Nomad job {job} is {} ({failed} failed allocations)",
                    j.status
                ),
                job,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(v: serde_json::Value) -> Snapshot {
        let mut base =
            serde_json::json!({"format": 1, "taken": "2026-11-30T00:00:00Z", "host": "h"});
        base.as_object_mut()
            .unwrap()
            .extend(v.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    fn container(state: &str, exit: Option<i64>) -> serde_json::Value {
        serde_json::json!({"id": "1", "image": "i", "state": state, "exit_code": exit})
    }

    #[test]
    fn standing_flags_what_is_wrong_now_and_nothing_clean() {
        let s = snap(serde_json::json!({
            "failed_units": {"nginx.service": {}},
            "containers": {"web": container("exited", Some(137)), "job": container("exited", Some(0)),
                           "db": container("running", None)},
            "filesystems": {"/": {"device": "/dev/vda", "fstype": "ext4", "size_bytes": 10,
                                  "used_bytes": 9, "used_percent": 93.0},
                            "/srv": {"device": "/dev/vdb", "fstype": "ext4", "size_bytes": 10,
                                     "used_bytes": 1, "used_percent": 10.0}},
        }));
        let what: Vec<String> = standing(&s).into_iter().map(|f| f.what).collect();
        assert_eq!(
            what,
            [
                "unit nginx.service failed",
                "container web exited 137",
                "/ is 93% full (0% of inodes)"
            ]
        );
    }

    #[test]
    fn compared_with_the_last_run_else_the_baseline_else_first() {
        let tmp = tempfile::tempdir().unwrap();
        let cmp = |snapshot, last, problems| {
            compare(
                "s",
                snapshot,
                last,
                tmp.path(),
                &Ignore::default(),
                problems,
            )
        };
        let before = snap(serde_json::json!({"failed_units": {}}));
        let now = snap(serde_json::json!({"failed_units": {"nginx.service": {}}}));
        let first = cmp(Some(now.clone()), None, Vec::new());
        assert_eq!(first.compared, Compared::FirstRun);
        assert!(first.changes.is_empty());
        Baselines::new(tmp.path()).save(&before, 3).unwrap();
        let base = cmp(Some(now.clone()), None, Vec::new());
        assert!(
            matches!(base.compared, Compared::Baseline { .. }),
            "{:?}",
            base.compared
        );
        assert_eq!(base.changes.len(), 1);
        assert_eq!(base.attention[0].what, "unit nginx.service failed");
        let last = super::super::last_run::next("s", "r1", Some(&now), None, &[]);
        let again = cmp(Some(now), Some(last), Vec::new());
        assert_eq!(again.compared, Compared::LastRun { run: "r1".into() });
        assert!(again.changes.is_empty() && again.attention.is_empty());
        assert_eq!(again.standing.len(), 1);
        let none = cmp(None, None, vec!["why".into()]);
        assert_eq!(none.compared, Compared::NoSnapshot);
        assert_eq!(none.problems, ["why"]);
    }
}
