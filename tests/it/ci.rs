//! `steward ci` end to end: a real git repository as the workspace, the real steward binary, the
//! real claude CLI and the scripted model; and the workflow examples that call it.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use clap::Parser;
use common::cli::{Env, ScriptedModel};

/// Every test here drives git as well as claude: both, or the test skips (see `common::require`).
fn claude_bin() -> Option<std::path::PathBuf> {
    common::require::tool("git")?;
    common::claude_bin()
}

fn git(ws: &Path, args: &[&str]) -> String {
    common::git::stdout(ws, args).trim().to_string()
}

/// Two commits: the first adds `hosts/web.nix`, the second changes it and adds a job file.
/// Returns (base, head).
fn two_commits(ws: &Path) -> (String, String) {
    git(ws, &["init", "-q"]);
    std::fs::create_dir_all(ws.join("hosts")).unwrap();
    std::fs::write(
        ws.join("hosts/web.nix"),
        "{ services.nginx.enable = true; }\n",
    )
    .unwrap();
    git(ws, &["add", "."]);
    git(ws, &["commit", "-q", "-m", "web host"]);
    let base = git(ws, &["rev-parse", "HEAD"]);
    std::fs::write(
        ws.join("hosts/web.nix"),
        "{ services.nginx.enable = true; services.nginx.recommendedGzipSettings = true; }\n",
    )
    .unwrap();
    std::fs::create_dir_all(ws.join("jobs")).unwrap();
    std::fs::write(ws.join("jobs/api.nomad.hcl"), "job \"api\" {}\n").unwrap();
    git(ws, &["add", "."]);
    git(ws, &["commit", "-q", "-m", "gzip and the api job"]);
    let head = git(ws, &["rev-parse", "HEAD"]);
    (base, head)
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn verdict_turn(status: &str, class: &str, proposed: &str) -> String {
    format!(
        r#"
[[turn]]
verdict = {{ status = "{status}", summary = "classification: {class}, reviewed", findings = [{{ severity = "info", subject = "hosts/web.nix", detail = "gzip on" }}, {{ severity = "info", subject = "classification", detail = "{class}" }}], actions_taken = [], proposed_actions = [{proposed}], knowledge = [] }}
"#
    )
}

struct Push {
    env: Env,
    model: ScriptedModel,
    _tmp: tempfile::TempDir,
    base: String,
    head: String,
}

fn push(claude: &Path, scenario: &str) -> Push {
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), scenario);
    let env = Env::new(claude, &model.url, "");
    let (base, head) = two_commits(&env.dir.path().join("workspace"));
    Push {
        env,
        model,
        _tmp: tmp,
        base,
        head,
    }
}

impl Push {
    fn ci(&self, base: &str) -> Output {
        self.env
            .steward()
            .args(["--json", "ci", "--base", base, "--head", &self.head])
            .output()
            .unwrap()
    }
}

/// A push that changes nothing (`--base` = `--head`): no review to make, no model call, and the
/// decision is `deploy` with a reason that says why; the run is recorded as `no_action`.
#[test]
fn a_push_that_changes_nothing_deploys_without_a_model_call() {
    let Some(claude) = claude_bin() else { return };
    let p = push(&claude, &verdict_turn("ok", "risky", ""));
    let out = p.ci(&p.head);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["decision"], "deploy", "{v:#}");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["changed_files"], serde_json::json!([]));
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.starts_with("no files changed between"), "{reason}");
    assert_eq!(v["run"]["outcome"], "no_action");
    assert_eq!(v["run"]["agent_started"], false);
    let calls = p.model.requests();
    assert!(
        !calls
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"] == "/v1/messages"),
        "the model was called: {calls:#}"
    );
    let dir = p.env.run_dir(v["run"]["id"].as_str().unwrap());
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["outcome"], "no_action");
    assert!(
        result["reason"]
            .as_str()
            .unwrap()
            .starts_with("no files changed between"),
        "{result:#}"
    );
    // Text output says the same.
    let out = p
        .env
        .steward()
        .args(["ci", "--base", &p.head, "--head", &p.head])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(": deploy (0 changed files"), "{said}");
}

#[test]
fn a_clean_change_deploys_and_the_prompt_lists_the_files() {
    let Some(claude) = claude_bin() else { return };
    let p = push(&claude, &verdict_turn("ok", "clean", ""));
    let out = p.ci(&p.base);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["decision"], "deploy");
    assert_eq!(v["classification"], "clean");
    assert_eq!(v["run"]["outcome"], "ok");
    assert_eq!(v["head"], p.head.as_str());
    let files: Vec<&str> = v["changed_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["hosts/web.nix", "jobs/api.nomad.hcl"]);
    let dir = p.env.run_dir(v["run"]["id"].as_str().unwrap());
    let prompt = std::fs::read_to_string(dir.join("prompt.md")).unwrap();
    assert!(prompt.contains("M\thosts/web.nix"), "{prompt}");
    assert!(prompt.contains("A\tjobs/api.nomad.hcl"), "{prompt}");
    assert!(prompt.contains(&p.base) && prompt.contains(&p.head));
    let signal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("signal.json")).unwrap()).unwrap();
    assert_eq!(signal["source"], "ci");
    assert_eq!(signal["subject"], format!("ci:{}", &p.head[..12]));
    assert_eq!(signal["labels"]["base"], p.base.as_str());
    // The files reached the model, fenced as data.
    assert!(
        p.model
            .requests()
            .to_string()
            .contains("jobs/api.nomad.hcl")
    );
}

/// A push that changes a file steward protects (Claude Code's project settings here) is risky,
/// whatever the reviewer says: a clean review does not deploy it.
#[test]
fn a_push_touching_a_protected_file_is_risky_whatever_the_reviewer_says() {
    let Some(claude) = claude_bin() else { return };
    let p = push(&claude, &verdict_turn("ok", "clean", ""));
    let ws = p.env.dir.path().join("workspace");
    std::fs::create_dir_all(ws.join(".claude")).unwrap();
    std::fs::write(
        ws.join(".claude/settings.json"),
        "{\"permissions\": {\"allow\": [\"Bash\"]}}\n",
    )
    .unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "let the agent do anything"]);
    let head = git(&ws, &["rev-parse", "HEAD"]);
    let out = p
        .env
        .steward()
        .args(["--json", "ci", "--base", &p.head, "--head", &head])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(6), "{v:#}");
    assert_eq!(v["decision"], "needs_approval", "{v:#}");
    assert_eq!(v["classification"], "risky");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains(".claude/settings.json") && reason.contains("protects"),
        "{reason}"
    );
    // The reviewer did say clean: the record keeps its word, the decision is steward's.
    assert_eq!(v["run"]["outcome"], "ok", "{v:#}");
}

/// `--apply` with the `command` profile: what the workspace deploys with, the check that proves
/// it, and a marker the deploy leaves.
fn apply_push(
    claude: &Path,
    scenario: &str,
    deploy_writes_marker: bool,
) -> (Push, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("deployed");
    let model = ScriptedModel::start(tmp.path(), scenario);
    let apply = if deploy_writes_marker {
        format!("[\"touch\", \"{}\"]", marker.display())
    } else {
        "[\"true\"]".to_string()
    };
    let env = Env::new(
        claude,
        &model.url,
        &format!(
            "#--tables--\n[change]\nprofile = \"command\"\napply = {apply}\nrollback = [\"rm\", \"-f\", \"{m}\"]\npost_checks = [\"deployed\"]\nsettle_secs = 0\n",
            m = marker.display()
        ),
    );
    std::fs::write(
        env.dir.path().join("context/deployed.toml"),
        format!("[[check]]\nname = \"deployed\"\ndescription = \"the deploy left its marker\"\nkind = \"file\"\npath = \"{}\"\n", marker.display()),
    )
    .unwrap();
    let (base, head) = two_commits(&env.dir.path().join("workspace"));
    (
        Push {
            env,
            model,
            _tmp: tmp,
            base,
            head,
        },
        marker,
    )
}

fn ci_apply(p: &Push) -> Output {
    p.env
        .steward()
        .args([
            "--json", "ci", "--apply", "--base", &p.base, "--head", &p.head,
        ])
        .output()
        .unwrap()
}

#[test]
fn apply_deploys_a_clean_push_and_verifies_it() {
    let Some(claude) = claude_bin() else { return };
    let (p, marker) = apply_push(&claude, &verdict_turn("ok", "clean", ""), true);
    let out = ci_apply(&p);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["decision"], "deploy");
    assert_eq!(v["change"]["state"], "applied", "{v:#}");
    assert_eq!(v["change"]["base"], p.base.as_str());
    assert_eq!(v["change"]["head"], p.head.as_str());
    assert!(
        v["change"]["history"][0]["by"]
            .as_str()
            .unwrap()
            .starts_with("ci:"),
        "{v:#}"
    );
    assert!(marker.exists(), "the deploy never ran");
}

#[test]
fn apply_rolls_back_a_push_whose_check_fails_and_exits_5() {
    let Some(claude) = claude_bin() else { return };
    let (p, marker) = apply_push(&claude, &verdict_turn("ok", "clean", ""), false);
    let out = ci_apply(&p);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(5), "{v:#}");
    assert_eq!(v["exit"], "validation_failed");
    assert_eq!(v["change"]["state"], "rolled_back", "{v:#}");
    assert!(!marker.exists());
}

#[test]
fn apply_files_a_risky_push_for_approval_and_runs_nothing() {
    let Some(claude) = claude_bin() else { return };
    let (p, marker) = apply_push(&claude, &verdict_turn("needs_attention", "risky", ""), true);
    let out = ci_apply(&p);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(6), "{v:#}");
    assert_eq!(v["decision"], "needs_approval");
    assert_eq!(v["change"]["state"], "pending", "{v:#}");
    assert!(!marker.exists(), "a risky push was deployed");
    let id = v["change"]["id"].as_str().unwrap();
    assert!(
        p.env
            .state()
            .join(format!("changes/pending/{id}.json"))
            .exists()
    );
}

#[test]
fn apply_without_a_profile_is_a_usage_error() {
    let Some(claude) = claude_bin() else { return };
    let p = push(&claude, &verdict_turn("ok", "clean", ""));
    let out = p
        .env
        .steward()
        .args([
            "--json", "ci", "--apply", "--base", &p.base, "--head", &p.head,
        ])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(2), "{v:#}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("[change] profile")
            || v.to_string().contains("[change] profile"),
        "{v:#}"
    );
}

#[test]
fn a_risky_change_needs_approval() {
    let Some(claude) = claude_bin() else { return };
    let p = push(&claude, &verdict_turn("needs_attention", "risky", ""));
    let out = p.ci(&p.base);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(6), "{v:#}");
    assert_eq!(v["decision"], "needs_approval");
    assert_eq!(v["classification"], "risky");
    assert_eq!(v["exit"], "needs_human");
}

#[test]
fn an_api_error_fails_the_step() {
    let Some(claude) = claude_bin() else { return };
    let p = push(
        &claude,
        "[[turn]]\nhttp_error = { status = 500, type = \"api_error\", message = \"boom\" }\n",
    );
    let out = p.ci(&p.base);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(4), "{v:#}");
    assert_eq!(v["decision"], "failed");
    assert_eq!(v["run"]["failure"]["kind"], "api_error");
}

#[test]
fn a_broken_flake_fails_before_the_review() {
    let Some(claude) = claude_bin() else { return };
    // Without nix the static check is `unavailable`, never a failure: nothing to prove here.
    if common::require::tool("nix").is_none() {
        return;
    }
    let p = push(&claude, &verdict_turn("ok", "clean", ""));
    // This test is about the real bundled `nix-flake-check`, not its stand-in.
    p.env.use_real_host_checks();
    let ws = p.env.dir.path().join("workspace");
    std::fs::write(ws.join("flake.nix"), "{ outputs = { self }: {\n").unwrap();
    git(&ws, &["add", "flake.nix"]);
    git(&ws, &["commit", "-q", "-m", "broken flake"]);
    let head = git(&ws, &["rev-parse", "HEAD"]);
    let out = p
        .env
        .steward()
        .args(["--json", "ci", "--base", &p.base, "--head", &head])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(3), "{v:#}");
    assert_eq!(v["decision"], "failed");
    assert_eq!(v["run"]["agent_started"], false);
    assert!(p.model.requests().as_array().is_some_and(|r| r.is_empty()));
}

#[test]
fn a_first_push_diffs_against_nothing() {
    let Some(claude) = claude_bin() else { return };
    let p = push(&claude, &verdict_turn("ok", "clean", ""));
    let zeros = "0".repeat(40);
    let out = p
        .env
        .steward()
        .args(["--json", "ci", "--dry-run", "--base", &zeros, "--head"])
        .arg(&p.head)
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["change"]["first_push"], true);
    let files = v["change"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{v:#}");
    assert!(files.iter().all(|f| f["status"] == "A"), "{v:#}");
    let prompt = v["plan"]["prompt"].as_str().unwrap();
    assert!(prompt.contains("A\thosts/web.nix"), "{prompt}");
    // A dry run records nothing.
    assert!(!p.env.state().join("runs").exists());
}

#[test]
fn bad_revisions_and_workspaces_are_usage_errors() {
    let Some(claude) = claude_bin() else { return };
    let p = push(&claude, &verdict_turn("ok", "clean", ""));
    let out = p.ci("no-such-branch");
    assert_eq!(out.status.code(), Some(2));
    let v = json(&out);
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains("--base") && err.contains("no-such-branch"),
        "{err}"
    );
    let out = p.ci("--upload-pack=x");
    assert_eq!(out.status.code(), Some(2));
    // Not a git repository.
    std::fs::remove_dir_all(p.env.dir.path().join("workspace/.git")).unwrap();
    let out = p
        .env
        .steward()
        .args(["ci", "--base", "a", "--head", "b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a git repository"));
}

/// The workflow examples parse as YAML, and their `run:` line is a command line the CLI accepts.
#[test]
fn workflow_examples_call_a_command_that_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("triggers/ci");
    for name in ["github-actions.yml", "forgejo-actions.yml"] {
        let path = root.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("not built yet"), "{name}: stale comment");
        let parsed = Command::new("python3")
            .args([
                "-c",
                "import sys, yaml, json; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            ])
            .arg(&path)
            .output();
        let runs: Vec<String> = match parsed {
            Ok(out) if out.status.success() => {
                let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                doc["jobs"]
                    .as_object()
                    .unwrap()
                    .values()
                    .flat_map(|job| job["steps"].as_array().unwrap().clone())
                    .filter_map(|s| s["run"].as_str().map(str::to_string))
                    .collect()
            }
            other => {
                // No PyYAML here: fall back to the text, under CI=true a failure.
                common::require::missing(
                    &format!("python3 with yaml ({other:?}): reading `run:` lines as text"),
                    "apt-get install python3-yaml",
                );
                text.lines()
                    .filter_map(|l| l.trim().strip_prefix("run: "))
                    .map(str::to_string)
                    .collect()
            }
        };
        let line = runs
            .iter()
            .find(|r| r.contains("steward ci"))
            .unwrap_or_else(|| panic!("{name}: no `steward ci` step"));
        let argv: Vec<String> = line
            .replace("${{ github.event.before }}", &"0".repeat(40))
            .replace("${{ github.sha }}", &"a".repeat(40))
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let cli = steward::cli::Cli::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("{name}: `{line}` does not parse: {e}"));
        assert!(
            matches!(cli.command, steward::cli::Command::Ci(_)),
            "{name}: {line}"
        );
    }
}
