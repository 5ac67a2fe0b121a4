//! Where in a goal file its names and rules are, for errors and warnings found after the front
//! matter parsed: the probes and checks it names (resolved when definitions load) and the policy
//! rules a deny rule always beats (warnings).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::GoalPolicy;
use crate::defs::check::Phase;
use crate::defs::frontmatter::{self, Split};

/// File positions (line, column) of the names a goal refers to.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    /// Each entry of `probes`, in order.
    pub probes: Vec<(usize, usize)>,
    /// Each check name of `[checks]`, by phase, in order.
    pub checks: BTreeMap<Phase, Vec<(usize, usize)>>,
    /// The `probes` key and the `[checks]` table, for anything else.
    pub probes_key: (usize, usize),
    pub checks_key: (usize, usize),
}

impl Positions {
    pub fn probe(&self, index: usize) -> (usize, usize) {
        self.probes.get(index).copied().unwrap_or(self.probes_key)
    }

    pub fn check(&self, phase: Phase, index: usize) -> (usize, usize) {
        self.checks
            .get(&phase)
            .and_then(|v| v.get(index))
            .copied()
            .unwrap_or(self.checks_key)
    }
}

/// The parts of the front matter whose positions errors and warnings point at. Other keys are
/// ignored here: `Front` in goal.rs checks them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Spans {
    probes: Vec<toml::Spanned<String>>,
    checks: CheckSpans,
    policy: PolicySpans,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CheckSpans {
    #[serde(rename = "static")]
    static_: Vec<toml::Spanned<String>>,
    preflight: Vec<toml::Spanned<String>>,
    post: Vec<toml::Spanned<String>>,
    invariants: Vec<toml::Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PolicySpans {
    allow: Vec<toml::Spanned<String>>,
    approve: Vec<toml::Spanned<String>>,
}

/// The positions of a goal's names, and its warnings (`FILE:LINE:COL: message`); the error is
/// a message for the goal file.
pub(super) fn locate(
    split: &Split<'_>,
    origin: &str,
    policy: &GoalPolicy,
) -> Result<(Positions, Vec<String>), String> {
    // Parsed already as the whole front matter, so this cannot fail; if it did, only the
    // positions would fall back to the keys.
    let spans: Spans = toml::from_str(split.front).unwrap_or_default();
    let pos = |s: &toml::Spanned<String>| frontmatter::offset_pos(split, s.span().start);
    let warnings = crate::defs::policy::shadowed(policy)
        .map_err(|e| e.to_string())?
        .iter()
        .map(|w| {
            let list = if w.list == "allow" {
                &spans.policy.allow
            } else {
                &spans.policy.approve
            };
            let (line, column) = list
                .get(w.index)
                .map(pos)
                .unwrap_or_else(|| frontmatter::key_pos(split, w.list));
            format!("{origin}:{line}:{column}: {}", w.message())
        })
        .collect();
    let positions = Positions {
        probes: spans.probes.iter().map(pos).collect(),
        checks: [
            (Phase::Static, &spans.checks.static_),
            (Phase::Preflight, &spans.checks.preflight),
            (Phase::Post, &spans.checks.post),
            (Phase::Invariant, &spans.checks.invariants),
        ]
        .into_iter()
        .map(|(phase, list)| (phase, list.iter().map(pos).collect()))
        .collect(),
        probes_key: frontmatter::key_pos(split, "probes"),
        checks_key: frontmatter::key_pos(split, "checks"),
    };
    Ok((positions, warnings))
}
