//! "Needs attention", derived from the changes only (a host that was already in a state at the
//! baseline was reported then): each item says what happened and who can act on it — the agent
//! (through a steward command that starts a run), an operator command, or a person.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::diff::{Change, ChangeKind, DISK_THRESHOLDS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Who {
    /// A steward run can look into it: the suggestion is the command that starts one.
    Agent,
    /// A steward command for the operator.
    Operator,
    /// Only a person can tell whether it was meant.
    Person,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attention {
    pub what: String,
    pub who: Who,
    pub suggestion: String,
    /// The change it comes from: `TYPE NAME`.
    pub about: String,
}

pub fn needs_attention(changes: &[Change]) -> Vec<Attention> {
    changes.iter().filter_map(judge).collect()
}

fn judge(c: &Change) -> Option<Attention> {
    let name = &c.identity.name;
    let about = format!("{} {}", c.identity.kind, name);
    let (what, who) = match (c.identity.kind.as_str(), c.kind) {
        ("container", ChangeKind::StateChanged) => (container_state(name, &c.after)?, Who::Agent),
        ("container", ChangeKind::Removed) => (format!("container {name} is gone"), Who::Person),
        ("container", ChangeKind::Restarted) => (
            format!(
                "container {name} restarted ({} → {} restarts)",
                c.before["restart_count"], c.after["restart_count"]
            ),
            Who::Agent,
        ),
        ("socket", ChangeKind::PortOpened) if !loopback(&c.after) => (
            format!("new listener {name}{}", owner(&c.after)),
            Who::Person,
        ),
        ("socket", ChangeKind::PortClosed) => (
            format!("{name} stopped listening{}", owner(&c.before)),
            Who::Agent,
        ),
        ("unit", ChangeKind::StateChanged) if c.after["failed"] == true => {
            (format!("unit {name} failed"), Who::Agent)
        }
        ("filesystem", ChangeKind::ThresholdCrossed) if rising(c) => (
            format!(
                "{name} is {}% full (was {}%)",
                c.after["used_percent"], c.before["used_percent"]
            ),
            Who::Agent,
        ),
        ("source", ChangeKind::StateChanged) if c.after.get("unreadable").is_some() => (
            format!("{name} cannot be read any more: {}", c.after["unreadable"]),
            Who::Operator,
        ),
        ("nomad_job", ChangeKind::StateChanged) if nomad_worse(c) => {
            (nomad_state(name, &c.after), Who::Agent)
        }
        ("nomad_job", ChangeKind::Added) if c.after["unhealthy"].as_u64().unwrap_or(0) > 0 => {
            (nomad_state(name, &c.after), Who::Agent)
        }
        _ => return None,
    };
    let suggestion = match who {
        Who::Agent => format!(
            "steward ask {}",
            shell_quote(&format!("investigate: {what}"))
        ),
        Who::Operator => "steward doctor".to_string(),
        Who::Person => format!("decide whether this was meant: {what}"),
    };
    Some(Attention {
        what,
        who,
        suggestion,
        about,
    })
}

/// A container that ended badly, turned unhealthy or was OOM-killed; `None` for a clean state.
fn container_state(name: &str, after: &Value) -> Option<String> {
    if after["oom_killed"] == true {
        return Some(format!("container {name} was OOM-killed"));
    }
    if after["health"] == "unhealthy" {
        return Some(format!("container {name} is unhealthy"));
    }
    match after["state"].as_str()? {
        "exited" | "dead" => Some(match after["exit_code"].as_i64() {
            Some(code) => format!("container {name} exited {code}"),
            None => format!("container {name} is {}", after["state"]),
        }),
        "restarting" => Some(format!("container {name} is restarting")),
        _ => None,
    }
}

fn loopback(socket: &Value) -> bool {
    socket["address"]
        .as_str()
        .and_then(|a| a.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback())
}

fn owner(socket: &Value) -> String {
    socket["process"]
        .as_str()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default()
}

fn rising(c: &Change) -> bool {
    let used = |v: &Value| v["used_percent"].as_f64().unwrap_or(0.0);
    let inodes = |v: &Value| v["inodes_used_percent"].as_f64().unwrap_or(0.0);
    let band = |p: f64| DISK_THRESHOLDS.iter().filter(|t| p >= **t).count();
    band(used(&c.after)) > band(used(&c.before)) || band(inodes(&c.after)) > band(inodes(&c.before))
}

fn nomad_worse(c: &Change) -> bool {
    let failed = |v: &Value| v["allocations"]["failed"].as_u64().unwrap_or(0);
    let unhealthy = |v: &Value| v["unhealthy"].as_u64().unwrap_or(0);
    c.after["status"] == "dead"
        || failed(&c.after) > failed(&c.before)
        || unhealthy(&c.after) > unhealthy(&c.before)
}

fn nomad_state(name: &str, after: &Value) -> String {
    match after["unhealthy"].as_u64().unwrap_or(0) {
        0 => format!("Nomad job {name} is {}", after["status"]),
        n => format!(
            "Nomad job {name} is {} with {n} unhealthy allocation(s)",
            after["status"]
        ),
    }
}

/// Single quotes for a shell, so the suggestion can be pasted as it is.
pub(super) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
