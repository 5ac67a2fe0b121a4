//! One run's record gathered for `steward runs show`: the signal and vars, the checks before and
//! after, every tool call with the hook's decision and a short piece of its output, the verdict,
//! the actions it filed as they stand now, the rollback and the cost. The CLI turns this into an
//! incident report; `--json` prints it as is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::history::{self, HistoryError};
use super::{ChecksBefore, RunMeta, RunResult};
use crate::base::ledger::{Ledger, LedgerError, RunDir};
use crate::defs::check::CheckResult;
use crate::defs::policy::AuditEntry;
use crate::engine::boundary;

/// `checks-after.json`: what held after the agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChecksAfter {
    #[serde(default)]
    pub invariants: Vec<CheckResult>,
    #[serde(default)]
    pub post: Vec<CheckResult>,
}

/// One tool call the agent made, with what steward decided and what came back.
#[derive(Debug, Clone, Serialize)]
pub struct ToolCall {
    pub tool_use_id: Option<String>,
    pub tool: String,
    pub input: Value,
    /// The hook's (or the approval prompt's) final decision: `allow`, `deny`, `approve`,
    /// `error`; `none` while a call has no decision recorded yet.
    pub decision: String,
    pub rule: Option<String>,
    pub reason: String,
    /// The pending action the call was filed as.
    pub action: Option<String>,
    /// The start of the tool's result as the transcript recorded it.
    pub output: Option<String>,
    /// The result was an error (a denial reads as one to the model).
    pub output_is_error: bool,
    /// Lines and characters of the result left out of `output`.
    pub output_omitted_lines: usize,
}

/// An action the run filed, as it stands in the action store now.
#[derive(Debug, Clone, Serialize)]
pub struct FiledAction {
    pub id: String,
    /// `pending`, `approved`, … or `unknown` when the store no longer has it.
    pub state: String,
    pub argv: Vec<String>,
    pub subjects: Vec<String>,
}

/// Everything recorded about one run, for `steward runs show`.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    pub id: String,
    pub dir: String,
    /// What `runs list` shows for it (the outcome, or what the record says about an unfinished
    /// run).
    pub outcome: String,
    pub meta: Option<RunMeta>,
    pub result: Option<RunResult>,
    pub signal: Option<Value>,
    /// The variables the goal was rendered with.
    pub vars: BTreeMap<String, String>,
    pub argv: Option<Vec<String>>,
    pub checks_before: Option<ChecksBefore>,
    pub checks_after: Option<ChecksAfter>,
    /// Every decision of steward's policy hook in this run.
    pub audit: Vec<AuditEntry>,
    pub tool_calls: Vec<ToolCall>,
    pub actions: Vec<FiledAction>,
    pub files: Vec<String>,
}

/// Lines and characters of a tool's output kept in a report.
const OUTPUT_LINES: usize = 4;
const OUTPUT_CHARS: usize = 400;

fn optional<T: serde::de::DeserializeOwned>(
    run: &RunDir,
    name: &str,
) -> Result<Option<T>, LedgerError> {
    if run.exists(name) {
        run.read_json(name).map(Some)
    } else {
        Ok(None)
    }
}

pub fn show_run(ledger: &Ledger, id: &str) -> Result<RunDetail, HistoryError> {
    let run = ledger.run(id)?;
    let meta: Option<RunMeta> = optional(&run, "run.json")?;
    let result: Option<RunResult> = optional(&run, "result.json")?;
    let audit = boundary::read_audit(&run.path)?;
    let transcript = read_transcript(&run)?;
    let filed = result
        .as_ref()
        .map(|r| r.actions_filed.clone())
        .unwrap_or_else(|| audit.iter().filter_map(boundary::filed_action).collect());
    let mut files: Vec<String> = std::fs::read_dir(&run.path)
        .map_err(|source| LedgerError::Read {
            path: run.path.clone(),
            source,
        })?
        .filter_map(|e| {
            e.ok()
                .and_then(|e| e.file_name().to_str().map(str::to_string))
        })
        .collect();
    files.sort();
    Ok(RunDetail {
        id: run.id.clone(),
        dir: run.path.display().to_string(),
        outcome: history::summarize(&run).outcome,
        vars: meta.as_ref().map(|m| m.vars.clone()).unwrap_or_default(),
        meta,
        result,
        signal: optional(&run, "signal.json")?,
        argv: optional(&run, "claude-argv.json")?,
        checks_before: optional(&run, "checks-before.json")?,
        checks_after: optional(&run, "checks-after.json")?,
        tool_calls: tool_calls(&audit, &transcript),
        actions: filed_actions(ledger, &filed)?,
        audit,
        files,
    })
}

fn filed_actions(ledger: &Ledger, ids: &[String]) -> Result<Vec<FiledAction>, HistoryError> {
    let store = crate::engine::approval::Store::open(ledger.root())?;
    let mut out = Vec::new();
    for id in ids {
        out.push(match store.get(id) {
            Ok(a) => FiledAction {
                id: a.id.clone(),
                state: a.state.to_string(),
                subjects: a.subjects().into_iter().map(str::to_string).collect(),
                argv: a.argv,
            },
            Err(crate::engine::approval::ApprovalError::Unknown(_)) => FiledAction {
                id: id.clone(),
                state: "unknown".into(),
                argv: Vec::new(),
                subjects: Vec::new(),
            },
            Err(e) => return Err(e.into()),
        });
    }
    Ok(out)
}

/// A tool call and its result as the transcript recorded them.
struct Recorded {
    id: String,
    tool: String,
    input: Value,
    result: Option<(bool, String)>,
}

fn read_transcript(run: &RunDir) -> Result<Vec<Recorded>, LedgerError> {
    let path = run.file("transcript.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(LedgerError::Read { path, source }),
    };
    let mut calls: Vec<Recorded> = Vec::new();
    let mut results: BTreeMap<String, (bool, String)> = BTreeMap::new();
    // A line that does not parse (a run killed mid-write) is skipped: the audit log is the
    // record of decisions, this only adds the outputs.
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let Some(blocks) = v["message"]["content"].as_array() else {
            continue;
        };
        for b in blocks {
            match (v["type"].as_str(), b["type"].as_str()) {
                (Some("assistant"), Some("tool_use")) => calls.push(Recorded {
                    id: b["id"].as_str().unwrap_or_default().to_string(),
                    tool: b["name"].as_str().unwrap_or("?").to_string(),
                    input: b["input"].clone(),
                    result: None,
                }),
                (Some("user"), Some("tool_result")) => {
                    if let Some(id) = b["tool_use_id"].as_str() {
                        let error = b["is_error"].as_bool().unwrap_or(false);
                        results.insert(id.to_string(), (error, result_text(&b["content"])));
                    }
                }
                _ => {}
            }
        }
    }
    for c in &mut calls {
        c.result = results.remove(&c.id);
    }
    Ok(calls)
}

/// A tool result's text: a string, or the text blocks of a content array.
fn result_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The first lines of an output, and how many lines were left out.
fn shorten(text: &str) -> (String, usize) {
    let text = text
        .replace("<tool_use_error>", "")
        .replace("</tool_use_error>", "");
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let mut kept: String = lines
        .iter()
        .take(OUTPUT_LINES)
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    if kept.chars().count() > OUTPUT_CHARS {
        kept = kept.chars().take(OUTPUT_CHARS).collect::<String>() + "…";
    }
    (kept, lines.len().saturating_sub(OUTPUT_LINES))
}

/// Pairs the transcript's calls with the audit's decisions: by tool_use id, else (a claude that
/// passes none to hooks) by tool and input in order. Decisions without a call in the transcript
/// are listed too.
fn tool_calls(audit: &[AuditEntry], transcript: &[Recorded]) -> Vec<ToolCall> {
    let mut unused: Vec<Option<&AuditEntry>> = audit.iter().map(Some).collect();
    let mut out = Vec::new();
    for call in transcript {
        let mut entries: Vec<&AuditEntry> = Vec::new();
        for slot in unused.iter_mut() {
            let Some(e) = *slot else { continue };
            let same = match &e.tool_use_id {
                Some(id) => *id == call.id,
                None => e.tool == call.tool && e.input == call.input && entries.is_empty(),
            };
            if same {
                entries.push(e);
                *slot = None;
            }
        }
        out.push(build(
            Some(call.id.clone()),
            &call.tool,
            &call.input,
            &entries,
            call.result.as_ref(),
        ));
    }
    // Decisions whose call the transcript does not show (a run that ended mid-write).
    let mut rest: Vec<(Option<String>, Vec<&AuditEntry>)> = Vec::new();
    for e in unused.into_iter().flatten() {
        match rest
            .iter_mut()
            .find(|(id, _)| id.is_some() && *id == e.tool_use_id)
        {
            Some((_, v)) => v.push(e),
            None => rest.push((e.tool_use_id.clone(), vec![e])),
        }
    }
    for (id, entries) in rest {
        out.push(build(
            id,
            &entries[0].tool,
            &entries[0].input,
            &entries,
            None,
        ));
    }
    out
}

fn build(
    tool_use_id: Option<String>,
    tool: &str,
    input: &Value,
    entries: &[&AuditEntry],
    result: Option<&(bool, String)>,
) -> ToolCall {
    // A wait run records steps (left to the prompt, waiting) before the decision.
    let last = entries
        .iter()
        .rev()
        .find(|e| !boundary::is_intermediate(e))
        .or(entries.last());
    let (output, omitted) = match result {
        Some((_, text)) => {
            let (s, n) = shorten(text);
            (Some(s), n)
        }
        None => (None, 0),
    };
    ToolCall {
        tool_use_id,
        tool: tool.to_string(),
        input: input.clone(),
        decision: last.map_or("none".into(), |e| e.decision.clone()),
        rule: last.and_then(|e| e.rule.clone()),
        reason: last.map(|e| e.reason.clone()).unwrap_or_default(),
        action: entries.iter().find_map(|e| boundary::filed_action(e)),
        output,
        output_is_error: result.is_some_and(|(e, _)| *e),
        output_omitted_lines: omitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: Option<&str>, decision: &str, reason: &str) -> AuditEntry {
        AuditEntry {
            time: "t".into(),
            session_id: None,
            tool_use_id: id.map(str::to_string),
            tool: "Bash".into(),
            input: serde_json::json!({"command": "x"}),
            decision: decision.into(),
            rule: Some("rule".into()),
            reason: reason.into(),
        }
    }

    #[test]
    fn calls_pair_with_their_decisions_and_outputs() {
        let transcript = vec![
            Recorded {
                id: "t1".into(),
                tool: "Bash".into(),
                input: serde_json::json!({"command": "uptime"}),
                result: Some((false, "l1\nl2\nl3\nl4\nl5\nl6".into())),
            },
            Recorded {
                id: "t2".into(),
                tool: "Bash".into(),
                input: serde_json::json!({"command": "x"}),
                result: Some((true, "<tool_use_error>queued</tool_use_error>".into())),
            },
        ];
        let audit = vec![
            entry(Some("t1"), "allow", "ok"),
            entry(
                Some("t2"),
                "approve",
                "p (left to the approval prompt: the run waits for an operator)",
            ),
            entry(
                Some("t2"),
                "approve",
                "approval prompt: p; waiting (waiting as act-1)",
            ),
            entry(Some("t2"), "deny", "approval prompt: rejected"),
            entry(Some("t9"), "deny", "never ran"),
        ];
        let calls = tool_calls(&audit, &transcript);
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].decision, "allow");
        assert_eq!(calls[0].output.as_deref(), Some("l1\nl2\nl3\nl4"));
        assert_eq!(calls[0].output_omitted_lines, 2);
        assert_eq!(calls[1].decision, "deny");
        assert_eq!(calls[1].action.as_deref(), Some("act-1"));
        assert_eq!(calls[1].output.as_deref(), Some("queued"));
        assert!(calls[1].output_is_error);
        assert_eq!(calls[2].tool_use_id.as_deref(), Some("t9"));
        assert!(calls[2].output.is_none());
    }
}
