//! Live views of the stream.

use std::collections::HashMap;
use std::io::Write;

use serde_json::Value;

/// Live view of the stream (terminal output); the runner calls it for every parsed line.
pub trait Observer: Send {
    fn line(&mut self, line: &Value);
}

/// Quiet mode: sees everything, prints nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct QuietObserver;

impl Observer for QuietObserver {
    fn line(&mut self, _line: &Value) {}
}

/// A compact live view: tool calls, denials and tool errors, API retries, the result.
pub struct TerminalObserver {
    out: Box<dyn Write + Send>,
    tool_names: HashMap<String, String>,
}

impl Default for TerminalObserver {
    fn default() -> Self {
        TerminalObserver::new()
    }
}

impl TerminalObserver {
    /// Prints to stderr.
    pub fn new() -> TerminalObserver {
        TerminalObserver::with_writer(Box::new(std::io::stderr()))
    }

    pub fn with_writer(out: Box<dyn Write + Send>) -> TerminalObserver {
        TerminalObserver {
            out,
            tool_names: HashMap::new(),
        }
    }

    /// The lines to print for one stream line (empty for lines not worth showing).
    pub fn render(&mut self, v: &Value) -> Vec<String> {
        let kind = v["type"].as_str().unwrap_or("");
        let subtype = v["subtype"].as_str().unwrap_or("");
        let mut out = Vec::new();
        match (kind, subtype) {
            ("system", "init") => out.push(format!(
                "· claude {} model {} mode {} tools {}",
                v["claude_code_version"].as_str().unwrap_or("?"),
                v["model"].as_str().unwrap_or("?"),
                v["permissionMode"].as_str().unwrap_or("?"),
                v["tools"]
                    .as_array()
                    .map(|t| t
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","))
                    .unwrap_or_default()
            )),
            ("system", "api_retry") => out.push(format!(
                "↻ API retry {}/{}: {} {} (next in {:.0} ms)",
                v["attempt"],
                v["max_retries"],
                v["error_status"],
                v["error"].as_str().unwrap_or("?"),
                v["retry_delay_ms"].as_f64().unwrap_or(0.0)
            )),
            ("assistant", _) => {
                for block in v["message"]["content"].as_array().into_iter().flatten() {
                    if block["type"] != "tool_use" {
                        continue;
                    }
                    let name = block["name"].as_str().unwrap_or("?");
                    if let Some(id) = block["id"].as_str() {
                        self.tool_names.insert(id.to_string(), name.to_string());
                    }
                    out.push(format!(
                        "→ {name} {}",
                        one_line(&describe_input(&block["input"]), 160)
                    ));
                }
            }
            ("user", _) => {
                for block in v["message"]["content"].as_array().into_iter().flatten() {
                    if block["type"] != "tool_result" || block["is_error"] != true {
                        continue;
                    }
                    let name = block["tool_use_id"]
                        .as_str()
                        .and_then(|id| self.tool_names.get(id))
                        .map_or("?", String::as_str);
                    out.push(format!(
                        "✗ {name}: {}",
                        one_line(&content_text(&block["content"]), 160)
                    ));
                }
            }
            ("result", _) => {
                let detail = match v["errors"].as_array() {
                    Some(e) if !e.is_empty() => e
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; "),
                    _ if v["structured_output"].is_object() => {
                        verdict_line(&v["structured_output"])
                    }
                    _ => v["result"].as_str().unwrap_or("").to_string(),
                };
                out.push(format!(
                    "■ {}{} · {} turns · ${:.4} · {} ms · {} denied · {}",
                    subtype,
                    if v["is_error"] == true {
                        " (error)"
                    } else {
                        ""
                    },
                    v["num_turns"],
                    v["total_cost_usd"].as_f64().unwrap_or(0.0),
                    v["duration_ms"],
                    v["permission_denials"].as_array().map_or(0, Vec::len),
                    one_line(&detail, 160)
                ));
            }
            _ => {}
        }
        out
    }
}

impl Observer for TerminalObserver {
    fn line(&mut self, line: &Value) {
        for l in self.render(line) {
            // A closed terminal must not fail the run.
            let _ = writeln!(self.out, "{l}");
        }
    }
}

/// The interesting part of a tool input: a command, a path, a pattern, else compact JSON.
fn verdict_line(verdict: &Value) -> String {
    format!(
        "{}: {}",
        verdict["status"].as_str().unwrap_or("?"),
        verdict["summary"].as_str().unwrap_or("")
    )
}

fn describe_input(input: &Value) -> String {
    // The verdict: its status and summary say it all.
    if input["status"].is_string() && input["summary"].is_string() {
        return verdict_line(input);
    }
    for key in ["command", "file_path", "path", "pattern", "url"] {
        if let Some(s) = input[key].as_str() {
            return s.to_string();
        }
    }
    if input.as_object().is_some_and(|o| o.is_empty()) {
        String::new()
    } else {
        input.to_string()
    }
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_tools_denials_retries_result() {
        let mut t = TerminalObserver::with_writer(Box::new(std::io::sink()));
        let call = json!({"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"echo hi\nthere","description":"x"}}]}});
        assert_eq!(t.render(&call), vec!["→ Bash echo hi there"]);
        let denied = json!({"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,"content":"Permission denied"}]}});
        assert_eq!(t.render(&denied), vec!["✗ Bash: Permission denied"]);
        let fine = json!({"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","is_error":false,"content":"hi"}]}});
        assert!(t.render(&fine).is_empty());
        let retry = json!({"type":"system","subtype":"api_retry","attempt":1,"max_retries":3,"retry_delay_ms":500.2,"error_status":500,"error":"server_error"});
        assert_eq!(
            t.render(&retry),
            vec!["↻ API retry 1/3: 500 server_error (next in 500 ms)"]
        );
        let result = json!({"type":"result","subtype":"success","is_error":false,"num_turns":2,"total_cost_usd":0.5,"duration_ms":10,"permission_denials":[{}],"result":"{}","structured_output":{"status":"ok","summary":"fine"}});
        assert_eq!(
            t.render(&result),
            vec!["■ success · 2 turns · $0.5000 · 10 ms · 1 denied · ok: fine"]
        );
        assert!(t.render(&json!({"type":"stream_event"})).is_empty());
    }
}
