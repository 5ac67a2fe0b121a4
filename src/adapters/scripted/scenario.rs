//! Scenario files and the choice of an answer for one request.
//!
//! A scenario is TOML: an optional `final_text` and a list of `[[turn]]` tables.
//!
//! ```toml
//! final_text = "Done."                 # answer once the script is exhausted (default "Done.")
//! api_key = "sk-right"                 # optional: any other key or bearer token gets 401
//! models = ["claude-sonnet-5"]         # optional: any other model gets 404 `model: NAME`
//!
//! [[turn]]                             # an *answer* turn: one assistant message
//! text = "Checking the disk."          # optional text block (first)
//! delay_ms = 50                        # optional, wait before answering
//! usage = { input_tokens = 100, output_tokens = 20 }   # optional, drives the CLI's cost estimate
//! stop_reason = "end_turn"             # optional override (default: tool_use if a tool is called)
//! [[turn.tool_use]]                    # any number of tool calls, of any tool (after the text)
//! name = "Bash"
//! input = { command = "df -h", description = "disk" }
//! id = "toolu_disk"                    # optional (default toolu_<turn>_<n>)
//!
//! [[turn]]
//! verdict = { status = "ok", summary = "disk fine" }   # = a StructuredOutput tool_use, last block
//!
//! [[turn]]                             # a *failure* turn: exactly one of http_error/garbage/sse_error
//! http_error = { status = 529, type = "overloaded_error", message = "Overloaded" }
//! times = 2                            # answers 2 requests, then steps aside (default: forever)
//!
//! [[turn]]
//! garbage = "this is not SSE"          # HTTP 200 with this body
//!
//! [[turn]]
//! sse_error = { type = "overloaded_error", message = "Overloaded" }  # HTTP 200, `event: error`
//! ```
//!
//! A scenario may script more than one conversation: a `[[session]]` with `prompt_contains` and its
//! own `[[session.turn]]` list answers every request whose first user message contains that text
//! (the first such session wins); the top-level turns answer the rest. A run that starts claude
//! again (a repair round) is scripted this way.
//!
//! ```toml
//! [[session]]
//! prompt_contains = "Repair round 1"
//! [[session.turn]]
//! text = "Fixing it."
//! ```
//!
//! In a tool call's input, `${CWD}` stands for claude's working directory as the request's system
//! context names it (`Primary working directory: …`), for runs whose directory is made at run
//! time (a change run's worktree).
//!
//! Which turn answers a request is decided from the request itself, so CLI retries get the same
//! answer: *k* = the number of assistant messages in `messages` (consecutive assistant messages
//! count once). The k-th answer turn answers, unless a failure turn placed before it (after the
//! previous answer turn) still has requests left. Past the last answer turn, failure turns after it
//! still apply, then every request gets `final_text` with `stop_reason: end_turn`. `sse_error` only
//! applies to streaming requests (the CLI falls back to non-streaming after stream errors).
//! `delay_ms` works on any turn. Answers echo the request's `model`; `usage` defaults to 10/10
//! tokens. Unknown keys are errors.

use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub final_text: Option<String>,
    /// When set, only this key (`x-api-key`, or `Authorization: Bearer`) is accepted on every
    /// endpoint; anything else gets the API's 401 `authentication_error`.
    #[serde(default)]
    pub api_key: Option<String>,
    /// When not empty, only these model ids are served; any other gets the API's 404.
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default, rename = "turn")]
    pub turns: Vec<Turn>,
    #[serde(default, rename = "session")]
    pub sessions: Vec<Session>,
}

/// A conversation of its own, chosen by the text of its first user message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub prompt_contains: String,
    #[serde(default, rename = "turn")]
    pub turns: Vec<Turn>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub tool_use: Vec<ToolUse>,
    /// Any table; becomes the input of a `StructuredOutput` tool_use.
    #[serde(default)]
    pub verdict: Option<Value>,
    #[serde(default)]
    pub http_error: Option<HttpError>,
    #[serde(default)]
    pub garbage: Option<String>,
    #[serde(default)]
    pub sse_error: Option<SseError>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub times: Option<u32>,
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Overrides the stop reason (default: `tool_use` if the turn calls a tool, else `end_turn`).
    #[serde(default)]
    pub stop_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolUse {
    pub name: String,
    #[serde(default = "empty_object")]
    pub input: Value,
    /// Default `toolu_<turn>_<n>`.
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpError {
    pub status: u16,
    #[serde(rename = "type", default = "default_error_type")]
    pub kind: String,
    #[serde(default = "default_error_message")]
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SseError {
    #[serde(rename = "type", default = "default_sse_error_type")]
    pub kind: String,
    #[serde(default = "default_error_message")]
    pub message: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    #[serde(default = "default_tokens")]
    pub input_tokens: u64,
    #[serde(default = "default_tokens")]
    pub output_tokens: u64,
}

impl Default for Usage {
    fn default() -> Self {
        Usage {
            input_tokens: default_tokens(),
            output_tokens: default_tokens(),
        }
    }
}

fn empty_object() -> Value {
    json!({})
}
fn default_error_type() -> String {
    "api_error".into()
}
fn default_sse_error_type() -> String {
    "overloaded_error".into()
}
fn default_error_message() -> String {
    "scripted error".into()
}
fn default_tokens() -> u64 {
    10
}

impl Turn {
    fn is_failure(&self) -> bool {
        self.http_error.is_some() || self.garbage.is_some() || self.sse_error.is_some()
    }

    fn check(&self) -> Result<(), String> {
        let failures = [
            self.http_error.is_some(),
            self.garbage.is_some(),
            self.sse_error.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        let answers = self.text.is_some() || !self.tool_use.is_empty() || self.verdict.is_some();
        match (failures, answers) {
            (0, false) => {
                Err("has neither an answer (text, tool_use, verdict) nor a failure".into())
            }
            (0, true) if self.times.is_some() => {
                Err("`times` only applies to failure turns".into())
            }
            (0, true) => Ok(()),
            (1, false) => match &self.http_error {
                Some(e) if !(400..=599).contains(&e.status) => {
                    Err(format!("http_error status {} is not 4xx/5xx", e.status))
                }
                _ => Ok(()),
            },
            (1, true) => Err("mixes an answer with a failure".into()),
            _ => Err("has more than one of http_error, garbage, sse_error".into()),
        }
    }
}

impl Scenario {
    /// Parses and checks a scenario; the error is a plain message (the caller adds the file name).
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        for (i, turn) in scenario.turns.iter().enumerate() {
            turn.check().map_err(|m| format!("turn {} {m}", i + 1))?;
        }
        for (n, session) in scenario.sessions.iter().enumerate() {
            if session.prompt_contains.is_empty() {
                return Err(format!("session {}: `prompt_contains` is empty", n + 1));
            }
            for (i, turn) in session.turns.iter().enumerate() {
                turn.check()
                    .map_err(|m| format!("session {} turn {} {m}", n + 1, i + 1))?;
            }
        }
        Ok(scenario)
    }

    fn answer_turns(&self) -> Vec<usize> {
        self.turns
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.is_failure())
            .map(|(i, _)| i)
            .collect()
    }
}

/// What to send back for one request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Answer {
        content: Vec<Value>,
        stop_reason: String,
        usage: Usage,
    },
    HttpError(HttpError),
    Garbage(String),
    SseError(SseError),
}

#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// Index into `turns`, `None` for the implicit final answer.
    pub turn: Option<usize>,
    pub delay_ms: u64,
    pub reply: Reply,
}

/// A scenario with per-turn hit counters (for `times`).
#[derive(Debug)]
pub(crate) struct Script {
    scenario: Scenario,
    answers: Vec<usize>,
    hits: Vec<u32>,
    /// Each `[[session]]`'s marker and its own script.
    sessions: Vec<(String, Script)>,
}

impl Script {
    pub fn new(scenario: Scenario) -> Script {
        let answers = scenario.answer_turns();
        let hits = vec![0; scenario.turns.len()];
        let sessions = scenario
            .sessions
            .iter()
            .map(|s| {
                let own = Scenario {
                    final_text: scenario.final_text.clone(),
                    turns: s.turns.clone(),
                    ..Scenario::default()
                };
                (s.prompt_contains.clone(), Script::new(own))
            })
            .collect();
        Script {
            scenario,
            answers,
            hits,
            sessions,
        }
    }

    /// The error the real API would answer before looking at the conversation: a key it does
    /// not know, or a model it does not serve.
    pub fn refuse(&self, key: Option<&str>, model: Option<&str>) -> Option<HttpError> {
        if let Some(expected) = &self.scenario.api_key
            && key != Some(expected.as_str())
        {
            return Some(HttpError {
                status: 401,
                kind: "authentication_error".into(),
                message: "invalid x-api-key".into(),
            });
        }
        match model {
            Some(m)
                if !self.scenario.models.is_empty()
                    && !self.scenario.models.iter().any(|x| x == m) =>
            {
                Some(HttpError {
                    status: 404,
                    kind: "not_found_error".into(),
                    message: format!("model: {m}"),
                })
            }
            _ => None,
        }
    }

    pub fn plan(&mut self, request: &Value, stream: bool) -> Planned {
        if !self.sessions.is_empty() {
            let first = first_user_text(request);
            if let Some((_, script)) = self
                .sessions
                .iter_mut()
                .find(|(marker, _)| first.contains(marker.as_str()))
            {
                return script.plan(request, stream);
            }
        }
        let k = assistant_runs(request);
        let turns = &self.scenario.turns;
        let start = match k.checked_sub(1) {
            None => 0,
            Some(prev) => self.answers.get(prev).map_or(turns.len(), |i| i + 1),
        };
        let end = match self.answers.get(k) {
            Some(i) => *i,
            None if k == self.answers.len() => turns.len(),
            None => start,
        };
        for (i, turn) in turns.iter().enumerate().take(end).skip(start) {
            if turn.sse_error.is_some() && !stream {
                continue;
            }
            if turn.times.is_some_and(|t| self.hits[i] >= t) {
                continue;
            }
            self.hits[i] = self.hits[i].saturating_add(1);
            let reply = if let Some(e) = &turn.http_error {
                Reply::HttpError(e.clone())
            } else if let Some(g) = &turn.garbage {
                Reply::Garbage(g.clone())
            } else if let Some(e) = &turn.sse_error {
                Reply::SseError(e.clone())
            } else {
                continue;
            };
            return Planned {
                turn: Some(i),
                delay_ms: turn.delay_ms.unwrap_or(0),
                reply,
            };
        }
        match self.answers.get(k) {
            Some(&i) => {
                let turn = &turns[i];
                let mut reply = answer(turn, i);
                if let (Reply::Answer { content, .. }, Some(cwd)) =
                    (&mut reply, working_dir(request))
                {
                    content
                        .iter_mut()
                        .for_each(|block| substitute_cwd(block, &cwd));
                }
                Planned {
                    turn: Some(i),
                    delay_ms: turn.delay_ms.unwrap_or(0),
                    reply,
                }
            }
            None => Planned {
                turn: None,
                delay_ms: 0,
                reply: Reply::Answer {
                    content: vec![
                        json!({"type": "text", "text": self.scenario.final_text.as_deref().unwrap_or("Done.")}),
                    ],
                    stop_reason: "end_turn".into(),
                    usage: Usage::default(),
                },
            },
        }
    }
}

fn answer(turn: &Turn, index: usize) -> Reply {
    let mut content = Vec::new();
    if let Some(text) = &turn.text {
        content.push(json!({"type": "text", "text": text}));
    }
    for (n, tool) in turn.tool_use.iter().enumerate() {
        let id = tool
            .id
            .clone()
            .unwrap_or_else(|| format!("toolu_{index:02}_{n:02}"));
        content.push(json!({"type": "tool_use", "id": id, "name": tool.name, "input": tool.input}));
    }
    if let Some(verdict) = &turn.verdict {
        let id = format!("toolu_{index:02}_verdict");
        content.push(
            json!({"type": "tool_use", "id": id, "name": "StructuredOutput", "input": verdict}),
        );
    }
    let calls_tool = content.iter().any(|b| b["type"] == "tool_use");
    let stop_reason = turn
        .stop_reason
        .clone()
        .unwrap_or_else(|| if calls_tool { "tool_use" } else { "end_turn" }.to_string());
    Reply::Answer {
        content,
        stop_reason,
        usage: turn.usage.unwrap_or_default(),
    }
}

/// Number of assistant turns so far: maximal runs of consecutive assistant messages.
/// Claude's working directory as the request's context names it.
fn working_dir(request: &Value) -> Option<String> {
    const MARK: &str = "Primary working directory: ";
    let text = request.to_string();
    let start = text.find(MARK)? + MARK.len();
    // In the JSON text the line ends at an escaped newline (`\n`) or the string's end.
    let rest = &text[start..];
    let end = rest.find(['\\', '"']).unwrap_or(rest.len());
    Some(rest[..end].to_string()).filter(|d| d.starts_with('/'))
}

/// `${CWD}` in every string of a tool call's input becomes `cwd`.
fn substitute_cwd(block: &mut Value, cwd: &str) {
    match block {
        Value::String(s) if s.contains("${CWD}") => *s = s.replace("${CWD}", cwd),
        Value::Array(items) => items.iter_mut().for_each(|v| substitute_cwd(v, cwd)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute_cwd(v, cwd)),
        _ => {}
    }
}

/// The text of the request's first user message (a string, or its text blocks joined).
fn first_user_text(request: &Value) -> String {
    let first = request
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        });
    match first.and_then(|m| m.get("content")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

pub(crate) fn assistant_runs(request: &Value) -> usize {
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return 0;
    };
    let mut runs = 0;
    let mut previous_assistant = false;
    for m in messages {
        let assistant = m.get("role").and_then(Value::as_str) == Some("assistant");
        if assistant && !previous_assistant {
            runs += 1;
        }
        previous_assistant = assistant;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(roles: &[&str]) -> Value {
        json!({"messages": roles.iter().map(|r| json!({"role": r, "content": "x"})).collect::<Vec<_>>()})
    }

    #[test]
    fn a_session_answers_the_conversations_whose_prompt_has_its_marker() {
        let s = Scenario::parse(
            "[[turn]]\ntext = 'first'\n[[session]]\nprompt_contains = 'Repair round 1'\n[[session.turn]]\ntext = 'repair'\n",
        )
        .unwrap();
        let mut script = Script::new(s);
        let text = |p: Planned| match p.reply {
            Reply::Answer { content, .. } => content[0]["text"].as_str().unwrap().to_string(),
            other => panic!("{other:?}"),
        };
        let plain = json!({"messages": [{"role": "user", "content": "do it"}]});
        let repair = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "do it\n## Repair round 1 of 2"}]}]});
        assert_eq!(text(script.plan(&plain, true)), "first");
        assert_eq!(text(script.plan(&repair, true)), "repair");
        assert!(Scenario::parse("[[session]]\nprompt_contains = ''\n").is_err());
        assert!(Scenario::parse("[[session]]\nprompt_contains = 'x'\n[[session.turn]]\n").is_err());
    }

    #[test]
    fn cwd_in_tool_input_is_the_working_directory_the_request_names() {
        let s = Scenario::parse(
            "[[turn]]\n[[turn.tool_use]]\nname = 'Read'\ninput = { file_path = '${CWD}/a.nix' }\n",
        )
        .unwrap();
        let mut script = Script::new(s);
        let req = json!({"system": [{"type": "text", "text": "env:\n - Primary working directory: /x/wt/r-1\n - Is a git repository: true"}], "messages": [{"role": "user", "content": "go"}]});
        let Reply::Answer { content, .. } = script.plan(&req, true).reply else {
            panic!("an answer")
        };
        assert_eq!(content[0]["input"]["file_path"], "/x/wt/r-1/a.nix");
    }

    #[test]
    fn counts_assistant_runs() {
        assert_eq!(assistant_runs(&req(&[])), 0);
        assert_eq!(assistant_runs(&req(&["user"])), 0);
        assert_eq!(
            assistant_runs(&req(&["user", "assistant", "assistant", "user"])),
            1
        );
        assert_eq!(
            assistant_runs(&req(&["user", "assistant", "user", "assistant", "user"])),
            2
        );
    }

    #[test]
    fn rejects_bad_turns() {
        assert!(Scenario::parse("[[turn]]\ndelay_ms = 3").is_err());
        assert!(Scenario::parse("[[turn]]\ntext = 'a'\ngarbage = 'b'").is_err());
        assert!(Scenario::parse("[[turn]]\ntext = 'a'\ntimes = 2").is_err());
        assert!(Scenario::parse("[[turn]]\nhttp_error = {status = 200}").is_err());
        assert!(Scenario::parse("[[turn]]\nwhat = 1").is_err());
    }

    #[test]
    fn transient_errors_then_answers() {
        let s = Scenario::parse(
            r#"
            [[turn]]
            http_error = { status = 529, type = "overloaded_error" }
            times = 2
            [[turn]]
            text = "hello"
            [[turn.tool_use]]
            name = "Bash"
            input = { command = "echo hi" }
            [[turn]]
            verdict = { status = "ok", summary = "s" }
            "#,
        )
        .unwrap();
        let mut script = Script::new(s);
        let first = req(&["user"]);
        assert!(
            matches!(script.plan(&first, true).reply, Reply::HttpError(ref e) if e.status == 529)
        );
        assert!(matches!(
            script.plan(&first, true).reply,
            Reply::HttpError(_)
        ));
        let Reply::Answer {
            content,
            stop_reason,
            ..
        } = script.plan(&first, true).reply
        else {
            panic!()
        };
        assert_eq!(stop_reason, "tool_use");
        assert_eq!(content[1]["name"], "Bash");
        let p = script.plan(&req(&["user", "assistant", "user"]), true);
        let Reply::Answer { content, .. } = p.reply else {
            panic!()
        };
        assert_eq!(content[0]["name"], "StructuredOutput");
        assert_eq!(content[0]["input"]["status"], "ok");
        let p = script.plan(
            &req(&["user", "assistant", "user", "assistant", "user"]),
            false,
        );
        assert_eq!(p.turn, None);
        let Reply::Answer { stop_reason, .. } = p.reply else {
            panic!()
        };
        assert_eq!(stop_reason, "end_turn");
    }

    #[test]
    fn persistent_error_and_sse_error_only_when_streaming() {
        let s = Scenario::parse(
            "[[turn]]\nsse_error = {}\n[[turn]]\ntext = 'ok'\n[[turn]]\nhttp_error = {status = 500}\n",
        )
        .unwrap();
        let mut script = Script::new(s);
        assert!(matches!(
            script.plan(&req(&["user"]), true).reply,
            Reply::SseError(_)
        ));
        assert!(matches!(
            script.plan(&req(&["user"]), false).reply,
            Reply::Answer { .. }
        ));
        for _ in 0..3 {
            assert!(matches!(
                script
                    .plan(&req(&["user", "assistant", "user"]), true)
                    .reply,
                Reply::HttpError(_)
            ));
        }
    }
}
