//! The goal template engine: tera with steward's `fence` filter, and template errors that
//! name the goal file and line. Loading a goal compiles its body with it; rendering a prompt
//! (engine/prompt.rs) fills it.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::{Goal, GoalError};

/// A tera instance holding this goal's template and the `untrusted` filter bound to `nonce`.
pub fn engine(goal: &Goal, nonce: &str) -> Result<tera::Tera, GoalError> {
    let mut tera = tera::Tera::default();
    // The prompt is plain text: HTML escaping would only garble it.
    tera.autoescape_on(vec![]);
    let nonce = nonce.to_string();
    tera.register_filter(
        "untrusted",
        move |value: &tera::Value, args: &HashMap<String, tera::Value>| {
            let label = match args.get("label") {
                None => "data".to_string(),
                Some(tera::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            Ok(tera::Value::String(fence(
                &label,
                &nonce,
                &value_text(value),
            )))
        },
    );
    tera.add_raw_template(&goal.name, &goal.body)
        .map_err(|e| template_error(goal, &e))?;
    Ok(tera)
}

static FENCE_TAG: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)<(\s*/?\s*untrusted-data)").ok());

/// Wraps untrusted text so the model can tell it from instructions:
///
/// ```text
/// <untrusted-data source="LABEL" nonce="N">
/// ...
/// </untrusted-data nonce="N">
/// ```
///
/// Any fence tag inside the text is neutralised (`<` becomes `&lt;`), and so is the nonce, so
/// the text can neither close the fence nor forge one.
pub fn fence(label: &str, nonce: &str, text: &str) -> String {
    let label: String = label
        .chars()
        .map(|c| {
            if c == '"' || c == '<' || c == '>' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut body = match FENCE_TAG.as_ref() {
        Some(re) => re.replace_all(text, "&lt;$1").into_owned(),
        // Unreachable with a constant pattern; degrade to the plain replacement.
        None => text.replace('<', "&lt;"),
    };
    if !nonce.is_empty() {
        body = body.replace(nonce, "[nonce]");
    }
    if body.trim().is_empty() {
        body = "(empty)".to_string();
    }
    let nl = if body.ends_with('\n') { "" } else { "\n" };
    format!(
        "<untrusted-data source=\"{label}\" nonce=\"{nonce}\">\n{body}{nl}</untrusted-data nonce=\"{nonce}\">"
    )
}

/// A value as text for fencing: strings as they are, maps of scalars as `key: value` lines,
/// lists of strings as lines, anything else as pretty JSON.
pub fn value_text(v: &tera::Value) -> String {
    use serde_json::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    };
    match v {
        Value::Null => String::new(),
        Value::Object(m) => {
            let lines: Option<Vec<String>> = m
                .iter()
                .map(|(k, v)| scalar(v).map(|s| format!("{k}: {s}")))
                .collect();
            lines
                .map(|l| l.join("\n"))
                .unwrap_or_else(|| serde_json::to_string_pretty(v).unwrap_or_default())
        }
        Value::Array(items) => {
            let lines: Option<Vec<String>> =
                items.iter().map(|v| v.as_str().map(String::from)).collect();
            lines
                .map(|l| l.join("\n"))
                .unwrap_or_else(|| serde_json::to_string_pretty(v).unwrap_or_default())
        }
        other => scalar(other).unwrap_or_default(),
    }
}

/// Maps a tera error to the goal file and the best line we can find: parse errors carry a line
/// (` --> L:C`); render errors name a variable or filter in backticks, whose first use in the
/// body is the likeliest culprit.
pub fn template_error(goal: &Goal, e: &tera::Error) -> GoalError {
    static AT: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"--> (\d+):(\d+)").ok());
    static NAMED: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"[`']([^`'\s]+)[`']").ok());
    let mut message = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cur = c.source();
    }
    let body_line = |l: usize| goal.body_line + l.saturating_sub(1);
    let parsed = AT
        .as_ref()
        .and_then(|re| re.captures(&message))
        .and_then(|c| {
            let n = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<usize>().ok());
            Some((n(1)?, n(2)?))
        });
    let (line, column) = match parsed {
        Some((l, c)) => (body_line(l), c),
        None => NAMED
            .as_ref()
            .and_then(|re| {
                re.captures_iter(&message)
                    .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
                    // Tera names the template itself in quotes too.
                    .filter(|name| *name != goal.name)
                    .find_map(|name| find_in_body(&goal.body, &name))
            })
            .map(|(l, c)| (body_line(l), c))
            .unwrap_or((goal.body_line, 1)),
    };
    GoalError::Template {
        origin: goal.origin.clone(),
        line,
        column,
        message: message
            .replace('\n', " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// 1-based body line and column of the first use of `name` (or, for `a.b.c`, of its longest
/// prefix found) inside a tera tag.
pub fn find_in_body(body: &str, name: &str) -> Option<(usize, usize)> {
    let parts: Vec<&str> = name.split('.').collect();
    (1..=parts.len()).rev().find_map(|n| {
        let needle = parts[..n].join(".");
        body.lines().enumerate().find_map(|(i, l)| {
            if !(l.contains("{{") || l.contains("{%")) {
                return None;
            }
            l.find(needle.as_str())
                .map(|at| (i + 1, l[..at].chars().count() + 1))
        })
    })
}
