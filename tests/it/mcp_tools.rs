//! steward's MCP tools for the agent end to end: the real steward binary as claude's MCP server,
//! the real claude CLI, the scripted model calling the tools. A goal opts in per tool; the
//! policy hook enforces each tool's risk class; answers are redacted and fenced as data.

use std::path::Path;
use std::process::Output;

use crate::common::claude_bin;
use crate::common::cli::{Env, ScriptedModel};
use serde_json::Value;

const PLACEHOLDER_URL: &str = "http://127.0.0.1:9";
const SECRET: &str = "Hunter2-Mcp-Planted-Secret";

const QUIET: &str = r#"
[[turn]]
verdict = { status = "ok", summary = "fine", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }
"#;

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A goal listing five of steward's tools (not `check`), a probe that prints a secret, and a
/// policy under which `touch FILE` needs approval.
fn tools_env(claude: &Path, tmp: &Path) -> Env {
    let ctx = tmp.join("context");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("leaky.toml"),
        format!(
            "[[probe]]\nname = \"leaky\"\ndescription = \"prints a secret\"\nkind = \"command\"\n\
             argv = [\"echo\", \"MCP-PROBE-MARKER db password is {SECRET}\"]\n"
        ),
    )
    .unwrap();
    let goals = tmp.join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(
        goals.join("tools-test.md"),
        "+++\ndescription = \"steward tools test\"\n\
         tools = [\"Bash\", \"mcp__steward__report\", \"mcp__steward__probe\", \
         \"mcp__steward__run_history\", \"mcp__steward__propose_note\", \
         \"mcp__steward__propose_action\"]\nprobes = [\"leaky\"]\n\n[policy]\n\
         allow = [\"uptime\"]\napprove = [\"touch FILE\"]\nread = [\"{workspace}\"]\n\
         write = [\"{workspace}\"]\n+++\nUse steward's tools.\n",
    )
    .unwrap();
    Env::new(
        claude,
        PLACEHOLDER_URL,
        &format!(
            "context_dir = \"{}\"\ngoals_dir = \"{}\"\n#--tables--\n[redact]\nsecrets = [\"{SECRET}\"]\n",
            ctx.display(),
            goals.display()
        ),
    )
}

/// The result of the tool call `id` (text, is_error); a panic naming what there was instead.
fn result_of(
    results: &std::collections::BTreeMap<String, (String, bool)>,
    id: &str,
    report: &Value,
) -> (String, bool) {
    results
        .get(id)
        .cloned()
        .unwrap_or_else(|| panic!("no result for {id}: {results:#?}\nrun: {report:#}"))
}

fn point_at(env: &Env, model: &ScriptedModel) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    let text = text.replace(PLACEHOLDER_URL, &model.url);
    // Each run gets its own model; the previous one's URL is replaced too.
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("base_url = ") {
                format!("base_url = \"{}\"", model.url)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&env.config, text).unwrap();
}

fn calls_scenario(marker: &Path) -> String {
    let call = |id: &str, name: &str, input: &str| {
        format!(
            "[[turn]]\n[[turn.tool_use]]\nid = \"{id}\"\nname = \"{name}\"\ninput = {input}\n\n"
        )
    };
    let mut s = String::new();
    s += &call("t_report", "mcp__steward__report", "{}");
    s += &call("t_probe", "mcp__steward__probe", "{ name = \"leaky\" }");
    s += &call("t_history", "mcp__steward__run_history", "{ limit = 5 }");
    s += &call(
        "t_note",
        "mcp__steward__propose_note",
        "{ title = \"Leaky probe MCP-NOTE-MARKER\", body = \"The leaky probe prints a password.\", tags = [\"mcp\"] }",
    );
    s += &call(
        "t_action",
        "mcp__steward__propose_action",
        &format!(
            "{{ argv = [\"touch\", \"{}\"], rationale = \"MCP-ACTION-MARKER create it\" }}",
            marker.display()
        ),
    );
    s += &call(
        "t_unlisted",
        "mcp__steward__check",
        "{ name = \"root-disk-space\" }",
    );
    s += &call("t_unknown", "mcp__steward__rm_rf", "{}");
    s += "[[turn]]\nverdict = { status = \"ok\", summary = \"done\", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }\n";
    s
}

#[test]
fn the_agent_uses_stewards_tools_within_their_risk_classes() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let env = tools_env(&claude, tmp.path());
    let ws = env.dir.path().join("workspace");
    let marker = ws.join("proposed-marker");

    // An earlier run, for the history.
    let first = ScriptedModel::start(tmp.path(), QUIET);
    point_at(&env, &first);
    let out = env
        .steward()
        .args(["--json", "run", "tools-test"])
        .output()
        .unwrap();
    let earlier = json(&out);
    let earlier_id = earlier["id"].as_str().unwrap().to_string();

    let model = ScriptedModel::start(tmp.path(), &calls_scenario(&marker));
    point_at(&env, &model);
    let out = env
        .steward()
        .args(["--json", "run", "tools-test"])
        .output()
        .unwrap();
    let report = json(&out);
    let run_id = report["id"].as_str().unwrap().to_string();
    let results = model.tool_results();
    let result = |id: &str| result_of(&results, id, &report);

    // report: the snapshot and its diff, fenced as data.
    let (text, err) = result("t_report");
    assert!(!err, "{text}");
    assert!(text.contains("source=\"steward tool report\""), "{text}");
    assert!(
        text.contains("\"snapshot\"") && text.contains("\"changes\""),
        "{text}"
    );

    // probe: the full output, with the configured secret redacted.
    let (text, err) = result("t_probe");
    assert!(!err, "{text}");
    assert!(text.contains("MCP-PROBE-MARKER db password is"), "{text}");
    assert!(!text.contains(SECRET), "secret leaked: {text}");

    // run_history: the earlier run, not this one.
    let (text, err) = result("t_history");
    assert!(!err, "{text}");
    assert!(text.contains(&earlier_id), "{text}");
    assert!(!text.contains(&run_id), "{text}");

    // propose_note: pending in the knowledge store.
    let (text, err) = result("t_note");
    assert!(!err, "{text}");
    let pending: Vec<_> = std::fs::read_dir(env.state().join("knowledge/pending"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert!(pending[0].contains("MCP-NOTE-MARKER"), "{pending:?}");

    // propose_action: denied now, filed as a pending action, never run.
    let (text, err) = result("t_action");
    assert!(err, "the proposal ran instead of being queued: {text}");
    assert!(text.contains("queued for a human"), "{text}");
    assert!(!marker.exists(), "the proposed action ran");
    let actions = json(
        &env.steward()
            .args(["--json", "actions", "list"])
            .output()
            .unwrap(),
    );
    let filed = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["state"] == "pending")
        .unwrap_or_else(|| panic!("no pending action: {actions:#}"));
    assert_eq!(filed["argv"][0], "touch", "{filed:#}");
    assert_eq!(filed["argv"][1], marker.display().to_string(), "{filed:#}");
    assert!(
        filed["rationale"]
            .as_str()
            .unwrap()
            .contains("MCP-ACTION-MARKER"),
        "{filed:#}"
    );

    // A steward tool the goal did not list, and one steward does not serve: both refused.
    for id in ["t_unlisted", "t_unknown"] {
        let (text, err) = result(id);
        assert!(err, "{id} was not refused: {text}");
    }

    // Every call is in the audit, with its decision.
    let audit = std::fs::read_to_string(env.run_dir(&run_id).join("audit.jsonl")).unwrap();
    let entries: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let decision = |tool: &str| {
        entries
            .iter()
            .find(|e| e["tool"] == tool)
            .map(|e| e["decision"].as_str().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("{tool} not audited: {audit}"))
    };
    assert_eq!(decision("mcp__steward__report"), "allow");
    assert_eq!(decision("mcp__steward__probe"), "allow");
    assert_eq!(decision("mcp__steward__propose_note"), "allow");
    assert_eq!(decision("mcp__steward__propose_action"), "approve");
    assert!(!audit.contains(SECRET), "secret in the audit");
}

/// `container_logs` through bollard against podman: the container's last lines, the configured
/// secret redacted, and a goal's `lines` bound enforced.
#[test]
fn container_logs_tails_a_containers_logs_redacted() {
    let Some(claude) = claude_bin() else { return };
    let Some(engine) = crate::common::podman::Podman::start() else {
        return;
    };
    let out = engine.podman(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "mcp-logs",
        crate::common::podman::IMAGE,
        "sh",
        "-c",
        &format!("echo MCP-LOG-FIRST; echo MCP-LOG-LAST key {SECRET}; sleep 600"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tmp = tempfile::tempdir().unwrap();
    let goals = tmp.path().join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(
        goals.join("logs-test.md"),
        "+++\ndescription = \"logs\"\ntools = [\"mcp__steward__container_logs\"]\n+++\nRead logs.\n",
    )
    .unwrap();
    let scenario = "[[turn]]\n[[turn.tool_use]]\nid = \"t_logs\"\nname = \"mcp__steward__container_logs\"\ninput = { container = \"mcp-logs\", lines = 1 }\n\n\
         [[turn]]\n[[turn.tool_use]]\nid = \"t_bad\"\nname = \"mcp__steward__container_logs\"\ninput = { container = \"mcp-logs\", lines = 100000 }\n\n"
        .to_string()
        + QUIET;
    let model = ScriptedModel::start(tmp.path(), &scenario);
    let env = Env::new(
        &claude,
        &model.url,
        &format!(
            "goals_dir = \"{}\"\n#--tables--\n[redact]\nsecrets = [\"{SECRET}\"]\n[docker]\nhost = \"{}\"\nwatch = false\n",
            goals.display(),
            engine.docker_host()
        ),
    );
    let out = env
        .steward()
        .args(["--json", "run", "logs-test"])
        .output()
        .unwrap();
    let report = json(&out);
    let results = model.tool_results();
    let (text, err) = result_of(&results, "t_logs", &report);
    assert!(!err, "{text}");
    assert!(text.contains("MCP-LOG-LAST key"), "{text}");
    assert!(
        !text.contains("MCP-LOG-FIRST"),
        "one line was asked for: {text}"
    );
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    let (text, err) = results.get("t_bad").cloned().unwrap();
    assert!(err && text.contains("argument `lines`"), "{text}");
}

/// A goal `NAME` offering `tools`, with the given front matter lines, in `goals/` under `dir`.
fn goal(dir: &Path, name: &str, front: &str) -> std::path::PathBuf {
    let goals = dir.join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(
        goals.join(format!("{name}.md")),
        format!("+++\ndescription = \"{name}\"\n{front}\n+++\nUse steward's tools.\n"),
    )
    .unwrap();
    goals
}

fn tool_call(id: &str, name: &str, input: &str) -> String {
    format!("[[turn]]\n[[turn.tool_use]]\nid = \"{id}\"\nname = \"{name}\"\ninput = {input}\n\n")
}

/// The tools see the run's effective configuration: `steward -c context_dir=… run` points the
/// probes elsewhere than the config file does, and the `probe` tool reads the overridden ones.
#[test]
fn the_tools_see_the_runs_command_line_overrides() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let probes = |name: &str, says: &str| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("where.toml"),
            format!(
                "[[probe]]\nname = \"where\"\ndescription = \"which context\"\nkind = \"command\"\n\
                 argv = [\"echo\", \"{says}\"]\n"
            ),
        )
        .unwrap();
        dir
    };
    let from_file = probes("file-context", "PROBE-FROM-FILE");
    let overridden = probes("override-context", "PROBE-FROM-OVERRIDE");
    let goals = goal(
        tmp.path(),
        "where-test",
        "tools = [\"mcp__steward__probe\"]\nprobes = [\"where\"]",
    );
    let scenario = tool_call("t_where", "mcp__steward__probe", "{ name = \"where\" }") + QUIET;
    let model = ScriptedModel::start(tmp.path(), &scenario);
    let env = Env::new(
        &claude,
        &model.url,
        &format!(
            "context_dir = \"{}\"\ngoals_dir = \"{}\"\n",
            from_file.display(),
            goals.display()
        ),
    );
    let out = env
        .steward()
        .arg("-c")
        .arg(format!("context_dir=\"{}\"", overridden.display()))
        .args(["--json", "run", "where-test"])
        .output()
        .unwrap();
    let report = json(&out);
    let (text, err) = result_of(&model.tool_results(), "t_where", &report);
    assert!(!err, "{text}");
    assert!(text.contains("PROBE-FROM-OVERRIDE"), "{text}");
    assert!(!text.contains("PROBE-FROM-FILE"), "{text}");
    // The config snapshot, with its literal secrets, lived only as long as the run.
    let run_dir = env.run_dir(report["id"].as_str().unwrap());
    assert!(run_dir.join("steward-tools.json").exists());
    assert!(!run_dir.join("steward-config.json").exists());
}

/// `propose_action`'s `checks`: a name that is no defined check refuses the proposal (a tool
/// error naming it, nothing filed); defined ones join the goal's post checks on the filed
/// action, each once, and steward's executor runs them all after approval.
#[test]
fn propose_action_checks_are_validated_filed_and_run_after_approval() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let model_url = PLACEHOLDER_URL;
    let env = Env::new(&claude, model_url, "");
    let ws = env.dir.path().join("workspace");
    let (marker, other, never) = (ws.join("marker"), ws.join("other"), ws.join("never-made"));
    let context = tmp.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    let file_check = |name: &str, path: &Path| {
        format!(
            "[[check]]\nname = \"{name}\"\ndescription = \"{name}\"\nkind = \"file\"\n\
             path = \"{}\"\nexists = true\n",
            path.display()
        )
    };
    std::fs::write(
        context.join("checks.toml"),
        file_check("goal-post", &marker) + &file_check("extra-check", &never),
    )
    .unwrap();
    let goals = goal(
        tmp.path(),
        "propose-test",
        "tools = [\"mcp__steward__propose_action\"]\n\n[policy]\napprove = [\"touch FILE\"]\n\
         read = [\"{workspace}\"]\n\n[checks]\npost = [\"goal-post\"]",
    );
    env.set_top_level(&format!(
        "context_dir = \"{}\"\ngoals_dir = \"{}\"",
        context.display(),
        goals.display()
    ));
    let propose = |id: &str, path: &Path, checks: &str| {
        tool_call(
            id,
            "mcp__steward__propose_action",
            &format!(
                "{{ argv = [\"touch\", \"{}\"], rationale = \"make it\", checks = {checks} }}",
                path.display()
            ),
        )
    };
    let scenario = propose("t_unknown", &other, "[\"extra-check\", \"no-such-check\"]")
        + &propose("t_named", &marker, "[\"extra-check\", \"goal-post\"]")
        + QUIET;
    let model = ScriptedModel::start(tmp.path(), &scenario);
    point_at(&env, &model);
    let out = env
        .steward()
        .args(["--json", "run", "propose-test"])
        .output()
        .unwrap();
    let report = json(&out);
    let results = model.tool_results();
    let result = |id: &str| result_of(&results, id, &report);

    // The unknown name: refused, named, nothing filed for it.
    let (text, err) = result("t_unknown");
    assert!(err, "{text}");
    assert!(
        text.contains("`no-such-check` is not a defined check"),
        "{text}"
    );
    assert!(!text.contains("queued for a human"), "{text}");
    // The defined ones: filed with the goal's post check first, each once.
    let (text, err) = result("t_named");
    assert!(err && text.contains("queued for a human"), "{text}");
    let actions = json(
        &env.steward()
            .args(["--json", "actions", "list"])
            .output()
            .unwrap(),
    );
    let list = actions.as_array().unwrap();
    assert_eq!(
        list.len(),
        1,
        "only the valid proposal is filed: {actions:#}"
    );
    let filed = &list[0];
    assert_eq!(filed["argv"][1], marker.display().to_string(), "{filed:#}");
    assert_eq!(
        filed["checks"],
        serde_json::json!(["goal-post", "extra-check"]),
        "{filed:#}"
    );
    let run_id = report["id"].as_str().unwrap();
    let audit = std::fs::read_to_string(env.run_dir(run_id).join("audit.jsonl")).unwrap();
    let unknown: Value = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["tool_use_id"] == "t_unknown")
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(unknown["decision"], "deny", "{unknown:#}");

    // Approved: the executor runs the command, then both checks; the named one fails (its
    // file is never made), so the action failed its checks.
    let id = filed["id"].as_str().unwrap();
    let out = env
        .steward()
        .args([
            "--json", "actions", "approve", id, "--yes", "--by", "tester",
        ])
        .output()
        .unwrap();
    assert!(marker.exists(), "the approved action did not run");
    let done = json(
        &env.steward()
            .args(["--json", "actions", "show", id])
            .output()
            .unwrap(),
    );
    let ran: Vec<(String, String)> = done["execution"]["checks"]
        .as_array()
        .unwrap_or_else(|| {
            panic!(
                "{done:#}\napprove: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ran,
        [
            ("goal-post".to_string(), "pass".to_string()),
            ("extra-check".to_string(), "fail".to_string())
        ],
        "{done:#}"
    );
    assert_eq!(done["state"], "failed", "{done:#}");
    assert!(!other.exists());
}
