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

    /// The approvals page and its change card render from records as serde writes them.
    #[test]
    fn approvals_render_actions_and_changes() {
        let tera = engine().unwrap();
        let mut ctx = context(None);
        ctx.insert("csrf", "tok");
        ctx.insert("single", &false);
        let action = serde_json::json!({"id": "a1", "state": "pending", "argv": ["systemctl", "restart", "x<y>"],
            "rationale": "r", "subjects": ["s"], "who_runs": "w", "checks": [], "state_fingerprint": "fp",
            "goal": "g", "run_id": "run1", "created_text": "t", "expires_text": "t", "is_pending": true,
            "execution": {"exit_code": 0, "duration_ms": 5, "timed_out": false, "checks_passed": true,
                "stdout": "out", "stderr": ""}});
        let change = serde_json::json!({"id": "c1", "state": "pending", "intent": "fix", "goal": "g",
            "run": "r", "subject": "s", "profile": "command", "workspace": "/w", "base": "0123456789abcdef",
            "head": "fedcba9876543210", "diff_sha256": "d", "files": [{"path": "a", "status": "M",
            "added": 1, "removed": 0}], "blast_radius": {}, "blast_lines": ["n"],
            "rollback_text": "{}", "expires_text": "t", "validation": [], "steps": [], "is_pending": true,
            "diff_lines": [{"class": "add", "text": "+x"}], "diff_matches": true});
        ctx.insert("actions", &vec![action]);
        ctx.insert("changes", &vec![change.clone()]);
        let html = tera.render("approvals.html", &ctx).unwrap();
        assert!(
            html.contains("x&lt;y&gt;") && html.contains("/changes/c1/approve"),
            "{html}"
        );
        assert!(html.contains("<span class=\"add\">+x</span>"), "{html}");
        ctx.insert("change", &change);
        ctx.insert("c", &change);
        ctx.insert("confirming", &true);
        ctx.insert("binding", "d");
        let html = tera.render("confirm_change.html", &ctx).unwrap();
        assert!(html.contains("name=\"binding\" value=\"d\""), "{html}");
        assert!(
            !html.contains("/changes/c1/reject"),
            "no second form while confirming"
        );
    }
}
