//! `model = "on_attention"` end to end (real steward, real claude, the scripted model, podman's
//! Docker API): a quiet host makes no model call; a container killed since the agent last looked
//! is a new change that calls for attention, so the next run wakes the model; the run after, with
//! the same dead container and nothing new, makes no model call again: a standing problem does
//! not cost a model call on every timer.

use serde_json::Value;

use crate::common::claude_bin;
use crate::common::cli::{Env, ScriptedModel};
use crate::common::podman::{IMAGE, Podman};

const VERDICT: &str = r#"
[[turn]]
verdict = { status = "needs_attention", summary = "worker was killed", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }
"#;

/// One quiet probe in place of the host's own (a failing probe would wake the model itself).
const QUIET_PROBE: &str = r#"
[[probe]]
name = "quiet"
description = "always the same"
kind = "command"
argv = ["echo", "all quiet"]
"#;

/// `steward run health-check` against `model`, with more arguments.
fn run(env: &Env, model: &ScriptedModel, args: &[&str]) -> Value {
    let text = std::fs::read_to_string(&env.config).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| match l.starts_with("base_url = ") {
            true => format!("base_url = \"{}\"", model.url),
            false => l.to_string(),
        })
        .collect();
    std::fs::write(&env.config, text.join("\n")).unwrap();
    let out = env
        .steward()
        .args(["--json", "run", "health-check"])
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn model_calls(model: &ScriptedModel) -> usize {
    model.requests().as_array().map_or(0, Vec::len)
}

#[test]
fn a_new_crash_wakes_the_model_once_and_the_same_crash_does_not_again() {
    let Some(claude) = claude_bin() else { return };
    let Some(engine) = Podman::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = |n: u32, scenario: &str| {
        let dir = tmp.path().join(format!("model{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        ScriptedModel::start(&dir, scenario)
    };
    let (looks, wakes, idle) = (model(1, VERDICT), model(2, VERDICT), model(3, VERDICT));
    // Only the engine's containers are this test's to control: the host's own sockets, units,
    // filesystems and jobs are left out of the snapshot.
    let env = Env::new(
        &claude,
        &looks.url,
        "#--tables--\n[report]\nignore = [\"socket *\", \"unit *\", \"filesystem *\", \"nomad_job *\"]\n",
    );
    env.use_docker(&engine.docker_host());
    let context = env.dir.path().join("context");
    std::fs::write(context.join("host.toml"), QUIET_PROBE).unwrap();
    std::fs::write(context.join("stack.toml"), "# replaced\n").unwrap();
    let started = engine.podman(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "worker",
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(started.status.success(), "{started:?}");

    // A quiet host: no model call.
    let quiet = run(&env, &idle, &[]);
    assert_eq!(quiet["outcome"], "no_action", "{quiet:#}");
    // The agent looks once (forced): what it saw is what later runs compare with.
    let looked = run(&env, &looks, &["--force-model"]);
    assert_eq!(looked["agent_started"], true, "{looked:#}");

    let killed = engine.podman(&["kill", "--signal", "KILL", "worker"]);
    assert!(killed.status.success(), "{killed:?}");
    let woken = run(&env, &wakes, &[]);
    assert_eq!(woken["outcome"], "escalated", "{woken:#}");
    assert!(
        model_calls(&wakes) >= 1,
        "the new crash did not reach the model"
    );
    let prompt =
        std::fs::read_to_string(env.run_dir(woken["id"].as_str().unwrap()).join("prompt.md"))
            .unwrap();
    assert!(prompt.contains("new: container worker"), "{prompt}");

    // The same dead container, nothing new: no model call, and the reason says why.
    let again = run(&env, &idle, &[]);
    assert_eq!(again["outcome"], "no_action", "{again:#}");
    assert!(
        again["reason"]
            .as_str()
            .unwrap()
            .contains("the host shows nothing new"),
        "{again:#}"
    );
    assert_eq!(
        model_calls(&idle),
        0,
        "a run without anything new called the model"
    );
}
