//! Helpers shared by the integration tests: the real claude binary, a scripted model, a spec.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use steward::agent::{self, AgentOutcome, AgentSpec, Observer};
use steward::scripted::{self, Scenario, Server};

pub const CLAUDE_VERSION: &str = "2.1.197";

/// The pinned claude: `STEWARD_TEST_CLAUDE`, else the test cache. Missing: a failure under
/// `CI=true`, a skip (None) otherwise.
pub fn claude_bin() -> Option<PathBuf> {
    let path = match std::env::var_os("STEWARD_TEST_CLAUDE") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let cache = std::env::var_os("STEWARD_TEST_CACHE")
                .filter(|c| !c.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/steward-test")
                });
            cache.join(format!("claude-{CLAUDE_VERSION}/node_modules/.bin/claude"))
        }
    };
    if steward::agent::process::is_executable(&path) {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "claude {CLAUDE_VERSION} not found at {} (CI=true: a missing component is a failure; run scripts/test.sh)",
            path.display()
        );
    }
    eprintln!(
        "SKIP: claude {CLAUDE_VERSION} not found at {} (set STEWARD_TEST_CLAUDE)",
        path.display()
    );
    None
}

pub async fn server(scenario: &str) -> Server {
    let scenario = Scenario::parse(scenario).expect("scenario parses");
    scripted::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("scripted server starts")
}

/// A temp dir with `ws/` (claude's cwd) and `home/`, removed on drop.
pub struct Dirs {
    pub root: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Dirs {
        let root = tempfile::Builder::new()
            .prefix("steward-agent-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(root.path().join("ws")).unwrap();
        std::fs::create_dir(root.path().join("home")).unwrap();
        Dirs { root }
    }
    pub fn ws(&self) -> PathBuf {
        self.root.path().join("ws")
    }
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }
}

pub fn nonce_settings(nonce: &str) -> serde_json::Value {
    serde_json::json!({
        "hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": format!("echo {nonce}"), "timeout": 10}]}]}
    })
}

/// A fast spec: no retries, short timeout, tools Bash and Read, nothing pre-approved.
pub fn spec(claude: PathBuf, server: &Server, dirs: &Dirs) -> AgentSpec {
    let nonce = format!("steward-test-nonce-{}", uuid::Uuid::new_v4().simple());
    let auth_env: BTreeMap<String, String> = [
        ("ANTHROPIC_BASE_URL".to_string(), server.base_url()),
        (
            "ANTHROPIC_API_KEY".to_string(),
            "sk-steward-test".to_string(),
        ),
    ]
    .into_iter()
    .collect();
    AgentSpec {
        claude_bin: claude,
        workspace: dirs.ws(),
        home: dirs.home(),
        prompt: "Check the scripted host and report.".into(),
        model: "claude-sonnet-4-5-20250929".into(),
        tools: vec!["Bash".into(), "Read".into()],
        allowed_tools: vec![],
        disallowed_tools: vec![],
        max_turns: 8,
        budget_usd: 1.0,
        session_id: uuid::Uuid::new_v4(),
        settings: nonce_settings(&nonce),
        nonce,
        auth_env,
        path_env: "/usr/local/bin:/usr/bin:/bin".into(),
        max_retries: 0,
        timeout: Duration::from_secs(60),
        kill_grace: Duration::from_secs(3),
    }
}

/// Keeps every parsed line.
#[derive(Default)]
pub struct Collect(pub Vec<serde_json::Value>);

impl Observer for Collect {
    fn line(&mut self, line: &serde_json::Value) {
        self.0.push(line.clone());
    }
}

pub struct Ran {
    pub outcome: AgentOutcome,
    pub transcript: Vec<String>,
    pub lines: Vec<serde_json::Value>,
}

pub async fn run(spec: &AgentSpec) -> Ran {
    let mut transcript = Vec::new();
    let mut sink = |l: &str| {
        transcript.push(l.to_string());
        Ok(())
    };
    let mut observer = Collect::default();
    let outcome = agent::run(spec, &mut sink, &mut observer)
        .await
        .expect("transcript writes succeed");
    Ran {
        outcome,
        transcript,
        lines: observer.0,
    }
}

/// The failure kind as serialised (`"timeout"`, `"api_error"` …).
pub fn kind(outcome: &AgentOutcome) -> String {
    match &outcome.failure {
        Some(f) => serde_json::to_value(f).unwrap()["kind"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        None => "none".into(),
    }
}

/// Processes whose command line contains `marker`, other than this test process.
pub fn processes_with(marker: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(marker) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Writes an executable shell script.
pub fn script(path: &std::path::Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}
