//! Who may post to a webhook. Each endpoint has a token of its own, so that a leaked one (say,
//! in the configuration of another monitoring system that posts to `/hooks/generic`) does not
//! reach Alertmanager's endpoint too. The token shared by both is a fallback, with a warning.

use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ServeError, ServeOptions};
use crate::config::Config;

/// A webhook endpoint: what a token authorises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Alertmanager,
    Generic,
}

impl Endpoint {
    const ALL: [Endpoint; 2] = [Endpoint::Alertmanager, Endpoint::Generic];

    fn path(self) -> &'static str {
        match self {
            Endpoint::Alertmanager => "/hooks/alertmanager",
            Endpoint::Generic => "/hooks/generic",
        }
    }

    /// The systemd credential holding this endpoint's own token.
    fn credential(self) -> &'static str {
        match self {
            Endpoint::Alertmanager => "webhook-token-alertmanager",
            Endpoint::Generic => "webhook-token-generic",
        }
    }

    fn own_file(self, cfg: &Config) -> Option<&PathBuf> {
        match self {
            Endpoint::Alertmanager => cfg.serve.alertmanager_token_file.as_ref(),
            Endpoint::Generic => cfg.serve.generic_token_file.as_ref(),
        }
    }
}

/// The token's digest: comparing digests in constant time hides the token's length as well.
pub(super) type TokenDigest = [u8; 32];

pub(super) fn digest(bytes: &[u8]) -> TokenDigest {
    Sha256::digest(bytes).into()
}

/// Where a token was found: its own (config key or credential), or the shared one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Own(PathBuf),
    Shared(PathBuf),
}

/// Each endpoint's token; `None`: that endpoint refuses everything (never open).
#[derive(Debug, Clone, Default)]
pub(super) struct Tokens {
    alertmanager: Option<TokenDigest>,
    generic: Option<TokenDigest>,
    /// Why the configuration weakens the separation of the endpoints, or leaves the daemon
    /// with no webhook at all: logged as warnings.
    pub warnings: Vec<String>,
    /// An endpoint left closed on purpose (only the other has a token): logged at info.
    pub notes: Vec<String>,
}

impl Tokens {
    /// Reads every endpoint's token file; any unreadable or short token is an error naming it.
    pub fn load(opts: &ServeOptions, cfg: &Config) -> Result<Tokens, ServeError> {
        let shared = shared_path(opts, cfg);
        let mut tokens = Tokens::default();
        let mut origins = Vec::new();
        for endpoint in Endpoint::ALL {
            let origin = own_path(endpoint, cfg)
                .map(Origin::Own)
                .or_else(|| shared.clone().map(Origin::Shared));
            let Some(origin) = origin else {
                tokens.notes.push(format!(
                    "no token for {}: it answers 503 until one is configured",
                    endpoint.path()
                ));
                continue;
            };
            let path = match &origin {
                Origin::Own(p) | Origin::Shared(p) => p,
            };
            let d = load_token(path)?;
            *tokens.slot(endpoint) = Some(d);
            origins.push(origin);
        }
        if origins.is_empty() {
            tokens.warnings.append(&mut tokens.notes);
        }
        if origins.len() == 2 {
            let same_file = origins[0] == origins[1];
            if same_file || tokens.alertmanager == tokens.generic {
                tokens.warnings.push(
                    "one token authorises both /hooks/alertmanager and /hooks/generic: set \
                     serve.alertmanager_token_file and serve.generic_token_file (or the \
                     credentials webhook-token-alertmanager and webhook-token-generic) to \
                     different tokens, so that a leaked one reaches one endpoint only"
                        .into(),
                );
            }
        }
        Ok(tokens)
    }

    pub fn log(&self) {
        for w in &self.warnings {
            tracing::warn!("{w}");
        }
        for n in &self.notes {
            tracing::info!("{n}");
        }
    }

    fn slot(&mut self, endpoint: Endpoint) -> &mut Option<TokenDigest> {
        match endpoint {
            Endpoint::Alertmanager => &mut self.alertmanager,
            Endpoint::Generic => &mut self.generic,
        }
    }

    /// Every webhook token configured: the UI token must differ from each.
    pub fn configured(&self) -> Vec<TokenDigest> {
        Endpoint::ALL.iter().filter_map(|e| self.get(*e)).collect()
    }

    pub fn get(&self, endpoint: Endpoint) -> Option<TokenDigest> {
        match endpoint {
            Endpoint::Alertmanager => self.alertmanager,
            Endpoint::Generic => self.generic,
        }
    }
}

/// An endpoint's own token file: its config key, else its systemd credential.
fn own_path(endpoint: Endpoint, cfg: &Config) -> Option<PathBuf> {
    if let Some(p) = endpoint.own_file(cfg) {
        return Some(p.clone());
    }
    credential(endpoint.credential())
}

/// The token file shared by both endpoints, in order: the flag, `serve.webhook_token_file`,
/// `$STEWARD_WEBHOOK_TOKEN_FILE`, the systemd credential `webhook-token`.
fn shared_path(opts: &ServeOptions, cfg: &Config) -> Option<PathBuf> {
    if let Some(p) = &opts.webhook_token_file {
        return Some(p.clone());
    }
    if let Some(p) = &cfg.serve.webhook_token_file {
        return Some(p.clone());
    }
    if let Some(p) = std::env::var_os("STEWARD_WEBHOOK_TOKEN_FILE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    credential("webhook-token")
}

/// `$CREDENTIALS_DIRECTORY/NAME` when that file exists (systemd's `LoadCredential=`).
pub(super) fn credential(name: &str) -> Option<PathBuf> {
    let cred = PathBuf::from(std::env::var_os("CREDENTIALS_DIRECTORY")?).join(name);
    cred.is_file().then_some(cred)
}

fn load_token(path: &Path) -> Result<TokenDigest, ServeError> {
    let text = std::fs::read_to_string(path).map_err(|e| ServeError::Token {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let token = text.trim();
    if token.len() < 16 {
        return Err(ServeError::Token {
            path: path.to_path_buf(),
            message: "the token must be at least 16 characters".into(),
        });
    }
    Ok(digest(token.as_bytes()))
}

/// Why a request's headers cannot be read one way only.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Repeated {
    pub name: &'static str,
    pub count: usize,
}

impl std::fmt::Display for Repeated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} header is given {} times: send it once",
            self.name, self.count
        )
    }
}

/// The one value of a header that must not repeat: two `Content-Type`s (or `Authorization`s)
/// could be read differently by a proxy in front and by steward, so any repeat is refused,
/// equal values included.
pub(super) fn single<'a>(
    headers: &'a HeaderMap,
    name: &'static header::HeaderName,
    shown: &'static str,
) -> Result<Option<&'a HeaderValue>, Repeated> {
    let mut all = headers.get_all(name).iter();
    let first = all.next();
    let more = all.count();
    if more > 0 {
        return Err(Repeated {
            name: shown,
            count: more + 1,
        });
    }
    Ok(first)
}

/// Bearer token, or basic auth whose password is the token.
pub(super) fn authorized(value: Option<&HeaderValue>, want: &TokenDigest) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let given = if let Some(t) = strip_scheme(value, "bearer") {
        t.trim().as_bytes().to_vec()
    } else if let Some(b) = strip_scheme(value, "basic") {
        let Some(decoded) = base64_decode(b.trim()) else {
            return false;
        };
        match decoded.iter().position(|&c| c == b':') {
            Some(i) => decoded[i + 1..].to_vec(),
            None => return false,
        }
    } else {
        return false;
    };
    bool::from(digest(&given).ct_eq(want))
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = value.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// Standard base64 (padding optional); `None` for anything else. Small enough not to need a crate.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(base64_decode("dXNlcjpzZWNyZXQ=").unwrap(), b"user:secret");
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
        assert!(base64_decode("not base64!").is_none());
    }

    #[test]
    fn bearer_and_basic_auth() {
        let want = digest(b"0123456789abcdef");
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(authorized(Some(&v("Bearer 0123456789abcdef")), &want));
        // base64("am:0123456789abcdef")
        assert!(authorized(
            Some(&v("Basic YW06MDEyMzQ1Njc4OWFiY2RlZg==")),
            &want
        ));
        assert!(!authorized(Some(&v("Bearer nope")), &want));
        assert!(!authorized(None, &want));
    }

    #[test]
    fn a_repeated_header_is_refused_even_with_equal_values() {
        let mut h = HeaderMap::new();
        assert_eq!(single(&h, &header::CONTENT_TYPE, "Content-Type"), Ok(None));
        h.append(header::CONTENT_TYPE, v("application/json"));
        assert!(single(&h, &header::CONTENT_TYPE, "Content-Type").is_ok_and(|v| v.is_some()));
        h.append(header::CONTENT_TYPE, v("application/json"));
        h.append(header::CONTENT_TYPE, v("text/plain"));
        let e = single(&h, &header::CONTENT_TYPE, "Content-Type").unwrap_err();
        assert_eq!(e.count, 3);
        assert!(
            e.to_string()
                .contains("Content-Type header is given 3 times")
        );
    }

    fn v(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    fn config_with(am: Option<&Path>, generic: Option<&Path>) -> Config {
        let mut cfg = Config::default();
        cfg.serve.alertmanager_token_file = am.map(Path::to_path_buf);
        cfg.serve.generic_token_file = generic.map(Path::to_path_buf);
        cfg
    }

    fn opts(shared: Option<&Path>) -> ServeOptions {
        ServeOptions {
            config_args: crate::config::ConfigArgs::default(),
            listen: None,
            webhook_token_file: shared.map(Path::to_path_buf),
        }
    }

    #[test]
    fn each_endpoint_has_its_own_token_and_the_shared_one_is_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, token: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("{token}\n")).unwrap();
            p
        };
        let am = write("am", "alertmanager-token-0123");
        let gen_ = write("gen", "generic-token-012345678");
        let shared = write("shared", "shared-token-0123456789");

        let t = Tokens::load(&opts(Some(&shared)), &config_with(Some(&am), Some(&gen_))).unwrap();
        assert_eq!(
            t.get(Endpoint::Alertmanager),
            Some(digest(b"alertmanager-token-0123"))
        );
        assert_eq!(
            t.get(Endpoint::Generic),
            Some(digest(b"generic-token-012345678"))
        );
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);

        // Only Alertmanager's own: the shared one is the generic endpoint's, and not Alertmanager's.
        let t = Tokens::load(&opts(Some(&shared)), &config_with(Some(&am), None)).unwrap();
        assert_eq!(
            t.get(Endpoint::Alertmanager),
            Some(digest(b"alertmanager-token-0123"))
        );
        assert_eq!(
            t.get(Endpoint::Generic),
            Some(digest(b"shared-token-0123456789"))
        );

        // The shared one alone serves both, with a warning.
        let t = Tokens::load(&opts(Some(&shared)), &config_with(None, None)).unwrap();
        assert_eq!(t.get(Endpoint::Alertmanager), t.get(Endpoint::Generic));
        assert!(
            t.warnings[0].contains("one token authorises both"),
            "{:?}",
            t.warnings
        );

        // No token for one endpoint: it stays closed (a note); for neither, a warning.
        let t = Tokens::load(&opts(None), &config_with(Some(&am), None)).unwrap();
        assert_eq!(t.get(Endpoint::Generic), None);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert!(t.notes[0].contains("/hooks/generic"), "{:?}", t.notes);
        let t = Tokens::load(&opts(None), &config_with(None, None)).unwrap();
        assert_eq!(t.warnings.len(), 2, "{:?}", t.warnings);

        let short = write("short", "short");
        let e = Tokens::load(&opts(None), &config_with(None, Some(&short))).unwrap_err();
        assert!(e.to_string().contains("at least 16"), "{e}");
    }
}
