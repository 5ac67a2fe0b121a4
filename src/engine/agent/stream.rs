//! Parsing claude's stream-json output and turning how it ended into an [`AgentOutcome`].
//!
//! Rules (reference §1, §2, §9.2):
//! - Lines are switched on `type`/`subtype`; unknown types and subtypes are ignored.
//! - A non-JSON line is counted, not fatal: it only makes the run `Malformed` when no valid
//!   `result` line arrives (a wrapper's banner must not sink an otherwise proven run).
//! - The boundary is checked when `system/init` arrives, or at the first conversation line
//!   (`assistant`/`user`/`result`) if init never came: by then the SessionStart hook has finished
//!   (2.1.197 runs it before init), so its `hook_response` must already carry the nonce; init must
//!   list exactly the requested tools (+ `StructuredOutput`), the requested permission mode
//!   (`dontAsk`, or `default` in a run that waits for approvals), the pinned model, only connected
//!   MCP servers, and among them the prompt tool's server when there is one.
//! - Success needs a `result` with `is_error:false` and a `structured_output` that parses as a
//!   [`AgentVerdict`]; every other ending is a typed [`AgentFailure`].

use std::collections::BTreeSet;

use serde_json::Value;

use super::{AgentFailure, AgentOutcome, AgentSpec, AgentVerdict, Denial};

/// What `system/init` must show.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub tools: BTreeSet<String>,
    pub permission_mode: String,
    /// MCP servers that must be listed, and connected.
    pub mcp_servers: BTreeSet<String>,
    pub model: String,
    pub nonce: String,
}

impl Expectations {
    pub fn from_spec(spec: &AgentSpec) -> Expectations {
        // A bare name in --disallowedTools removes the tool, like leaving it out of --tools.
        let removed: BTreeSet<&str> = spec
            .disallowed_tools
            .iter()
            .map(String::as_str)
            .filter(|r| !r.contains('('))
            .collect();
        let mut tools: BTreeSet<String> = spec
            .tools
            .iter()
            .filter(|t| !removed.contains(t.as_str()))
            .map(|t| canonical_tool(t).to_string())
            .collect();
        // --json-schema always adds this one.
        tools.insert("StructuredOutput".into());
        let mut mcp_servers = BTreeSet::new();
        if let Some(p) = &spec.prompt_tool {
            // `--tools` filters MCP tools out of init's list too (2.1.197): only the server shows.
            mcp_servers.insert(p.server.clone());
        }
        if let Some(t) = &spec.tool_server {
            // Unlike the prompt tool, the goal's steward tools are listed in init (2.1.332).
            mcp_servers.insert(t.server.clone());
            tools.extend(t.tools.iter().cloned());
        }
        Expectations {
            tools,
            permission_mode: spec.permission_mode.as_str().into(),
            mcp_servers,
            model: spec.model.clone(),
            nonce: spec.nonce.clone(),
        }
    }
}

/// init lists the subagent tool as `Task` while the API calls it `Agent`.
fn canonical_tool(name: &str) -> &str {
    if name == "Agent" { "Task" } else { name }
}

/// `claude-opus-4-8[1m]` → `claude-opus-4-8`.
fn strip_model_suffix(model: &str) -> &str {
    match model.find('[') {
        Some(i) if model.ends_with(']') => &model[..i],
        _ => model,
    }
}

/// The CLI may report a pinned id with a context suffix, and resolves aliases (`sonnet`) to ids.
pub fn model_matches(requested: &str, reported: &str) -> bool {
    let requested = strip_model_suffix(requested);
    let reported = strip_model_suffix(reported);
    if requested == reported {
        return true;
    }
    let alias = !requested.contains('-') && !requested.is_empty();
    alias
        && (reported.starts_with(&format!("claude-{requested}-"))
            || reported.contains(&format!("-{requested}-")))
}

/// What the stream showed that does not prove steward's boundary: the run is aborted.
#[derive(Debug, thiserror::Error)]
pub enum BoundaryError {
    #[error(
        "the SessionStart hook did not echo the run's nonce: steward's settings are not in force"
    )]
    NoNonce,
    #[error("no system/init line before the conversation started")]
    NoInit,
    #[error("init tools {got:?}, expected {want:?}")]
    Tools {
        got: BTreeSet<String>,
        want: BTreeSet<String>,
    },
    #[error("init permissionMode {got:?}, expected {want:?}")]
    PermissionMode { got: String, want: String },
    #[error("init model {got:?}, expected {want:?}")]
    Model { got: String, want: String },
    #[error("MCP server not connected: {0}")]
    McpNotConnected(Value),
    #[error("MCP server {0:?} is not in init")]
    McpMissing(String),
}

/// Running state of one stream.
#[derive(Debug)]
pub struct StreamState {
    expect: Expectations,
    nonce_seen: bool,
    boundary_checked: bool,
    pub init: Option<Value>,
    pub result: Option<Value>,
    pub session_id: Option<String>,
    pub malformed: u32,
    pub first_malformed: Option<String>,
}

impl StreamState {
    pub fn new(expect: Expectations) -> StreamState {
        StreamState {
            expect,
            nonce_seen: false,
            boundary_checked: false,
            init: None,
            result: None,
            session_id: None,
            malformed: 0,
            first_malformed: None,
        }
    }

    /// A line that is not JSON (or not an object).
    pub fn malformed_line(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        self.malformed = self.malformed.saturating_add(1);
        if self.first_malformed.is_none() {
            self.first_malformed = Some(line.chars().take(200).collect());
        }
    }

    /// Feeds one parsed line. `Err` = the boundary is not proven: abort the run.
    pub fn line(&mut self, v: &Value) -> Result<(), BoundaryError> {
        if self.session_id.is_none()
            && let Some(s) = v.get("session_id").and_then(Value::as_str)
        {
            self.session_id = Some(s.to_string());
        }
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        let subtype = v.get("subtype").and_then(Value::as_str).unwrap_or("");
        match (kind, subtype) {
            ("system", "hook_response") => {
                if v.get("hook_event").and_then(Value::as_str) == Some("SessionStart")
                    && self.carries_nonce(v)
                {
                    self.nonce_seen = true;
                }
                Ok(())
            }
            ("system", "init") if self.init.is_none() => {
                self.init = Some(v.clone());
                self.check_boundary()
            }
            ("assistant" | "user", _) => self.check_boundary(),
            ("result", _) => {
                if self.result.is_none() {
                    self.result = Some(v.clone());
                }
                self.check_boundary()
            }
            _ => Ok(()),
        }
    }

    fn carries_nonce(&self, v: &Value) -> bool {
        let nonce = self.expect.nonce.as_str();
        !nonce.is_empty()
            && ["stdout", "output"].iter().any(|k| {
                v.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.contains(nonce))
            })
    }

    fn check_boundary(&mut self) -> Result<(), BoundaryError> {
        if self.boundary_checked {
            return Ok(());
        }
        self.boundary_checked = true;
        if !self.nonce_seen {
            return Err(BoundaryError::NoNonce);
        }
        let Some(init) = &self.init else {
            return Err(BoundaryError::NoInit);
        };
        let tools: BTreeSet<String> = init
            .get("tools")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|t| canonical_tool(t).to_string())
                    .collect()
            })
            .unwrap_or_default();
        if tools != self.expect.tools {
            return Err(BoundaryError::Tools {
                got: tools,
                want: self.expect.tools.clone(),
            });
        }
        let mode = init
            .get("permissionMode")
            .and_then(Value::as_str)
            .unwrap_or("");
        if mode != self.expect.permission_mode {
            return Err(BoundaryError::PermissionMode {
                got: mode.to_string(),
                want: self.expect.permission_mode.clone(),
            });
        }
        let model = init.get("model").and_then(Value::as_str).unwrap_or("");
        if !model_matches(&self.expect.model, model) {
            return Err(BoundaryError::Model {
                got: model.to_string(),
                want: self.expect.model.clone(),
            });
        }
        let mut connected = BTreeSet::new();
        for server in init
            .get("mcp_servers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if server.get("status").and_then(Value::as_str) != Some("connected") {
                return Err(BoundaryError::McpNotConnected(server.clone()));
            }
            if let Some(name) = server.get("name").and_then(Value::as_str) {
                connected.insert(name.to_string());
            }
        }
        // A missing prompt-tool server would leave every approval-required call to be denied
        // without anyone being asked; better to stop before the model starts.
        if let Some(missing) = self.expect.mcp_servers.difference(&connected).next() {
            return Err(BoundaryError::McpMissing(missing.clone()));
        }
        Ok(())
    }
}

/// How the process ended, as seen by the runner.
#[derive(Debug, Clone, Default)]
pub struct Ending {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// The wall-clock timeout fired (we interrupted the run).
    pub timed_out: bool,
    /// We aborted the run because the boundary was not proven.
    pub aborted: Option<String>,
    /// steward was told to stop and interrupted claude.
    pub cancelled: Option<crate::base::cancel::StopSignal>,
    /// claude's group had to be killed (no end within the grace, or an urgent stop).
    pub killed: bool,
    pub stderr_tail: String,
    pub duration_ms: u64,
    pub timeout_secs: u64,
}

fn errors_text(result: &Value) -> String {
    let errors: Vec<&str> = result
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if errors.is_empty() {
        result
            .get("result")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    } else {
        errors.join("; ")
    }
}

fn denials(result: &Value) -> Vec<Denial> {
    result
        .get("permission_denials")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| serde_json::from_value(d.clone()).ok())
        .collect()
}

/// Maps a `result` line to a verdict or a failure.
fn judge(result: &Value) -> Result<AgentVerdict, AgentFailure> {
    let subtype = result.get("subtype").and_then(Value::as_str).unwrap_or("");
    let Some(is_error) = result.get("is_error").and_then(Value::as_bool) else {
        return Err(AgentFailure::Malformed {
            message: "result line without a boolean is_error".into(),
        });
    };
    let message = errors_text(result);
    match subtype {
        "error_max_turns" => return Err(AgentFailure::MaxTurns { message }),
        "error_max_budget_usd" => return Err(AgentFailure::Budget { message }),
        "error_max_structured_output_retries" => {
            // Its own kind would break exhaustive matches downstream; the message says which.
            let message = format!("structured output retries exhausted: {message}");
            return Err(AgentFailure::NoVerdict { message });
        }
        "error_during_execution" => return Err(AgentFailure::Execution { message }),
        _ => {}
    }
    if is_error {
        let status = result
            .get("api_error_status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok());
        let is_api =
            status.is_some() || message.starts_with("API Error") || message.contains("API Error:");
        return Err(if is_api {
            AgentFailure::ApiError { status, message }
        } else {
            AgentFailure::Execution {
                message: format!("{subtype}: {message}"),
            }
        });
    }
    match result.get("structured_output") {
        None | Some(Value::Null) => Err(AgentFailure::NoVerdict {
            message: format!(
                "result without structured_output (terminal_reason {}); final text: {}",
                result
                    .get("terminal_reason")
                    .and_then(Value::as_str)
                    .unwrap_or("none"),
                message.chars().take(300).collect::<String>()
            ),
        }),
        Some(out) => serde_json::from_value::<AgentVerdict>(out.clone()).map_err(|e| {
            AgentFailure::NoVerdict {
                message: format!("structured_output is not a verdict: {e}"),
            }
        }),
    }
}

/// The outcome of a finished run.
pub fn conclude(state: &StreamState, ending: &Ending, fallback_session: &str) -> AgentOutcome {
    let result = state.result.as_ref();
    let num = |k: &str| result.and_then(|r| r.get(k));
    let mut outcome = AgentOutcome {
        verdict: None,
        failure: None,
        cost_usd: num("total_cost_usd").and_then(Value::as_f64).unwrap_or(0.0),
        cost_reported: num("total_cost_usd").is_some_and(Value::is_number),
        num_turns: num("num_turns")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        duration_ms: ending.duration_ms,
        denials: result.map(denials).unwrap_or_default(),
        exit_code: ending.exit_code,
        session_id: state
            .session_id
            .clone()
            .unwrap_or_else(|| fallback_session.to_string()),
    };
    // Our own interventions explain the ending better than whatever claude printed after them.
    let failure = if let Some(signal) = ending.cancelled {
        // The operator's stop explains the ending, whatever claude managed to print.
        Some(AgentFailure::Cancelled {
            signal,
            killed: ending.killed,
        })
    } else if let Some(message) = &ending.aborted {
        Some(AgentFailure::BoundaryNotProven {
            message: message.clone(),
        })
    } else if ending.timed_out {
        Some(AgentFailure::Timeout {
            after_secs: ending.timeout_secs,
        })
    } else if let Some(result) = result {
        match judge(result) {
            Ok(verdict) => {
                outcome.verdict = Some(verdict);
                None
            }
            Err(f) => Some(f),
        }
    } else if ending.signal.is_some() || ending.exit_code.is_some_and(|c| c != 0) {
        Some(AgentFailure::Crash {
            exit_code: ending.exit_code,
            signal: ending.signal,
            stderr: ending.stderr_tail.clone(),
        })
    } else if state.malformed > 0 {
        Some(AgentFailure::Malformed {
            message: format!(
                "{} line(s) of stdout were not JSON and no result arrived; first: {}",
                state.malformed,
                state.first_malformed.as_deref().unwrap_or("")
            ),
        })
    } else {
        Some(AgentFailure::NoResult {
            exit_code: ending.exit_code,
        })
    };
    outcome.failure = failure;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expect() -> Expectations {
        Expectations {
            tools: ["Bash", "Read", "StructuredOutput"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            permission_mode: "dontAsk".into(),
            mcp_servers: BTreeSet::new(),
            model: "claude-sonnet-4-5".into(),
            nonce: "N0NCE".into(),
        }
    }

    fn hook(stdout: &str) -> Value {
        json!({"type":"system","subtype":"hook_response","hook_event":"SessionStart","stdout":stdout,"output":stdout})
    }

    fn init() -> Value {
        json!({"type":"system","subtype":"init","session_id":"s1","tools":["Bash","Read","StructuredOutput"],
               "mcp_servers":[],"model":"claude-sonnet-4-5[1m]","permissionMode":"dontAsk"})
    }

    fn ok_result() -> Value {
        json!({"type":"result","subtype":"success","is_error":false,"num_turns":3,"total_cost_usd":0.25,
               "structured_output":{"status":"ok","summary":"fine"},
               "permission_denials":[{"tool_name":"Bash","tool_use_id":"t1","tool_input":{"command":"rm -rf /"}}]})
    }

    fn run(lines: &[Value], ending: Ending) -> AgentOutcome {
        let mut s = StreamState::new(expect());
        for l in lines {
            if s.line(l).is_err() {
                break;
            }
        }
        conclude(&s, &ending, "fallback")
    }

    #[test]
    fn healthy_stream() {
        let o = run(
            &[
                hook("N0NCE\n"),
                init(),
                json!({"type":"whatever"}),
                ok_result(),
            ],
            Ending::default(),
        );
        assert!(o.failure.is_none(), "{:?}", o.failure);
        assert_eq!(o.verdict.unwrap().summary, "fine");
        assert_eq!(o.num_turns, 3);
        assert_eq!(o.cost_usd, 0.25);
        assert_eq!(o.denials[0].tool_name, "Bash");
        assert_eq!(o.session_id, "s1");
    }

    #[test]
    fn boundary_checks() {
        let mut s = StreamState::new(expect());
        assert!(s.line(&hook("other")).is_ok());
        assert!(s.line(&init()).unwrap_err().to_string().contains("nonce"));

        let mut s = StreamState::new(expect());
        s.line(&hook("N0NCE")).unwrap();
        let mut bad = init();
        bad["tools"] = json!(["Bash", "Read", "Write", "StructuredOutput"]);
        assert!(s.line(&bad).unwrap_err().to_string().contains("tools"));

        let mut s = StreamState::new(expect());
        s.line(&hook("N0NCE")).unwrap();
        let mut bad = init();
        bad["permissionMode"] = json!("default");
        assert!(
            s.line(&bad)
                .unwrap_err()
                .to_string()
                .contains("permissionMode")
        );

        let mut s = StreamState::new(expect());
        s.line(&hook("N0NCE")).unwrap();
        let mut bad = init();
        bad["model"] = json!("claude-opus-4-8");
        assert!(s.line(&bad).unwrap_err().to_string().contains("model"));

        let mut s = StreamState::new(expect());
        s.line(&hook("N0NCE")).unwrap();
        let mut bad = init();
        bad["mcp_servers"] = json!([{"name":"x","status":"failed"}]);
        assert!(s.line(&bad).is_err());

        // A wait run: default mode, and steward's server must be there and connected.
        let mut wait = expect();
        wait.permission_mode = "default".into();
        wait.mcp_servers.insert("steward".into());
        let mut good = init();
        good["permissionMode"] = json!("default");
        good["mcp_servers"] = json!([{"name":"steward","status":"connected"}]);
        let mut s = StreamState::new(wait.clone());
        s.line(&hook("N0NCE")).unwrap();
        s.line(&good).unwrap();
        let mut missing = good.clone();
        missing["mcp_servers"] = json!([]);
        let mut s = StreamState::new(wait);
        s.line(&hook("N0NCE")).unwrap();
        assert!(
            s.line(&missing)
                .unwrap_err()
                .to_string()
                .contains("steward")
        );

        // No init at all: the first conversation line is the check.
        let mut s = StreamState::new(expect());
        s.line(&hook("N0NCE")).unwrap();
        assert!(
            s.line(&json!({"type":"assistant"}))
                .unwrap_err()
                .to_string()
                .contains("init")
        );
    }

    #[test]
    fn models() {
        assert!(model_matches("claude-opus-4-8", "claude-opus-4-8[1m]"));
        assert!(model_matches("sonnet", "claude-sonnet-5"));
        assert!(model_matches("my-custom-model", "my-custom-model"));
        assert!(!model_matches("claude-sonnet-5", "claude-opus-4-8"));
        assert!(!model_matches("sonnet", "claude-opus-4-8"));
    }

    #[test]
    fn result_mapping() {
        let cases = [
            (
                json!({"type":"result","subtype":"error_max_turns","is_error":true,"errors":["Reached maximum number of turns (2)"]}),
                "max_turns",
            ),
            (
                json!({"type":"result","subtype":"error_max_budget_usd","is_error":true,"errors":["Reached maximum budget ($1)"]}),
                "budget",
            ),
            (
                json!({"type":"result","subtype":"error_max_structured_output_retries","is_error":true,"errors":["x"]}),
                "no_verdict",
            ),
            (
                json!({"type":"result","subtype":"error_during_execution","is_error":true,"errors":["x"]}),
                "execution",
            ),
            (
                json!({"type":"result","subtype":"success","is_error":true,"api_error_status":500,"result":"API Error: 500"}),
                "api_error",
            ),
            (
                json!({"type":"result","subtype":"success","is_error":true,"api_error_status":null,"result":"API Error: Unable to connect"}),
                "api_error",
            ),
            (
                json!({"type":"result","subtype":"success","is_error":false,"result":"plain"}),
                "no_verdict",
            ),
            (
                json!({"type":"result","subtype":"success","is_error":false,"structured_output":{"status":"meh"}}),
                "no_verdict",
            ),
            (json!({"type":"result","subtype":"success"}), "malformed"),
        ];
        for (result, kind) in cases {
            let o = run(&[hook("N0NCE"), init(), result.clone()], Ending::default());
            let f = serde_json::to_value(o.failure.unwrap()).unwrap();
            assert_eq!(f["kind"], kind, "{result}");
        }
        let o = run(
            &[
                hook("N0NCE"),
                init(),
                json!({"type":"result","subtype":"success","is_error":true,"api_error_status":529,"result":"x"}),
            ],
            Ending::default(),
        );
        assert!(matches!(
            o.failure,
            Some(AgentFailure::ApiError {
                status: Some(529),
                ..
            })
        ));
    }

    #[test]
    fn endings_without_result() {
        let kind = |o: AgentOutcome| {
            serde_json::to_value(o.failure.unwrap()).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            kind(run(
                &[hook("N0NCE"), init()],
                Ending {
                    exit_code: Some(0),
                    ..Ending::default()
                }
            )),
            "no_result"
        );
        assert_eq!(
            kind(run(
                &[hook("N0NCE"), init()],
                Ending {
                    exit_code: Some(1),
                    ..Ending::default()
                }
            )),
            "crash"
        );
        assert_eq!(
            kind(run(
                &[],
                Ending {
                    signal: Some(9),
                    ..Ending::default()
                }
            )),
            "crash"
        );
        assert_eq!(
            kind(run(
                &[init()],
                Ending {
                    timed_out: true,
                    timeout_secs: 3,
                    ..Ending::default()
                }
            )),
            "timeout"
        );
        let mut s = StreamState::new(expect());
        s.malformed_line("garbage!");
        s.malformed_line("");
        let o = conclude(
            &s,
            &Ending {
                exit_code: Some(0),
                ..Ending::default()
            },
            "f",
        );
        assert!(
            matches!(o.failure, Some(AgentFailure::Malformed { ref message }) if message.starts_with("1 line"))
        );
        // Garbage next to a valid result does not matter.
        s.line(&hook("N0NCE")).unwrap();
        s.line(&init()).unwrap();
        s.line(&ok_result()).unwrap();
        assert!(conclude(&s, &Ending::default(), "f").verdict.is_some());
    }
}
