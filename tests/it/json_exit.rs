//! Every verdict-like `--json` answer carries `exit` and `exit_code`, equal to the process's exit
//! status and its name in the README's exit code table: `validate`, `policy check`, `doctor`,
//! `ci`, `run`, `ask`, `trigger`, `actions approve`, and errors.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::cli::{Env, ScriptedModel};

/// The README's exit code table.
fn name(code: i32) -> &'static str {
    match code {
        0 => "ok",
        1 => "error",
        2 => "usage",
        3 => "aborted",
        4 => "agent_failed",
        5 => "validation_failed",
        6 => "needs_human",
        _ => panic!("exit code {code} is not in the table"),
    }
}

/// Runs the command and checks its answer's `exit`/`exit_code` against the exit status, which
/// must be `expected`.
fn verdict(cmd: &mut Command, expected: i32) -> serde_json::Value {
    let out: Output = cmd.output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{cmd:?}: stdout is not one JSON value ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let code = out.status.code().unwrap();
    assert_eq!(code, expected, "{cmd:?}: {v:#}");
    assert_eq!(v["exit_code"], code, "{cmd:?}: {v:#}");
    assert_eq!(v["exit"], name(code), "{cmd:?}: {v:#}");
    v
}

fn no_claude() -> PathBuf {
    PathBuf::from("/nonexistent/steward-test/claude")
}

fn git(ws: &Path, args: &[&str]) -> String {
    common::git::stdout(ws, args).trim().to_string()
}

/// Two commits in the workspace; (base, head).
fn push(env: &Env) -> (String, String) {
    let ws = env.dir.path().join("workspace");
    git(&ws, &["init", "-q"]);
    std::fs::write(ws.join("a.nix"), "{ }\n").unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "a"]);
    let base = git(&ws, &["rev-parse", "HEAD"]);
    std::fs::write(ws.join("a.nix"), "{ x = 1; }\n").unwrap();
    git(&ws, &["commit", "-q", "-am", "b"]);
    (base, git(&ws, &["rev-parse", "HEAD"]))
}

#[test]
fn verdicts_without_the_model_carry_their_exit_code() {
    let env = Env::new(&no_claude(), "http://127.0.0.1:1", "");
    let json = |args: &[&str]| {
        let mut c = env.steward();
        c.arg("--json").args(args);
        c
    };
    // validate: every stand-in check passes.
    verdict(&mut json(&["validate"]), 0);
    // policy check: the command's exit is 0 whatever the decision.
    let d = verdict(&mut json(&["policy", "check", "--", "rm -rf /"]), 0);
    assert_eq!(d["decision"], "deny");
    verdict(
        &mut json(&["policy", "check", "--", "systemctl status nginx"]),
        0,
    );
    // doctor: no claude, no endpoint.
    verdict(&mut json(&["doctor"]), 1);
    // run / ask / trigger: deterministic first (no model call), and dry runs.
    let r = verdict(&mut json(&["run", "health-check"]), 0);
    assert_eq!(r["outcome"], "no_action");
    verdict(&mut json(&["run", "health-check", "--dry-run"]), 0);
    verdict(&mut json(&["ask", "why is the disk full?", "--dry-run"]), 0);
    let t = verdict(&mut json(&["trigger", "timer", "health-check"]), 0);
    assert_eq!(t["report"]["outcome"], "no_action");
    verdict(
        &mut json(&["trigger", "timer", "health-check", "--dry-run"]),
        0,
    );
    // ci: a dry run of a push.
    let (base, head) = push(&env);
    verdict(
        &mut json(&["ci", "--base", &base, "--head", &head, "--dry-run"]),
        0,
    );
    // Errors carry them too.
    verdict(&mut json(&["run", "no-such-goal"]), 2);
    verdict(
        &mut json(&["actions", "approve", "act-0000000000000000"]),
        2,
    );
}

#[test]
fn a_failing_check_makes_validate_exit_5_in_the_json_too() {
    let env = Env::new(&no_claude(), "http://127.0.0.1:1", "");
    std::fs::write(
        env.dir.path().join("context").join("broken.toml"),
        "[[check]]\nname = \"never-there\"\ndescription = \"d\"\nkind = \"file\"\npath = \"/nonexistent/steward-test\"\n",
    )
    .unwrap();
    let v = verdict(env.steward().args(["--json", "validate"]), 5);
    assert_eq!(v["ok"], false);
}

/// Files a pending action that steward's executor runs, against a goal with no checks.
fn file_action(env: &Env, argv: &[&str]) -> String {
    let goals = env.dir.path().join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(
        goals.join("bare.md"),
        "+++\ndescription = \"no checks\"\n+++\nbody\n",
    )
    .unwrap();
    env.set_top_level(&format!("goals_dir = \"{}\"", goals.display()));
    let store = steward::engine::approval::Store::open(&env.state()).unwrap();
    let filed = store
        .file(steward::engine::approval::Proposal {
            subject: "json-exit".into(),
            signal_fingerprint: None,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            rationale: "test".into(),
            checks: vec![],
            state_fingerprint: steward::engine::approval::state_fingerprint(&[]),
            goal: "bare".into(),
            run_id: None,
            rule: "test".into(),
            ttl: std::time::Duration::from_secs(600),
            executor: steward::engine::approval::Executor::Steward,
        })
        .unwrap();
    filed.action.id
}

#[test]
fn actions_approve_answers_with_the_exit_of_what_ran() {
    let env = Env::new(&no_claude(), "http://127.0.0.1:1", "");
    let ok = file_action(&env, &["true"]);
    let v = verdict(
        env.steward()
            .args(["--json", "actions", "approve", &ok, "--yes", "--by", "t"]),
        0,
    );
    assert_eq!(v["state"], "done");
    let failing = file_action(&env, &["false"]);
    let v = verdict(
        env.steward().args([
            "--json", "actions", "approve", &failing, "--yes", "--by", "t",
        ]),
        5,
    );
    assert_eq!(v["state"], "failed");
}

const NEEDS_ATTENTION: &str = r#"
[[turn]]
verdict = { status = "needs_attention", summary = "look at it", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }
"#;

#[test]
fn verdicts_of_model_runs_carry_their_exit_code() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), NEEDS_ATTENTION);
    let env = Env::new(&claude, &model.url, "");
    let json = |args: &[&str]| {
        let mut c = env.steward();
        c.arg("--json").args(args);
        c
    };
    let r = verdict(&mut json(&["run", "health-check", "--force-model"]), 6);
    assert_eq!(r["outcome"], "escalated");
    let t = verdict(
        &mut json(&["trigger", "timer", "health-check", "--force-model"]),
        6,
    );
    assert_eq!(t["report"]["outcome"], "escalated");
    verdict(&mut json(&["ask", "is the disk full?"]), 6);
    let (base, head) = push(&env);
    let c = verdict(&mut json(&["ci", "--base", &base, "--head", &head]), 6);
    assert_eq!(c["decision"], "needs_approval");
}
