//! Argument bounds of steward's tools: an object with only the tool's own fields, each of the
//! right shape and size. A bad argument is an error naming the field.

use serde_json::{Map, Value};

use super::ToolsError;
use super::table::fields;

/// The longest name argument (probe, check, container, service, subject, goal).
pub const MAX_NAME: usize = 200;
/// The longest free text argument (rationale, note body).
pub const MAX_TEXT: usize = 8 * 1024;
/// The most words of a proposed argv, and the longest word.
pub const MAX_ARGV: usize = 64;
pub const MAX_WORD: usize = 4096;
/// The most entries of a list argument (checks, tags).
pub const MAX_LIST: usize = 16;

/// The arguments as an object holding only the tool's fields.
pub fn object(tool: &str, arguments: Value) -> Result<Map<String, Value>, ToolsError> {
    let map = match arguments {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        _ => return Err(ToolsError::argument("(arguments)", "must be an object")),
    };
    let known = fields(tool);
    if let Some(extra) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ToolsError::argument(
            extra,
            format!(
                "`{tool}` takes no such argument (it takes: {})",
                known.join(", ")
            ),
        ));
    }
    Ok(map)
}

/// A required name: a non-empty string of at most [`MAX_NAME`] characters, no control ones.
pub fn name(args: &Map<String, Value>, field: &str) -> Result<String, ToolsError> {
    optional_name(args, field)?.ok_or_else(|| ToolsError::argument(field, "is required"))
}

pub fn optional_name(args: &Map<String, Value>, field: &str) -> Result<Option<String>, ToolsError> {
    let Some(v) = args.get(field) else {
        return Ok(None);
    };
    let s = v
        .as_str()
        .ok_or_else(|| ToolsError::argument(field, "must be a string"))?;
    if s.is_empty() || s.chars().count() > MAX_NAME || s.chars().any(char::is_control) {
        return Err(ToolsError::argument(
            field,
            format!("must be 1 to {MAX_NAME} characters without control characters"),
        ));
    }
    Ok(Some(s.to_string()))
}

/// Free text up to `max` bytes.
pub fn text(args: &Map<String, Value>, field: &str, max: usize) -> Result<String, ToolsError> {
    let s = args
        .get(field)
        .ok_or_else(|| ToolsError::argument(field, "is required"))?
        .as_str()
        .ok_or_else(|| ToolsError::argument(field, "must be a string"))?;
    if s.trim().is_empty() || s.len() > max {
        return Err(ToolsError::argument(
            field,
            format!("must be non-empty text of at most {max} bytes"),
        ));
    }
    Ok(s.to_string())
}

/// An integer in `min..=max`, or `default` when absent.
pub fn count(
    args: &Map<String, Value>,
    field: &str,
    (min, default, max): (u64, u64, u64),
) -> Result<u64, ToolsError> {
    let Some(v) = args.get(field) else {
        return Ok(default);
    };
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ToolsError::argument(
            field,
            format!("must be an integer from {min} to {max}"),
        )),
    }
}

/// A list of strings: at most `max_items`, each 1 to `max_len` bytes.
pub fn strings(
    args: &Map<String, Value>,
    field: &str,
    max_items: usize,
    max_len: usize,
) -> Result<Vec<String>, ToolsError> {
    let Some(v) = args.get(field) else {
        return Ok(Vec::new());
    };
    let shape = || {
        ToolsError::argument(
            field,
            format!("must be a list of at most {max_items} strings of 1 to {max_len} bytes"),
        )
    };
    let list = v.as_array().ok_or_else(shape)?;
    if list.len() > max_items {
        return Err(shape());
    }
    list.iter()
        .map(|w| match w.as_str() {
            Some(s) if !s.is_empty() && s.len() <= max_len => Ok(s.to_string()),
            _ => Err(shape()),
        })
        .collect()
}
