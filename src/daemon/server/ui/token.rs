//! The web page's login token: where it is found, and what makes it refused. The page is served
//! only with one; a token that is short, unreadable or equal to a webhook token stops the start
//! (naming the file), never a page left open or one guarded by a token a sender already holds.

use std::path::{Path, PathBuf};

use super::super::ServeError;
use super::super::auth::{self, TokenDigest};
use crate::config::Config;

/// The fewest bytes a UI token has: it guards approvals of destructive actions.
pub(in crate::daemon::server) const MIN_LEN: usize = 32;

/// The UI token file in order: `serve.ui_token_file`, `$STEWARD_UI_TOKEN_FILE`, the systemd
/// credential `ui-token`; `None`: the page is off.
pub(in crate::daemon::server) fn ui_token_path(cfg: &Config) -> Option<PathBuf> {
    cfg.ui_token_file().or_else(|| auth::credential("ui-token"))
}

/// The token in `path` (surrounding whitespace trimmed), as its digest: at least [`MIN_LEN`]
/// bytes and none of `webhooks`.
pub(in crate::daemon::server) fn load(
    path: &Path,
    webhooks: &[TokenDigest],
) -> Result<TokenDigest, ServeError> {
    let refuse = |message: String| ServeError::UiToken {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| refuse(e.to_string()))?;
    let token = text.trim();
    if token.len() < MIN_LEN {
        return Err(refuse(format!(
            "the token must be at least {MIN_LEN} bytes (it has {})",
            token.len()
        )));
    }
    let digest = auth::digest(token.as_bytes());
    if webhooks.contains(&digest) {
        return Err(refuse(
            "the UI token equals a webhook token: a sender of alerts could approve actions; \
             use a token of its own"
                .into(),
        ));
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_token_is_long_enough_readable_and_not_a_webhook_token() {
        let dir = tempfile::tempdir().unwrap();
        let good = "u".repeat(MIN_LEN);
        let p = write(dir.path(), "ok", &format!("{good}\n"));
        assert_eq!(load(&p, &[]).unwrap(), auth::digest(good.as_bytes()));

        let short = write(dir.path(), "short", &"s".repeat(MIN_LEN - 1));
        let e = load(&short, &[]).unwrap_err().to_string();
        assert!(
            e.contains("at least 32 bytes") && e.contains("short"),
            "{e}"
        );

        let e = load(&dir.path().join("absent"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("UI token file") && e.contains("absent"), "{e}");

        let e = load(&p, &[auth::digest(good.as_bytes())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("equals a webhook token"), "{e}");
    }

    #[test]
    fn the_config_key_wins_over_the_environment() {
        let mut cfg = Config::default();
        cfg.serve.ui_token_file = Some(PathBuf::from("/etc/steward/ui-token"));
        assert_eq!(
            ui_token_path(&cfg),
            Some(PathBuf::from("/etc/steward/ui-token"))
        );
    }
}
