//! Probes: scoped, concurrent observations of the cluster.
//!
//! A probe is declared in `context/*.toml` as a `[[probe]]` table and is one of: a command run
//! from an argv (never a shell), an HTTP GET, or the tail of a file. Probes only observe; their
//! output is redacted before anything stores it and is treated as untrusted text downstream.

mod run;

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::line_col;
use crate::defs::bundled::SourceFile;

pub(crate) use run::error_chain;
pub use run::gather;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Like every definition error: `FILE:LINE:COL: message`.
    #[error("{origin}:{line}:{column}: {message}")]
    Definition {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("unknown probe `{0}`")]
    Unknown(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeDef {
    pub name: String,
    pub description: String,
    pub kind: ProbeKind,
    pub timeout: Duration,
    pub max_bytes: usize,
    pub parse: ParseMode,
    pub tags: Vec<String>,
    /// Substrings of a command's stderr/stdout that mean "the service is not there" (e.g.
    /// `Cannot connect to the Docker daemon`): a non-zero exit with one of them is reported as
    /// `not_available` instead of `failed`, so an absent daemon does not read as a broken one.
    pub unavailable_when: Vec<String>,
    pub origin: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeKind {
    Command {
        argv: Vec<String>,
    },
    Http {
        url: String,
    },
    File {
        path: std::path::PathBuf,
        tail_lines: usize,
    },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ParseMode {
    Text,
    Json,
    Lines,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    Ok,
    Failed,
    TimedOut,
    NotAvailable,
}

impl ProbeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeStatus::Ok => "ok",
            ProbeStatus::Failed => "failed",
            ProbeStatus::TimedOut => "timed_out",
            ProbeStatus::NotAvailable => "not_available",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeResult {
    pub name: String,
    pub description: String,
    pub status: ProbeStatus,
    /// Text (string), JSON (any value) or lines (array of strings), already redacted.
    pub output: serde_json::Value,
    pub truncated: bool,
    /// Why it failed or was unavailable, the HTTP status, or a command's stderr tail (redacted).
    pub detail: Option<String>,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
}

/// Defaults from config applied to probes that name no timeout or cap.
#[derive(Debug, Clone, Copy)]
pub struct ProbeDefaults {
    pub timeout: Duration,
    pub max_bytes: usize,
}

impl ProbeDefaults {
    /// The `[limits]` a probe without its own `timeout_secs`/`max_bytes` gets.
    pub fn from_config(cfg: &crate::config::Config) -> ProbeDefaults {
        ProbeDefaults {
            timeout: Duration::from_secs(cfg.limits.probe_timeout_secs),
            max_bytes: cfg.limits.probe_max_bytes,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub probes: Vec<ProbeDef>,
}

/// Lines a file probe keeps when it names no `tail_lines`.
const DEFAULT_TAIL_LINES: usize = 100;

/// One `context/*.toml` file. `[[check]]` tables belong to the check module; they are accepted
/// here as raw values so that one file can declare both.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeFile {
    #[serde(default)]
    probe: Vec<RawProbe>,
    #[serde(default)]
    #[allow(dead_code)]
    check: Vec<toml::Value>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawKind {
    Command,
    Http,
    File,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    name: toml::Spanned<String>,
    #[serde(default)]
    description: String,
    kind: RawKind,
    argv: Option<Vec<String>>,
    url: Option<String>,
    path: Option<std::path::PathBuf>,
    tail_lines: Option<usize>,
    /// Seconds; fractions allowed (`0.5`).
    timeout_secs: Option<f64>,
    max_bytes: Option<usize>,
    #[serde(default = "default_parse")]
    parse: ParseMode,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    unavailable_when: Vec<String>,
}

fn default_parse() -> ParseMode {
    ParseMode::Text
}

impl Catalog {
    /// Parses every file; a probe name defined twice (across all files) is an error, since
    /// operator files replace bundled ones by file name, not by probe name.
    pub fn load(files: &[SourceFile], defaults: ProbeDefaults) -> Result<Catalog, ProbeError> {
        let mut probes: Vec<ProbeDef> = Vec::new();
        for file in files {
            let parsed: ProbeFile = toml::from_str(&file.text).map_err(|e| {
                // A TOML error without a position is about the whole file.
                let at = e.span().map_or((1, 1), |s| line_col(&file.text, s.start));
                definition(&file.origin, at, e.message().trim())
            })?;
            for raw in parsed.probe {
                let at = line_col(&file.text, raw.name.span().start);
                let def = validate(raw, &file.origin, defaults)
                    .map_err(|m| definition(&file.origin, at, &m.to_string()))?;
                if let Some(prev) = probes.iter().find(|p| p.name == def.name) {
                    return Err(definition(
                        &file.origin,
                        at,
                        &format!("probe `{}` is already defined in {}", def.name, prev.origin),
                    ));
                }
                probes.push(def);
            }
        }
        Ok(Catalog { probes })
    }

    /// Names, `tag:NAME` or `*`; an unknown plain name is an error. A tag that matches nothing
    /// is not: a goal asking for `tag:nomad` still runs on a host whose operator removed the
    /// Nomad probes. Order follows the catalog, each probe once.
    pub fn select(&self, names: &[String]) -> Result<Vec<ProbeDef>, ProbeError> {
        let mut wanted: BTreeSet<&str> = BTreeSet::new();
        for sel in names {
            let sel = sel.trim();
            if sel == "*" {
                wanted.extend(self.probes.iter().map(|p| p.name.as_str()));
            } else if let Some(tag) = sel.strip_prefix("tag:") {
                wanted.extend(
                    self.probes
                        .iter()
                        .filter(|p| p.tags.iter().any(|t| t == tag))
                        .map(|p| p.name.as_str()),
                );
            } else if self.probes.iter().any(|p| p.name == sel) {
                wanted.insert(sel);
            } else {
                return Err(ProbeError::Unknown(sel.to_string()));
            }
        }
        Ok(self
            .probes
            .iter()
            .filter(|p| wanted.contains(p.name.as_str()))
            .cloned()
            .collect())
    }
}

fn definition(origin: &str, (line, column): (usize, usize), message: &str) -> ProbeError {
    ProbeError::Definition {
        origin: origin.to_string(),
        line,
        column,
        message: message.to_string(),
    }
}

/// What is wrong with one probe table: the message of a `ProbeError::Definition`.
#[derive(Debug, thiserror::Error)]
enum Invalid {
    #[error("probe name `{0}` must be non-empty and use only letters, digits, `-`, `_`, `.`")]
    Name(String),
    #[error("probe `{name}`: {problem}")]
    Field { name: String, problem: Problem },
}

#[derive(Debug, thiserror::Error)]
enum Problem {
    #[error("`{key}` does not apply to kind = \"{kind}\"")]
    NotForKind {
        key: &'static str,
        kind: &'static str,
    },
    /// (kind, key)
    #[error("kind = \"{0}\" needs `{1}`")]
    Needs(&'static str, &'static str),
    #[error("`argv` must not be empty")]
    EmptyArgv,
    #[error("`argv[0]` must name a program")]
    NoProgram,
    #[error("`url` must start with http:// or https://")]
    Scheme,
    #[error("`path` must be absolute")]
    RelativePath,
    #[error("`tail_lines` must be at least 1")]
    NoTail,
    #[error("`timeout_secs` = {0} must be between 0 and 3600")]
    Timeout(f64),
    #[error("`max_bytes` must be at least 1")]
    NoBytes,
    #[error("tag `{0}` must be one word")]
    Tag(String),
}

/// Checks what serde cannot: which keys belong to which kind, and sane values.
fn validate(raw: RawProbe, origin: &str, defaults: ProbeDefaults) -> Result<ProbeDef, Invalid> {
    let name = raw.name.into_inner();
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid_name {
        return Err(Invalid::Name(name));
    }
    let p = |problem: Problem| Invalid::Field {
        name: name.clone(),
        problem,
    };
    let only = |present: bool, key: &'static str, kind: &'static str| -> Result<(), Invalid> {
        if present {
            Err(p(Problem::NotForKind { key, kind }))
        } else {
            Ok(())
        }
    };
    let kind = match raw.kind {
        RawKind::Command => {
            only(raw.url.is_some(), "url", "command")?;
            only(raw.path.is_some(), "path", "command")?;
            only(raw.tail_lines.is_some(), "tail_lines", "command")?;
            let argv = raw
                .argv
                .ok_or_else(|| p(Problem::Needs("command", "argv")))?;
            match argv.first() {
                None => return Err(p(Problem::EmptyArgv)),
                Some(a) if a.trim().is_empty() => {
                    return Err(p(Problem::NoProgram));
                }
                Some(_) => {}
            }
            ProbeKind::Command { argv }
        }
        RawKind::Http => {
            only(raw.argv.is_some(), "argv", "http")?;
            only(raw.path.is_some(), "path", "http")?;
            only(raw.tail_lines.is_some(), "tail_lines", "http")?;
            only(!raw.unavailable_when.is_empty(), "unavailable_when", "http")?;
            let url = raw.url.ok_or_else(|| p(Problem::Needs("http", "url")))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(p(Problem::Scheme));
            }
            ProbeKind::Http { url }
        }
        RawKind::File => {
            only(raw.argv.is_some(), "argv", "file")?;
            only(raw.url.is_some(), "url", "file")?;
            only(!raw.unavailable_when.is_empty(), "unavailable_when", "file")?;
            let path = raw.path.ok_or_else(|| p(Problem::Needs("file", "path")))?;
            if !path.is_absolute() {
                return Err(p(Problem::RelativePath));
            }
            let tail_lines = raw.tail_lines.unwrap_or(DEFAULT_TAIL_LINES);
            if tail_lines == 0 {
                return Err(p(Problem::NoTail));
            }
            ProbeKind::File { path, tail_lines }
        }
    };
    let timeout = match raw.timeout_secs {
        None => defaults.timeout,
        Some(t) if t.is_finite() && t > 0.0 && t <= 3600.0 => Duration::from_secs_f64(t),
        Some(t) => {
            return Err(p(Problem::Timeout(t)));
        }
    };
    let max_bytes = raw.max_bytes.unwrap_or(defaults.max_bytes);
    if max_bytes == 0 {
        return Err(p(Problem::NoBytes));
    }
    if let Some(t) = raw
        .tags
        .iter()
        .find(|t| t.is_empty() || t.contains(char::is_whitespace))
    {
        return Err(p(Problem::Tag(t.clone())));
    }
    Ok(ProbeDef {
        name,
        description: raw.description,
        kind,
        timeout,
        max_bytes,
        parse: raw.parse,
        tags: raw.tags,
        unavailable_when: raw.unavailable_when,
        origin: origin.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const DEFAULTS: ProbeDefaults = ProbeDefaults {
        timeout: Duration::from_secs(10),
        max_bytes: 16 * 1024,
    };

    fn file(text: &str) -> SourceFile {
        SourceFile {
            origin: "ctx/test.toml".into(),
            stem: "test".into(),
            text: text.into(),
        }
    }

    fn load(text: &str) -> Result<Catalog, ProbeError> {
        Catalog::load(&[file(text)], DEFAULTS)
    }

    #[test]
    fn parses_all_kinds_and_defaults() {
        let c = load(
            r#"
[[probe]]
name = "echo"
description = "says hi"
kind = "command"
argv = ["echo", "hi"]
tags = ["host"]

[[probe]]
name = "api"
kind = "http"
url = "http://127.0.0.1:4646/v1/jobs"
parse = "json"
timeout_secs = 0.5
max_bytes = 100

[[probe]]
name = "load"
kind = "file"
path = "/proc/loadavg"

[[check]]
name = "reserved for later"
anything = { goes = true }
"#,
        )
        .unwrap();
        assert_eq!(c.probes.len(), 3);
        assert_eq!(c.probes[0].timeout, Duration::from_secs(10));
        assert_eq!(c.probes[1].timeout, Duration::from_millis(500));
        assert_eq!(c.probes[1].max_bytes, 100);
        assert_eq!(c.probes[1].parse, ParseMode::Json);
        assert!(matches!(
            c.probes[2].kind,
            ProbeKind::File {
                tail_lines: DEFAULT_TAIL_LINES,
                ..
            }
        ));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = load("[[probe]]\nname = \"x\"\nkind = \"command\"\nargvv = [\"echo\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("ctx/test.toml:4:1:"), "{err}");
        assert!(err.contains("argvv"), "{err}");
    }

    #[test]
    fn unknown_top_level_table_is_rejected() {
        let err = load("[[probes]]\nname = \"x\"\n").unwrap_err().to_string();
        assert!(err.starts_with("ctx/test.toml:1:"), "{err}");
        assert!(err.contains("probes"), "{err}");
    }

    #[test]
    fn semantic_errors_name_the_probe_line() {
        let err = load(
            "\n\n[[probe]]\nname = \"x\"\nkind = \"command\"\nurl = \"http://a\"\nargv = [\"a\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("ctx/test.toml:4:8:"), "{err}");
        assert!(err.contains("`url` does not apply"), "{err}");
        for (body, needle) in [
            ("kind = \"command\"\nargv = []", "must not be empty"),
            ("kind = \"command\"", "needs `argv`"),
            ("kind = \"http\"\nurl = \"ftp://x\"", "http://"),
            ("kind = \"file\"\npath = \"rel/path\"", "absolute"),
            (
                "kind = \"file\"\npath = \"/x\"\ntail_lines = 0",
                "tail_lines",
            ),
            (
                "kind = \"command\"\nargv = [\"a\"]\ntimeout_secs = 0",
                "timeout_secs",
            ),
            ("kind = \"shell\"\nargv = [\"a\"]", "shell"),
        ] {
            let err = load(&format!("[[probe]]\nname = \"x\"\n{body}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn duplicate_names_across_files_are_rejected() {
        let a = file("[[probe]]\nname = \"x\"\nkind = \"command\"\nargv = [\"a\"]\n");
        let mut b = a.clone();
        b.origin = "ctx/other.toml".into();
        let err = Catalog::load(&[a, b], DEFAULTS).unwrap_err().to_string();
        assert!(err.starts_with("ctx/other.toml:2:8:"), "{err}");
        assert!(err.contains("already defined in ctx/test.toml"), "{err}");
    }

    #[test]
    fn select_by_name_tag_and_star() {
        let c = load(
            r#"
[[probe]]
name = "a"
kind = "command"
argv = ["true"]
tags = ["host"]
[[probe]]
name = "b"
kind = "command"
argv = ["true"]
tags = ["stack"]
[[probe]]
name = "c"
kind = "command"
argv = ["true"]
tags = ["host", "stack"]
"#,
        )
        .unwrap();
        let names = |sel: &[&str]| -> Vec<String> {
            c.select(&sel.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap()
                .into_iter()
                .map(|p| p.name)
                .collect()
        };
        assert_eq!(names(&["*"]), ["a", "b", "c"]);
        assert_eq!(names(&["tag:host"]), ["a", "c"]);
        assert_eq!(names(&["c", "a", "tag:stack"]), ["a", "b", "c"]);
        assert!(names(&["tag:nothing"]).is_empty());
        assert!(names(&[]).is_empty());
        let err = c.select(&["nope".to_string()]).unwrap_err();
        assert!(matches!(err, ProbeError::Unknown(ref n) if n == "nope"));
    }

    #[test]
    fn bundled_probes_load() {
        let files =
            crate::defs::bundled::files(crate::defs::bundled::Kind::Context, None, false, "toml")
                .unwrap();
        assert!(!files.is_empty());
        let c = Catalog::load(&files, DEFAULTS).unwrap();
        for name in [
            "failed-units",
            "journal-errors",
            "disk",
            "memory",
            "load",
            "listening-ports",
            "nomad-jobs",
            "consul-members",
            "nixos-version",
            "docker-containers",
        ] {
            assert!(c.probes.iter().any(|p| p.name == name), "missing {name}");
        }
        for p in &c.probes {
            assert!(!p.description.is_empty(), "{} has no description", p.name);
            assert!(!p.tags.is_empty(), "{} has no tags", p.name);
        }
    }
}
