//! Cross-site request forgery: a state change is a POST that passes three checks, each enough
//! on its own against a browser: `Sec-Fetch-Site` is not `cross-site`/`same-site`, `Origin` is
//! this page's own (the public URL or the `Host` the browser spoke to), and the form carries the
//! session's CSRF token (compared in constant time). A missing `Origin` is refused: every
//! browser that runs the page sends it on a POST.

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

/// Why a POST was refused as possibly cross-site.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(in crate::daemon::server) enum CsrfError {
    #[error("Sec-Fetch-Site is {0}: only same-origin requests may change state")]
    FetchSite(String),
    #[error("no Origin header: a state change must say where it comes from")]
    NoOrigin,
    #[error("Origin {0} is not this page's origin")]
    ForeignOrigin(String),
    #[error("the form's CSRF token is missing or wrong (reload the page and try again)")]
    Token,
    #[error("the {0} header is given more than once")]
    Repeated(&'static str),
}

/// The origin (`scheme://host[:port]`) of a URL, lowercased, without a trailing path.
pub(in crate::daemon::server) fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    if host.is_empty() || !(scheme == "http" || scheme == "https") {
        return None;
    }
    Some(format!("{}://{}", scheme, host.to_ascii_lowercase()))
}

fn one<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, CsrfError> {
    let mut all = headers.get_all(name).iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(CsrfError::Repeated(name));
    }
    Ok(first.map(|v| v.to_str().unwrap_or("")))
}

/// The origins a POST may come from: the public URL's, and the `Host` the browser spoke to
/// (directly or through an SSH tunnel), over http or https.
pub(in crate::daemon::server) fn allowed_origins(
    headers: &HeaderMap,
    public_url: Option<&str>,
) -> Vec<String> {
    let mut allowed: Vec<String> = public_url.and_then(origin_of).into_iter().collect();
    if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        let host = host.to_ascii_lowercase();
        allowed.push(format!("http://{host}"));
        allowed.push(format!("https://{host}"));
    }
    allowed
}

/// The request's headers say it comes from this page itself.
pub(in crate::daemon::server) fn check_headers(
    headers: &HeaderMap,
    public_url: Option<&str>,
) -> Result<(), CsrfError> {
    if let Some(site) = one(headers, "sec-fetch-site")?
        && site != "same-origin"
        && site != "none"
    {
        return Err(CsrfError::FetchSite(site.to_string()));
    }
    let origin = one(headers, "origin")?.ok_or(CsrfError::NoOrigin)?;
    let given = origin.trim_end_matches('/').to_ascii_lowercase();
    if allowed_origins(headers, public_url).contains(&given) {
        Ok(())
    } else {
        Err(CsrfError::ForeignOrigin(origin.to_string()))
    }
}

/// The form's token is the session's.
pub(in crate::daemon::server) fn check_token(
    given: Option<&str>,
    want: &str,
) -> Result<(), CsrfError> {
    let given = given.unwrap_or("");
    if given.len() == want.len() && bool::from(given.as_bytes().ct_eq(want.as_bytes())) {
        Ok(())
    } else {
        Err(CsrfError::Token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn same_origin_passes_and_foreign_or_missing_origins_do_not() {
        let ok = h(&[
            ("host", "127.0.0.1:8787"),
            ("origin", "http://127.0.0.1:8787"),
        ]);
        assert_eq!(check_headers(&ok, None), Ok(()));
        let ok = h(&[
            ("host", "127.0.0.1:8787"),
            ("origin", "http://127.0.0.1:8787"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(check_headers(&ok, None), Ok(()));
        // Behind a TLS proxy that rewrites Host, the public URL is the origin.
        let proxied = h(&[
            ("host", "127.0.0.1:8787"),
            ("origin", "https://steward.example.org"),
        ]);
        assert_eq!(
            check_headers(&proxied, Some("https://steward.example.org/")),
            Ok(())
        );
        assert_eq!(
            check_headers(&proxied, None),
            Err(CsrfError::ForeignOrigin(
                "https://steward.example.org".into()
            ))
        );
        let other_port = h(&[
            ("host", "127.0.0.1:8787"),
            ("origin", "http://127.0.0.1:9999"),
        ]);
        assert!(matches!(
            check_headers(&other_port, None),
            Err(CsrfError::ForeignOrigin(_))
        ));
        let missing = h(&[("host", "127.0.0.1:8787")]);
        assert_eq!(check_headers(&missing, None), Err(CsrfError::NoOrigin));
        let null = h(&[("host", "127.0.0.1:8787"), ("origin", "null")]);
        assert!(check_headers(&null, None).is_err());
    }

    #[test]
    fn cross_site_and_same_site_fetches_are_refused_whatever_the_origin() {
        for site in ["cross-site", "same-site"] {
            let m = h(&[
                ("host", "127.0.0.1:8787"),
                ("origin", "http://127.0.0.1:8787"),
                ("sec-fetch-site", site),
            ]);
            assert_eq!(
                check_headers(&m, None),
                Err(CsrfError::FetchSite(site.into()))
            );
        }
        let twice = h(&[
            ("host", "127.0.0.1:8787"),
            ("origin", "http://127.0.0.1:8787"),
            ("origin", "http://127.0.0.1:8787"),
        ]);
        assert_eq!(
            check_headers(&twice, None),
            Err(CsrfError::Repeated("origin"))
        );
    }

    #[test]
    fn the_token_must_be_the_sessions() {
        assert_eq!(check_token(Some("abc"), "abc"), Ok(()));
        assert_eq!(check_token(Some("abd"), "abc"), Err(CsrfError::Token));
        assert_eq!(check_token(Some(""), "abc"), Err(CsrfError::Token));
        assert_eq!(check_token(None, "abc"), Err(CsrfError::Token));
    }

    #[test]
    fn origins_are_scheme_and_host() {
        assert_eq!(
            origin_of("https://Steward.example.org/x?y"),
            Some("https://steward.example.org".into())
        );
        assert_eq!(origin_of("ftp://x"), None);
        assert_eq!(origin_of("nonsense"), None);
    }
}
