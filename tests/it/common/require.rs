//! What a test needs from the host (a tool, a file, root): found, or the test cannot run. Under
//! `CI=true` a missing component fails the test (CI installs everything: `scripts/test.sh`);
//! elsewhere the test skips, saying so on stderr. The one place that rule lives.

use std::path::{Path, PathBuf};

/// A missing component: under `CI=true` the test fails here; otherwise a `SKIP:` line says what
/// is missing and how to get it, and the caller returns (or goes on without it, if it says so in
/// `what`).
pub fn missing(what: &str, hint: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} ({hint}); CI=true: a missing component is a failure");
    }
    eprintln!("SKIP: {what} ({hint})");
}

/// `name` found on PATH, or `None` after [`missing`].
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| steward::engine::agent::process::is_executable(p))
    });
    if found.is_none() {
        missing(
            &format!("{name} is not on PATH"),
            "scripts/test.sh installs it",
        );
    }
    found
}

/// The executable at `path`, or `None` after [`missing`] (`what` names it, `hint` says how to
/// get it).
pub fn executable(path: &Path, what: &str, hint: &str) -> Option<PathBuf> {
    if steward::engine::agent::process::is_executable(path) {
        return Some(path.to_path_buf());
    }
    missing(&format!("{what} not found at {}", path.display()), hint);
    None
}

/// Debian's `/usr/bin/python3` with `aiosmtpd` (the package `python3-aiosmtpd`), or `None`
/// after [`missing`]: the loopback SMTP server of the email notification tests.
pub fn aiosmtpd() -> Option<PathBuf> {
    let python = PathBuf::from("/usr/bin/python3");
    let ok = std::process::Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        missing(
            "/usr/bin/python3 with aiosmtpd is not installed",
            "apt-get install python3-aiosmtpd (scripts/test.sh installs it)",
        );
        return None;
    }
    Some(python)
}

/// Debian's Chromium and its WebDriver (`chromium`, `chromium-driver`): `(browser, driver)`.
pub fn chromium() -> Option<(PathBuf, PathBuf)> {
    let hint = "apt-get install chromium chromium-driver (scripts/test.sh installs them)";
    let browser = executable(Path::new("/usr/bin/chromium"), "chromium", hint)?;
    let driver = executable(Path::new("/usr/bin/chromedriver"), "chromedriver", hint)?;
    Some((browser, driver))
}

#[test]
fn a_missing_tool_skips_or_under_ci_fails() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let found = std::panic::catch_unwind(|| tool("steward-test-no-such-tool"));
    match found {
        Ok(found) => assert!(!ci && found.is_none(), "CI={ci}: {found:?}"),
        Err(_) => assert!(ci, "a missing tool failed the test without CI=true"),
    }
    assert_eq!(tool("sh").map(|p| p.is_absolute()), Some(true));
}
