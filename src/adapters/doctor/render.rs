//! Every goal rendered with representative context, so that a template error inside a loop body
//! or a conditional branch is found by `steward doctor` and not by the first alert at 3 a.m.
//!
//! A template only fails where it is evaluated: `{% for p in context %}{{ p.fencd }}{% endfor %}`
//! renders fine with no probes. So each goal is rendered once per signal source with every kind
//! of data present, twice over: a green set (probes ok, checks passing) and a red set (probes
//! failed, timed out or unavailable, checks failing, an effectiveness history), and once with
//! nothing at all.

use std::collections::BTreeMap;
use std::path::Path;

use time::OffsetDateTime;

use crate::base::outcome::Outcome;
use crate::base::signal::{Severity, Signal, Source};
use crate::defs::check::{CheckResult, CheckStatus, Phase};
use crate::defs::goal::Goal;
use crate::defs::knowledge::{self, Note};
use crate::defs::probe::{ParseMode, ProbeResult, ProbeStatus};
use crate::engine::memory::Attempt;
use crate::engine::prompt::RenderInput;
use crate::engine::run::Definitions;

const NONCE: &str = "steward-doctor-render-check";

const SOURCES: [Source; 8] = [
    Source::Manual,
    Source::Timer,
    Source::Alertmanager,
    Source::OnFailure,
    Source::Webhook,
    Source::Ci,
    Source::Docker,
    Source::Drift,
];

/// Renders every goal; `Ok` is the number of renders, `Err` one message per broken goal, each
/// starting with the goal's file and line.
pub fn every_goal(
    goals: &[Goal],
    defs: &Definitions,
    workspace: &Path,
) -> Result<usize, Vec<String>> {
    let mut renders = 0;
    let mut broken = Vec::new();
    for g in goals {
        match one_goal(g, defs, workspace) {
            Ok(n) => renders += n,
            Err(e) => broken.push(e),
        }
    }
    if broken.is_empty() {
        Ok(renders)
    } else {
        Err(broken)
    }
}

/// The first error of one goal (the rest are usually the same mistake again).
fn one_goal(g: &Goal, defs: &Definitions, workspace: &Path) -> Result<usize, String> {
    let selected = defs
        .catalog
        .select(&g.probes)
        .map_err(|e| format!("{}: probes: {e}", g.origin))?;
    let probes: Vec<(&str, &str, ParseMode)> = if selected.is_empty() {
        vec![("example-probe", "a representative probe", ParseMode::Text)]
    } else {
        selected
            .iter()
            .map(|p| (p.name.as_str(), p.description.as_str(), p.parse))
            .collect()
    };
    let check_names = goal_check_names(g);
    let vars: BTreeMap<String, String> = g
        .required_vars
        .iter()
        .map(|v| (v.clone(), format!("<{v}>")))
        .collect();
    let example = example_note(g);
    let mut renders = 0;
    for source in SOURCES {
        let signal = signal(g, source, &vars);
        let mut notes = knowledge::select(&defs.notes, &g.name, &g.knowledge_tags, &signal.labels);
        notes.push(&example);
        for red in [false, true] {
            let context = probe_results(&probes, red);
            let checks = check_results(&check_names, red);
            let history = if red { history(&signal) } else { Vec::new() };
            let input = RenderInput {
                signal: &signal,
                context: &context,
                knowledge: &notes,
                vars: &vars,
                nonce: NONCE,
                workspace,
                checks: &checks,
                history: &history,
                host: None,
                contract: None,
            };
            render(g, &input)?;
            renders += 1;
        }
    }
    let bare = Signal::manual(&g.name, &vars);
    let input = RenderInput {
        signal: &bare,
        context: &[],
        knowledge: &[],
        vars: &vars,
        nonce: NONCE,
        workspace,
        checks: &[],
        history: &[],
        host: None,
        contract: None,
    };
    render(g, &input)?;
    Ok(renders + 1)
}

/// One render; the error names the goal file and line, and the signal source it was rendered for.
fn render(g: &Goal, input: &RenderInput<'_>) -> Result<(), String> {
    crate::engine::prompt::render(g, input)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{e} (rendered for a {} signal)",
                input.signal.source.as_str()
            )
        })
}

/// The checks a goal names in any phase, once each; one example when it names none.
fn goal_check_names(g: &Goal) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for phase in [
        Phase::Static,
        Phase::Preflight,
        Phase::Invariant,
        Phase::Post,
    ] {
        for n in g.checks.names(phase) {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    if names.is_empty() {
        names.push("example-check".to_string());
    }
    names
}

/// A signal as its adapter would build it, carrying every label and annotation steward's own
/// adapters set, so `signal.labels.unit` or `signal.annotations.journal` exist as they would.
fn signal(g: &Goal, source: Source, vars: &BTreeMap<String, String>) -> Signal {
    let labels: BTreeMap<String, String> = [
        ("goal", g.name.as_str()),
        ("alertname", "ExampleAlert"),
        ("instance", "host.example:9100"),
        ("job", "node"),
        ("severity", "warning"),
        ("service", "example"),
        ("unit", "example.service"),
        ("result", "exit-code"),
        ("class", "exit_code:1"),
        ("restarts", "0"),
        ("recent_failures", "1"),
        ("base", "0123456789abcdef0123456789abcdef01234567"),
        ("head", "89abcdef0123456789abcdef0123456789abcdef"),
        ("container", "example-container"),
        ("image", "example/image:1"),
        ("exit_code", "137"),
        ("incident", "1700000000000000000-0123456789ab"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut annotations: BTreeMap<String, String> = [
        ("summary", "example summary"),
        ("description", "example description"),
        ("journal", "example journal line 1\nexample journal line 2"),
        ("logs", "example log line 1\nexample log line 2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    // Manual and webhook signals carry the run's variables as annotations.
    annotations.extend(vars.clone());
    Signal {
        source,
        subject: "example-subject".to_string(),
        fingerprint: crate::base::signal::fingerprint(&["doctor", &g.name, source.as_str()]),
        severity: Severity::Warning,
        labels,
        annotations,
        payload: serde_json::json!({}),
        received: OffsetDateTime::now_utc(),
        truncated: Vec::new(),
    }
}

fn probe_results(probes: &[(&str, &str, ParseMode)], red: bool) -> Vec<ProbeResult> {
    const RED: [ProbeStatus; 3] = [
        ProbeStatus::Failed,
        ProbeStatus::TimedOut,
        ProbeStatus::NotAvailable,
    ];
    probes
        .iter()
        .enumerate()
        .map(|(i, (name, description, parse))| {
            let status = if red {
                RED[i % RED.len()]
            } else {
                ProbeStatus::Ok
            };
            let output = match (status, parse) {
                (ProbeStatus::TimedOut | ProbeStatus::NotAvailable, _) => serde_json::Value::Null,
                (_, ParseMode::Text) => "example output\nsecond line".into(),
                (_, ParseMode::Json) => serde_json::json!({"example": "value", "items": [1, 2]}),
                (_, ParseMode::Lines) => serde_json::json!(["example line 1", "example line 2"]),
            };
            ProbeResult {
                name: name.to_string(),
                description: description.to_string(),
                status,
                output,
                truncated: red,
                detail: red.then(|| "example detail".to_string()),
                exit_code: Some(if red { 1 } else { 0 }),
                duration_ms: 1,
            }
        })
        .collect()
}

fn check_results(names: &[String], red: bool) -> Vec<CheckResult> {
    const RED: [CheckStatus; 3] = [
        CheckStatus::Fail,
        CheckStatus::Error,
        CheckStatus::Unavailable,
    ];
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let status = if red {
                RED[i % RED.len()]
            } else {
                CheckStatus::Pass
            };
            CheckResult {
                name: name.clone(),
                description: "a representative check".to_string(),
                kind: "command".to_string(),
                status,
                observed: serde_json::json!({"exit_code": if red { 1 } else { 0 }, "stdout": "example"}),
                expected: "exit 0".to_string(),
                detail: red.then(|| "example detail".to_string()),
                duration_ms: 1,
            }
        })
        .collect()
}

fn history(signal: &Signal) -> Vec<Attempt> {
    vec![Attempt {
        subject: signal.subject.clone(),
        action: "systemctl restart example.service".to_string(),
        outcome: Outcome::Failed,
        at: OffsetDateTime::now_utc(),
    }]
}

fn example_note(g: &Goal) -> Note {
    Note {
        name: "example-note".to_string(),
        origin: "knowledge/example-note.md".to_string(),
        title: "An example note".to_string(),
        tags: g.knowledge_tags.clone(),
        body: "Example knowledge.".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defs::bundled::{Collected, SourceFile};
    use crate::defs::probe::ProbeDefaults;

    fn defs(goal_text: &str) -> Definitions {
        let goal = SourceFile {
            origin: "/etc/steward/goals/x.md".into(),
            stem: "x".into(),
            text: goal_text.into(),
        };
        let collected = |files| Collected {
            files,
            unreadable: vec![],
        };
        Definitions::from_files(
            collected(vec![goal]),
            collected(vec![]),
            collected(vec![]),
            ProbeDefaults {
                timeout: std::time::Duration::from_secs(1),
                max_bytes: 1024,
            },
        )
    }

    fn run(goal_text: &str) -> Result<usize, Vec<String>> {
        let d = defs(goal_text);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        let goals = d.goals();
        every_goal(&goals, &d, Path::new("/srv/ws"))
    }

    const FRONT: &str = "+++\ndescription = \"d\"\n+++\n";

    #[test]
    fn bundled_goals_render_in_every_shape() {
        let cfg = crate::config::Config::default();
        let d = Definitions::load(&cfg).unwrap();
        let goals = d.goals();
        let n = every_goal(&goals, &d, Path::new("/srv/ws")).unwrap();
        assert_eq!(n, goals.len() * (SOURCES.len() * 2 + 1));
    }

    #[test]
    fn a_typo_inside_a_loop_body_is_found_with_its_line() {
        let e = run(&format!(
            "{FRONT}line 4\n{{% for p in context %}}\n{{{{ p.fencd }}}}\n{{% endfor %}}\n"
        ))
        .unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("/etc/steward/goals/x.md:6:"), "{e:?}");
        assert!(
            e[0].contains("template error") && e[0].contains("fencd"),
            "{e:?}"
        );
    }

    #[test]
    fn each_branch_over_the_data_is_evaluated() {
        for body in [
            // Only failing checks reach this branch.
            "{% for c in checks %}{% if c.status == \"fail\" %}\n{{ c.obsrved }}{% endif %}{% endfor %}",
            // Only an on_failure signal reaches this one.
            "{% if signal.source == \"on_failure\" %}\n{{ signal.labels.unti }}{% endif %}",
            // Knowledge notes and history.
            "{% for n in knowledge %}\n{{ n.titel }}{% endfor %}",
            "{% for h in history %}\n{{ h.actoin }}{% endfor %}",
            // A probe that is not ok.
            "{% for p in context %}{% if p.status != \"ok\" %}\n{{ p.detial }}{% endif %}{% endfor %}",
        ] {
            let e = run(&format!("{FRONT}{body}\n")).unwrap_err();
            assert!(
                e[0].starts_with("/etc/steward/goals/x.md:"),
                "{body}: {e:?}"
            );
        }
        // Guarded access is fine.
        run(&format!(
            "{FRONT}{{{{ signal.labels.nothing | default(value=\"-\") }}}}{{% for p in context %}}{{{{ p.fenced }}}}{{% endfor %}}\n"
        ))
        .unwrap();
    }
}
