//! Parsing `[[check]]` tables: TOML → [`RawCheck`] (every key any kind accepts) → [`CheckDef`].
//! [`build`] checks what every kind shares, rejects keys of another kind, then hands the table to
//! the builder of its kind. Every error names the file, the line and column, the check and the
//! field.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{
    CheckDef, CheckError, CheckKind, CheckRegex, DEFAULT_TIMEOUT, JsonCompare, JsonExpect,
};
use crate::config::line_col;
use crate::defs::bundled::SourceFile;

/// The file as this module sees it: only `check`; other top-level keys belong to other modules.
#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    check: Vec<Spanned<RawCheck>>,
}

type S<T> = Option<Spanned<T>>;

/// Every key any kind accepts; which ones a kind allows is checked afterwards so that the error
/// can say "`url` is not valid for kind `command`" rather than just "unknown field".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: Spanned<String>,
    description: S<String>,
    kind: S<String>,
    timeout_secs: S<f64>,
    #[serde(default)]
    tags: Vec<String>,
    // command
    argv: S<Vec<String>>,
    exit_code: S<i32>,
    stdout_matches: S<String>,
    stdout_not_matches: S<String>,
    json_field: S<String>,
    equals: S<toml::Value>,
    less_than: S<f64>,
    greater_than: S<f64>,
    #[serde(rename = "in")]
    in_: S<Vec<toml::Value>>,
    unavailable_when: S<String>,
    // http
    url: S<String>,
    status: S<StatusSpec>,
    body_matches: S<String>,
    max_latency_ms: S<u64>,
    // tcp
    host: S<String>,
    port: S<u16>,
    // systemd
    unit: S<String>,
    state: S<String>,
    // mount, file
    path: S<String>,
    options: S<Vec<String>>,
    fstype: S<String>,
    exists: S<bool>,
    max_age_secs: S<u64>,
    contains: S<String>,
    // container
    container: S<String>,
    running: S<bool>,
    healthy: S<bool>,
    restarts_below: S<u64>,
    not_oom_killed: S<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StatusSpec {
    One(u16),
    Many(Vec<u16>),
}

pub(super) fn parse_file(file: &SourceFile) -> Result<Vec<CheckDef>, CheckError> {
    let raw: RawFile = toml::from_str(&file.text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| line_col(&file.text, s.start))
            .unwrap_or((0, 0));
        CheckError::Parse {
            origin: file.origin.clone(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    raw.check
        .into_iter()
        .map(|c| {
            let at = line_col(&file.text, c.span().start);
            build(file, at, c.into_inner())
        })
        .collect()
}

/// Where one table is being built: for positions and error messages.
struct Ctx<'a> {
    file: &'a SourceFile,
    /// (line, column) of the `[[check]]` table.
    table: (usize, usize),
    /// The check's name, trimmed.
    name: String,
    /// The `kind` as written (empty until it is known).
    kind: &'a str,
}

impl Ctx<'_> {
    /// (line, column) of a value, like `table` for the table.
    fn at(&self, span: Range<usize>) -> (usize, usize) {
        line_col(&self.file.text, span.start)
    }

    /// The line of an optional value, or the table's when it is absent.
    fn at_or_table<T>(&self, v: &S<T>) -> (usize, usize) {
        v.as_ref().map(|s| self.at(s.span())).unwrap_or(self.table)
    }

    fn err(&self, (line, column): (usize, usize), field: &str, message: String) -> CheckError {
        CheckError::Definition {
            origin: self.file.origin.clone(),
            line,
            column,
            name: self.name.clone(),
            field: field.to_string(),
            message,
        }
    }

    fn regex(&self, field: &str, v: &S<String>) -> Result<Option<CheckRegex>, CheckError> {
        match v {
            None => Ok(None),
            Some(s) => regex::Regex::new(s.get_ref())
                .map(|r| Some(CheckRegex(r)))
                .map_err(|e| self.err(self.at(s.span()), field, format!("invalid regex: {e}"))),
        }
    }

    fn required(&self, field: &str, v: &S<String>) -> Result<String, CheckError> {
        match v {
            Some(s) if !s.get_ref().trim().is_empty() => Ok(s.get_ref().trim().to_string()),
            Some(s) => Err(self.err(self.at(s.span()), field, "is empty".into())),
            None => Err(self.err(
                self.table,
                field,
                format!("is required for kind `{}`", self.kind),
            )),
        }
    }

    fn absolute(&self, field: &str, v: &S<String>) -> Result<PathBuf, CheckError> {
        let p = PathBuf::from(self.required(field, v)?);
        if !p.is_absolute() {
            return Err(self.err(
                self.at_or_table(v),
                field,
                "must be an absolute path".into(),
            ));
        }
        Ok(p)
    }
}

/// Turns one raw table into a definition, naming the field and its line on any problem.
fn build(file: &SourceFile, table: (usize, usize), raw: RawCheck) -> Result<CheckDef, CheckError> {
    let cx = Ctx {
        file,
        table,
        name: raw.name.get_ref().trim().to_string(),
        kind: "",
    };
    let (description, timeout, kind_name) = common(&cx, &raw)?;
    let cx = Ctx {
        kind: kind_name.get_ref().as_str(),
        ..cx
    };
    reject_foreign_keys(&cx, &raw, kind_name.span())?;
    let kind = match cx.kind {
        "command" => command(&cx, &raw)?,
        "http" => http(&cx, &raw)?,
        "tcp" => tcp(&cx, &raw)?,
        "systemd" => systemd(&cx, &raw)?,
        "mount" => mount(&cx, &raw)?,
        "file" => file_kind(&cx, &raw)?,
        "container" => container(&cx, &raw)?,
        // Unknown kinds were rejected by `reject_foreign_keys`.
        other => return Err(cx.err(table, "kind", format!("unknown kind `{other}`"))),
    };
    Ok(CheckDef {
        name: cx.name,
        description,
        kind,
        timeout,
        tags: raw.tags,
        origin: format!("{}:{}:{}", file.origin, table.0, table.1),
    })
}

/// What every kind shares: a valid name, a description, a kind, a sane timeout.
fn common<'r>(
    cx: &Ctx<'_>,
    raw: &'r RawCheck,
) -> Result<(String, Duration, &'r Spanned<String>), CheckError> {
    let name = &cx.name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(cx.err(
            cx.at(raw.name.span()),
            "name",
            "must be non-empty and use only letters, digits, `-`, `_` and `.`".into(),
        ));
    }
    let description = match &raw.description {
        Some(d) if !d.get_ref().trim().is_empty() => d.get_ref().trim().to_string(),
        Some(d) => return Err(cx.err(cx.at(d.span()), "description", "is empty".into())),
        None => {
            return Err(cx.err(
                cx.table,
                "description",
                "is required (a human reads it when the check fails)".into(),
            ));
        }
    };
    let Some(kind) = &raw.kind else {
        return Err(cx.err(
            cx.table,
            "kind",
            "is required (command, http, tcp, systemd, mount, file or container)".into(),
        ));
    };
    let timeout = match &raw.timeout_secs {
        None => DEFAULT_TIMEOUT,
        Some(t) if t.get_ref().is_finite() && *t.get_ref() > 0.0 && *t.get_ref() <= 86_400.0 => {
            Duration::from_secs_f64(*t.get_ref())
        }
        Some(t) => {
            return Err(cx.err(
                cx.at(t.span()),
                "timeout_secs",
                "must be a positive number of seconds (at most a day)".into(),
            ));
        }
    };
    Ok((description, timeout, kind))
}

/// The optional keys present in a table, with where they are.
fn present_keys(raw: &RawCheck) -> [(&'static str, Option<Range<usize>>); 29] {
    fn span<T>(v: &S<T>) -> Option<Range<usize>> {
        v.as_ref().map(|v| v.span())
    }
    [
        ("argv", span(&raw.argv)),
        ("exit_code", span(&raw.exit_code)),
        ("stdout_matches", span(&raw.stdout_matches)),
        ("stdout_not_matches", span(&raw.stdout_not_matches)),
        ("json_field", span(&raw.json_field)),
        ("equals", span(&raw.equals)),
        ("less_than", span(&raw.less_than)),
        ("greater_than", span(&raw.greater_than)),
        ("in", span(&raw.in_)),
        ("unavailable_when", span(&raw.unavailable_when)),
        ("url", span(&raw.url)),
        ("status", span(&raw.status)),
        ("body_matches", span(&raw.body_matches)),
        ("max_latency_ms", span(&raw.max_latency_ms)),
        ("host", span(&raw.host)),
        ("port", span(&raw.port)),
        ("unit", span(&raw.unit)),
        ("state", span(&raw.state)),
        ("path", span(&raw.path)),
        ("options", span(&raw.options)),
        ("fstype", span(&raw.fstype)),
        ("exists", span(&raw.exists)),
        ("max_age_secs", span(&raw.max_age_secs)),
        ("contains", span(&raw.contains)),
        ("container", span(&raw.container)),
        ("running", span(&raw.running)),
        ("healthy", span(&raw.healthy)),
        ("restarts_below", span(&raw.restarts_below)),
        ("not_oom_killed", span(&raw.not_oom_killed)),
    ]
}

/// Which optional keys each kind accepts; `None` for an unknown kind.
fn allowed_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "command" => &[
            "argv",
            "exit_code",
            "stdout_matches",
            "stdout_not_matches",
            "json_field",
            "equals",
            "less_than",
            "greater_than",
            "in",
            "unavailable_when",
        ],
        "http" => &["url", "status", "body_matches", "max_latency_ms"],
        "tcp" => &["host", "port"],
        "systemd" => &["unit", "state"],
        "mount" => &["path", "options", "fstype"],
        "file" => &["path", "exists", "max_age_secs", "contains"],
        "container" => &[
            "container",
            "running",
            "healthy",
            "restarts_below",
            "not_oom_killed",
        ],
        _ => return None,
    })
}

/// An unknown kind, or a key present that the kind does not accept, is an error.
fn reject_foreign_keys(
    cx: &Ctx<'_>,
    raw: &RawCheck,
    kind_span: Range<usize>,
) -> Result<(), CheckError> {
    let Some(allowed) = allowed_keys(cx.kind) else {
        return Err(cx.err(
            cx.at(kind_span),
            "kind",
            format!(
                "unknown kind `{}` (expected command, http, tcp, systemd, mount, file or container)",
                cx.kind
            ),
        ));
    };
    for (key, span) in present_keys(raw) {
        if let Some(span) = span
            && !allowed.contains(&key)
        {
            return Err(cx.err(
                cx.at(span),
                key,
                format!("is not valid for kind `{}`", cx.kind),
            ));
        }
    }
    Ok(())
}

fn command(cx: &Ctx<'_>, raw: &RawCheck) -> Result<CheckKind, CheckError> {
    let argv = match &raw.argv {
        Some(a) if !a.get_ref().is_empty() && !a.get_ref()[0].is_empty() => a.get_ref().clone(),
        Some(a) => {
            return Err(cx.err(
                cx.at(a.span()),
                "argv",
                "must name a program (argv[0])".into(),
            ));
        }
        None => {
            return Err(cx.err(
                cx.table,
                "argv",
                "is required for kind `command` (a list; no shell is used)".into(),
            ));
        }
    };
    let json_field = json_field(cx, raw)?;
    Ok(CheckKind::Command {
        argv,
        exit_code: raw.exit_code.as_ref().map(|v| *v.get_ref()).unwrap_or(0),
        stdout_matches: cx.regex("stdout_matches", &raw.stdout_matches)?,
        stdout_not_matches: cx.regex("stdout_not_matches", &raw.stdout_not_matches)?,
        json_field,
        unavailable_when: cx.regex("unavailable_when", &raw.unavailable_when)?,
    })
}

/// `json_field` with exactly one comparator, or neither.
fn json_field(cx: &Ctx<'_>, raw: &RawCheck) -> Result<Option<JsonExpect>, CheckError> {
    let comparators: Vec<(&str, JsonCompare, Range<usize>)> = [
        raw.equals.as_ref().map(|v| {
            (
                "equals",
                JsonCompare::Equals(toml_to_json(v.get_ref())),
                v.span(),
            )
        }),
        raw.less_than
            .as_ref()
            .map(|v| ("less_than", JsonCompare::LessThan(*v.get_ref()), v.span())),
        raw.greater_than.as_ref().map(|v| {
            (
                "greater_than",
                JsonCompare::GreaterThan(*v.get_ref()),
                v.span(),
            )
        }),
        raw.in_.as_ref().map(|v| {
            (
                "in",
                JsonCompare::In(v.get_ref().iter().map(toml_to_json).collect()),
                v.span(),
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    match (&raw.json_field, comparators.len()) {
        (None, 0) => Ok(None),
        (None, _) => {
            let (key, _, span) = &comparators[0];
            Err(cx.err(
                cx.at(span.clone()),
                key,
                "needs `json_field` to say what to compare".into(),
            ))
        }
        (Some(f), 0) => Err(cx.err(
            cx.at(f.span()),
            "json_field",
            "needs one of `equals`, `less_than`, `greater_than`, `in`".into(),
        )),
        (Some(f), 1) => {
            let field = f.get_ref().trim().to_string();
            if field.is_empty() {
                return Err(cx.err(cx.at(f.span()), "json_field", "is empty".into()));
            }
            let compare = comparators
                .into_iter()
                .next()
                .map(|(_, c, _)| c)
                .ok_or_else(|| cx.err(cx.table, "json_field", "no comparator".into()))?;
            Ok(Some(JsonExpect { field, compare }))
        }
        (Some(_), _) => {
            let (key, _, span) = &comparators[1];
            Err(cx.err(
                cx.at(span.clone()),
                key,
                "only one of `equals`, `less_than`, `greater_than`, `in` may be given".into(),
            ))
        }
    }
}

fn http(cx: &Ctx<'_>, raw: &RawCheck) -> Result<CheckKind, CheckError> {
    let url = cx.required("url", &raw.url)?;
    let line = cx.at_or_table(&raw.url);
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        Ok(u) => {
            return Err(cx.err(
                line,
                "url",
                format!("scheme `{}` is not http or https", u.scheme()),
            ));
        }
        Err(e) => return Err(cx.err(line, "url", format!("invalid URL: {e}"))),
    }
    let status = match &raw.status {
        None => vec![200],
        Some(s) => {
            let list = match s.get_ref() {
                StatusSpec::One(c) => vec![*c],
                StatusSpec::Many(v) => v.clone(),
            };
            if list.is_empty() || list.iter().any(|c| !(100..=599).contains(c)) {
                return Err(cx.err(
                    cx.at(s.span()),
                    "status",
                    "must be an HTTP status (100-599) or a non-empty list of them".into(),
                ));
            }
            list
        }
    };
    Ok(CheckKind::Http {
        url,
        status,
        body_matches: cx.regex("body_matches", &raw.body_matches)?,
        max_latency_ms: raw.max_latency_ms.as_ref().map(|v| *v.get_ref()),
    })
}

fn tcp(cx: &Ctx<'_>, raw: &RawCheck) -> Result<CheckKind, CheckError> {
    let host = cx.required("host", &raw.host)?;
    let port = match &raw.port {
        Some(p) if *p.get_ref() != 0 => *p.get_ref(),
        Some(p) => return Err(cx.err(cx.at(p.span()), "port", "must not be 0".into())),
        None => {
            return Err(cx.err(cx.table, "port", "is required for kind `tcp`".into()));
        }
    };
    Ok(CheckKind::Tcp { host, port })
}

fn systemd(cx: &Ctx<'_>, raw: &RawCheck) -> Result<CheckKind, CheckError> {
    Ok(CheckKind::Systemd {
        unit: cx.required("unit", &raw.unit)?,
        state: match &raw.state {
            None => "active".to_string(),
            Some(_) => cx.required("state", &raw.state)?,
        },
    })
}

fn mount(cx: &Ctx<'_>, raw: &RawCheck) -> Result<CheckKind, CheckError> {
    Ok(CheckKind::Mount {
        path: cx.absolute("path", &raw.path)?,
        options: raw
            .options
            .as_ref()
            .map(|v| v.get_ref().clone())
            .unwrap_or_default(),
        fstype: raw.fstype.as_ref().map(|v| v.get_ref().clone()),
    })
}

/// The `file` kind (named so as not to shadow the source file).
fn file_kind(cx: &Ctx<'_>, raw: &RawCheck) -> Result<CheckKind, CheckError> {
    let kind = CheckKind::File {
        path: cx.absolute("path", &raw.path)?,
        exists: raw.exists.as_ref().map(|v| *v.get_ref()).unwrap_or(true),
        max_age_secs: raw.max_age_secs.as_ref().map(|v| *v.get_ref()),
        contains: cx.regex("contains", &raw.contains)?,
    };
    if let CheckKind::File {
        exists: false,
        max_age_secs,
        contains,
        ..
    } = &kind
        && (max_age_secs.is_some() || contains.is_some())
    {
        return Err(cx.err(
            cx.table,
            "exists",
            "`exists = false` cannot be combined with `max_age_secs` or `contains`".into(),
        ));
    }
    Ok(kind)
}

fn container(cx: &Ctx<'_>, raw: &RawCheck) -> Result<CheckKind, CheckError> {
    let flag = |v: &S<bool>, default: bool| v.as_ref().map(|v| *v.get_ref()).unwrap_or(default);
    let restarts_below = match &raw.restarts_below {
        Some(n) if *n.get_ref() == 0 => {
            return Err(cx.err(
                cx.at(n.span()),
                "restarts_below",
                "must be at least 1 (a restart count is never below 0)".into(),
            ));
        }
        other => other.as_ref().map(|n| *n.get_ref()),
    };
    Ok(CheckKind::Container {
        container: cx.required("container", &raw.container)?,
        running: flag(&raw.running, true),
        healthy: flag(&raw.healthy, false),
        restarts_below,
        not_oom_killed: flag(&raw.not_oom_killed, true),
    })
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => serde_json::Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => serde_json::Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect::<serde_json::Map<_, _>>(),
        ),
    }
}
