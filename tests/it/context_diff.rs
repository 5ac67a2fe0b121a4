//! Diff-centric context through real runs (real steward, real claude, the scripted model): the
//! first run of a subject shows the anomaly the host snapshot flags (a failed unit, through a
//! stand-in `systemctl` on the run's PATH) in full and the quiet probes in one line; the second
//! run, with nothing changed, shows each unchanged probe in one line naming the first run, while
//! a probe that started failing in between, and one that fails throughout, are shown whole. The
//! run directory records what the prompt summarised.

use std::path::Path;

use serde_json::Value;

use crate::common::claude_bin;
use crate::common::cli::{Env, ScriptedModel};

const QUIET: &str = r#"
[[turn]]
verdict = { status = "ok", summary = "fine", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }
"#;

/// The host's probes, replacing the bundled `host.toml` and `stack.toml` by name.
fn probes(fx: &Path) -> (String, String) {
    let fx = fx.display();
    let host = format!(
        r#"
[[probe]]
name = "failed-units"
description = "failed units"
kind = "command"
argv = ["systemctl", "list-units", "--failed", "--no-legend", "--plain", "--no-pager"]
parse = "lines"

[[probe]]
name = "uptime"
description = "uptime"
kind = "command"
argv = ["cat", "{fx}/uptime.txt"]

[[probe]]
name = "disk"
description = "disk use"
kind = "command"
argv = ["cat", "{fx}/df.txt"]

[[probe]]
name = "flaky"
description = "starts failing between the runs"
kind = "command"
argv = ["sh", "-c", "cat {fx}/flaky.txt; exit $(cat {fx}/flaky.rc)"]

[[probe]]
name = "broken"
description = "fails throughout"
kind = "command"
argv = ["sh", "-c", "echo BROKEN-OUTPUT-5521; echo connection refused >&2; exit 3"]
"#
    );
    let stack = format!(
        r#"
[[probe]]
name = "nomad"
description = "nomad jobs"
kind = "command"
argv = ["cat", "{fx}/nomad.txt"]
"#
    );
    (host, stack)
}

fn fixture(dir: &Path) {
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write(
        "units.txt",
        "ctx-fixture-web.service loaded failed failed Fixture web server\n",
    );
    write(
        "uptime.txt",
        " 10:00:00 up 3 days,  2 users,  load average: 0.10\n",
    );
    write(
        "df.txt",
        "Filesystem Size Used Avail Use% Mounted on\n/dev/fixture 10G 2G 8G 20% /fixture\n",
    );
    write("flaky.txt", "all fine here\n");
    write("flaky.rc", "0\n");
    write("nomad.txt", "ID   Type     Status\nweb  service  running\n");
    let systemctl = dir.join("bin/systemctl");
    std::fs::create_dir_all(systemctl.parent().unwrap()).unwrap();
    std::fs::write(
        &systemctl,
        format!("#!/bin/sh\ncat {}/units.txt\n", dir.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A scripted model for one run (both are started before the first run, so that the listening
/// sockets the host snapshot sees are the same in both runs).
fn model(tmp: &Path, n: u32, scenario: &str) -> ScriptedModel {
    let dir = tmp.join(format!("model{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    ScriptedModel::start(&dir, scenario)
}

/// The second run's agent reads a note the prompt listed by title.
const READS_A_NOTE: &str = r#"
[[turn]]
[[turn.tool_use]]
id = "t_note"
name = "mcp__steward__knowledge"
input = { name = "transition-states" }

[[turn]]
verdict = { status = "ok", summary = "fine", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }
"#;

/// The line of the summarised probes that gives `reason` (`- REASON (N probes, B bytes): ...`).
fn summary_line<'a>(prompt: &'a str, reason: &str) -> &'a str {
    prompt
        .lines()
        .find(|l| l.starts_with(&format!("- {reason} (")))
        .unwrap_or_else(|| panic!("no line `{reason}`:\n{prompt}"))
}

/// One real run of `health-check` against `model`: its id, prompt and record.
fn run(env: &Env, model: &ScriptedModel, old_url: &mut String) -> (String, String, Value) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, text.replace(old_url.as_str(), &model.url)).unwrap();
    *old_url = model.url.clone();
    let out = env
        .steward()
        .args(["--json", "run", "health-check", "--force-model"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let id = report["id"].as_str().unwrap().to_string();
    let dir = env.run_dir(&id);
    let prompt = std::fs::read_to_string(dir.join("prompt.md")).unwrap();
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("context-summary.json")).unwrap())
            .unwrap();
    (id, prompt, record)
}

fn shown(record: &Value, probe: &str) -> (String, String) {
    let p = record["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == probe)
        .unwrap_or_else(|| panic!("{probe} not in {record:#}"));
    (
        p["in_prompt"].as_str().unwrap().to_string(),
        p["reason"].as_str().unwrap().to_string(),
    )
}

fn full(prompt: &str, probe: &str) -> bool {
    prompt.contains(&format!("<untrusted-data source=\"probe:{probe}\""))
}

#[test]
fn an_unchanged_second_run_summarises_and_a_new_failure_is_shown_whole() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let fx = tmp.path().join("fixture");
    std::fs::create_dir_all(&fx).unwrap();
    fixture(&fx);
    let mut url = "http://scripted.invalid".to_string();
    let env = Env::new(
        &claude,
        &url,
        // Tests running beside this one open and close loopback listeners: left out of the
        // snapshot, so "nothing changed" is this host's truth between the two runs.
        &format!(
            "#--tables--\npath = \"{}:/usr/bin:/bin\"\n[report]\nignore = [\"socket *\"]\n",
            fx.join("bin").display()
        ),
    );
    let (host, stack) = probes(&fx);
    let context = env.dir.path().join("context");
    std::fs::write(context.join("host.toml"), host).unwrap();
    std::fs::write(context.join("stack.toml"), stack).unwrap();

    let (model1, model2) = (
        model(tmp.path(), 1, QUIET),
        model(tmp.path(), 2, READS_A_NOTE),
    );
    let (first_id, first, record) = run(&env, &model1, &mut url);
    // The prompt leads with the comparison and what needs attention, fenced as data.
    let changes = first
        .find("## What changed since this subject's last run")
        .unwrap();
    let attention = first.find("## Needs attention").unwrap();
    let probes = first.find("## Context gathered before this run").unwrap();
    assert!(changes < attention && attention < probes, "{first}");
    assert!(first.contains("First run for this subject"), "{first}");
    assert!(
        first.contains("standing: unit ctx-fixture-web.service failed"),
        "{first}"
    );
    assert!(first[changes..probes].contains("<untrusted-data source=\"attention\""));
    // The anomaly in full; the failing probe whole; quiet probes named in one line.
    assert!(full(&first, "failed-units"), "{first}");
    assert!(first.contains("ctx-fixture-web.service loaded failed failed"));
    assert!(full(&first, "broken") && first.contains("BROKEN-OUTPUT-5521"));
    for quiet in ["uptime", "disk", "flaky", "nomad"] {
        assert!(!full(&first, quiet), "{quiet} shown whole:\n{first}");
        assert_eq!(shown(&record, quiet).0, "summary", "{record:#}");
        let line = summary_line(
            &first,
            "no earlier output to compare with; shows nothing the host snapshot flags",
        );
        assert!(line.contains(&format!("`{quiet}`")), "{line}");
    }
    assert!(first.contains("fetch any of them with `mcp__steward__probe`"));
    // A first run carries the goal's knowledge notes whole.
    assert!(first.contains("### Transition states"), "{first}");
    assert_eq!(shown(&record, "failed-units").0, "full");
    assert_eq!(shown(&record, "broken"), ("full".into(), "failed".into()));

    // Between the runs one probe starts failing; nothing else changes.
    std::fs::write(fx.join("flaky.rc"), "4\n").unwrap();
    // `uptime`'s clock moved between the runs: time passing is not a change.
    std::fs::write(
        fx.join("uptime.txt"),
        " 10:00:00 up 4 days,  2 users,  load average: 0.10\n",
    )
    .unwrap();
    let (_, second, record) = run(&env, &model2, &mut url);
    assert!(
        second.contains(&format!("Compared with the snapshot of run {first_id}.")),
        "{second}"
    );
    let since = format!("unchanged since run {first_id}");
    let line = summary_line(&second, &since);
    for quiet in ["uptime", "disk", "nomad", "failed-units"] {
        assert!(!full(&second, quiet), "{quiet} shown whole:\n{second}");
        assert!(line.contains(&format!("`{quiet}`")), "{line}");
        assert_eq!(shown(&record, quiet), ("summary".into(), since.clone()));
    }
    // Nothing on the host changed: the notes are listed by title, and the agent reads one whole.
    assert!(second.contains("No changes."), "{second}");
    assert!(!second.contains("### Transition states"), "{second}");
    assert!(
        second.contains("- `transition-states`: Transition states"),
        "{second}"
    );
    let results = model2.tool_results();
    let (text, is_error) = &results["t_note"];
    assert!(!is_error && text.contains("re-check"), "{text}");
    // The standing anomaly is still named, and failing probes are whole.
    assert!(second.contains("standing: unit ctx-fixture-web.service failed"));
    assert!(
        full(&second, "flaky") && second.contains("all fine here"),
        "{second}"
    );
    assert_eq!(shown(&record, "flaky"), ("full".into(), "failed".into()));
    assert!(full(&second, "broken") && second.contains("BROKEN-OUTPUT-5521"));
}
