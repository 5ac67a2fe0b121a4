//! One notice and its message: one line saying what happened, the host, the one command to act
//! on it and, when `serve.public_url` is set, the page that shows it (never an approve-by-GET
//! link: approving from the page needs a login and a POST).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::base::redact::Redactor;

/// What a notice is about, for its command and link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About {
    Run(String),
    Action(String),
    Change(String),
    /// Nothing with a page of its own (the daemon, the budget).
    Host,
}

/// Something a target may be told, before it is addressed to a target.
#[derive(Debug, Clone)]
pub struct Notice {
    /// One of `config::notify::EVENTS`, or `test`.
    pub event: String,
    pub severity: &'static str,
    /// Same key, same message: a target gets it once (file name safe).
    pub key: String,
    pub summary: String,
    pub about: About,
    pub subject: Option<String>,
    pub command: String,
}

/// The message as the outbox keeps it and as the generic webhook sends it (schema version 1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub version: u32,
    /// The dedup key: equal for the same escalation of the same run, action or change.
    pub id: String,
    pub event: String,
    pub severity: String,
    /// One line: what happened.
    pub summary: String,
    pub host: String,
    /// The one command to act on it.
    pub command: String,
    /// The page for it, when `serve.public_url` is set.
    pub link: Option<String>,
    pub run: Option<String>,
    pub action: Option<String>,
    pub change: Option<String>,
    pub subject: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
}

impl Message {
    /// The message for `notice` on `host`, redacted.
    pub fn new(
        notice: &Notice,
        host: &str,
        public_url: Option<&str>,
        redactor: &Redactor,
    ) -> Message {
        let base = public_url.map(|u| u.trim_end_matches('/'));
        let (run, action, change, link) = match &notice.about {
            About::Run(id) => (
                Some(id.clone()),
                None,
                None,
                base.map(|b| format!("{b}/runs/{id}")),
            ),
            About::Action(id) => (
                None,
                Some(id.clone()),
                None,
                base.map(|b| format!("{b}/approvals?action={id}")),
            ),
            About::Change(id) => (
                None,
                None,
                Some(id.clone()),
                base.map(|b| format!("{b}/approvals?change={id}")),
            ),
            About::Host => (None, None, None, base.map(str::to_string)),
        };
        Message {
            version: 1,
            id: notice.key.clone(),
            event: notice.event.clone(),
            severity: notice.severity.to_string(),
            summary: one_line(&redactor.redact(&notice.summary)),
            host: host.to_string(),
            command: redactor.redact(&notice.command),
            link,
            run,
            action,
            change,
            subject: notice.subject.as_ref().map(|s| redactor.redact(s)),
            time: OffsetDateTime::now_utc(),
        }
    }

    /// The title line: `[steward@host] summary`.
    pub fn title(&self) -> String {
        format!("[steward@{}] {}", self.host, self.summary)
    }

    /// Plain text: the title, the command, the link.
    pub fn text(&self) -> String {
        let mut out = format!("{}\nrun: {}", self.title(), self.command);
        if let Some(link) = &self.link {
            out.push_str(&format!("\nopen: {link}"));
        }
        out
    }
}

/// The first line, cut to 300 characters: a message says what happened in one line.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.chars().count() > 300 {
        let cut: String = line.chars().take(299).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

/// This host's name (the kernel's), else `unknown-host`.
pub fn host_name() -> String {
    crate::base::procfs::host_name().unwrap_or_else(|| "unknown-host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(about: About) -> Notice {
        Notice {
            event: "escalation".into(),
            severity: "critical",
            key: "escalation-r1".into(),
            summary: "run r1 escalated: token sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAA leaked\nsecond"
                .into(),
            about,
            subject: None,
            command: "steward runs show r1".into(),
        }
    }

    #[test]
    fn links_point_at_the_page_views_and_secrets_are_redacted() {
        let r = Redactor::new(vec![]);
        let m = Message::new(
            &notice(About::Run("r1".into())),
            "h",
            Some("https://s.example/"),
            &r,
        );
        assert_eq!(m.link.as_deref(), Some("https://s.example/runs/r1"));
        assert!(!m.summary.contains("AAAAAAAAAAAA"), "{}", m.summary);
        assert!(!m.summary.contains("second"));
        let m = Message::new(
            &notice(About::Action("a1".into())),
            "h",
            Some("https://s"),
            &r,
        );
        assert_eq!(m.link.as_deref(), Some("https://s/approvals?action=a1"));
        let m = Message::new(&notice(About::Change("c-1".into())), "h", None, &r);
        assert_eq!(m.link, None);
        assert!(m.text().contains("run: steward runs show r1"));
    }
}
