//! The tests' own git for setting up repositories: no system or user configuration, a fixed
//! identity, `main` as the first branch, never signing. Set per command, so the test process's
//! environment is never changed.

use std::path::Path;
use std::process::{Command, Output};

/// git's whole answer, whatever its status.
pub fn output(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args([
            "-c",
            "commit.gpgSign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@test.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@test.invalid")
        .output()
        .unwrap()
}

/// git's stdout as it printed it (a diff's trailing newline matters); a failure fails the test.
pub fn stdout(dir: &Path, args: &[&str]) -> String {
    let out = output(dir, args);
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
