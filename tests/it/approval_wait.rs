//! Wait-mode approvals end to end: the real steward binary, the real claude CLI asking steward's
//! permission-prompt tool over MCP, the scripted model, and an operator on the CLI.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::claude_bin;
use common::cli::{Env, ScriptedModel};
use serde_json::Value;

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

const PLACEHOLDER_URL: &str = "http://127.0.0.1:9";

/// A goal that waits for approvals on `touch FILE`, allows `uptime`, and denies the rest.
fn wait_env(claude: &Path, tmp: &Path, approval_timeout: u64) -> Env {
    wait_env_with(claude, tmp, approval_timeout, "")
}

fn wait_env_with(claude: &Path, tmp: &Path, approval_timeout: u64, approve: &str) -> Env {
    let goals = tmp.join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(
        goals.join("wait-test.md"),
        format!(
            "+++\ndescription = \"wait test\"\ntools = [\"Bash\"]\napproval = \"wait\"\n\
             approval_timeout_secs = {approval_timeout}\ntimeout_secs = 120\n\n[policy]\n\
             allow = [\"uptime\"]\napprove = [\"touch FILE\"{approve}]\nread = [\"{{workspace}}\"]\n+++\n\
             Create the marker.\n"
        ),
    )
    .unwrap();
    Env::new(
        claude,
        PLACEHOLDER_URL,
        &format!("goals_dir = \"{}\"\n", goals.display()),
    )
}

/// The scenario names paths in the workspace, which exists only once the Env does: the model
/// starts second and the config is pointed at it afterwards.
fn start_model(env: &Env, scenario: &str) -> ScriptedModel {
    let model = ScriptedModel::start(env.dir.path(), scenario);
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, text.replace(PLACEHOLDER_URL, &model.url)).unwrap();
    model
}

fn touch_scenario(marker: &Path) -> String {
    format!(
        r#"
[[turn]]
[[turn.tool_use]]
name = "Bash"
input = {{ command = "touch {}", description = "create the marker" }}

[[turn]]
verdict = {{ status = "ok", summary = "done", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }}
"#,
        marker.display()
    )
}

fn start_run(env: &Env) -> Child {
    env.steward()
        .args(["--json", "run", "wait-test"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Polls `steward --json actions list` until an action is pending; returns it.
fn wait_for_pending(env: &Env, run: &mut Child) -> Value {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        let list = json(
            &env.steward()
                .args(["--json", "actions", "list"])
                .output()
                .unwrap(),
        );
        if let Some(a) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["state"] == "pending")
        {
            return a.clone();
        }
        if let Some(status) = run.try_wait().unwrap() {
            let out = run.wait_with_output_now();
            panic!("the run ended ({status}) before an action was pending:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no pending action within 90 s");
}

trait Drain {
    fn wait_with_output_now(&mut self) -> String;
}

impl Drain for Child {
    fn wait_with_output_now(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(o) = self.stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        if let Some(e) = self.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

fn finish(run: Child) -> (Option<i32>, Value) {
    let out = run.wait_with_output().unwrap();
    (out.status.code(), json(&out))
}

fn audit(env: &Env, run_id: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(env.run_dir(run_id).join("audit.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn action(env: &Env, id: &str) -> Value {
    json(
        &env.steward()
            .args(["--json", "actions", "show", id])
            .output()
            .unwrap(),
    )
}

fn reasons(entries: &[Value]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|e| {
            (
                e["decision"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn marker_in(env: &Env) -> PathBuf {
    env.dir.path().join("workspace").join("marker")
}

fn approval_entries(entries: &[Value]) -> Vec<(String, String)> {
    reasons(entries)
        .into_iter()
        .filter(|(_, r)| r.starts_with("approval prompt:"))
        .collect()
}

#[test]
fn an_approved_call_runs_inside_the_waiting_run() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let env = wait_env(&claude, tmp.path(), 60);
    let marker = marker_in(&env);
    let model = start_model(&env, &touch_scenario(&marker));
    let mut run = start_run(&env);
    let pending = wait_for_pending(&env, &mut run);
    let id = pending["id"].as_str().unwrap().to_string();
    assert_eq!(pending["executor"], "agent");
    assert_eq!(pending["argv"][0], "touch");
    assert!(!marker.exists(), "it ran before the approval");

    let approve = env
        .steward()
        .args(["actions", "approve", &id, "--yes", "--by", "alice"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&approve.stdout);
    assert!(
        approve.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&approve.stderr)
    );
    assert!(said.contains("runs `touch"), "{said}");

    let (code, report) = finish(run);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "ok", "{report:#}");
    assert!(marker.exists(), "the approved command did not run");
    assert!(report["permission_denials"].as_array().unwrap().is_empty());
    assert_eq!(report["policy_denials"], 0, "{report:#}");
    assert_eq!(
        report["actions_filed"],
        serde_json::json!([id]),
        "{report:#}"
    );

    // Closed as done by the run; steward's executor never ran it.
    let a = action(&env, &id);
    assert_eq!(a["state"], "done", "{a:#}");
    assert!(a["execution"].is_null(), "{a:#}");
    assert_eq!(a["decision"]["by"], "alice");

    let entries = audit(&env, report["id"].as_str().unwrap());
    let all = reasons(&entries);
    // The hook stepped aside, then the prompt tool filed, waited and allowed.
    assert!(
        all.iter()
            .any(|(d, r)| d == "approve" && r.contains("left to the approval prompt")),
        "{all:#?}"
    );
    let prompt = approval_entries(&entries);
    assert_eq!(prompt.len(), 2, "{prompt:#?}");
    assert_eq!(prompt[0].0, "approve");
    assert!(prompt[0].1.contains(&id), "{prompt:#?}");
    assert_eq!(prompt[1].0, "allow");
    assert!(prompt[1].1.contains("approved by alice"), "{prompt:#?}");
    drop(model);
}

#[test]
fn a_rejected_call_is_denied_with_the_operators_note() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let env = wait_env(&claude, tmp.path(), 60);
    let marker = marker_in(&env);
    let model = start_model(&env, &touch_scenario(&marker));
    let mut run = start_run(&env);
    let id = wait_for_pending(&env, &mut run)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reject = env
        .steward()
        .args([
            "actions",
            "reject",
            &id,
            "--by",
            "bob",
            "--note",
            "not during business hours",
        ])
        .output()
        .unwrap();
    assert!(reject.status.success());

    let (_, report) = finish(run);
    assert!(!marker.exists(), "a rejected command ran");
    let denials = report["permission_denials"].as_array().unwrap();
    assert_eq!(denials.len(), 1, "{report:#}");
    assert_eq!(action(&env, &id)["state"], "rejected");
    assert_eq!(report["policy_denials"], 1, "{report:#}");
    assert_eq!(
        report["actions_filed"],
        serde_json::json!([id]),
        "{report:#}"
    );
    // The model was told why.
    let sent = model.requests().to_string();
    assert!(
        sent.contains("not during business hours"),
        "the note never reached the model"
    );
    let prompt = approval_entries(&audit(&env, report["id"].as_str().unwrap()));
    assert_eq!(prompt.last().unwrap().0, "deny", "{prompt:#?}");
    assert!(prompt.last().unwrap().1.contains("rejected"), "{prompt:#?}");
}

/// The agent's only change was rejected by the operator and it then reports `fixed`: nothing
/// was fixed, and the run says so (escalated, exit 6), naming the rejected action.
#[test]
fn a_rejected_change_is_not_a_fix() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let env = wait_env(&claude, tmp.path(), 60);
    let marker = marker_in(&env);
    let scenario = touch_scenario(&marker).replace("status = \"ok\"", "status = \"fixed\"");
    let model = start_model(&env, &scenario);
    let mut run = start_run(&env);
    let id = wait_for_pending(&env, &mut run)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reject = env
        .steward()
        .args(["actions", "reject", &id, "--by", "bob"])
        .output()
        .unwrap();
    assert!(reject.status.success());
    let (code, report) = finish(run);
    assert!(!marker.exists());
    assert_eq!(report["verdict"]["status"], "fixed", "{report:#}");
    assert_eq!(code, Some(6), "{report:#}");
    assert_eq!(report["outcome"], "escalated");
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("no state-changing call ran")
            && reason.contains(&format!("1 rejected by an operator ({id})")),
        "{reason}"
    );
    drop(model);
}

#[test]
fn no_decision_in_time_denies_and_expires_the_action() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let env = wait_env(&claude, tmp.path(), 3);
    let marker = marker_in(&env);
    let model = start_model(&env, &touch_scenario(&marker));
    let run = start_run(&env);
    let (_, report) = finish(run);
    assert!(!marker.exists());
    assert_eq!(
        report["permission_denials"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    let list = json(
        &env.steward()
            .args(["--json", "actions", "list"])
            .output()
            .unwrap(),
    );
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["state"], "expired");
    assert!(model.requests().to_string().contains("no decision in time"));
    let prompt = approval_entries(&audit(&env, report["id"].as_str().unwrap()));
    assert_eq!(prompt.last().unwrap().0, "deny", "{prompt:#?}");
}

#[test]
fn in_a_wait_run_allowed_calls_run_and_denied_ones_are_denied_without_a_prompt() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let env = wait_env(&claude, tmp.path(), 60);
    let ws = env.dir.path().join("workspace");
    let scenario = format!(
        r#"
[[turn]]
[[turn.tool_use]]
name = "Bash"
input = {{ command = "uptime", description = "load" }}

[[turn]]
[[turn.tool_use]]
name = "Bash"
input = {{ command = "rm -rf {ws}", description = "forbidden" }}

[[turn]]
verdict = {{ status = "ok", summary = "done", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }}
"#,
        ws = ws.display()
    );
    let model = start_model(&env, &scenario);
    let (code, report) = finish(start_run(&env));
    assert_eq!(code, Some(0), "{report:#}");
    assert!(ws.is_dir(), "the denied command ran");
    assert!(
        model.requests().to_string().contains("load average"),
        "uptime did not run"
    );
    assert_eq!(
        report["permission_denials"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    let entries = audit(&env, report["id"].as_str().unwrap());
    // The hook decided both; the prompt tool was never asked and nothing was filed.
    assert!(approval_entries(&entries).is_empty(), "{entries:#?}");
    let decisions: Vec<&str> = entries
        .iter()
        .filter(|e| e["tool"] == "Bash")
        .map(|e| e["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["allow", "deny"], "{entries:#?}");
    let list = json(
        &env.steward()
            .args(["--json", "actions", "list"])
            .output()
            .unwrap(),
    );
    assert!(list.as_array().unwrap().is_empty());
    // The run used the prompt tool's wiring.
    let argv: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(
            env.run_dir(report["id"].as_str().unwrap())
                .join("claude-argv.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let pos = |f: &str| argv.iter().position(|a| a == f).unwrap();
    assert_eq!(argv[pos("--permission-mode") + 1], "default");
    assert_eq!(
        argv[pos("--permission-prompt-tool") + 1],
        "mcp__steward__approval_prompt"
    );
    assert!(argv.iter().any(|a| a == "--strict-mcp-config"));
    let transcript = std::fs::read_to_string(
        env.run_dir(report["id"].as_str().unwrap())
            .join("transcript.jsonl"),
    )
    .unwrap();
    let init: Value = transcript
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["subtype"] == "init")
        .unwrap();
    assert_eq!(init["permissionMode"], "default");
    // Only steward's server, connected (2.1.332 adds `"source": "dynamic"` to each entry).
    let servers = init["mcp_servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1, "{init:#}");
    assert_eq!(servers[0]["name"], "steward", "{init:#}");
    assert_eq!(servers[0]["status"], "connected", "{init:#}");
    // `--tools` keeps the prompt tool out of the model's hands: neither init nor any request to
    // the model lists it.
    assert!(!init["tools"].to_string().contains("mcp__"), "{init:#}");
    let requests = model.requests();
    let offered: Vec<String> = requests
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["body"]["tools"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    assert!(offered.iter().any(|t| t == "Bash"), "{offered:?}");
    assert!(
        !offered.iter().any(|t| t.starts_with("mcp__")),
        "{offered:?}"
    );
}

/// claude auto-approves read-only commands like `echo` in default mode (reference §9.3); one the
/// policy marks approval-required must still wait for an operator, not slip through.
#[test]
fn an_approval_required_call_claude_would_auto_approve_still_waits() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let env = wait_env_with(&claude, tmp.path(), 3, ", \"echo ARG\"");
    let model = start_model(
        &env,
        r#"
[[turn]]
[[turn.tool_use]]
name = "Bash"
input = { command = "echo unapproved-output", description = "harmless?" }

[[turn]]
verdict = { status = "ok", summary = "done", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }
"#,
    );
    let (_, report) = finish(start_run(&env));
    let sent = model.requests().to_string();
    assert!(
        !sent.contains("unapproved-output\\n") && sent.contains("no decision in time"),
        "the call ran without an approval"
    );
    assert_eq!(
        report["permission_denials"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
}

#[test]
fn a_wait_longer_than_the_run_may_take_is_refused_before_the_run() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let goals = tmp.path().join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(
        goals.join("long-wait.md"),
        "+++\ndescription = \"d\"\ntools = [\"Bash\"]\napproval = \"wait\"\n\
         approval_timeout_secs = 60\n+++\nbody\n",
    )
    .unwrap();
    let env = Env::new(
        &claude,
        PLACEHOLDER_URL,
        &format!(
            "goals_dir = \"{}\"\n#--tables--\n[limits]\ntimeout_secs = 30\n",
            goals.display()
        ),
    );
    let out = env
        .steward()
        .args(["run", "long-wait", "--dry-run"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("approval_timeout_secs"), "{err}");
}
