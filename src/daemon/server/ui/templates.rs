//! The page's templates and assets, embedded in the binary (no build step, nothing fetched):
//! one [`tera::Tera`] built at start with autoescaping on for every template, and the CSS and
//! JavaScript served from `/assets/NAME` with long cache headers (their URLs carry a digest of
//! the assets, so a new binary's are fetched anew).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

use super::session::Session;

static TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/src/daemon/server/ui/templates");
static ASSETS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/src/daemon/server/ui/assets");

#[derive(Debug, thiserror::Error)]
pub(in crate::daemon::server) enum TemplateError {
    #[error("template {name} is not UTF-8")]
    NotText { name: String },
    #[error("the page's templates do not parse: {0}")]
    Parse(#[from] tera::Error),
}

/// Every embedded template, parsed; autoescaping on for all of them (not only `.html`).
pub(in crate::daemon::server) fn engine() -> Result<tera::Tera, TemplateError> {
    let mut tera = tera::Tera::default();
    let mut all = Vec::new();
    for file in TEMPLATES.files() {
        let name = file.path().to_string_lossy().into_owned();
        let text = file
            .contents_utf8()
            .ok_or_else(|| TemplateError::NotText { name: name.clone() })?;
        all.push((name, text));
    }
    tera.add_raw_templates(all)?;
    tera.autoescape_on(vec![""]);
    Ok(tera)
}

/// A short digest of every asset: in their URLs (`?v=`), so that a cached copy is never stale.
pub(in crate::daemon::server) fn asset_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h = Sha256::new();
        for f in ASSETS.files() {
            h.update(f.path().to_string_lossy().as_bytes());
            h.update(f.contents());
        }
        hex::encode(h.finalize())[..12].to_string()
    })
}

/// What every page's layout needs: the session's CSRF token (for the logout form and any other),
/// its id, and the assets' version.
pub(in crate::daemon::server) fn context(session: Option<&Session>) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert("asset_v", asset_version());
    if let Some(s) = session {
        ctx.insert("csrf", &s.csrf);
        ctx.insert("session_id", &s.id);
    }
    ctx
}

/// Renders `name` as an HTML page (200); a template that fails is a 500 naming it, logged.
pub(in crate::daemon::server) fn render(
    tera: &tera::Tera,
    name: &str,
    ctx: &tera::Context,
) -> Response {
    render_status(tera, name, ctx, StatusCode::OK)
}

/// [`render`] with another status (a refusal page, say).
pub(in crate::daemon::server) fn render_status(
    tera: &tera::Tera,
    name: &str,
    ctx: &tera::Context,
    status: StatusCode,
) -> Response {
    match tera.render(name, ctx) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why.push_str(&format!(": {s}"));
                source = s.source();
            }
            tracing::error!("cannot render {name}: {why}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot render {name}"),
            )
                .into_response()
        }
    }
}

/// `GET /assets/NAME`: an embedded asset, cached for a year (its URL changes with it).
pub(in crate::daemon::server) async fn asset(Path(name): Path<String>) -> Response {
    let Some(file) = ASSETS.get_file(&name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let kind = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        file.contents(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_escapes() {
        let tera = engine().unwrap();
        let mut ctx = context(None);
        ctx.insert("error", "<script>alert(1)</script>");
        ctx.insert("next", "/");
        let html = tera.render("login.html", &ctx).unwrap();
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>alert"), "{html}");
    }
}
