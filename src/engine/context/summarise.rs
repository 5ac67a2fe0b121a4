//! Which probes the prompt shows in full and which in one line. A probe that failed or timed out
//! is always shown whole (its output is never dropped); so is one whose output names an item
//! that needs attention, or that changed since the subject's last run. A probe whose output is
//! the same as at the subject's last run is one line; so is, on a subject's first run, a probe
//! that is `ok` and names nothing the snapshot flags. The agent can fetch any probe whole with
//! the `probe` tool.

use serde::Serialize;

use super::host::HostContext;
use crate::defs::probe::{ProbeResult, ProbeStatus};
use crate::engine::context::last_run::ProbeDigest;

/// The agent's tool that returns one probe's whole output.
pub const PROBE_TOOL: &str = "mcp__steward__probe";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shown {
    Full,
    Summary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub name: String,
    pub status: ProbeStatus,
    pub bytes: usize,
    pub shown: Shown,
    /// Why, in words (`failed`, `changed since run X`, `names container web`, …).
    pub reason: String,
    /// Whether the output is the same as at the subject's last run.
    pub unchanged: bool,
    /// The subject's last run, where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_run: Option<String>,
}

impl Decision {
    /// The one line a summarised probe gets in the prompt (empty when shown in full).
    pub fn summary(&self) -> String {
        if self.shown == Shown::Full {
            return String::new();
        }
        format!(
            "`{}` ({}, {} bytes): {}; fetch it whole with `{PROBE_TOOL}`",
            self.name,
            self.status.as_str(),
            self.bytes,
            self.reason
        )
    }
}

/// One decision per probe, in the probes' order. Without a host context (a template check, a
/// caller with no snapshot) every probe is shown in full.
pub fn decide_all(context: &[ProbeResult], host: Option<&HostContext>) -> Vec<Decision> {
    context.iter().map(|r| decide(r, host)).collect()
}

/// The decisions for a goal: a probe is shown in one line only where the agent can fetch it
/// whole, that is when the goal lists [`PROBE_TOOL`].
pub fn decide_for(
    goal_tools: &[String],
    context: &[ProbeResult],
    host: Option<&HostContext>,
) -> Vec<Decision> {
    let fetchable = goal_tools.iter().any(|t| t == PROBE_TOOL);
    let mut decisions = decide_all(context, host);
    for d in decisions.iter_mut().filter(|d| d.shown == Shown::Summary) {
        if !fetchable {
            d.shown = Shown::Full;
            d.reason = format!("the goal's tools have no `{PROBE_TOOL}` to fetch it");
        }
    }
    decisions
}

pub fn decide(r: &ProbeResult, host: Option<&HostContext>) -> Decision {
    let digest = ProbeDigest::of(r);
    let last = host.and_then(|h| h.last.as_ref());
    let before = last.and_then(|l| l.probes.get(&r.name));
    let unchanged = before.is_some_and(|b| b.same_as(&digest));
    let since_run = last.map(|l| l.run_id.clone());
    let decision = |shown, reason: String| Decision {
        name: r.name.clone(),
        status: r.status,
        bytes: digest.bytes,
        shown,
        reason,
        unchanged,
        since_run: since_run.clone(),
    };
    let Some(host) = host else {
        return decision(Shown::Full, "no host context".into());
    };
    if matches!(r.status, ProbeStatus::Failed | ProbeStatus::TimedOut) {
        return decision(Shown::Full, r.status.as_str().into());
    }
    let text = crate::engine::prompt::probe_text(r);
    let attention = host.attention.iter().map(|a| attention_name(&a.about));
    if let Some(name) = attention.into_iter().find(|n| names(&text, n)) {
        return decision(Shown::Full, format!("names {name}, which needs attention"));
    }
    match (before, &since_run) {
        (Some(_), Some(run)) if unchanged => {
            decision(Shown::Summary, format!("unchanged since run {run}"))
        }
        (Some(_), Some(run)) => decision(Shown::Full, format!("changed since run {run}")),
        _ => match host.standing.iter().find(|f| names(&text, &f.name)) {
            Some(f) => decision(
                Shown::Full,
                format!("shows what the snapshot flags: {}", f.what),
            ),
            None => decision(
                Shown::Summary,
                "no earlier output to compare with; shows nothing the host snapshot flags".into(),
            ),
        },
    }
}

/// The probes shown in one line, as the prompt lists them: one line per reason naming its
/// probes (with the status where it is not `ok`); empty when every probe is shown whole.
pub fn summarised_text(decisions: &[Decision]) -> String {
    let mut groups: Vec<(&str, Vec<&Decision>)> = Vec::new();
    for d in decisions.iter().filter(|d| d.shown == Shown::Summary) {
        match groups.iter_mut().find(|(reason, _)| *reason == d.reason) {
            Some((_, members)) => members.push(d),
            None => groups.push((&d.reason, vec![d])),
        }
    }
    groups
        .iter()
        .map(|(reason, members)| group_line(reason, members))
        .collect()
}

/// `- unchanged since run X (3 probes, 1204 bytes): `a`, `b` (not_available), `c``
pub fn group_line(reason: &str, members: &[&Decision]) -> String {
    let bytes: usize = members.iter().map(|d| d.bytes).sum();
    let names: Vec<String> = members
        .iter()
        .map(|d| match d.status {
            ProbeStatus::Ok => format!("`{}`", d.name),
            other => format!("`{}` ({})", d.name, other.as_str()),
        })
        .collect();
    let count = match members.len() {
        1 => "1 probe".to_string(),
        n => format!("{n} probes"),
    };
    format!(
        "- {reason} ({count}, {bytes} bytes): {}\n",
        names.join(", ")
    )
}

/// The item's name of an attention's `about` (`TYPE NAME`).
fn attention_name(about: &str) -> &str {
    about.split_once(' ').map_or(about, |(_, name)| name)
}

/// Whether `text` names `name` as a word of its own: words are runs of the characters unit,
/// container, job names and paths are made of, so `nginx.service:` and `["web"]` name
/// `nginx.service` and `web`, and `/srv` does not name `/`.
fn names(text: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let word_char =
        |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '@' | '\\');
    text.split(|c: char| !word_char(c)).any(|word| word == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::context::host::{Compared, Flag};
    use crate::engine::context::last_run;
    use crate::engine::report::attention::{Attention, Who};

    fn probe(name: &str, status: ProbeStatus, out: &str) -> ProbeResult {
        ProbeResult {
            name: name.into(),
            description: String::new(),
            status,
            output: serde_json::json!(out),
            truncated: false,
            detail: None,
            exit_code: Some(0),
            duration_ms: 1,
        }
    }

    fn host(last: &[ProbeResult]) -> HostContext {
        HostContext {
            subject: "s".into(),
            snapshot: None,
            compared: Compared::FirstRun,
            changes: Vec::new(),
            attention: Vec::new(),
            standing: vec![Flag {
                what: "/ is 93% full".into(),
                name: "/".into(),
            }],
            problems: Vec::new(),
            last: (!last.is_empty()).then(|| last_run::next("s", "r1", None, None, last)),
        }
    }

    fn shown(r: &ProbeResult, h: &HostContext) -> (Shown, String) {
        let d = decide(r, Some(h));
        (d.shown, d.reason)
    }

    #[test]
    fn first_run_summarises_quiet_probes_and_shows_flagged_ones() {
        let h = host(&[]);
        let quiet = probe("uptime", ProbeStatus::Ok, "up 3 days, load 0.1");
        let df = probe(
            "df",
            ProbeStatus::Ok,
            "/dev/vda 10G 9.3G 93% /\n/dev/vdb 1G 0 0% /srv",
        );
        let failed = probe("nomad", ProbeStatus::Failed, "connection refused");
        assert_eq!(shown(&quiet, &h).0, Shown::Summary);
        assert_eq!(shown(&df, &h).0, Shown::Full);
        assert!(shown(&df, &h).1.contains("/ is 93% full"));
        assert_eq!(shown(&failed, &h), (Shown::Full, "failed".into()));
        let line = decide(&quiet, Some(&h)).summary();
        assert!(
            line.starts_with("`uptime` (ok, 19 bytes): no earlier output"),
            "{line}"
        );
        assert!(line.contains(PROBE_TOOL), "{line}");
        // `/srv` alone does not name `/`.
        let srv = probe("srv", ProbeStatus::Ok, "/dev/vdb 1G 0 0% /srv");
        assert_eq!(shown(&srv, &h).0, Shown::Summary);
        // Names inside JSON count; a longer name does not.
        assert!(names(r#"{"Names":["web"],"State":"exited"}"#, "web"));
        assert!(names("nginx.service: Main process exited", "nginx.service"));
        assert!(!names("web-2 is up", "web"));
        assert!(!names(
            "backup-nightly[4100]: Fatal",
            "backup-nightly.service"
        ));
    }

    #[test]
    fn unchanged_is_one_line_changed_and_failing_are_whole() {
        let df = probe("df", ProbeStatus::Ok, "93% /");
        let up = probe("uptime", ProbeStatus::Ok, "up 3 days");
        let units = probe("units", ProbeStatus::Ok, "0 loaded units listed");
        let h = host(&[df.clone(), up.clone(), units.clone()]);
        // Unchanged, even though it shows a standing flag: the "needs attention" list names it.
        assert_eq!(
            shown(&df, &h),
            (Shown::Summary, "unchanged since run r1".into())
        );
        let d = decide(&up, Some(&h));
        assert!(d.unchanged && d.summary().contains("unchanged since run r1"));
        // Only the clock moved: unchanged.
        let later = probe("uptime", ProbeStatus::Ok, "up 4 days");
        assert!(decide(&later, Some(&h)).unchanged);
        let up2 = probe("uptime", ProbeStatus::Ok, "up 3 days, 2 users");
        assert_eq!(
            shown(&up2, &h),
            (Shown::Full, "changed since run r1".into())
        );
        // Same text, now failing: never summarised.
        let units_failed = probe("units", ProbeStatus::Failed, "0 loaded units listed");
        assert_eq!(shown(&units_failed, &h).0, Shown::Full);
        let timed_out = probe("uptime", ProbeStatus::TimedOut, "up 3 days");
        assert_eq!(shown(&timed_out, &h).0, Shown::Full);
    }

    #[test]
    fn a_probe_naming_an_attention_item_is_whole_even_if_unchanged() {
        let ps = probe("docker-ps", ProbeStatus::Ok, "abc busybox Exited (137) web");
        let mut h = host(std::slice::from_ref(&ps));
        h.attention.push(Attention {
            what: "container web exited 137".into(),
            who: Who::Agent,
            suggestion: String::new(),
            about: "container web".into(),
        });
        assert_eq!(
            shown(&ps, &h),
            (Shown::Full, "names web, which needs attention".into())
        );
    }

    #[test]
    fn a_goal_that_cannot_fetch_probes_gets_them_whole() {
        let up = probe("uptime", ProbeStatus::Ok, "up 3 days");
        let h = host(std::slice::from_ref(&up));
        let with = decide_for(
            &[PROBE_TOOL.to_string()],
            std::slice::from_ref(&up),
            Some(&h),
        );
        assert_eq!(with[0].shown, Shown::Summary);
        let without = decide_for(&["Bash".to_string()], std::slice::from_ref(&up), Some(&h));
        assert_eq!(without[0].shown, Shown::Full);
        assert!(
            without[0].reason.contains(PROBE_TOOL),
            "{}",
            without[0].reason
        );
        assert_eq!(summarised_text(&without), "");
    }

    #[test]
    fn summarised_probes_are_one_line_per_reason() {
        let h = host(&[
            probe("a", ProbeStatus::Ok, "x"),
            probe("b", ProbeStatus::Ok, "yy"),
        ]);
        let decisions = decide_all(
            &[
                probe("a", ProbeStatus::Ok, "x"),
                probe("b", ProbeStatus::Ok, "yy"),
                probe("c", ProbeStatus::NotAvailable, "no nomad"),
                probe("d", ProbeStatus::Ok, "new"),
            ],
            Some(&h),
        );
        let text = summarised_text(&decisions);
        assert_eq!(
            text,
            "- unchanged since run r1 (2 probes, 3 bytes): `a`, `b`\n\
             - no earlier output to compare with; shows nothing the host snapshot flags \
             (2 probes, 11 bytes): `c` (not_available), `d`\n"
        );
        assert_eq!(summarised_text(&decide_all(&[], Some(&h))), "");
    }

    #[test]
    fn without_a_host_context_everything_is_whole() {
        let d = decide(&probe("uptime", ProbeStatus::Ok, "up"), None);
        assert_eq!(d.shown, Shown::Full);
        assert_eq!(d.summary(), "");
    }
}
