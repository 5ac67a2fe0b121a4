//! `[report] ignore`: items an operator leaves out of the host snapshot, and so out of every
//! diff, attention item and standing flag (a CI runner's throwaway containers, ephemeral
//! loopback listeners, per-user mounts). A pattern is `TYPE NAME`, the way changes name their
//! item (`socket tcp 127.0.0.1:*`, `container ci-*`, `filesystem /run/user/*`), where `*` in
//! NAME matches any run of characters. Both snapshots of a comparison are filtered, so an item
//! ignored today is not reported as removed against a baseline taken before.

use super::snapshot::Snapshot;
use crate::config::report::parse_ignore;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ignore {
    patterns: Vec<(String, String)>,
}

impl Ignore {
    /// The patterns of `[report] ignore`; an error says which one is wrong and why.
    pub fn parse(patterns: &[String]) -> Result<Ignore, String> {
        Ok(Ignore {
            patterns: parse_ignore(patterns)?,
        })
    }

    pub fn matches(&self, ty: &str, name: &str) -> bool {
        self.patterns
            .iter()
            .any(|(t, glob)| t == ty && wildcard(glob, name))
    }

    /// `snapshot` without the ignored items.
    pub fn apply(&self, mut snapshot: Snapshot) -> Snapshot {
        if self.patterns.is_empty() {
            return snapshot;
        }
        snapshot
            .containers
            .retain(|name, _| !self.matches("container", name));
        snapshot
            .sockets
            .retain(|name, _| !self.matches("socket", name));
        snapshot
            .failed_units
            .retain(|name, _| !self.matches("unit", name));
        snapshot
            .filesystems
            .retain(|name, _| !self.matches("filesystem", name));
        snapshot
            .nomad_jobs
            .retain(|name, _| !self.matches("nomad_job", name));
        snapshot
    }
}

/// Whether `text` matches `glob`, where `*` matches any run of characters (none included).
fn wildcard(glob: &str, text: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    let (first, rest) = match parts.split_first() {
        Some(split) => split,
        None => return text.is_empty(),
    };
    let Some(mut tail) = text.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return tail.is_empty();
    };
    for part in middle {
        match tail.find(part) {
            Some(at) => tail = &tail[at + part.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_of_characters() {
        assert!(wildcard("tcp 127.0.0.1:*", "tcp 127.0.0.1:40543"));
        assert!(!wildcard("tcp 127.0.0.1:*", "tcp 0.0.0.0:22"));
        assert!(wildcard("ci-*-runner", "ci-42-runner"));
        assert!(!wildcard("ci-*-runner", "ci-42-runner-x"));
        assert!(wildcard("web", "web") && !wildcard("web", "web2"));
        assert!(wildcard("*", "") && wildcard("a*a", "aa") && !wildcard("a*a", "a"));
    }

    #[test]
    fn patterns_are_checked_and_applied_to_each_source() {
        for bad in ["socket", "port tcp *", "socket  ", "container"] {
            assert!(Ignore::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
        let ignore = Ignore::parse(&[
            "socket tcp 127.0.0.1:*".to_string(),
            "container ci-*".to_string(),
        ])
        .unwrap();
        let snap: Snapshot = serde_json::from_value(serde_json::json!({
            "format": 1, "taken": "2026-12-01T00:00:00Z", "host": "h",
            "sockets": {
                "tcp 127.0.0.1:40543": {"proto": "tcp", "address": "127.0.0.1", "port": 40543},
                "tcp 0.0.0.0:22": {"proto": "tcp", "address": "0.0.0.0", "port": 22}
            }
        }))
        .unwrap();
        let kept = ignore.apply(snap);
        assert_eq!(kept.sockets.keys().collect::<Vec<_>>(), ["tcp 0.0.0.0:22"]);
    }
}
