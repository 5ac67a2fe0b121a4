//! Who is logged in to the page. A session is a random cookie value the daemon keeps (as its
//! digest) with a short id, for the records (`web:<id>`), and a CSRF token for its forms. The
//! store is bounded in count (the oldest goes first) and in lifetime; nothing survives a restart.
//!
//! [`Session`] is the extractor every page takes: without a live session a `GET` is redirected
//! to `/login?next=PATH`, anything else refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::super::auth::{TokenDigest, digest};
use super::UiState;

/// The session cookie's name.
pub(in crate::daemon::server) const COOKIE: &str = "steward_session";
/// Sessions kept at most: a new login past this ends the oldest.
pub(in crate::daemon::server) const MAX_SESSIONS: usize = 64;
/// How long a session lasts from its login, used or not.
pub(in crate::daemon::server) const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// A logged-in visitor, as a page sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::daemon::server) struct Session {
    /// Short and not secret: recorded as `web:<id>`.
    pub id: String,
    /// The token each of this session's forms carries (field `csrf`).
    pub csrf: String,
}

impl Session {
    /// Who this session is in the records.
    pub fn who(&self) -> String {
        format!("web:{}", self.id)
    }
}

#[derive(Debug)]
struct Entry {
    session: Session,
    created: Instant,
}

/// The live sessions, by the digest of their cookie value.
#[derive(Debug)]
pub(in crate::daemon::server) struct Sessions {
    live: Mutex<HashMap<TokenDigest, Entry>>,
    max: usize,
    lifetime: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(MAX_SESSIONS, LIFETIME)
    }
}

impl Sessions {
    pub fn new(max: usize, lifetime: Duration) -> Sessions {
        Sessions {
            live: Mutex::new(HashMap::new()),
            max,
            lifetime,
        }
    }

    /// A new session: returns the cookie value (secret) and the session.
    pub fn create(&self, now: Instant) -> std::io::Result<(String, Session)> {
        let cookie = random_hex(32)?;
        let session = Session {
            id: random_hex(4)?,
            csrf: random_hex(32)?,
        };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        self.expire(&mut live, now);
        while live.len() >= self.max {
            let oldest = live.iter().min_by_key(|(_, e)| e.created).map(|(k, _)| *k);
            match oldest {
                Some(k) => live.remove(&k),
                None => break,
            };
        }
        live.insert(
            digest(cookie.as_bytes()),
            Entry {
                session: session.clone(),
                created: now,
            },
        );
        Ok((cookie, session))
    }

    /// The live session of a cookie value.
    pub fn get(&self, cookie: &str, now: Instant) -> Option<Session> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        self.expire(&mut live, now);
        live.get(&digest(cookie.as_bytes()))
            .map(|e| e.session.clone())
    }

    /// Logout: the cookie's session ends; returns it if it was live.
    pub fn remove(&self, cookie: &str) -> Option<Session> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.remove(&digest(cookie.as_bytes())).map(|e| e.session)
    }

    fn expire(&self, live: &mut HashMap<TokenDigest, Entry>, now: Instant) {
        live.retain(|_, e| now.saturating_duration_since(e.created) < self.lifetime);
    }
}

/// `n` random bytes from the kernel, as hex.
pub(in crate::daemon::server) fn random_hex(n: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(hex::encode(buf))
}

/// The value of the session cookie in a request's `Cookie` headers.
pub(in crate::daemon::server) fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// A `next` target that stays on this site: a path, never `//host` or `/\host` (which browsers
/// read as another host), without control characters.
pub(in crate::daemon::server) fn local_path(next: &str) -> Option<&str> {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    local.then_some(next)
}

/// Percent-encodes everything but unreserved characters and `/` (for `?next=`).
pub(in crate::daemon::server) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl FromRequestParts<UiState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &UiState) -> Result<Self, Response> {
        let found =
            cookie_value(&parts.headers).and_then(|c| state.ui.sessions.get(&c, Instant::now()));
        if let Some(session) = found {
            return Ok(session);
        }
        if parts.method == Method::GET || parts.method == Method::HEAD {
            let next = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let target = format!("/login?next={}", encode_component(&next));
            return Err(Redirect::to(&target).into_response());
        }
        Err((
            StatusCode::UNAUTHORIZED,
            "not logged in (or the session ended): log in at /login and try again",
        )
            .into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_after_their_lifetime_and_the_oldest_goes_past_the_cap() {
        let store = Sessions::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        let (a, sa) = store.create(t0).unwrap();
        assert_eq!(
            store.get(&a, t0 + Duration::from_secs(59)),
            Some(sa.clone())
        );
        assert_eq!(store.get(&a, t0 + Duration::from_secs(60)), None);

        let (b, _) = store.create(t0).unwrap();
        let (c, _) = store.create(t0 + Duration::from_secs(1)).unwrap();
        let (d, _) = store.create(t0 + Duration::from_secs(2)).unwrap();
        let at = t0 + Duration::from_secs(3);
        assert_eq!(store.get(&b, at), None, "the oldest went");
        assert!(store.get(&c, at).is_some() && store.get(&d, at).is_some());
        assert!(store.remove(&c).is_some());
        assert_eq!(store.get(&c, at), None);
        assert_eq!(store.get("forged", at), None);
    }

    #[test]
    fn sessions_have_distinct_ids_and_csrf_tokens() {
        let store = Sessions::default();
        let (a, sa) = store.create(Instant::now()).unwrap();
        let (b, sb) = store.create(Instant::now()).unwrap();
        assert_ne!(a, b);
        assert_ne!(sa.csrf, sb.csrf);
        assert_eq!(sa.id.len(), 8);
        assert_eq!(sa.csrf.len(), 64);
        assert!(sa.who().starts_with("web:"));
    }

    #[test]
    fn next_must_be_a_local_path() {
        assert_eq!(local_path("/runs/abc?x=1"), Some("/runs/abc?x=1"));
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "evil",
            "/a\nb",
            "/a\\b",
        ] {
            assert_eq!(local_path(bad), None, "{bad}");
        }
        assert_eq!(encode_component("/a?b=c&d"), "/a%3Fb%3Dc%26d");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; steward_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&h).as_deref(), Some("abc"));
        h.insert(header::COOKIE, "steward_sessionx=1".parse().unwrap());
        assert_eq!(cookie_value(&h), None);
    }
}
