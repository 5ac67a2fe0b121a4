//! Helpers for tests that drive the real `steward` binary: the scripted model as a process, and
//! a workspace with a config pointing claude at it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use serde_json::Value;

pub fn steward_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_steward"))
}

/// `steward dev scripted-model` as a child process; killed on drop.
pub struct ScriptedModel {
    child: Child,
    pub url: String,
}

impl ScriptedModel {
    pub fn start(dir: &Path, scenario: &str) -> ScriptedModel {
        let file = dir.join(format!("scenario-{}.toml", std::process::id()));
        std::fs::write(&file, scenario).unwrap();
        let (child, url) = crate::common::serve::listening(
            Command::new(steward_bin())
                .args([
                    "dev",
                    "scripted-model",
                    "--addr",
                    "127.0.0.1:0",
                    "--scenario",
                ])
                .arg(&file),
        );
        ScriptedModel { child, url }
    }

    /// Every request the model received, as recorded by the scripted server.
    pub fn requests(&self) -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-sf", &format!("{}/_scripted/requests", self.url)])
            .output()
            .unwrap();
        assert!(out.status.success(), "curl failed");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The tool results claude sent back, by tool_use id: (text, is_error).
    pub fn tool_results(&self) -> std::collections::BTreeMap<String, (String, bool)> {
        let mut out = std::collections::BTreeMap::new();
        for req in self.requests().as_array().unwrap() {
            let Some(messages) = req["body"]["messages"].as_array() else {
                continue;
            };
            for m in messages {
                for block in m["content"].as_array().into_iter().flatten() {
                    if block["type"] != "tool_result" {
                        continue;
                    }
                    let text = match &block["content"] {
                        Value::String(s) => s.clone(),
                        Value::Array(parts) => parts
                            .iter()
                            .filter_map(|p| p["text"].as_str())
                            .collect::<Vec<_>>()
                            .join("\n"),
                        other => other.to_string(),
                    };
                    let id = block["tool_use_id"].as_str().unwrap_or("?").to_string();
                    out.insert(id, (text, block["is_error"] == true));
                }
            }
        }
        out
    }
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stand-ins for the bundled checks (`context/checks.toml`, replaced by file name): same names,
/// always passing, so a test's outcome does not depend on the health of the host it runs on.
pub const STAND_IN_CHECKS: &str = r#"
[[check]]
name = "systemd-no-failed-units"
description = "stand-in: always passes"
kind = "file"
path = "/"

[[check]]
name = "root-disk-space"
description = "stand-in: always passes"
kind = "file"
path = "/"

[[check]]
name = "consul-members-alive"
description = "stand-in: always passes"
kind = "file"
path = "/"

[[check]]
name = "nomad-jobs-healthy"
description = "stand-in: always passes"
kind = "file"
path = "/"

[[check]]
name = "nix-flake-check"
description = "stand-in: always passes"
kind = "file"
path = "/"

[[check]]
name = "proc-mounted"
description = "stand-in: always passes"
kind = "file"
path = "/"
"#;

/// A workspace, a state dir and a config pointing claude at the scripted model.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Env {
    pub fn new(claude: &Path, model_url: &str, extra_toml: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("workspace");
        std::fs::create_dir_all(&ws).unwrap();
        let config = dir.path().join("steward.toml");
        let (top, rest) = extra_toml
            .split_once("#--tables--")
            .unwrap_or((extra_toml, ""));
        // The bundled goals' checks observe the host (its disk, its units); these tests are about
        // the pipeline, so they get the same check names as stand-ins that always pass. The real
        // checks are tested against this machine in `check::tests`.
        let context = match top
            .lines()
            .find_map(|l| l.trim().strip_prefix("context_dir = \""))
        {
            Some(rest) => PathBuf::from(rest.trim_end_matches('"')),
            None => dir.path().join("context"),
        };
        std::fs::create_dir_all(&context).unwrap();
        if !context.join("checks.toml").exists() {
            std::fs::write(context.join("checks.toml"), STAND_IN_CHECKS).unwrap();
        }
        let top = if top.contains("context_dir") {
            top.to_string()
        } else {
            format!("context_dir = \"{}\"\n{top}", context.display())
        };
        std::fs::write(
            &config,
            format!(
                "workspace = \"{ws}\"\nstate_dir = \"{state}\"\n{top}\n[claude]\nbin = \"{claude}\"\nbase_url = \"{model_url}\"\nmax_retries = 0\nkill_grace_secs = 2\n{rest}\n",
                ws = ws.display(),
                state = dir.path().join("state").display(),
                claude = claude.display(),
            ),
        )
        .unwrap();
        Env { dir, config }
    }

    /// Drops the stand-ins: the bundled checks, which observe this host, apply again.
    pub fn use_real_host_checks(&self) {
        std::fs::remove_file(self.dir.path().join("context").join("checks.toml")).unwrap();
    }

    /// Sets top-level config keys (`key = value` lines), replacing any already there.
    pub fn set_top_level(&self, lines: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let keys: Vec<&str> = lines
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
            .collect();
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| {
                !l.split_once('=')
                    .is_some_and(|(k, _)| keys.contains(&k.trim()))
            })
            .collect();
        std::fs::write(&self.config, format!("{lines}\n{}\n", kept.join("\n"))).unwrap();
    }

    /// Points `[docker] host` at `docker_host` (the watch off: only what asks the engine).
    pub fn use_docker(&self, docker_host: &str) {
        self.append_config(&format!(
            "[docker]\nhost = \"{docker_host}\"\nwatch = false\n"
        ));
    }

    /// Appends TOML (tables) to the config file.
    pub fn append_config(&self, toml: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(&self.config, format!("{text}\n{toml}")).unwrap();
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn steward(&self) -> Command {
        let mut cmd = Command::new(steward_bin());
        cmd.arg("--config")
            .arg(&self.config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("ANTHROPIC_API_KEY", "sk-ant-test-0123456789abcdefghij");
        cmd
    }

    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.state().join("runs").join(id)
    }
}
