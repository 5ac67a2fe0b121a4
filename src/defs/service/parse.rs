//! One `service.yaml` → a [`ServiceContract`]: YAML through serde-saphyr (unknown keys and wrong
//! types refused by serde, with the line), then the values serde cannot judge (names, paths,
//! ports), each error naming the file, the line and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{
    Exposure, MAX_FILE_BYTES, Protocol, RestartPolicy, ServiceContract, ServiceError, Visibility,
    is_safe_name,
};

/// A contract and where its dependencies were written (checked once every file is read).
pub(super) struct Parsed {
    pub(super) contract: ServiceContract,
    pub(super) dependency_lines: Vec<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContract {
    owner: Spanned<String>,
    image: Spanned<String>,
    #[serde(default)]
    container: Option<Spanned<String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    exposure: Vec<Spanned<RawExposure>>,
    #[serde(default)]
    dependencies: Vec<Spanned<String>>,
    #[serde(default)]
    healthcheck: Option<Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
    #[serde(default)]
    restart: Option<RestartPolicy>,
    #[serde(default)]
    persistence: Vec<Spanned<String>>,
    #[serde(default)]
    variables: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExposure {
    port: u16,
    #[serde(default)]
    protocol: Protocol,
    visibility: Visibility,
}

/// Reads and checks `file`, the contract of the service `name`.
pub(super) fn read(name: &str, file: &Path) -> Result<Parsed, ServiceError> {
    let io = |source| ServiceError::Io {
        path: file.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(file).map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(ServiceError::TooLarge {
            file: file.to_path_buf(),
            size,
        });
    }
    let text = std::fs::read_to_string(file).map_err(io)?;
    parse(name, file, &text)
}

/// Parses `text` (the contents of `file`) as the contract of `name`.
pub(super) fn parse(name: &str, file: &Path, text: &str) -> Result<Parsed, ServiceError> {
    let mut options = serde_saphyr::Options::default();
    // The message is wanted plain: the line is reported separately, the field by name.
    options.with_snippet = false;
    let raw: RawContract = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| yaml_error(file, text, &e))?;
    let at = Fields { file };
    let owner = at.non_empty("owner", &raw.owner)?;
    let image = at.non_empty("image", &raw.image)?;
    let container = match &raw.container {
        Some(c) => at.name("container", c)?,
        None => name.to_string(),
    };
    let mut dependency_lines = Vec::new();
    let mut dependencies = Vec::new();
    for d in &raw.dependencies {
        dependencies.push(at.name("dependencies", d)?);
        dependency_lines.push(d.referenced.line());
        if d.value == name {
            return Err(at.err(
                d.referenced.line(),
                "dependencies",
                "a service cannot depend on itself",
            ));
        }
    }
    let healthcheck = match &raw.healthcheck {
        Some(h) => Some(super::healthcheck::build(name, file, h)?),
        None => None,
    };
    let contract = ServiceContract {
        name: name.to_string(),
        file: file.to_path_buf(),
        owner,
        image,
        container,
        description: raw.description,
        exposure: exposure(&at, &raw.exposure)?,
        dependencies,
        healthcheck,
        restart: raw.restart,
        persistence: persistence(&at, &raw.persistence)?,
        variables: variables(&at, &raw.variables)?,
    };
    Ok(Parsed {
        contract,
        dependency_lines,
    })
}

/// Errors about one file's fields.
struct Fields<'a> {
    file: &'a Path,
}

impl Fields<'_> {
    fn err(&self, line: u64, field: &str, message: &str) -> ServiceError {
        ServiceError::Field {
            file: self.file.to_path_buf(),
            line,
            field: field.to_string(),
            message: message.to_string(),
        }
    }

    fn non_empty(&self, field: &str, v: &Spanned<String>) -> Result<String, ServiceError> {
        let s = v.value.trim();
        if s.is_empty() {
            return Err(self.err(v.referenced.line(), field, "is empty"));
        }
        Ok(s.to_string())
    }

    fn name(&self, field: &str, v: &Spanned<String>) -> Result<String, ServiceError> {
        if !is_safe_name(&v.value) {
            let message = format!(
                "`{}` is not a safe name (letters, digits, `_`, `.`, `-`; starting with a letter or digit)",
                v.value
            );
            return Err(self.err(v.referenced.line(), field, &message));
        }
        Ok(v.value.clone())
    }
}

fn exposure(at: &Fields, raw: &[Spanned<RawExposure>]) -> Result<Vec<Exposure>, ServiceError> {
    let mut out: Vec<Exposure> = Vec::new();
    for e in raw {
        let x = &e.value;
        let line = e.referenced.line();
        if x.port == 0 {
            return Err(at.err(line, "exposure.port", "0 is not a port"));
        }
        if out
            .iter()
            .any(|o| o.port == x.port && o.protocol == x.protocol)
        {
            return Err(at.err(line, "exposure.port", "the same port and protocol twice"));
        }
        out.push(Exposure {
            port: x.port,
            protocol: x.protocol,
            visibility: x.visibility,
        });
    }
    Ok(out)
}

fn persistence(at: &Fields, raw: &[Spanned<String>]) -> Result<Vec<PathBuf>, ServiceError> {
    raw.iter()
        .map(|p| {
            let path = PathBuf::from(&p.value);
            if path.is_absolute() {
                Ok(path)
            } else {
                Err(at.err(
                    p.referenced.line(),
                    "persistence",
                    &format!("`{}` is not an absolute path", p.value),
                ))
            }
        })
        .collect()
}

/// Names only: `NAME=value` or a lower-case word is refused, so that a secret's value cannot
/// slip into a contract (and from there into a prompt) as a "variable".
fn variables(at: &Fields, raw: &[Spanned<String>]) -> Result<Vec<String>, ServiceError> {
    raw.iter()
        .map(|v| {
            let ok = v.value.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && v.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && v.value.len() <= 128;
            if ok {
                Ok(v.value.clone())
            } else {
                Err(at.err(
                    v.referenced.line(),
                    "variables",
                    &format!("`{}` is not a variable name (letters, digits, `_`): list names, never values", v.value),
                ))
            }
        })
        .collect()
}

/// A YAML or serde error: its line, the key written on that line as the field.
fn yaml_error(file: &Path, text: &str, e: &serde_saphyr::Error) -> ServiceError {
    let line = e.location().map(|l| l.line()).unwrap_or(0);
    let message = e.without_snippet().to_string();
    let field = field_in_message(&message)
        .or_else(|| key_at_line(text, line))
        .unwrap_or_else(|| "(document)".into());
    ServiceError::Field {
        file: file.to_path_buf(),
        line,
        field,
        message,
    }
}

/// `unknown field `x`` and `missing field `x`` name their field.
fn field_in_message(message: &str) -> Option<String> {
    for lead in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.split(lead).nth(1) {
            return rest.split('`').next().map(str::to_string);
        }
    }
    None
}

/// The mapping key written on `line` (1-based), if the line has one: `  port: x`, `- name: y`.
fn key_at_line(text: &str, line: u64) -> Option<String> {
    let l = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let l = l.trim_start().trim_start_matches("- ").trim_start();
    let (key, _) = l.split_once(':')?;
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then(|| key.to_string())
}
