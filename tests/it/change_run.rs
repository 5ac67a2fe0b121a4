//! Change runs end to end: the real steward binary, the real claude CLI against the scripted
//! model, real git and a real `nix flake check` as the goal's validator. The agent edits a
//! worktree; steward commits, judges the diff, validates it (with repair rounds) and files the
//! change record; the live checkout is never written.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::claude_bin;
use common::cli::{Env, ScriptedModel};
use common::git;

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A flake with no inputs whose one check passes only while `service.nix` sets a port above
/// 1024, built offline with the builder's shell builtins (see real-peers.md).
const FLAKE: &str = r#"{
  outputs = { self }:
    let svc = import ./service.nix;
    in {
      checks.x86_64-linux.port = builtins.derivation {
        name = "port-above-1024";
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" (if svc.port > 1024
          then "echo ok > $out"
          else "echo 'service.nix: port ${toString svc.port} is privileged' >&2; exit 1") ];
      };
    };
}
"#;

/// nix offline, as root without a daemon (see real-peers.md).
const OFFLINE_NIX: [&str; 12] = [
    "nix",
    "--extra-experimental-features",
    "nix-command flakes",
    "--option",
    "substituters",
    "",
    "--option",
    "sandbox",
    "false",
    "--option",
    "build-users-group",
    "",
];

fn toml_argv(words: &[&str]) -> String {
    toml::Value::Array(
        words
            .iter()
            .map(|w| toml::Value::String(w.to_string()))
            .collect(),
    )
    .to_string()
}

/// The goal's validator: the real `nix flake check`, offline.
fn nix_validator() -> Option<String> {
    common::require::tool("nix")?;
    let mut argv = OFFLINE_NIX.to_vec();
    argv.extend(["flake", "check"]);
    Some(toml_argv(&argv))
}

fn goal(validate: &str, repair_rounds: u8) -> String {
    format!(
        r#"+++
description = "change the service's port"
tools = ["Read", "Edit", "Write", "Bash"]
max_turns = 12
vars = ["intent"]

[policy]
allow = ["git status"]
read = ["{{workspace}}"]

[change]
edit = ["service.nix", "modules/**"]
validate = [{validate}]
profile = "command"
apply = ["true"]
rollback = ["true"]
repair_rounds = {repair_rounds}
+++
Intent: {{{{ vars.intent | untrusted(label="intent") }}}}. Work in `{{{{ workspace }}}}`.
"#
    )
}

/// A workspace repository with the flake and a service at port 8080, and the goal.
fn setup(env: &Env, goal_text: &str) -> PathBuf {
    let ws = env.dir.path().join("workspace");
    std::fs::write(ws.join("flake.nix"), FLAKE).unwrap();
    std::fs::write(ws.join("service.nix"), "{ port = 8080; }\n").unwrap();
    std::fs::write(ws.join("README.md"), "the homelab\n").unwrap();
    git::stdout(&ws, &["init", "-q"]);
    git::stdout(&ws, &["add", "-A"]);
    git::stdout(&ws, &["commit", "-qm", "base"]);
    let goals = env.dir.path().join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(goals.join("port.md"), goal_text).unwrap();
    env.set_top_level(&format!("goals_dir = \"{}\"", goals.display()));
    ws
}

fn tool(name: &str, id: &str, input: &str) -> String {
    format!("[[turn.tool_use]]\nname = \"{name}\"\nid = \"{id}\"\ninput = {input}\n")
}

fn edit_port(id: &str, from: u32, to: u32) -> String {
    format!(
        "[[turn]]\n{}\n[[turn]]\n{}",
        tool(
            "Read",
            &format!("{id}_read"),
            "{ file_path = \"${CWD}/service.nix\" }"
        ),
        tool(
            "Edit",
            id,
            &format!(
                "{{ file_path = \"${{CWD}}/service.nix\", old_string = \"port = {from};\", new_string = \"port = {to};\" }}"
            )
        )
    )
}

const VERDICT: &str = "\n[[turn]]\nverdict = { status = \"needs_attention\", summary = \"port changed\", findings = [], actions_taken = [], proposed_actions = [] }\n";

fn run(env: &Env, model: &ScriptedModel) -> (Output, serde_json::Value) {
    let out = env
        .steward()
        .args(["-c", &format!("claude.base_url={}", model.url)])
        .args([
            "--json",
            "run",
            "port",
            "--var",
            "intent=move the service to 9090",
        ])
        .output()
        .unwrap();
    let report = json(&out);
    (out, report)
}

fn change_record(env: &Env, state: &str, id: &str) -> serde_json::Value {
    let path = env
        .state()
        .join("changes")
        .join(state)
        .join(format!("{id}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn audit(env: &Env, run: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(env.run_dir(run).join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn assert_live_checkout_untouched(ws: &Path, base: &str) {
    assert_eq!(git::stdout(ws, &["rev-parse", "HEAD"]).trim(), base);
    assert_eq!(
        git::stdout(ws, &["status", "--porcelain"]),
        "",
        "the live checkout was written"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("service.nix")).unwrap(),
        "{ port = 8080; }\n"
    );
}

#[test]
fn a_valid_edit_becomes_a_pending_change_and_nothing_else_is_touched() {
    let Some(claude) = claude_bin() else { return };
    let Some(validator) = nix_validator() else {
        return;
    };
    let env = Env::new(&claude, "http://127.0.0.1:9", "");
    let ws = setup(&env, &goal(&validator, 2));
    let base = git::stdout(&ws, &["rev-parse", "HEAD"]).trim().to_string();
    let mut scenario = edit_port("toolu_edit", 8080, 9090);
    // What the hook must refuse: a file outside `edit`, Claude Code's settings, a commit.
    scenario.push_str("\n[[turn]]\n");
    scenario.push_str(&tool(
        "Write",
        "toolu_readme",
        "{ file_path = \"${CWD}/README.md\", content = \"owned\" }",
    ));
    scenario.push_str(&tool(
        "Write",
        "toolu_settings",
        "{ file_path = \"${CWD}/.claude/settings.json\", content = \"{}\" }",
    ));
    scenario.push_str(&tool(
        "Bash",
        "toolu_commit",
        "{ command = \"git commit -am sneaky\", description = \"c\" }",
    ));
    scenario.push_str(&tool(
        "Bash",
        "toolu_push",
        "{ command = \"git push origin HEAD\", description = \"p\" }",
    ));
    scenario.push_str(&tool(
        "Bash",
        "toolu_redirect",
        "{ command = \"echo '{ port = 1; }' > service.nix\", description = \"r\" }",
    ));
    scenario.push_str(VERDICT);
    let model = ScriptedModel::start(env.dir.path(), &scenario);

    let (out, report) = run(&env, &model);
    // A change waiting for a human: escalated, exit 6, never `fixed`.
    assert_eq!(out.status.code(), Some(6), "{report:#}");
    assert_eq!(report["outcome"], "escalated", "{report:#}");
    let run_id = report["id"].as_str().unwrap();
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.run_dir(run_id).join("result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(result["change"]["state"], "pending", "{result:#}");
    let id = result["change"]["id"].as_str().unwrap();
    let change = change_record(&env, "pending", id);
    assert_eq!(change["base"], base);
    assert_eq!(change["branch"], format!("steward/{run_id}"));
    let files: Vec<&str> = change["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, vec!["service.nix"], "{change:#}");
    assert_eq!(change["validation"][0]["passed"], true, "{change:#}");
    assert_eq!(change["validation"][0]["source"], "goal");
    assert_eq!(change["repair_rounds"], 0);
    assert_eq!(change["diff_sha256"].as_str().unwrap().len(), 64);

    // steward made the commit on the change's branch; the agent made none.
    let head = change["head"].as_str().unwrap();
    let log = git::stdout(&ws, &["log", "--format=%an %s", &format!("{base}..{head}")]);
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.starts_with("steward ") && log.contains(run_id), "{log}");
    let changed = git::stdout(&ws, &["show", &format!("{head}:service.nix")]);
    assert_eq!(changed, "{ port = 9090; }\n");
    assert_live_checkout_untouched(&ws, &base);

    // Every refused call is in the audit, denied.
    let entries = audit(&env, run_id);
    for id in [
        "toolu_readme",
        "toolu_settings",
        "toolu_commit",
        "toolu_push",
        "toolu_redirect",
    ] {
        let e = entries
            .iter()
            .find(|e| e["tool_use_id"] == id)
            .unwrap_or_else(|| panic!("{id} not audited: {entries:#?}"));
        assert_eq!(e["decision"], "deny", "{e:#}");
    }
    let edit = entries
        .iter()
        .find(|e| e["tool_use_id"] == "toolu_edit")
        .unwrap();
    assert_eq!(edit["decision"], "allow", "{edit:#}");

    // The incident report names the change and the command that shows it.
    let show = env
        .steward()
        .args(["runs", "show", run_id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains(&format!("steward changes show {id}")),
        "{text}"
    );
}

#[test]
fn a_change_goal_needs_a_repository_and_says_so_before_recording_anything() {
    let Some(claude) = claude_bin() else { return };
    let env = Env::new(&claude, "http://127.0.0.1:9", "");
    let goals = env.dir.path().join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(goals.join("port.md"), goal("[\"true\"]", 0)).unwrap();
    env.set_top_level(&format!("goals_dir = \"{}\"", goals.display()));
    // The workspace exists but is no git repository.
    let out = env
        .steward()
        .args(["run", "port", "--var", "intent=x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not a git repository") && err.contains("workspace"),
        "{err}"
    );
    let runs = env.state().join("runs");
    let recorded = std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(recorded, 0, "a run was recorded");
}

#[test]
fn a_breaking_edit_goes_back_to_the_agent_and_ends_invalid_when_not_repaired() {
    let Some(claude) = claude_bin() else { return };
    let Some(validator) = nix_validator() else {
        return;
    };
    let env = Env::new(&claude, "http://127.0.0.1:9", "");
    let ws = setup(&env, &goal(&validator, 1));
    let base = git::stdout(&ws, &["rev-parse", "HEAD"]).trim().to_string();
    let mut scenario = edit_port("toolu_break", 8080, 80);
    scenario.push_str(VERDICT);
    // The repair round: the agent tries again and breaks it differently.
    scenario.push_str("\n[[session]]\nprompt_contains = \"Repair round 1 of 1\"\n");
    scenario.push_str(&edit_port("toolu_again", 80, 443).replace("[[turn", "[[session.turn"));
    scenario.push_str(&VERDICT.replace("[[turn", "[[session.turn"));
    let model = ScriptedModel::start(env.dir.path(), &scenario);

    let (out, report) = run(&env, &model);
    assert_eq!(out.status.code(), Some(6), "{report:#}");
    assert_eq!(report["outcome"], "escalated");
    assert!(
        report["reason"].as_str().unwrap().contains("invalid"),
        "{report:#}"
    );
    let run_id = report["id"].as_str().unwrap();
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.run_dir(run_id).join("result.json")).unwrap(),
    )
    .unwrap();
    let id = result["change"]["id"].as_str().unwrap();
    let change = change_record(&env, "invalid", id);
    let rounds: Vec<(u64, bool)> = change["validation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["round"].as_u64().unwrap(), v["passed"].as_bool().unwrap()))
        .collect();
    assert_eq!(rounds, vec![(0, false), (1, false)], "{change:#}");
    assert!(
        change["validation"][1]["output"]
            .as_str()
            .unwrap()
            .contains("port 443 is privileged"),
        "{change:#}"
    );
    // The repair prompt carried the first failure, fenced as data.
    let requests = model.requests().to_string();
    assert!(
        requests.contains("Repair round 1 of 1"),
        "no repair round reached the model"
    );
    assert!(
        requests.contains("port 80 is privileged"),
        "the failure never reached the agent"
    );
    assert_live_checkout_untouched(&ws, &base);

    // The invalid change keeps its branch for inspection until retention removes its run; then
    // the branch goes with it.
    let branch = format!("steward/{run_id}");
    let branches = || git::stdout(&ws, &["branch", "--list", "steward/*"]);
    assert!(branches().contains(&branch), "{}", branches());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = env
        .steward()
        .args(["--json", "runs", "prune", "--older-than", "1s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pruned: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        pruned["change_branches"]["deleted"],
        serde_json::json!([branch]),
        "{pruned:#}"
    );
    assert!(!branches().contains(&branch), "{}", branches());
    assert_live_checkout_untouched(&ws, &base);
}

#[test]
fn a_repaired_change_is_pending_with_its_rounds_recorded() {
    let Some(claude) = claude_bin() else { return };
    let Some(validator) = nix_validator() else {
        return;
    };
    let env = Env::new(&claude, "http://127.0.0.1:9", "");
    let ws = setup(&env, &goal(&validator, 2));
    let mut scenario = edit_port("toolu_break", 8080, 80);
    scenario.push_str(VERDICT);
    scenario.push_str("\n[[session]]\nprompt_contains = \"Repair round 1 of 2\"\n");
    scenario.push_str(&edit_port("toolu_fix", 80, 9090).replace("[[turn", "[[session.turn"));
    scenario.push_str(&VERDICT.replace("[[turn", "[[session.turn"));
    let model = ScriptedModel::start(env.dir.path(), &scenario);

    let (out, report) = run(&env, &model);
    assert_eq!(out.status.code(), Some(6), "{report:#}");
    let run_id = report["id"].as_str().unwrap();
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.run_dir(run_id).join("result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(result["change"]["state"], "pending", "{result:#}");
    let change = change_record(&env, "pending", result["change"]["id"].as_str().unwrap());
    assert_eq!(change["repair_rounds"], 1);
    let head = change["head"].as_str().unwrap();
    assert_eq!(
        git::stdout(&ws, &["show", &format!("{head}:service.nix")]),
        "{ port = 9090; }\n"
    );
    // Both rounds are charged: the cost is the sum of two claude runs' reports.
    assert!(result["num_turns"].as_u64().unwrap() >= 4, "{result:#}");
}

#[test]
fn a_diff_carrying_a_token_is_refused_by_steward_whatever_the_hook_allowed() {
    let Some(claude) = claude_bin() else { return };
    let Some(validator) = nix_validator() else {
        return;
    };
    let env = Env::new(&claude, "http://127.0.0.1:9", "");
    let ws = setup(&env, &goal(&validator, 2));
    let base = git::stdout(&ws, &["rev-parse", "HEAD"]).trim().to_string();
    // An allowed path, an allowed tool: only the diff shows the secret.
    let token = format!("ghp_{}", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8");
    let mut scenario = String::from("[[turn]]\n");
    scenario.push_str(&tool(
        "Write",
        "toolu_token",
        &format!("{{ file_path = \"${{CWD}}/modules/git.nix\", content = \"{{ token = \\\"{token}\\\"; }}\\n\" }}"),
    ));
    scenario.push_str(VERDICT);
    let model = ScriptedModel::start(env.dir.path(), &scenario);

    let (out, report) = run(&env, &model);
    assert_eq!(out.status.code(), Some(6), "{report:#}");
    let run_id = report["id"].as_str().unwrap();
    let written = audit(&env, run_id);
    let w = written
        .iter()
        .find(|e| e["tool_use_id"] == "toolu_token")
        .expect("audited");
    assert_eq!(
        w["decision"], "allow",
        "the hook allowed the write, so the diff check is what refuses: {w:#}"
    );
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.run_dir(run_id).join("result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(result["change"]["state"], "invalid", "{result:#}");
    let reason = result["change"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("modules/git.nix") && reason.contains("secret"),
        "{reason}"
    );
    // Refused before validation: nothing was built.
    let change = change_record(&env, "invalid", result["change"]["id"].as_str().unwrap());
    assert_eq!(change["validation"], serde_json::json!([]), "{change:#}");
    // The token is not in any record steward wrote.
    let state = std::process::Command::new("grep")
        .args(["-rl", &token])
        .arg(env.state())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&state.stdout),
        "",
        "the token reached the state directory"
    );
    assert_live_checkout_untouched(&ws, &base);
}

/// The offline nix of these tests as `[change] nix` (the bundled profiles' validators use it).
fn offline_nix_table() -> String {
    format!("#--tables--\n[change]\nnix = {}\n", toml_argv(&OFFLINE_NIX))
}

/// The bundled `proactive` goal proposes its fix as a change set; on this host (not NixOS) the
/// `nixos` profile finds no generation to return to, so the change is filed `invalid` with that
/// reason after its validation passed: proposed, recorded, never pending without a rollback target.
#[test]
fn proactive_files_its_fix_as_a_change_set() {
    let Some(claude) = claude_bin() else { return };
    if nix_validator().is_none() {
        return;
    }
    let env = Env::new(&claude, "http://127.0.0.1:9", &offline_nix_table());
    let ws = env.dir.path().join("workspace");
    std::fs::write(ws.join("flake.nix"), FLAKE).unwrap();
    std::fs::write(ws.join("service.nix"), "{ port = 8080; }\n").unwrap();
    git::stdout(&ws, &["init", "-q"]);
    git::stdout(&ws, &["add", "-A"]);
    git::stdout(&ws, &["commit", "-qm", "base"]);
    let mut scenario = edit_port("toolu_bump", 8080, 9090);
    scenario.push_str(VERDICT);
    let model = ScriptedModel::start(env.dir.path(), &scenario);
    let out = env
        .steward()
        .args(["-c", &format!("claude.base_url={}", model.url)])
        .args(["--json", "run", "proactive", "--force-model"])
        .output()
        .unwrap();
    let report = json(&out);
    assert_eq!(out.status.code(), Some(6), "{report:#}");
    let run_id = report["id"].as_str().unwrap();
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.run_dir(run_id).join("result.json")).unwrap(),
    )
    .unwrap();
    let change = &result["change"];
    assert_eq!(change["files"], 1, "{result:#}");
    let record = change_record(
        &env,
        change["state"].as_str().unwrap(),
        change["id"].as_str().unwrap(),
    );
    // The bundled profile's validator ran the real `nix flake check` on the change, and passed.
    let v = &record["validation"][0];
    assert_eq!(v["source"], "profile", "{record:#}");
    assert_eq!(v["passed"], true, "{record:#}");
    assert!(v["argv"].to_string().contains("flake"), "{v:#}");
    if std::path::Path::new("/nix/var/nix/profiles/system").exists() {
        return;
    }
    assert_eq!(record["state"], "invalid", "{record:#}");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("rollback target"),
        "{record:#}"
    );
}

/// Without a git repository the `proactive` goal runs as before: no change mode, no file tools,
/// and the record says why.
#[test]
fn proactive_without_a_repository_runs_without_change_mode() {
    let Some(claude) = claude_bin() else { return };
    let env = Env::new(&claude, "http://127.0.0.1:9", "");
    let model = ScriptedModel::start(env.dir.path(), VERDICT.trim_start());
    let out = env
        .steward()
        .args(["-c", &format!("claude.base_url={}", model.url)])
        .args(["--json", "run", "proactive", "--force-model"])
        .output()
        .unwrap();
    let report = json(&out);
    let run_id = report["id"].as_str().expect("a run was recorded");
    let why = std::fs::read_to_string(env.run_dir(run_id).join("change-mode.txt")).unwrap();
    assert!(why.contains("not a git repository"), "{why}");
    let argv = std::fs::read_to_string(env.run_dir(run_id).join("claude-argv.json")).unwrap();
    let tools_at = argv.find("--tools").expect("--tools in argv");
    let tools = &argv[tools_at..tools_at + 80];
    assert!(
        !tools.contains("Edit") && !tools.contains("Write"),
        "{tools}"
    );
    assert!(report["change"].is_null(), "{report:#}");
}

/// A read-only bind mount of a directory onto itself, unmounted when dropped.
struct ReadOnly {
    dir: PathBuf,
}

impl ReadOnly {
    /// `None`: bind mounts are not possible here (not root); the test skips, saying so, and
    /// under `CI=true` that is a failure.
    fn mount(dir: &Path) -> Option<ReadOnly> {
        let run = |args: &[&str]| {
            std::process::Command::new("mount")
                .args(args)
                .arg(dir)
                .arg(dir)
                .output()
        };
        let bound = run(&["--bind"]);
        let why = match bound {
            Ok(o) if o.status.success() => {
                let guard = ReadOnly {
                    dir: dir.to_path_buf(),
                };
                let ro = run(&["-o", "remount,ro,bind"]).unwrap();
                assert!(
                    ro.status.success(),
                    "{}",
                    String::from_utf8_lossy(&ro.stderr)
                );
                return Some(guard);
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        let msg = format!("cannot bind-mount {} read-only ({why})", dir.display());
        common::require::missing(&msg, "run the tests as root, as CI does");
        None
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.dir).output();
    }
}

/// What the shipped systemd units do to a workspace (`ProtectSystem=strict`): its git directory
/// is read-only. A change goal says so before recording anything, naming `ReadWritePaths=`; an
/// optional one (`proactive`) runs without change mode and records why.
#[test]
fn a_read_only_git_directory_is_found_before_the_run() {
    let Some(claude) = claude_bin() else { return };
    let env = Env::new(&claude, "http://127.0.0.1:9", "");
    let ws = setup(&env, &goal("[\"true\"]", 0));
    let Some(_ro) = ReadOnly::mount(&ws.join(".git")) else {
        return;
    };
    let out = env
        .steward()
        .args(["run", "port", "--var", "intent=x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ReadWritePaths") && err.contains(".git"),
        "{err}"
    );

    let model = ScriptedModel::start(env.dir.path(), VERDICT.trim_start());
    let out = env
        .steward()
        .args(["-c", &format!("claude.base_url={}", model.url)])
        .args(["--json", "run", "proactive", "--force-model"])
        .output()
        .unwrap();
    let report = json(&out);
    let run_id = report["id"].as_str().expect("a run was recorded");
    let why = std::fs::read_to_string(env.run_dir(run_id).join("change-mode.txt")).unwrap();
    assert!(why.contains("cannot write"), "{why}");
    assert!(report["change"].is_null(), "{report:#}");
}

/// Ctrl-C while a validator runs: its process group is killed at once (not after
/// `validate_timeout_secs`), nothing is filed, and the run is recorded cancelled.
#[test]
fn sigint_during_the_static_phase_kills_the_validator_and_files_nothing() {
    use std::time::{Duration, Instant};
    let Some(claude) = claude_bin() else { return };
    let env = Env::new(&claude, "http://127.0.0.1:9", "");
    let pid_file = env.dir.path().join("validator.pid");
    let validator = toml_argv(&[
        "sh",
        "-c",
        &format!("echo $$ > {}; exec sleep 600", pid_file.display()),
    ]);
    let ws = setup(&env, &goal(&validator, 2));
    let base = git::stdout(&ws, &["rev-parse", "HEAD"]).trim().to_string();
    let mut scenario = edit_port("toolu_edit", 8080, 9090);
    scenario.push_str(VERDICT);
    let model = ScriptedModel::start(env.dir.path(), &scenario);
    let mut child = env
        .steward()
        .args(["-c", &format!("claude.base_url={}", model.url)])
        .args(["--json", "run", "port", "--var", "intent=move it"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(120);
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file)
            && let Ok(pid) = text.trim().parse::<i32>()
        {
            break pid;
        }
        assert!(Instant::now() < until, "the validator never started");
        assert!(child.try_wait().unwrap().is_none(), "steward ended first");
        std::thread::sleep(Duration::from_millis(100));
    };
    let asked = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(asked.elapsed() < Duration::from_secs(60), "{stderr}");
    let report = json(&out);
    assert_eq!(report["outcome"], "cancelled", "{report:#}");
    let validator_gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err();
    assert!(validator_gone, "the validator {pid} outlived the run");
    let filed = walk_files(&env.state().join("changes"));
    assert!(filed.is_empty(), "a change was filed: {filed:?}");
    assert_live_checkout_untouched(&ws, &base);
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
    out
}
