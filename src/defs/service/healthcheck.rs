//! A contract's `healthcheck` mapping → a check of steward's own vocabulary (`kind: http`,
//! `tcp`, `command`, … with the keys a `[[check]]` table takes). The mapping is written out as
//! one `[[check]]` table and read by the check parser itself, so the two can never disagree on
//! what a check is; each TOML line is mapped back to the YAML line it came from for errors.

use std::collections::BTreeMap;
use std::path::Path;

use serde_saphyr::Spanned;

use super::ServiceError;
use crate::defs::bundled::SourceFile;
use crate::defs::check::{CheckDef, CheckError, CheckSet};

type Mapping = BTreeMap<String, Spanned<toml::Value>>;

/// The name a service's healthcheck runs under in a run's checks.
pub fn check_name(service: &str) -> String {
    format!("{service}-health")
}

pub(super) fn build(
    service: &str,
    file: &Path,
    h: &Spanned<Mapping>,
) -> Result<CheckDef, ServiceError> {
    let table_line = h.referenced.line();
    let err = |line: u64, field: &str, message: String| ServiceError::Field {
        file: file.to_path_buf(),
        line,
        field: if field.is_empty() {
            "healthcheck".to_string()
        } else {
            format!("healthcheck.{field}")
        },
        message,
    };
    if let Some(v) = h.value.get("name") {
        return Err(err(
            v.referenced.line(),
            "name",
            format!("is set by steward (`{}`)", check_name(service)),
        ));
    }
    // (toml line → yaml line): line 1 is `[[check]]`, 2 the name, 3 the default description.
    let mut lines = vec![table_line, table_line, table_line];
    let mut text = format!(
        "[[check]]\nname = {}\n",
        toml::Value::String(check_name(service))
    );
    if !h.value.contains_key("description") {
        let d = format!("the service {service} is healthy (its contract's healthcheck)");
        text.push_str(&format!("description = {}\n", toml::Value::String(d)));
    } else {
        text.push_str("# description below\n");
    }
    for (key, value) in &h.value {
        let key_text = toml::Value::String(key.clone()).to_string();
        text.push_str(&format!("{key_text} = {}\n", value.value));
        lines.push(value.referenced.line());
    }
    let source = SourceFile {
        origin: file.display().to_string(),
        stem: service.to_string(),
        text,
    };
    let yaml_line = |toml_line: usize| {
        lines
            .get(toml_line.saturating_sub(1))
            .copied()
            .unwrap_or(table_line)
    };
    let set = CheckSet::load(&[source]).map_err(|e| match e {
        CheckError::Definition {
            line,
            field,
            message,
            ..
        } => err(yaml_line(line), &field, message),
        CheckError::Parse { line, message, .. } => {
            let field = message
                .split("unknown field `")
                .nth(1)
                .and_then(|r| r.split('`').next())
                .unwrap_or_default();
            err(yaml_line(line), field, message.clone())
        }
        other => err(table_line, "", other.to_string()),
    })?;
    let mut def = set.checks.into_iter().next().ok_or_else(|| {
        err(
            table_line,
            "",
            "does not make a check (is it a mapping?)".into(),
        )
    })?;
    def.origin = format!("{}:{table_line}", file.display());
    Ok(def)
}
