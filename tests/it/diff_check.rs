//! steward's diff judgement (`engine::change::diff_check`) on a diff real git wrote: renames,
//! symlinks (`\ No newline at end of file`), file names with spaces (git's trailing tab), and an
//! added line that is itself `++...`.

use std::path::Path;

use steward::defs::change::{ChangeSpec, ProtectedPaths};
use steward::engine::change::diff_check::{
    ChangedFile, DiffVerdict, FileStatus, Reason, Refusal, SYMLINK_MODE, check,
};

use crate::common::{self, require};

/// git's stdout untrimmed (a diff's trailing newline matters).
fn git(ws: &Path, args: &[&str]) -> String {
    common::git::stdout(ws, args)
}

fn spec() -> ChangeSpec {
    let v: toml::Value =
        toml::from_str("edit = [\"hosts/**\", \"links/*\"]\nprofile = \"compose\"").unwrap();
    ChangeSpec::from_value(&v).unwrap()
}

fn changed(path: &str, status: FileStatus, added: u64, removed: u64) -> ChangedFile {
    ChangedFile {
        path: path.into(),
        status,
        added,
        removed,
        binary: false,
        mode: Some(0o100644),
        symlink_target: None,
        size: None,
    }
}

const TOKEN: &str = "sk-ant-api03-AbCdEf0123456789_-xyz";

#[test]
fn a_real_git_diff_is_judged() {
    if require::tool("git").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path();
    git(ws, &["init", "-q"]);
    std::fs::create_dir_all(ws.join("hosts")).unwrap();
    std::fs::write(ws.join("hosts/web.nix"), "{\n  a = 1;\n  b = 2;\n}\n").unwrap();
    std::fs::write(ws.join("hosts/old.nix"), "{ old = true; }\n").unwrap();
    git(ws, &["add", "-A"]);
    git(ws, &["commit", "-qm", "base"]);
    let base = git(ws, &["rev-parse", "HEAD"]).trim().to_string();

    // The agent's work: one clean edit, a line that starts with `++` carrying a token, a new
    // file whose name has a space and a token, a rename into `.claude/`, a symlink out.
    std::fs::write(
        ws.join("hosts/web.nix"),
        format!("{{\n  a = 1;\n++ {TOKEN}\n  b = 3;\n}}\n"),
    )
    .unwrap();
    std::fs::write(ws.join("hosts/my file.nix"), format!("# {TOKEN}\n")).unwrap();
    std::fs::create_dir_all(ws.join(".claude")).unwrap();
    git(ws, &["mv", "hosts/old.nix", ".claude/settings.json"]);
    std::fs::create_dir_all(ws.join("links")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", ws.join("links/shadow")).unwrap();
    git(ws, &["add", "-A"]);
    git(ws, &["commit", "-qm", "change"]);
    let diff = git(ws, &["diff", "-M", &base, "HEAD"]);
    assert!(diff.contains("rename to .claude/settings.json"), "{diff}");
    assert!(diff.contains("+++ b/hosts/my file.nix\t"), "{diff}");
    assert!(diff.contains("\\ No newline at end of file"), "{diff}");

    let target = git(ws, &["cat-file", "-p", "HEAD:links/shadow"]);
    let files = vec![
        changed(
            ".claude/settings.json",
            FileStatus::Renamed {
                from: "hosts/old.nix".into(),
            },
            0,
            0,
        ),
        changed("hosts/my file.nix", FileStatus::Added, 1, 0),
        changed("hosts/web.nix", FileStatus::Modified, 2, 1),
        ChangedFile {
            mode: Some(SYMLINK_MODE),
            symlink_target: Some(target),
            ..changed("links/shadow", FileStatus::Added, 1, 0)
        },
    ];
    let r = |path: &str, reason| Refusal {
        path: path.into(),
        reason,
    };
    let secret = |line| Reason::Secret {
        line,
        kind: "anthropic",
    };
    let want = vec![
        r(".claude/settings.json", Reason::Protected(".claude".into())),
        r("links/shadow", Reason::SymlinkOutside("/etc/shadow".into())),
        r("hosts/my file.nix", secret(1)),
        r("hosts/web.nix", secret(3)),
    ];
    let none = ProtectedPaths::default();
    assert_eq!(check(&spec(), &none, &files, &diff), Err(want));

    // The same tree with nothing changed is "no change", not a refusal.
    let same = git(ws, &["diff", "HEAD", "HEAD"]);
    assert_eq!(check(&spec(), &none, &[], &same), Ok(DiffVerdict::NoChange));
}
