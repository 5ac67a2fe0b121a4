//! A target's credentials: from the file its config names, else the systemd credential
//! `notify-<name>` (`$CREDENTIALS_DIRECTORY`). Never from the config text (`config::notify`
//! refuses that). Read at each attempt, so a rotated file is picked up without a restart.

use std::path::{Path, PathBuf};

use crate::config::notify::NotifyTarget;

fn read(path: &Path, what: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the {what} file {}: {e}", path.display()))?;
    let value = text.trim().to_string();
    if value.is_empty() {
        return Err(format!("the {what} file {} is empty", path.display()));
    }
    Ok(value)
}

fn credential(target: &NotifyTarget) -> Option<PathBuf> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    let path = PathBuf::from(dir).join(format!("notify-{}", target.name));
    path.is_file().then_some(path)
}

/// The token (`token_file`, else the credential), `None` when neither is there.
pub fn token(target: &NotifyTarget) -> Result<Option<String>, String> {
    match target
        .token_file
        .as_deref()
        .map(Path::to_path_buf)
        .or_else(|| credential(target))
    {
        Some(p) => read(&p, "token").map(Some),
        None => Ok(None),
    }
}

/// The SMTP password (`password_file`, else the credential).
pub fn password(target: &NotifyTarget) -> Result<Option<String>, String> {
    match target
        .password_file
        .as_deref()
        .map(Path::to_path_buf)
        .or_else(|| credential(target))
    {
        Some(p) => read(&p, "password").map(Some),
        None => Ok(None),
    }
}

/// The endpoint: `url`, else the contents of `url_file`.
pub fn url(target: &NotifyTarget) -> Result<String, String> {
    match (&target.url, &target.url_file) {
        (Some(u), _) => Ok(u.clone()),
        (None, Some(p)) => read(p, "url"),
        (None, None) if target.kind == "telegram" => Ok("https://api.telegram.org".into()),
        (None, None) => Err(format!("target `{}` has no url", target.name)),
    }
}

/// Every secret of the target, for redacting error text.
pub fn all(target: &NotifyTarget) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(Some(t)) = token(target) {
        out.push(t);
    }
    if let Ok(Some(p)) = password(target) {
        out.push(p);
    }
    if target.url_file.is_some()
        && let Ok(u) = url(target)
    {
        out.push(u);
    }
    out.retain(|s| s.len() >= 4);
    out
}
