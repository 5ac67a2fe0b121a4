//! `steward doctor` with the real binary: the endpoint is proven by a real request (to steward's
//! scripted model on loopback, never the internet), every goal renders with representative
//! context, and the installed claude is placed against the tested version range.
//!
//! Most of these point `claude.bin` at a path that does not exist (the self-test is then skipped
//! and fails), because they are about one doctor line each; the whole doctor passing with the
//! real claude is `run_e2e::doctor_proves_the_boundary_with_the_installed_claude`.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::cli::{Env, ScriptedModel};
use steward::adapters::doctor::claude_version::{NEWEST_TESTED, OLDEST_TESTED};

/// The key `Env::steward()` puts in the environment.
const KEY: &str = "sk-ant-test-0123456789abcdefghij";

fn no_claude() -> PathBuf {
    PathBuf::from("/nonexistent/steward-test/claude")
}

fn doctor(env: &Env) -> (Output, serde_json::Value) {
    let out = env.steward().args(["--json", "doctor"]).output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

fn line<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` line: {report:#}"))
}

fn detail(report: &serde_json::Value, name: &str) -> String {
    line(report, name)["detail"].as_str().unwrap().to_string()
}

#[test]
fn an_endpoint_that_refuses_connections_fails_doctor() {
    let env = Env::new(&no_claude(), "http://127.0.0.1:1", "");
    let (out, report) = doctor(&env);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(report["exit_code"], 1);
    assert_eq!(line(&report, "credentials")["ok"], true, "{report:#}");
    let endpoint = line(&report, "endpoint");
    assert_eq!(endpoint["ok"], false, "{report:#}");
    assert_eq!(endpoint["status"], "fail");
    let d = detail(&report, "endpoint");
    assert!(d.contains("connection refused"), "{d}");
    assert!(d.contains("http://127.0.0.1:1"), "{d}");
}

#[test]
fn the_endpoint_is_proven_with_the_configured_key_and_model() {
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(
        tmp.path(),
        &format!("api_key = \"{KEY}\"\nmodels = [\"claude-sonnet-5\"]\n"),
    );
    let env = Env::new(&no_claude(), &model.url, "");
    let (_, report) = doctor(&env);
    assert_eq!(line(&report, "endpoint")["ok"], true, "{report:#}");
    let d = detail(&report, "endpoint");
    assert!(d.contains("ANTHROPIC_API_KEY accepted"), "{d}");
    assert!(d.contains("model claude-sonnet-5"), "{d}");
    let requests = model.requests();
    let asked: Vec<&serde_json::Value> = requests
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/v1/messages/count_tokens")
        .collect();
    assert_eq!(asked.len(), 1, "{requests:#}");
    assert_eq!(asked[0]["body"]["model"], "claude-sonnet-5");
    assert_eq!(asked[0]["authenticated"], true);
    assert_eq!(asked[0]["headers"]["anthropic-version"], "2023-06-01");

    // A goal that names its own model gets its own proof, and an unknown one fails.
    let goals = env.dir.path().join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(
        goals.join("other-model.md"),
        "+++\ndescription = \"d\"\nmodel = \"claude-unknown-9\"\n+++\nbody\n",
    )
    .unwrap();
    env.set_top_level(&format!("goals_dir = \"{}\"", goals.display()));
    let (out, report) = doctor(&env);
    assert_eq!(out.status.code(), Some(1));
    let d = detail(&report, "endpoint");
    assert!(
        d.contains("does not serve model `claude-unknown-9`") && d.contains("404"),
        "{d}"
    );
}

#[test]
fn a_key_the_endpoint_refuses_fails_as_auth() {
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), "api_key = \"sk-ant-some-other-key-0000\"\n");
    let env = Env::new(&no_claude(), &model.url, "");
    let (out, report) = doctor(&env);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(line(&report, "endpoint")["ok"], false, "{report:#}");
    let d = detail(&report, "endpoint");
    assert!(
        d.contains("refused ANTHROPIC_API_KEY")
            && d.contains("HTTP 401")
            && d.contains("authentication_error"),
        "{d}"
    );
    // The key itself never appears in the report.
    assert!(!report.to_string().contains(KEY), "{report:#}");
}

#[test]
fn an_oauth_token_is_proven_as_a_bearer_token() {
    let tmp = tempfile::tempdir().unwrap();
    let token = "sk-ant-oat01-steward-doctor-test";
    let model = ScriptedModel::start(tmp.path(), &format!("api_key = \"{token}\"\n"));
    let env = Env::new(&no_claude(), &model.url, "");
    let out = env
        .steward()
        .env_remove("ANTHROPIC_API_KEY")
        .env("CLAUDE_CODE_OAUTH_TOKEN", token)
        .args(["--json", "doctor"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line(&report, "endpoint")["ok"], true, "{report:#}");
    assert!(detail(&report, "endpoint").contains("CLAUDE_CODE_OAUTH_TOKEN accepted"));
    let requests = model.requests();
    assert_eq!(
        requests[0]["headers"]["anthropic-beta"], "oauth-2025-04-20",
        "{requests:#}"
    );
}

#[test]
fn no_credentials_skip_the_proof_and_fail() {
    let env = Env::new(&no_claude(), "http://127.0.0.1:1", "");
    let out = env
        .steward()
        .env_remove("ANTHROPIC_API_KEY")
        .args(["--json", "doctor"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(line(&report, "credentials")["ok"], false);
    assert_eq!(line(&report, "endpoint")["ok"], false);
    assert!(detail(&report, "endpoint").starts_with("skipped"));
}

/// A goal directory holding one operator goal with this body.
fn operator_goal(env: &Env, body: &str) -> PathBuf {
    let goals = env.dir.path().join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    let file = goals.join("probe-report.md");
    std::fs::write(
        &file,
        format!("+++\ndescription = \"report probes\"\nprobes = [\"*\"]\n+++\n{body}"),
    )
    .unwrap();
    env.set_top_level(&format!("goals_dir = \"{}\"", goals.display()));
    file
}

#[test]
fn a_template_error_inside_a_loop_body_fails_doctor_with_file_and_line() {
    let env = Env::new(&no_claude(), "http://127.0.0.1:1", "");
    let file = operator_goal(
        &env,
        "Report every probe.\n{% for p in context %}\n{{ p.fencd }}\n{% endfor %}\n",
    );
    let (out, report) = doctor(&env);
    assert_eq!(out.status.code(), Some(1));
    let templates = line(&report, "templates");
    assert_eq!(templates["ok"], false, "{report:#}");
    let d = detail(&report, "templates");
    // Front matter is lines 1-4, the body starts on line 5: `{{ p.fencd }}` is line 7.
    assert!(d.starts_with(&format!("{}:7:", file.display())), "{d}");
    assert!(d.contains("template error") && d.contains("fencd"), "{d}");
}

#[test]
fn a_template_error_in_a_branch_over_failing_checks_fails_doctor() {
    let env = Env::new(&no_claude(), "http://127.0.0.1:1", "");
    let file = operator_goal(
        &env,
        "{% for c in checks %}{% if c.status == \"fail\" %}\n{{ c.observd }}\n{% endif %}{% endfor %}\n",
    );
    let (_, report) = doctor(&env);
    let d = detail(&report, "templates");
    assert!(d.starts_with(&format!("{}:6:", file.display())), "{d}");
    assert!(d.contains("template error") && d.contains("observd"), "{d}");
    // The bundled goals render in every shape.
    std::fs::remove_file(&file).unwrap();
    let (_, report) = doctor(&env);
    assert_eq!(line(&report, "templates")["ok"], true, "{report:#}");
    assert!(detail(&report, "templates").contains("goals render"));
}

/// A stand-in `claude` that only answers `--version`.
fn fake_claude(dir: &Path, version: &str) -> PathBuf {
    common::script(
        &dir.join(format!("claude-{version}")),
        &format!("echo '{version} (Claude Code)'"),
    )
}

#[test]
fn doctor_names_the_tested_range_and_warns_outside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let range = format!("{OLDEST_TESTED} to {NEWEST_TESTED}");
    for (version, status) in [
        (OLDEST_TESTED, "ok"),
        (NEWEST_TESTED, "ok"),
        ("2.1.100", "warn"),
        ("99.0.0", "warn"),
    ] {
        let env = Env::new(&fake_claude(tmp.path(), version), "http://127.0.0.1:1", "");
        let (_, report) = doctor(&env);
        let claude = line(&report, "claude");
        assert_eq!(claude["status"], status, "{version}: {report:#}");
        // A warning does not fail the line.
        assert_eq!(claude["ok"], true, "{version}: {report:#}");
        let d = detail(&report, "claude");
        assert!(d.contains(version) && d.contains(&range), "{d}");
    }
    // The text output marks the warning.
    let env = Env::new(&fake_claude(tmp.path(), "99.0.0"), "http://127.0.0.1:1", "");
    let out = env.steward().arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("[warn] claude") && l.contains("newer than the tested range")),
        "{text}"
    );
}
