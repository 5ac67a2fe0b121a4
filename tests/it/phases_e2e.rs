//! Validation phases end to end: the real steward binary, the real claude CLI and the scripted
//! model. Steward's own checks decide a run's outcome, before and after the agent.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::claude_bin;
use common::cli::{Env, ScriptedModel};

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn verdict(status: &str) -> String {
    format!(
        "[[turn]]\nverdict = {{ status = \"{status}\", summary = \"the agent says {status}\", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }}\n"
    )
}

/// A TOML string literal for `s`.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// An Env whose config names fresh goal and check directories. The model's URL is given per
/// command (`-c claude.base_url=…`), so the workspace exists before a scenario names paths in it.
struct Setup {
    env: Env,
    defs: tempfile::TempDir,
}

impl Setup {
    fn new(claude: &Path) -> Setup {
        let defs = tempfile::tempdir().unwrap();
        let (goals, ctx) = (defs.path().join("goals"), defs.path().join("context"));
        std::fs::create_dir_all(&goals).unwrap();
        std::fs::create_dir_all(&ctx).unwrap();
        let env = Env::new(
            claude,
            "http://127.0.0.1:9",
            &format!(
                "goals_dir = \"{}\"\ncontext_dir = \"{}\"\n",
                goals.display(),
                ctx.display()
            ),
        );
        Setup { env, defs }
    }

    fn ws(&self) -> PathBuf {
        self.env.dir.path().join("workspace")
    }

    /// A scratch directory beside the workspace, for check targets and rollback traces.
    fn scratch(&self) -> PathBuf {
        let p = self.env.dir.path().join("scratch");
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// A goal with this front matter (after `description`) and a short prompt.
    fn goal(&self, name: &str, front: &str) {
        std::fs::write(
            self.defs.path().join("goals").join(format!("{name}.md")),
            format!(
                "+++\ndescription = \"test goal {name}\"\nmax_turns = 6\n{front}\n+++\nTest goal {name} in {{{{ workspace }}}}.\n{{{{ checks_fenced }}}}\n{{% if history_fenced %}}## Recent outcomes for this subject\n{{{{ history_fenced }}}}{{% endif %}}\n"
            ),
        )
        .unwrap();
    }

    /// `[[check]]` tables, appended to the check file.
    fn checks(&self, toml_text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.defs.path().join("context").join("checks.toml"))
            .unwrap();
        writeln!(f, "{toml_text}").unwrap();
    }

    fn file_check(&self, name: &str, path: &Path, extra: &str) {
        self.checks(&format!(
            "[[check]]\nname = \"{name}\"\ndescription = \"{name}\"\nkind = \"file\"\npath = {}\n{extra}\n",
            quoted(&path.display().to_string())
        ));
    }

    fn steward(&self, model: &ScriptedModel) -> Command {
        let mut cmd = self.env.steward();
        cmd.arg("-c").arg(format!("claude.base_url={}", model.url));
        cmd
    }

    fn run(&self, model: &ScriptedModel, args: &[&str]) -> (Option<i32>, serde_json::Value) {
        let out = self
            .steward(model)
            .args(["--json", "run"])
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), json(&out))
    }

    fn result(&self, report: &serde_json::Value) -> serde_json::Value {
        let id = report["id"].as_str().expect("a recorded run");
        serde_json::from_str(&read(self.env.run_dir(id).join("result.json"))).unwrap()
    }
}

/// How many Messages API calls the model received.
fn model_calls(model: &ScriptedModel) -> usize {
    model
        .requests()
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/v1/messages")
        .count()
}

#[test]
fn a_failing_preflight_check_aborts_before_the_model() {
    let Some(claude) = claude_bin() else { return };
    let s = Setup::new(&claude);
    let missing = s.scratch().join("not-there");
    s.file_check("needs-a-file", &missing, "exists = true");
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.checks(&format!(
        "[[check]]\nname = \"needs-a-port\"\ndescription = \"a service listens\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\ntimeout_secs = 2\n"
    ));
    s.goal(
        "preflight-fails",
        "tools = [\"Bash\"]\n[checks]\npreflight = [\"needs-a-file\", \"needs-a-port\"]",
    );
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), &verdict("ok"));
    let (code, report) = s.run(&model, &["preflight-fails", "--force-model"]);
    assert_eq!(code, Some(3), "{report:#}");
    assert_eq!(report["outcome"], "aborted");
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("needs-a-file") && reason.contains("needs-a-port"),
        "{reason}"
    );
    let result = s.result(&report);
    assert_eq!(result["agent_started"], false);
    assert_eq!(result["outcome"], "aborted");
    assert_eq!(model_calls(&model), 0, "the model was called");
    let dir = s.env.run_dir(report["id"].as_str().unwrap());
    assert!(!dir.join("transcript.jsonl").exists());
}

/// A Bash call of the scenario's model.
fn bash_turn(id: &str, command: &str) -> String {
    format!(
        "[[turn]]\n[[turn.tool_use]]\nname = \"Bash\"\nid = \"{id}\"\ninput = {{ command = {}, description = \"step\" }}\n",
        quoted(command)
    )
}

/// `steward runs show ID` as text.
fn runs_show(s: &Setup, id: &str) -> String {
    let out = s.env.steward().args(["runs", "show", id]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The agent's only call is denied and the post check already failed before the run: the run
/// fails, but its rollback (think `nixos-rebuild switch --rollback`) must not undo the
/// operator's own last change. The decision is recorded and shown either way.
#[test]
fn a_rollback_never_undoes_what_nobody_did() {
    let Some(claude) = claude_bin() else { return };
    let s = Setup::new(&claude);
    let scratch = s.scratch();
    let rolled = scratch.join("rolled-back");
    s.file_check("post-never", &scratch.join("never"), "exists = true");
    s.goal(
        "post-fails",
        &format!(
            "tools = [\"Bash\"]\n[checks]\npost = [\"post-never\"]\nrollback = [\"touch\", {}]",
            quoted(&rolled.display().to_string())
        ),
    );
    let scenario = format!(
        "{}{}",
        bash_turn("toolu_denied", &format!("rm -rf {}", s.ws().display())),
        verdict("fixed")
    );
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), &scenario);
    let (code, report) = s.run(&model, &["post-fails"]);
    assert_eq!(code, Some(5), "{report:#}");
    assert_eq!(report["outcome"], "failed");
    assert!(model_calls(&model) >= 1);
    assert!(s.ws().is_dir());
    assert!(
        !rolled.exists(),
        "the rollback ran although nothing was done"
    );
    let result = s.result(&report);
    assert_eq!(result["failed_checks"], serde_json::json!(["post-never"]));
    assert_eq!(result["state_changes"], serde_json::json!([]));
    assert_eq!(result["rollback"]["decision"], "skipped", "{result:#}");
    let why = result["rollback"]["reason"].as_str().unwrap();
    assert!(why.contains("already failed before the run"), "{why}");
    let shown = runs_show(&s, report["id"].as_str().unwrap());
    assert!(
        shown.contains("Rollback\n  skipped `touch") && shown.contains("already failed before"),
        "{shown}"
    );
}

/// The agent breaks a post check that held before (an allowed Write): the run fails and the
/// rollback runs, undoes it, and is shown with its result.
#[test]
fn a_post_check_the_agent_broke_is_rolled_back() {
    let Some(claude) = claude_bin() else { return };
    let s = Setup::new(&claude);
    let state = s.ws().join("service.conf");
    std::fs::write(&state, "service is healthy\n").unwrap();
    s.file_check("conf-healthy", &state, "contains = \"healthy\"");
    let good = s.scratch().join("service.good");
    std::fs::copy(&state, &good).unwrap();
    s.goal(
        "breaks-post",
        &format!(
            "tools = [\"Read\", \"Write\"]\n[policy]\nread = [\"{{workspace}}\"]\nwrite = [\"{{workspace}}\"]\n[checks]\npost = [\"conf-healthy\"]\nrollback = [\"cp\", {}, {}]",
            quoted(&good.display().to_string()),
            quoted(&state.display().to_string())
        ),
    );
    let p = quoted(&state.display().to_string());
    // claude refuses a Write of a file it has not read, so the agent reads it first.
    let scenario = format!(
        "[[turn]]\n[[turn.tool_use]]\nname = \"Read\"\nid = \"toolu_read\"\ninput = {{ file_path = {p} }}\n\n[[turn]]\n[[turn.tool_use]]\nname = \"Write\"\nid = \"toolu_write\"\ninput = {{ file_path = {p}, content = \"broken\\n\" }}\n\n{}",
        verdict("fixed")
    );
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), &scenario);
    let (code, report) = s.run(&model, &["breaks-post"]);
    assert_eq!(code, Some(5), "{report:#}");
    assert_eq!(report["outcome"], "failed");
    let result = s.result(&report);
    assert_eq!(result["rollback"]["decision"], "ran", "{result:#}");
    assert_eq!(result["rollback"]["exit_code"], 0, "{result:#}");
    assert!(
        result["rollback"]["reason"]
            .as_str()
            .unwrap()
            .contains("`conf-healthy` passed before the run"),
        "{result:#}"
    );
    assert_eq!(read(state.clone()), "service is healthy\n", "not undone");
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("rollback ran and succeeded"),
        "{report:#}"
    );
    let shown = runs_show(&s, report["id"].as_str().unwrap());
    assert!(
        shown.contains("Rollback\n  ran `cp") && shown.contains("exit 0, succeeded"),
        "{shown}"
    );
    // The JSON view carries the same record.
    let out = s
        .env
        .steward()
        .args(["--json", "runs", "show", report["id"].as_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(json(&out)["result"]["rollback"]["decision"], "ran");
}

/// The agent's only attempt to act is queued for approval, or denied, and it then says
/// `fixed`: nothing was fixed, a human must decide (README rule 7/8), exit 6.
#[test]
fn fixed_is_not_believed_when_the_only_attempt_was_queued_or_denied() {
    let Some(claude) = claude_bin() else { return };
    let s = Setup::new(&claude);
    s.goal(
        "queues",
        "tools = [\"Bash\"]\n[policy]\napprove = [\"touch FILE\"]\nallow = [\"uptime\"]\nread = [\"{workspace}\"]",
    );
    let marker = s.ws().join("marker");
    let scenario = format!(
        "{}{}{}",
        bash_turn("toolu_look", "uptime"),
        bash_turn("toolu_touch", &format!("touch {}", marker.display())),
        verdict("fixed")
    );
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), &scenario);
    let (code, report) = s.run(&model, &["queues"]);
    assert!(!marker.exists());
    assert_eq!(code, Some(6), "{report:#}");
    assert_eq!(report["outcome"], "escalated");
    assert_eq!(report["actions_filed"].as_array().unwrap().len(), 1);
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("1 action(s) wait for approval"),
        "{reason}"
    );

    // Denied: the policy allows nothing that changes anything.
    s.goal(
        "denies",
        "tools = [\"Bash\"]\n[policy]\nallow = [\"uptime\"]",
    );
    let scenario = format!(
        "{}{}{}",
        bash_turn("toolu_look", "uptime"),
        bash_turn("toolu_touch", &format!("touch {}", marker.display())),
        verdict("fixed")
    );
    let model = ScriptedModel::start(tmp.path(), &scenario);
    let (code, report) = s.run(&model, &["denies"]);
    assert!(!marker.exists());
    assert_eq!(code, Some(6), "{report:#}");
    assert_eq!(report["outcome"], "escalated");
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("not fixed: the agent reported `fixed`, but no state-changing call ran")
            && reason.contains("1 denied by policy"),
        "{reason}"
    );
}

#[test]
fn an_invariant_the_agent_breaks_is_a_regression() {
    let Some(claude) = claude_bin() else { return };
    let s = Setup::new(&claude);
    let state = s.ws().join("state.txt");
    std::fs::write(&state, "service is healthy\n").unwrap();
    s.file_check("state-healthy", &state, "contains = \"healthy\"");
    // The rollback restores a known-good copy.
    let good = s.scratch().join("state.good");
    std::fs::copy(&state, &good).unwrap();
    s.goal(
        "invariant-breaks",
        &format!(
            "tools = [\"Read\", \"Write\"]\n[policy]\nread = [\"{{workspace}}\"]\nwrite = [\"{{workspace}}\"]\n[checks]\ninvariants = [\"state-healthy\"]\nrollback = [\"cp\", {}, {}]",
            quoted(&good.display().to_string()),
            quoted(&state.display().to_string())
        ),
    );
    let p = quoted(&state.display().to_string());
    let scenario = format!(
        "[[turn]]\n[[turn.tool_use]]\nname = \"Read\"\nid = \"toolu_read\"\ninput = {{ file_path = {p} }}\n\n[[turn]]\n[[turn.tool_use]]\nname = \"Write\"\nid = \"toolu_write\"\ninput = {{ file_path = {p}, content = \"broken\\n\" }}\n\n{}",
        verdict("fixed")
    );
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), &scenario);
    let (code, report) = s.run(&model, &["invariant-breaks"]);
    let id = report["id"].as_str().expect("a recorded run");
    let after: serde_json::Value =
        serde_json::from_str(&read(s.env.run_dir(id).join("checks-after.json"))).unwrap();
    assert_eq!(
        after["invariants"][0]["status"], "fail",
        "the agent's write did not happen, so the test proves nothing: {report:#}"
    );
    assert_eq!(code, Some(5), "{report:#}");
    assert_eq!(report["outcome"], "failed");
    assert_eq!(report["regressions"], serde_json::json!(["state-healthy"]));
    // The rollback ran and undid the change.
    assert_eq!(report["rollback"]["exit_code"], 0, "{report:#}");
    assert_eq!(read(state.clone()), "service is healthy\n");
    assert!(
        report["reason"].as_str().unwrap().contains("state-healthy"),
        "{report:#}"
    );
}

#[test]
fn a_model_claiming_fixed_is_overruled_by_a_failing_post_check() {
    let Some(claude) = claude_bin() else { return };
    let s = Setup::new(&claude);
    s.file_check("post-never", &s.scratch().join("never"), "exists = true");
    s.goal(
        "claims-fixed",
        "tools = [\"Bash\"]\n[checks]\npost = [\"post-never\"]",
    );
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), &verdict("fixed"));
    let (code, report) = s.run(&model, &["claims-fixed"]);
    assert_eq!(code, Some(5), "{report:#}");
    assert_eq!(report["outcome"], "failed");
    assert_eq!(report["verdict"]["status"], "fixed");
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("post-never") && reason.contains("fixed"),
        "{reason}"
    );
}

#[test]
fn green_checks_skip_the_model_and_a_failing_invariant_calls_it() {
    let Some(claude) = claude_bin() else { return };
    let s = Setup::new(&claude);
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), &verdict("ok"));
    // The bundled scheduled goal with its checks green (stand-ins: see `tests/common/cli.rs`).
    let (code, report) = s.run(&model, &["health-check"]);
    assert_eq!(
        report["outcome"], "no_action",
        "the gate is broken: {report:#}"
    );
    assert_eq!(code, Some(0));
    assert_eq!(s.result(&report)["agent_started"], false);
    assert_eq!(model_calls(&model), 0, "the model was called");

    // Deterministic first, but an invariant fails: the model is called.
    s.file_check("inv-missing", &s.scratch().join("never"), "exists = true");
    s.goal(
        "on-attention",
        "tools = [\"Bash\"]\n[checks]\nmodel = \"on_attention\"\ninvariants = [\"inv-missing\"]",
    );
    let (code, report) = s.run(&model, &["on-attention"]);
    assert_eq!(s.result(&report)["agent_started"], true, "{report:#}");
    assert!(model_calls(&model) >= 1, "the model was not called");
    // It failed before and still fails: not the run's fault, but not ok either.
    assert_eq!(report["outcome"], "escalated", "{report:#}");
    assert_eq!(code, Some(6));
}

/// Messages match records: unavailable checks are not counted as green, and actions the model
/// only proposes in its verdict are not said to await approval (nothing was filed).
#[test]
fn reasons_say_what_the_records_say() {
    let Some(claude) = claude_bin() else { return };
    let s = Setup::new(&claude);
    let present = s.scratch().join("present");
    std::fs::write(&present, "x").unwrap();
    s.file_check("is-present", &present, "exists = true");
    for name in ["no-tool-a", "no-tool-b", "no-tool-c"] {
        s.checks(&format!(
            "[[check]]\nname = \"{name}\"\ndescription = \"{name}\"\nkind = \"command\"\nargv = [\"steward-test-no-such-tool-{name}\"]\n"
        ));
    }
    s.goal(
        "mostly-unavailable",
        "tools = [\"Bash\"]\n[checks]\nmodel = \"on_attention\"\ninvariants = [\"is-present\", \"no-tool-a\", \"no-tool-b\", \"no-tool-c\"]",
    );
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), &verdict("ok"));
    let (code, report) = s.run(&model, &["mostly-unavailable"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "no_action");
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("no action: 1 check(s) passed, 3 unavailable here (no-tool-a, no-tool-b, no-tool-c), none failed"),
        "{reason}"
    );

    s.goal("proposes", "tools = [\"Bash\"]");
    let proposing = "[[turn]]\nverdict = { status = \"needs_attention\", summary = \"restart it\", findings = [], actions_taken = [], proposed_actions = [{ command = [\"systemctl\", \"restart\", \"nginx.service\"], rationale = \"stuck\", risk = \"low\" }], knowledge = [] }\n";
    let model = ScriptedModel::start(tmp.path(), proposing);
    let (code, report) = s.run(&model, &["proposes"]);
    assert_eq!(code, Some(6), "{report:#}");
    assert_eq!(report["actions_filed"], serde_json::json!([]));
    let reason = report["reason"].as_str().unwrap();
    assert!(!reason.contains("await approval"), "{reason}");
    assert!(
        reason.contains("proposes 1 action(s) in its verdict, none filed for approval"),
        "{reason}"
    );
}

#[test]
fn the_third_identical_ineffective_run_escalates_without_the_model() {
    let Some(claude) = claude_bin() else { return };
    let s = Setup::new(&claude);
    s.file_check("post-never", &s.scratch().join("never"), "exists = true");
    s.goal(
        "never-works",
        "tools = [\"Bash\"]\n[checks]\npost = [\"post-never\"]",
    );
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), &verdict("fixed"));
    let mut ids = Vec::new();
    for n in 1..=2 {
        let (code, report) = s.run(&model, &["never-works"]);
        assert_eq!(code, Some(5), "run {n}: {report:#}");
        assert_eq!(report["outcome"], "failed", "run {n}");
        ids.push(report["id"].as_str().unwrap().to_string());
    }
    // The second run's prompt shows what the first ended with.
    let prompt = read(s.env.run_dir(&ids[1]).join("prompt.md"));
    let history = prompt
        .split("## Recent outcomes for this subject")
        .nth(1)
        .unwrap_or_else(|| panic!("no history block in the second prompt:\n{prompt}"));
    assert!(history.contains("failed"), "{history}");
    let first_prompt = read(s.env.run_dir(&ids[0]).join("prompt.md"));
    assert!(!first_prompt.contains("## Recent outcomes for this subject"));

    let calls_before = model_calls(&model);
    let (code, report) = s.run(&model, &["never-works"]);
    assert_eq!(code, Some(6), "{report:#}");
    assert_eq!(report["outcome"], "escalated");
    assert!(
        report["reason"].as_str().unwrap().contains("failed twice"),
        "{report:#}"
    );
    assert_eq!(s.result(&report)["agent_started"], false);
    assert_eq!(model_calls(&model), calls_before, "claude was started");
}

#[test]
fn validate_exits_non_zero_when_a_goal_check_fails() {
    // No claude needed: `validate` never starts the agent.
    let s = Setup::new(Path::new("/nonexistent/claude"));
    let scratch = s.scratch();
    let present = scratch.join("present");
    std::fs::write(&present, "x").unwrap();
    s.file_check("is-present", &present, "exists = true");
    s.file_check("is-missing", &scratch.join("missing"), "exists = true");
    s.goal(
        "mixed",
        "tools = [\"Bash\"]\n[checks]\npreflight = [\"is-present\"]\npost = [\"is-missing\"]",
    );
    s.goal(
        "all-green",
        "tools = [\"Bash\"]\n[checks]\npreflight = [\"is-present\"]\ninvariants = [\"is-present\"]",
    );
    let validate = |args: &[&str]| {
        let out = s
            .env
            .steward()
            .args(["--json", "validate"])
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), json(&out))
    };

    let (code, report) = validate(&["--goal", "mixed"]);
    assert_eq!(code, Some(5), "{report:#}");
    assert_eq!(report["ok"], false);
    let post = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "post")
        .unwrap();
    assert_eq!(post["ok"], false);
    assert_eq!(post["results"][0]["name"], "is-missing");
    assert_eq!(post["results"][0]["status"], "fail");

    let (code, report) = validate(&["--goal", "mixed", "--phase", "preflight"]);
    assert_eq!(code, Some(0), "{report:#}");
    let phases = report["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 1, "{report:#}");
    assert_eq!(phases[0]["phase"], "preflight");
    assert_eq!(phases[0]["results"][0]["name"], "is-present");

    let (code, report) = validate(&["--goal", "all-green"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["counts"]["pass"], 2);
}
