//! `[[notify]]`: where steward tells a human what needs them (one table per target). The
//! delivery itself is `daemon/notify`; this file is what a target may say and what is refused.
//!
//! Secrets never live in the config text: a token, password or secret URL comes from a file
//! (`token_file`, `password_file`, `url_file`) or the systemd credential `notify-<name>`. A key
//! such as `token` or `password` in a table is a config error, and so is a URL carrying a
//! password or a token shape.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The events a target can ask for, the closed set. `test` is `steward notify test` only.
pub const EVENTS: [&str; 9] = [
    "escalation",
    "action_pending",
    "change_pending",
    "run_failed",
    "rollback_done",
    "rollback_failed",
    "budget_exhausted",
    "flapping",
    "daemon_degraded",
];

/// The kinds of target.
pub const KINDS: [&str; 6] = ["webhook", "ntfy", "telegram", "slack", "matrix", "email"];

/// The severities, lowest first.
pub const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

/// Keys that would put a secret in the config text: refused with the file key to use instead.
const INLINE_SECRETS: [(&str, &str); 5] = [
    ("token", "token_file"),
    ("password", "password_file"),
    ("secret", "token_file"),
    ("api_key", "token_file"),
    ("access_token", "token_file"),
];

/// One `[[notify]]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    /// Unique; names the outbox directory and the credential `notify-<name>`.
    pub name: String,
    /// `webhook`, `ntfy`, `telegram`, `slack`, `matrix` or `email`.
    pub kind: String,
    /// The endpoint: the webhook's URL, the ntfy server, the Telegram API base (default
    /// `https://api.telegram.org`), the Matrix homeserver, `smtp://host:port` for email.
    #[serde(default)]
    pub url: Option<String>,
    /// A file holding the URL, for URLs that are themselves secrets (Slack's incoming webhooks).
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Which events this target gets; empty: all of them.
    #[serde(default)]
    pub events: Vec<String>,
    /// Events below this severity are not sent (`info`, `warning`, `critical`).
    #[serde(default = "default_severity")]
    pub min_severity: String,
    /// Messages delivered per rolling hour at most; the excess is recorded `rate_limited`.
    #[serde(default = "default_per_hour")]
    pub max_per_hour: u32,
    /// The first retry waits this long; each later one twice the one before.
    #[serde(default = "default_retry")]
    pub retry_secs: u64,
    /// Attempts before a message is given up on.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// A message older than this is given up on, whatever its attempts.
    #[serde(default = "default_age")]
    pub max_age_secs: u64,
    /// Each attempt's time limit (connect, send, answer).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// The bearer token (webhook, ntfy, matrix) or the bot token (telegram).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The SMTP password (with `username`).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// ntfy: the topic, priority 1..=5 (default from the severity) and tags.
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub priority: Option<u8>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// telegram: the chat to send to.
    #[serde(default)]
    pub chat_id: Option<String>,
    /// matrix: the room id (`!abc:example.org`).
    #[serde(default)]
    pub room_id: Option<String>,
    /// email: sender, recipients, the SMTP user, and whether to require STARTTLS (default
    /// true; false sends in plain text and is meant for a relay on the same host).
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default = "yes")]
    pub starttls: bool,
    /// Refused: secrets by file only. Kept as fields so that the error can say which file key to
    /// use, rather than "unknown field".
    #[serde(default, skip_serializing)]
    pub token: Option<toml::Value>,
    #[serde(default, skip_serializing)]
    pub password: Option<toml::Value>,
    #[serde(default, skip_serializing)]
    pub secret: Option<toml::Value>,
    #[serde(default, skip_serializing)]
    pub api_key: Option<toml::Value>,
    #[serde(default, skip_serializing)]
    pub access_token: Option<toml::Value>,
}

fn default_severity() -> String {
    "info".into()
}
fn default_per_hour() -> u32 {
    30
}
fn default_retry() -> u64 {
    30
}
fn default_attempts() -> u32 {
    10
}
fn default_age() -> u64 {
    86_400
}
fn default_timeout() -> u64 {
    10
}
fn yes() -> bool {
    true
}

/// The rank of a severity name (`info` 0 .. `critical` 2), `None` for an unknown one.
pub fn severity_rank(name: &str) -> Option<usize> {
    SEVERITIES.iter().position(|s| *s == name)
}

impl NotifyTarget {
    /// Whether this target wants `event` at `severity`.
    pub fn wants(&self, event: &str, severity: &str) -> bool {
        let floor = severity_rank(&self.min_severity).unwrap_or(0);
        let wanted = self.events.is_empty() || self.events.iter().any(|e| e == event);
        wanted && severity_rank(severity).unwrap_or(0) >= floor
    }

    fn inline_secrets(&self) -> [(&'static str, &'static str, bool); 5] {
        let set = [
            self.token.is_some(),
            self.password.is_some(),
            self.secret.is_some(),
            self.api_key.is_some(),
            self.access_token.is_some(),
        ];
        let mut out = [("", "", false); 5];
        for (i, ((key, file), set)) in INLINE_SECRETS.iter().zip(set).enumerate() {
            out[i] = (key, file, set);
        }
        out
    }

    /// The first problem with this table as (field, message).
    fn check(&self) -> Result<(), (&'static str, String)> {
        for (key, file, set) in self.inline_secrets() {
            if set {
                return Err((
                    key,
                    format!(
                        "a secret in the config text is refused: put it in a file named by \
                         `{file}` (or the systemd credential `notify-{}`)",
                        self.name
                    ),
                ));
            }
        }
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(("name", "must be letters, digits, `-` or `_`".into()));
        }
        if !KINDS.contains(&self.kind.as_str()) {
            return Err((
                "kind",
                format!("unknown kind `{}`; known: {}", self.kind, KINDS.join(", ")),
            ));
        }
        if let Some(bad) = self.events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
            return Err((
                "events",
                format!("unknown event `{bad}`; known: {}", EVENTS.join(", ")),
            ));
        }
        if severity_rank(&self.min_severity).is_none() {
            return Err((
                "min_severity",
                format!("must be one of {}", SEVERITIES.join(", ")),
            ));
        }
        self.check_numbers()?;
        self.check_url()?;
        self.check_kind_fields()
    }

    fn check_numbers(&self) -> Result<(), (&'static str, String)> {
        if self.max_per_hour == 0 {
            return Err(("max_per_hour", "must be at least 1".into()));
        }
        if self.max_attempts == 0 {
            return Err(("max_attempts", "must be at least 1".into()));
        }
        if self.retry_secs == 0 {
            return Err(("retry_secs", "must be at least 1".into()));
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err(("timeout_secs", "must be between 1 and 120".into()));
        }
        if self.priority.is_some_and(|p| !(1..=5).contains(&p)) {
            return Err(("priority", "must be between 1 and 5".into()));
        }
        Ok(())
    }

    fn check_url(&self) -> Result<(), (&'static str, String)> {
        let Some(url) = &self.url else {
            let optional = self.kind == "telegram" || self.url_file.is_some();
            return if optional {
                Ok(())
            } else {
                Err(("url", format!("a `{}` target needs a url", self.kind)))
            };
        };
        if self.url_file.is_some() {
            return Err((
                "url_file",
                "give either `url` or `url_file`, not both".into(),
            ));
        }
        let scheme_ok = if self.kind == "email" {
            url.starts_with("smtp://")
        } else {
            url.starts_with("http://") || url.starts_with("https://")
        };
        if !scheme_ok {
            let want = if self.kind == "email" {
                "smtp://host:port"
            } else {
                "an http:// or https:// URL"
            };
            return Err(("url", format!("must be {want}")));
        }
        let authority = url.split("://").nth(1).unwrap_or("").split('/').next();
        if authority.is_some_and(|a| a.contains('@'))
            || crate::base::redact::find_secret(url).is_some()
        {
            return Err((
                "url",
                "carries a secret: put the URL in a file named by `url_file`, or the \
                 credential in `token_file`/`password_file`"
                    .into(),
            ));
        }
        Ok(())
    }

    fn check_kind_fields(&self) -> Result<(), (&'static str, String)> {
        let need = |field: &'static str, set: bool| {
            if set {
                Ok(())
            } else {
                Err((field, format!("a `{}` target needs `{field}`", self.kind)))
            }
        };
        match self.kind.as_str() {
            "ntfy" => need("topic", self.topic.is_some()),
            "telegram" => need("chat_id", self.chat_id.is_some()),
            "matrix" => need("room_id", self.room_id.is_some()),
            "email" => {
                need("from", self.from.is_some())?;
                need("to", !self.to.is_empty())
            }
            _ => Ok(()),
        }
    }
}

/// Checks every `[[notify]]` table and that names are unique: (`notify[i].field`, message).
pub fn check(targets: &[NotifyTarget]) -> Result<(), (String, String)> {
    for (i, t) in targets.iter().enumerate() {
        t.check().map_err(|(field, message)| {
            (
                format!("notify[{i}].{field}"),
                format!("(target `{}`) {message}", t.name),
            )
        })?;
        if targets[..i].iter().any(|o| o.name == t.name) {
            return Err((
                format!("notify[{i}].name"),
                format!(
                    "`{}` names two [[notify]] tables; names must be unique",
                    t.name
                ),
            ));
        }
    }
    Ok(())
}

/// `serve.public_url`: an http(s) URL without a trailing slash concern (one is trimmed).
pub fn check_public_url(url: &str) -> Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err("must be an http:// or https:// URL (the page's base, for links in messages)".into())
    }
}
