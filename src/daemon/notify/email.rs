//! Email over SMTP with lettre. `url = "smtp://host:port"`; `starttls = true` (the default)
//! requires STARTTLS before anything is sent (port 587 unless given), with the platform's
//! certificate verification; `starttls = false` sends in plain text (port 25 unless given) and
//! is meant for a relay on the same host or a loopback test server. `username` with
//! `password_file` (or the credential `notify-<name>`) logs in.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{SmtpTransport, Transport};

use super::message::Message;
use super::secret;
use super::send::Sent;
use crate::config::notify::NotifyTarget;

fn failed(error: String) -> Sent {
    Sent {
        status: None,
        error: Some(error),
    }
}

/// Host and port of `smtp://host:port`.
fn address(url: &str, starttls: bool) -> Result<(String, u16), String> {
    let rest = url
        .strip_prefix("smtp://")
        .ok_or_else(|| format!("`{url}` is not an smtp:// URL"))?;
    let authority = rest.split('/').next().unwrap_or("");
    let default = if starttls { 587 } else { 25 };
    match authority.rsplit_once(':') {
        Some((host, port)) => port
            .parse()
            .map(|p| (host.to_string(), p))
            .map_err(|_| format!("`{url}`: bad port `{port}`")),
        None => Ok((authority.to_string(), default)),
    }
}

fn mailer(t: &NotifyTarget) -> Result<SmtpTransport, String> {
    let url = secret::url(t)?;
    let (host, port) = address(&url, t.starttls)?;
    let builder = if t.starttls {
        SmtpTransport::starttls_relay(&host).map_err(|e| format!("SMTP {host}: {e}"))?
    } else {
        SmtpTransport::builder_dangerous(&host)
    };
    let mut builder = builder
        .port(port)
        .timeout(Some(Duration::from_secs(t.timeout_secs)));
    if let Some(user) = &t.username {
        let password = secret::password(t)?
            .ok_or("`username` is set but no `password_file` (or credential notify-NAME)")?;
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

fn mail(t: &NotifyTarget, m: &Message) -> Result<lettre::Message, String> {
    let from = t.from.as_deref().unwrap_or("");
    let mut b = lettre::Message::builder()
        .from(from.parse().map_err(|e| format!("`from` {from}: {e}"))?)
        .subject(m.title())
        .header(ContentType::TEXT_PLAIN);
    for to in &t.to {
        b = b.to(to.parse().map_err(|e| format!("`to` {to}: {e}"))?);
    }
    b.body(m.text())
        .map_err(|e| format!("cannot build the mail: {e}"))
}

/// Sends `m` by SMTP (blocking: called on a blocking thread).
pub fn send(t: &NotifyTarget, m: &Message) -> Sent {
    let (mailer, mail) = match mailer(t).and_then(|s| Ok((s, mail(t, m)?))) {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    match mailer.send(&mail) {
        Ok(resp) => Sent {
            status: resp.code().to_string().parse().ok(),
            error: None,
        },
        Err(e) => failed(format!("SMTP: {e}")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn smtp_address_defaults_by_mode() {
        assert_eq!(super::address("smtp://m", true).unwrap(), ("m".into(), 587));
        assert_eq!(super::address("smtp://m", false).unwrap(), ("m".into(), 25));
        assert_eq!(
            super::address("smtp://m:2525", true).unwrap(),
            ("m".into(), 2525)
        );
    }
}
