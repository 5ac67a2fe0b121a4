//! The agent runner driving the real, pinned Claude Code CLI against the scripted model.

use crate::common;

use common::{Dirs, VERDICT_TURN, kind, run, script, server, spec};
use steward::engine::agent::{AgentFailure, VerdictStatus};

#[tokio::test]
async fn healthy_run_yields_verdict_and_accounting() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let srv = server(&format!("[[turn]]\ntext = \"Looking.\"\n{VERDICT_TURN}")).await;
    let dirs = Dirs::new();
    let spec = spec(claude, &srv, &dirs);
    let ran = run(&spec).await;
    let o = &ran.outcome;
    assert!(o.failure.is_none(), "failure: {:?}", o.failure);
    let verdict = o.verdict.as_ref().unwrap();
    assert_eq!(verdict.status, VerdictStatus::Ok);
    assert_eq!(verdict.summary, "all good");
    assert_eq!(verdict.findings.len(), 1);
    // Both command shapes and a knowledge note pass the CLI's schema check.
    assert_eq!(verdict.proposed_actions.len(), 2);
    assert_eq!(verdict.knowledge.len(), 1);
    assert!(o.cost_usd > 0.0, "cost {}", o.cost_usd);
    assert!(o.num_turns >= 1);
    assert_eq!(o.exit_code, Some(0));
    assert_eq!(o.session_id, spec.session_id.to_string());
    assert!(o.denials.is_empty());
    // Every stdout line reached the transcript; the parsed ones reached the observer.
    assert!(
        ran.transcript
            .iter()
            .any(|l| l.contains(r#""type":"result""#))
    );
    assert_eq!(ran.transcript.len(), ran.lines.len());
    let reqs = srv.message_requests();
    assert!(!reqs.is_empty());
    assert!(
        reqs[0]
            .user_text()
            .contains("Check the scripted host and report."),
        "the prompt arrived via stdin"
    );
    assert_eq!(reqs[0].tool_names(), ["Bash", "Read", "StructuredOutput"]);
    assert!(reqs[0].authenticated);
    assert_eq!(reqs[0].body["model"], "claude-sonnet-4-5-20250929");
}

#[tokio::test]
async fn allowed_tool_runs_and_its_result_reaches_the_model() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let srv = server(&format!(
        r#"
[[turn]]
text = "Saying hi."
[[turn.tool_use]]
name = "Bash"
input = {{ command = "echo hi-from-tool", description = "say hi" }}
{VERDICT_TURN}"#
    ))
    .await;
    let dirs = Dirs::new();
    let mut spec = spec(claude, &srv, &dirs);
    spec.allowed_tools = vec!["Bash(echo hi-from-tool)".into()];
    let ran = run(&spec).await;
    assert!(
        ran.outcome.failure.is_none(),
        "failure: {:?}",
        ran.outcome.failure
    );
    assert!(ran.outcome.denials.is_empty(), "{:?}", ran.outcome.denials);
    let reqs = srv.message_requests();
    let last = reqs.last().unwrap();
    let results = last.tool_results();
    let result = results
        .iter()
        .find(|r| r["tool_use_id"] == "toolu_00_00")
        .expect("tool_result sent back");
    assert_eq!(result["is_error"], false);
    assert!(
        result["content"].to_string().contains("hi-from-tool"),
        "{result}"
    );
    assert!(ran.outcome.num_turns >= 2);
}

#[tokio::test]
async fn denied_tool_is_listed_and_run_still_succeeds() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let srv = server(&format!(
        r#"
[[turn]]
[[turn.tool_use]]
name = "Bash"
input = {{ command = "touch denied-marker", description = "write" }}
{VERDICT_TURN}"#
    ))
    .await;
    let dirs = Dirs::new();
    let spec = spec(claude, &srv, &dirs);
    let ran = run(&spec).await;
    let o = &ran.outcome;
    assert!(o.failure.is_none(), "failure: {:?}", o.failure);
    assert_eq!(o.denials.len(), 1, "{:?}", o.denials);
    assert_eq!(o.denials[0].tool_name, "Bash");
    assert_eq!(o.denials[0].tool_input["command"], "touch denied-marker");
    assert!(!dirs.ws().join("denied-marker").exists());
    let results = srv.message_requests().last().unwrap().tool_results();
    assert!(results.iter().any(|r| r["is_error"] == true), "{results:?}");
}

#[tokio::test]
async fn timeout_interrupts_and_cleans_up() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    common::real_claude_timeout_leaves_nothing_behind(claude, true).await;
}

#[tokio::test]
async fn api_error_is_typed() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let srv = server(
        r#"
[[turn]]
http_error = { status = 500, type = "api_error", message = "scripted outage" }
"#,
    )
    .await;
    let dirs = Dirs::new();
    let spec = spec(claude, &srv, &dirs);
    let ran = run(&spec).await;
    match &ran.outcome.failure {
        Some(AgentFailure::ApiError {
            status: Some(500),
            message,
        }) => assert!(message.contains("500"), "{message}"),
        other => panic!("expected ApiError 500, got {other:?}"),
    }
    assert_eq!(ran.outcome.exit_code, Some(1));
}

#[tokio::test]
async fn transient_overload_is_retried() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let srv = server(&format!(
        "[[turn]]\nhttp_error = {{ status = 529, type = \"overloaded_error\" }}\ntimes = 1\n{VERDICT_TURN}"
    ))
    .await;
    let dirs = Dirs::new();
    let mut spec = spec(claude, &srv, &dirs);
    spec.max_retries = 1;
    let ran = run(&spec).await;
    assert!(
        ran.outcome.failure.is_none(),
        "failure: {:?}",
        ran.outcome.failure
    );
    assert!(ran.lines.iter().any(|l| l["subtype"] == "api_retry"));
    assert_eq!(srv.message_requests()[0].status, 529);
}

#[tokio::test]
async fn text_only_answer_is_no_verdict() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let srv = server(
        "final_text = \"Still just text.\"\n[[turn]]\ntext = \"Everything looks fine to me.\"\n",
    )
    .await;
    let dirs = Dirs::new();
    let spec = spec(claude, &srv, &dirs);
    let ran = run(&spec).await;
    assert_eq!(
        kind(&ran.outcome),
        "no_verdict",
        "{:?}",
        ran.outcome.failure
    );
    // The CLI asked once more for the structured output before giving up.
    assert!(
        srv.message_requests()
            .iter()
            .any(|r| r.user_text().contains("structured-output-enforce"))
    );
}

#[tokio::test]
async fn missing_nonce_hook_aborts_the_run() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let srv = server(VERDICT_TURN).await;
    let dirs = Dirs::new();
    let mut spec = spec(claude, &srv, &dirs);
    spec.settings = serde_json::json!({});
    let ran = run(&spec).await;
    match &ran.outcome.failure {
        Some(AgentFailure::BoundaryNotProven { message }) => {
            assert!(message.contains("nonce"), "{message}")
        }
        other => panic!("expected BoundaryNotProven, got {other:?}"),
    }
    assert!(ran.outcome.verdict.is_none());
}

#[tokio::test]
async fn init_with_other_tools_aborts_the_run() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let srv = server(VERDICT_TURN).await;
    let dirs = Dirs::new();
    let mut spec = spec(claude, &srv, &dirs);
    // Unknown names are silently dropped by the CLI: init shows fewer tools than asked for.
    spec.tools.push("NoSuchTool".into());
    let ran = run(&spec).await;
    match &ran.outcome.failure {
        Some(AgentFailure::BoundaryNotProven { message }) => {
            assert!(message.contains("tools"), "{message}")
        }
        other => panic!("expected BoundaryNotProven, got {other:?}"),
    }
}

#[tokio::test]
async fn claude_exiting_nonzero_is_a_crash() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let srv = server(VERDICT_TURN).await;
    let dirs = Dirs::new();
    let wrapper = script(
        &dirs.root.path().join("claude-bad-flag"),
        &format!("exec '{}' --no-such-flag \"$@\"", claude.display()),
    );
    let spec = spec(wrapper, &srv, &dirs);
    let ran = run(&spec).await;
    match &ran.outcome.failure {
        Some(AgentFailure::Crash {
            exit_code: Some(1),
            stderr,
            ..
        }) => {
            assert!(stderr.contains("no-such-flag"), "{stderr}")
        }
        other => panic!("expected Crash, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_without_result_is_malformed() {
    let Some(_claude) = common::claude_bin() else {
        return;
    };
    let srv = server(VERDICT_TURN).await;
    let dirs = Dirs::new();
    let wrapper = script(
        &dirs.root.path().join("claude-garbage"),
        "cat >/dev/null\necho 'Segmentation {not json'\necho '[1,2]'\nexit 0",
    );
    let spec = spec(wrapper, &srv, &dirs);
    let ran = run(&spec).await;
    match &ran.outcome.failure {
        Some(AgentFailure::Malformed { message }) => {
            assert!(message.contains("Segmentation"), "{message}")
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert_eq!(
        ran.transcript.len(),
        2,
        "garbage still reaches the transcript"
    );
}

#[tokio::test]
async fn garbage_before_a_valid_run_is_tolerated() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let srv = server(VERDICT_TURN).await;
    let dirs = Dirs::new();
    let wrapper = script(
        &dirs.root.path().join("claude-banner"),
        &format!(
            "echo 'wrapper banner, not JSON'\nexec '{}' \"$@\"",
            claude.display()
        ),
    );
    let spec = spec(wrapper, &srv, &dirs);
    let ran = run(&spec).await;
    assert!(
        ran.outcome.failure.is_none(),
        "failure: {:?}",
        ran.outcome.failure
    );
    assert_eq!(ran.transcript[0], "wrapper banner, not JSON");
}

#[tokio::test]
async fn missing_binary_is_a_spawn_failure_naming_the_path() {
    let srv = server(VERDICT_TURN).await;
    let dirs = Dirs::new();
    let missing = dirs.root.path().join("no-claude-here");
    let spec = spec(missing.clone(), &srv, &dirs);
    let ran = run(&spec).await;
    match &ran.outcome.failure {
        Some(AgentFailure::Spawn { message }) => assert!(
            message.contains(&missing.display().to_string()),
            "{message}"
        ),
        other => panic!("expected Spawn, got {other:?}"),
    }
}

#[tokio::test]
async fn example_scenario_runs_end_to_end() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/healthy.toml");
    let scenario = steward::adapters::scripted::Scenario::load(&path).unwrap();
    let srv = steward::adapters::scripted::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dirs = Dirs::new();
    let mut spec = spec(claude, &srv, &dirs);
    spec.max_retries = 1;
    spec.allowed_tools = vec!["Bash(df -h /)".into()];
    let ran = run(&spec).await;
    assert!(
        ran.outcome.failure.is_none(),
        "failure: {:?}",
        ran.outcome.failure
    );
    assert_eq!(ran.outcome.verdict.unwrap().actions_taken.len(), 1);
    let results = srv.message_requests().last().unwrap().tool_results();
    assert!(
        results
            .iter()
            .any(|r| r["is_error"] == false && r["content"].to_string().contains("Filesystem")),
        "{results:?}"
    );
}

#[tokio::test]
async fn max_turns_is_typed() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let srv = server(&format!(
        "[[turn]]\n[[turn.tool_use]]\nname = \"Bash\"\ninput = {{ command = \"echo one\" }}\n{VERDICT_TURN}"
    ))
    .await;
    let dirs = Dirs::new();
    let mut spec = spec(claude, &srv, &dirs);
    spec.max_turns = 1;
    let ran = run(&spec).await;
    match &ran.outcome.failure {
        Some(AgentFailure::MaxTurns { message }) => assert!(message.contains("turns"), "{message}"),
        other => panic!("expected MaxTurns, got {other:?}"),
    }
}

#[tokio::test]
async fn budget_is_typed() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    // The CLI prices tokens itself: a million input tokens cost dollars, far over the budget.
    let srv = server(&format!(
        "[[turn]]\nusage = {{ input_tokens = 1000000, output_tokens = 10 }}\n[[turn.tool_use]]\nname = \"Bash\"\ninput = {{ command = \"echo one\" }}\n{VERDICT_TURN}"
    ))
    .await;
    let dirs = Dirs::new();
    let mut spec = spec(claude, &srv, &dirs);
    spec.budget_usd = 0.01;
    let ran = run(&spec).await;
    match &ran.outcome.failure {
        Some(AgentFailure::Budget { message }) => assert!(message.contains("budget"), "{message}"),
        other => panic!("expected Budget, got {other:?}"),
    }
    assert!(ran.outcome.cost_usd > 0.01, "cost {}", ran.outcome.cost_usd);
}

#[tokio::test]
async fn invalid_verdicts_exhaust_structured_output_retries() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let bad = "[[turn]]\nverdict = { status = \"bogus\", summary = \"s\" }\n".repeat(6);
    let srv = server(&bad).await;
    let dirs = Dirs::new();
    let spec = spec(claude, &srv, &dirs);
    let ran = run(&spec).await;
    match &ran.outcome.failure {
        Some(AgentFailure::NoVerdict { message }) => {
            assert!(message.contains("retries"), "{message}")
        }
        other => panic!("expected NoVerdict (retries), got {other:?}"),
    }
}

#[tokio::test]
async fn timeout_while_waiting_for_the_model() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let srv = server(&format!(
        "[[turn]]\ndelay_ms = 30000\ntext = \"late\"\n{VERDICT_TURN}"
    ))
    .await;
    let dirs = Dirs::new();
    let mut spec = spec(claude, &srv, &dirs);
    spec.timeout = std::time::Duration::from_secs(2);
    let started = std::time::Instant::now();
    let ran = run(&spec).await;
    assert!(
        matches!(
            ran.outcome.failure,
            Some(AgentFailure::Timeout { after_secs: 2 })
        ),
        "{:?}",
        ran.outcome.failure
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

/// A `Write` into shared memory, to read what the terminal view printed.
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn terminal_view_shows_calls_denials_and_result() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let srv = server(&format!(
        r#"
[[turn]]
[[turn.tool_use]]
name = "Bash"
input = {{ command = "echo visible", description = "ok" }}
[[turn.tool_use]]
name = "Bash"
input = {{ command = "touch forbidden", description = "denied" }}
{VERDICT_TURN}"#
    ))
    .await;
    let dirs = Dirs::new();
    let mut spec = spec(claude, &srv, &dirs);
    spec.allowed_tools = vec!["Bash(echo visible)".into()];
    let out = Shared::default();
    let mut view = steward::engine::agent::TerminalObserver::with_writer(Box::new(out.clone()));
    let mut sink = |_: &str| Ok(());
    let outcome = steward::engine::agent::run(&spec, &mut sink, &mut view)
        .await
        .unwrap();
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    let printed = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    eprintln!("{printed}");
    assert!(printed.contains("→ Bash echo visible"), "{printed}");
    assert!(printed.contains("→ Bash touch forbidden"), "{printed}");
    assert!(printed.contains("✗ Bash: "), "{printed}");
    assert!(printed.contains("■ success"), "{printed}");
    assert!(printed.contains("1 denied"), "{printed}");
}

#[tokio::test]
async fn repository_git_config_cannot_run_code() {
    let (Some(claude), Some(_)) = (common::claude_bin(), common::require::tool("git")) else {
        return;
    };
    let dirs = Dirs::new();
    let ws = dirs.ws();
    let marker = dirs.root.path().join("git-ran-repo-code");
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(&ws)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dirs.home())
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(ws.join("f"), "a\n").unwrap();
    git(&["add", "f"]);
    git(&[
        "-c",
        "user.email=t@t",
        "-c",
        "user.name=t",
        "commit",
        "-qm",
        "x",
    ]);
    std::fs::write(ws.join("f"), "b\n").unwrap();
    let evil = common::script(
        &dirs.root.path().join("evil"),
        &format!("touch '{}'", marker.display()),
    );
    git(&["config", "core.fsmonitor", &evil.display().to_string()]);
    git(&["config", "diff.external", &evil.display().to_string()]);
    let srv = server(&format!(
        r#"
[[turn]]
[[turn.tool_use]]
name = "Bash"
input = {{ command = "git status --short", description = "status" }}
[[turn.tool_use]]
name = "Bash"
input = {{ command = "git diff --ext-diff", description = "diff" }}
{VERDICT_TURN}"#
    ))
    .await;
    let mut spec = spec(claude, &srv, &dirs);
    spec.allowed_tools = vec!["Bash(git status:*)".into(), "Bash(git diff:*)".into()];
    let ran = run(&spec).await;
    assert!(ran.outcome.failure.is_none(), "{:?}", ran.outcome.failure);
    assert!(
        ran.outcome.denials.is_empty(),
        "the git commands must have run: {:?}",
        ran.outcome.denials
    );
    let results = srv.message_requests().last().unwrap().tool_results();
    assert!(
        results
            .iter()
            .any(|r| r["content"].to_string().contains(" M f")),
        "{results:?}"
    );
    assert!(!marker.exists(), "repository git config ran code");
}
