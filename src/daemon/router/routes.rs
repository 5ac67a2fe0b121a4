//! The routing table (`triggers/routes.toml`): routes parsed and checked, matched against a
//! signal, and their `${…}` templates rendered from it.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::RoutesError;
use crate::base::signal::{Severity, Signal, Source};
use crate::config::Config;
use crate::config::maintenance::anchored;

/// The bundled routing table: a fresh install routes every trigger somewhere sensible.
pub const BUNDLED_ROUTES: &str = include_str!("../../../triggers/routes.toml");
const BUNDLED_ORIGIN: &str = "bundled:triggers/routes.toml";

// ---------------------------------------------------------------------------------------------
// The routing table.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    #[serde(default)]
    route: Vec<toml::Spanned<RawRoute>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: String,
    #[serde(default, rename = "match")]
    matcher: RawMatch,
    goal: String,
    /// The goals a templated `goal` may render to; another one does not match.
    goals: Option<Vec<String>>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    #[serde(default)]
    vars_from: Vec<VarsFrom>,
    cooldown_secs: Option<u64>,
    #[serde(default)]
    priority: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    source: Option<Source>,
    subject: Option<String>,
    subject_exact: Option<String>,
    severity: Option<Severity>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Which signal map a route copies into the vars wholesale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VarsFrom {
    Labels,
    Annotations,
}

/// One compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub priority: i64,
    pub cooldown_secs: Option<u64>,
    /// Where it was defined: `origin:line`.
    pub defined_at: String,
    source: Option<Source>,
    subject: Option<Regex>,
    subject_exact: Option<String>,
    severity: Option<Severity>,
    labels: Vec<(String, Regex)>,
    goal: String,
    goals: Option<Vec<String>>,
    vars: BTreeMap<String, String>,
    vars_from: Vec<VarsFrom>,
}

/// The first route that matched a signal, with its goal and variables filled in.
#[derive(Debug, Clone)]
pub struct Matched {
    pub route: String,
    pub goal: String,
    pub vars: BTreeMap<String, String>,
    pub cooldown_secs: Option<u64>,
}

/// The routing table, in the order routes are tried.
#[derive(Debug, Clone)]
pub struct Routes {
    routes: Vec<Route>,
    pub origin: String,
}

impl Routes {
    /// The table shipped in the binary.
    pub fn bundled() -> Result<Routes, RoutesError> {
        Routes::parse(BUNDLED_ORIGIN, BUNDLED_ROUTES)
    }

    /// `routes_file` from the config if set (it replaces the bundled table), else the bundled one.
    pub fn load(cfg: &Config) -> Result<Routes, RoutesError> {
        match &cfg.routes_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| RoutesError::Read {
                    path: path.clone(),
                    source,
                })?;
                Routes::parse(&path.display().to_string(), &text)
            }
            None => Routes::bundled(),
        }
    }

    /// Parses and compiles a table; every error names `origin`, line and column.
    pub fn parse(origin: &str, text: &str) -> Result<Routes, RoutesError> {
        let at = |offset: usize, message: String| {
            let (line, column) = crate::config::line_col(text, offset);
            RoutesError::Parse {
                origin: origin.to_string(),
                line,
                column,
                message,
            }
        };
        let file: RoutesFile = toml::from_str(text).map_err(|e| {
            at(
                e.span().map_or(usize::MAX, |s| s.start),
                e.message().to_string(),
            )
        })?;
        let mut routes = Vec::with_capacity(file.route.len());
        for spanned in file.route {
            let start = spanned.span().start;
            let raw = spanned.into_inner();
            let fail = |m: String| at(start, format!("route `{}`: {m}", raw.name));
            if raw.name.trim().is_empty() {
                return Err(fail("`name` must not be empty".into()));
            }
            if routes.iter().any(|r: &Route| r.name == raw.name) {
                return Err(fail("a route of this name is already defined".into()));
            }
            if raw.goal.trim().is_empty() {
                return Err(fail("`goal` must not be empty".into()));
            }
            check_template(&raw.goal).map_err(|m| fail(format!("goal: {m}")))?;
            check_goal_choice(&raw).map_err(fail)?;
            for (k, v) in &raw.vars {
                check_template(v).map_err(|m| fail(format!("vars.{k}: {m}")))?;
            }
            let subject = raw
                .matcher
                .subject
                .as_deref()
                .map(anchored)
                .transpose()
                .map_err(|e| fail(format!("match.subject: {e}")))?;
            let mut labels = Vec::new();
            for (k, v) in &raw.matcher.labels {
                labels.push((
                    k.clone(),
                    anchored(v).map_err(|e| fail(format!("match.labels.{k}: {e}")))?,
                ));
            }
            let (line, _) = crate::config::line_col(text, start);
            routes.push(Route {
                name: raw.name,
                priority: raw.priority,
                cooldown_secs: raw.cooldown_secs,
                defined_at: format!("{origin}:{line}"),
                source: raw.matcher.source,
                subject,
                subject_exact: raw.matcher.subject_exact,
                severity: raw.matcher.severity,
                labels,
                goal: raw.goal,
                goals: raw.goals,
                vars: raw.vars,
                vars_from: raw.vars_from,
            });
        }
        // Stable: equal priorities keep the order of the file.
        routes.sort_by_key(|r| std::cmp::Reverse(r.priority));
        Ok(Routes {
            routes,
            origin: origin.to_string(),
        })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The first route that matches, with goal and vars rendered from the signal.
    pub fn find(&self, signal: &Signal) -> Option<Matched> {
        self.routes.iter().find_map(|r| r.apply(signal))
    }
}

impl Route {
    fn matches(&self, s: &Signal) -> bool {
        self.source.is_none_or(|src| src == s.source)
            && self
                .subject
                .as_ref()
                .is_none_or(|re| re.is_match(&s.subject))
            && self.subject_exact.as_ref().is_none_or(|e| *e == s.subject)
            && self.severity.is_none_or(|min| s.severity >= min)
            && self
                .labels
                .iter()
                .all(|(k, re)| s.labels.get(k).is_some_and(|v| re.is_match(v)))
    }

    fn apply(&self, s: &Signal) -> Option<Matched> {
        if !self.matches(s) {
            return None;
        }
        // A goal that names a label the signal lacks cannot be run: the next route may fit.
        let goal = render(&self.goal, s)
            .ok()
            .filter(|g| !g.trim().is_empty())?;
        // A rendered goal outside the route's list is the sender's choice, not the route's.
        if self
            .goals
            .as_ref()
            .is_some_and(|allowed| !allowed.contains(&goal))
        {
            return None;
        }
        let mut vars = BTreeMap::new();
        for from in &self.vars_from {
            let map = match from {
                VarsFrom::Labels => &s.labels,
                VarsFrom::Annotations => &s.annotations,
            };
            vars.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        for (k, tpl) in &self.vars {
            // Missing inputs leave the var unset; the goal's `vars` decide if that is an error.
            if let Ok(v) = render(tpl, s) {
                vars.insert(k.clone(), v);
            }
        }
        Some(Matched {
            route: self.name.clone(),
            goal,
            vars,
            cooldown_secs: self.cooldown_secs,
        })
    }
}

/// Sources whose signals come from outside the host's own units, timers and operators: whoever
/// holds a webhook token can send any labels and subject.
fn from_outside(source: Option<Source>) -> bool {
    matches!(source, None | Some(Source::Alertmanager | Source::Webhook))
}

/// A route that can match a signal from outside and renders its goal from the signal would let
/// the sender pick the goal (an operator's `intent`, say): it must list the goals it may reach.
fn check_goal_choice(raw: &RawRoute) -> Result<(), String> {
    if let Some(goals) = &raw.goals {
        if goals.is_empty() || goals.iter().any(|g| g.trim().is_empty()) {
            return Err("`goals` must list goal names".into());
        }
        if !raw.goal.contains("${") {
            return Err("`goals` is only for a templated `goal` (one with ${...})".into());
        }
        return Ok(());
    }
    if raw.goal.contains("${") && from_outside(raw.matcher.source) {
        let whose = raw
            .matcher
            .source
            .map_or("any source, webhooks included", Source::as_str);
        return Err(format!(
            "goal `{}` is rendered from the signal, and the route matches {whose}: the sender \
             would pick the goal. List the goals it may reach (`goals = [\"...\"]`), or match a \
             local source (timer, on_failure, manual, ci)",
            raw.goal
        ));
    }
    Ok(())
}

/// The names a template may use: `subject`, `source`, `severity`, `fingerprint`,
/// `labels.NAME`, `annotations.NAME`.
fn lookup(name: &str, s: &Signal) -> Result<String, String> {
    match name {
        "subject" => Ok(s.subject.clone()),
        "source" => Ok(s.source.as_str().to_string()),
        "severity" => Ok(match s.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
        .to_string()),
        "fingerprint" => Ok(s.fingerprint.clone()),
        _ => {
            let (map, key) = if let Some(k) = name.strip_prefix("labels.") {
                (&s.labels, k)
            } else if let Some(k) = name.strip_prefix("annotations.") {
                (&s.annotations, k)
            } else {
                return Err(format!("unknown placeholder `${{{name}}}`"));
            };
            map.get(key)
                .cloned()
                .ok_or_else(|| format!("the signal has no `{name}`"))
        }
    }
}

fn placeholders(tpl: &str) -> Result<Vec<(usize, usize, &str)>, String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = tpl[from..].find("${") {
        let open = from + i;
        let close = tpl[open..]
            .find('}')
            .map(|j| open + j)
            .ok_or_else(|| format!("unclosed `${{` in {tpl:?}"))?;
        out.push((open, close + 1, tpl[open + 2..close].trim()));
        from = close + 1;
    }
    Ok(out)
}

fn check_template(tpl: &str) -> Result<(), String> {
    for (_, _, name) in placeholders(tpl)? {
        let ok = matches!(name, "subject" | "source" | "severity" | "fingerprint")
            || name
                .strip_prefix("labels.")
                .or_else(|| name.strip_prefix("annotations."))
                .is_some_and(|k| !k.is_empty());
        if !ok {
            return Err(format!(
                "unknown placeholder `${{{name}}}` (use subject, source, severity, fingerprint, \
                 labels.NAME or annotations.NAME)"
            ));
        }
    }
    Ok(())
}

/// Fills `${…}` placeholders from the signal; `Err` names a missing input.
pub fn render(tpl: &str, s: &Signal) -> Result<String, String> {
    let mut out = String::with_capacity(tpl.len());
    let mut last = 0;
    for (start, end, name) in placeholders(tpl)? {
        out.push_str(&tpl[last..start]);
        out.push_str(&lookup(name, s)?);
        last = end;
    }
    out.push_str(&tpl[last..]);
    Ok(out)
}
