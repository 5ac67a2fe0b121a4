use super::*;

fn spec() -> ChangeSpec {
    let v: toml::Value = toml::from_str(
        r#"edit = ["hosts/**/*.nix", "jobs/*.hcl", "links/*"]
profile = "nixos""#,
    )
    .unwrap();
    ChangeSpec::from_value(&v).unwrap()
}

fn extra() -> ProtectedPaths {
    ProtectedPaths {
        workspace: "/srv/infra".into(),
        patterns: vec![".env".into(), "/etc/shadow*".into()],
        paths: vec!["steward.toml".into()],
    }
}

fn file(path: &str, status: FileStatus) -> ChangedFile {
    ChangedFile {
        path: path.into(),
        status,
        added: 1,
        removed: 0,
        binary: false,
        mode: Some(0o100644),
        symlink_target: None,
        size: Some(10),
    }
}

fn modified(path: &str) -> ChangedFile {
    file(path, FileStatus::Modified)
}

fn renamed(from: &str, to: &str) -> ChangedFile {
    file(to, FileStatus::Renamed { from: from.into() })
}

fn link(path: &str, target: &str) -> ChangedFile {
    ChangedFile {
        mode: Some(SYMLINK_MODE),
        symlink_target: Some(target.into()),
        ..file(path, FileStatus::Added)
    }
}

fn r(path: &str, reason: Reason) -> Refusal {
    Refusal {
        path: path.into(),
        reason,
    }
}

fn judge(files: &[ChangedFile], diff: &str) -> Result<DiffVerdict, Vec<Refusal>> {
    check(&spec(), &extra(), files, diff)
}

/// A diff adding `line` to `path` as its only change.
fn adding(path: &str, lines: &[&str]) -> String {
    let mut d = format!(
        "diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n@@ -1,1 +1,{} @@\n context\n",
        lines.len() + 1
    );
    for l in lines {
        d.push('+');
        d.push_str(l);
        d.push('\n');
    }
    d
}

#[test]
fn allowed_edits_pass() {
    let files = [
        modified("hosts/web/configuration.nix"),
        file("jobs/web.hcl", FileStatus::Added),
        file("hosts/old.nix", FileStatus::Deleted),
        renamed("hosts/a.nix", "hosts/b/a.nix"),
        link("links/current", "../hosts/web/configuration.nix"),
    ];
    let diff = adding(
        "hosts/web/configuration.nix",
        &["services.nginx.enable = true;"],
    );
    assert_eq!(judge(&files, &diff), Ok(DiffVerdict::Change));
}

#[test]
fn empty_file_list_is_no_change() {
    assert_eq!(judge(&[], ""), Ok(DiffVerdict::NoChange));
    // A diff with no file listed is inconsistent input: refused, not "no change".
    let diff = adding("hosts/a.nix", &["x"]);
    let why = "a diff with no changed files listed".to_string();
    assert_eq!(
        judge(&[], &diff),
        Err(vec![r("", Reason::UnreadableDiff(why))])
    );
}

#[test]
fn path_refusals() {
    let p = |s: &str| Reason::Protected(s.into());
    let cases: Vec<(ChangedFile, Vec<Refusal>)> = vec![
        (
            modified("flake.nix"),
            vec![r("flake.nix", Reason::OutsideEdit)],
        ),
        (modified(".git/config"), vec![r(".git/config", p(".git"))]),
        (
            modified("sub/.claude/settings.json"),
            vec![r("sub/.claude/settings.json", p(".claude"))],
        ),
        (
            modified("docs/CLAUDE.md"),
            vec![r("docs/CLAUDE.md", p("CLAUDE.md"))],
        ),
        (modified(".mcp.json"), vec![r(".mcp.json", p(".mcp.json"))]),
        (
            modified("steward.toml"),
            vec![r("steward.toml", p("steward.toml"))],
        ),
        // Protected whatever the globs say: `hosts/**/*.nix` would allow this one.
        (
            modified("hosts/.git/x.nix"),
            vec![r("hosts/.git/x.nix", p(".git"))],
        ),
        (modified("hosts/.env"), vec![r("hosts/.env", p(".env"))]),
        // Fail closed on paths steward cannot interpret.
        (
            modified("/etc/passwd"),
            vec![r(
                "/etc/passwd",
                Reason::BadPath("must be relative to the workspace, not absolute"),
            )],
        ),
        (
            modified("hosts/../../x.nix"),
            vec![r(
                "hosts/../../x.nix",
                Reason::BadPath("must not contain `..`"),
            )],
        ),
        (
            modified("hosts/a\0.nix"),
            vec![r("hosts/a\0.nix", Reason::BadPath("contains NUL"))],
        ),
        (modified(""), vec![r("", Reason::BadPath("is empty"))]),
    ];
    for (f, want) in cases {
        let path = f.path.clone();
        assert_eq!(judge(&[f], ""), Err(want), "{path:?}");
    }
}

#[test]
fn rename_refusals() {
    let cases: Vec<(ChangedFile, Vec<Refusal>)> = vec![
        // Allowed → protected.
        (
            renamed("hosts/a.nix", ".claude/settings.json"),
            vec![r(
                ".claude/settings.json",
                Reason::Protected(".claude".into()),
            )],
        ),
        // Protected → allowed: the rename deletes the protected file.
        (
            renamed("CLAUDE.md", "hosts/notes.nix"),
            vec![r(
                "hosts/notes.nix",
                Reason::FromProtected {
                    from: "CLAUDE.md".into(),
                    rule: "CLAUDE.md".into(),
                },
            )],
        ),
        // Outside edit → allowed.
        (
            renamed("flake.nix", "hosts/flake.nix"),
            vec![r(
                "hosts/flake.nix",
                Reason::RenamedFromOutsideEdit("flake.nix".into()),
            )],
        ),
        // A copy reads its source: from outside edit is fine, from a protected path is not.
        (
            file(
                "hosts/cfg.nix",
                FileStatus::Copied {
                    from: ".git/config".into(),
                },
            ),
            vec![r(
                "hosts/cfg.nix",
                Reason::FromProtected {
                    from: ".git/config".into(),
                    rule: ".git".into(),
                },
            )],
        ),
        (
            renamed("../outside", "hosts/a.nix"),
            vec![r("../outside", Reason::BadPath("must not contain `..`"))],
        ),
    ];
    for (f, want) in cases {
        let path = f.path.clone();
        assert_eq!(judge(&[f], ""), Err(want), "{path}");
    }
    let copy = file(
        "hosts/flake.nix",
        FileStatus::Copied {
            from: "flake.nix".into(),
        },
    );
    assert_eq!(judge(&[copy], ""), Ok(DiffVerdict::Change));
}

#[test]
fn symlink_refusals() {
    let cases: Vec<(ChangedFile, Reason)> = vec![
        (
            link("links/shadow", "/etc/shadow"),
            Reason::SymlinkOutside("/etc/shadow".into()),
        ),
        (
            link("links/up", "../../etc/passwd"),
            Reason::SymlinkOutside("../../etc/passwd".into()),
        ),
        (
            link("links/git", "../.git/config"),
            Reason::SymlinkProtected {
                target: "../.git/config".into(),
                rule: ".git".into(),
            },
        ),
        (
            link("links/cfg", "../steward.toml"),
            Reason::SymlinkProtected {
                target: "../steward.toml".into(),
                rule: "steward.toml".into(),
            },
        ),
        (link("links/empty", ""), Reason::SymlinkUnknown),
        (
            ChangedFile {
                symlink_target: None,
                ..link("links/none", "x")
            },
            Reason::SymlinkUnknown,
        ),
    ];
    for (f, want) in cases {
        let path = f.path.clone();
        assert_eq!(judge(&[f], ""), Err(vec![r(&path, want)]), "{path}");
    }
}

#[test]
fn secret_refusals() {
    let path = "hosts/web/configuration.nix";
    let cases: &[(&[&str], u64, &str)] = &[
        (
            &["x", "key = sk-ant-api03-AbCdEf0123456789_-xyz;"],
            3,
            "anthropic",
        ),
        (
            &[
                "-----BEGIN OPENSSH PRIVATE KEY-----",
                "b3BlbnNzaC1rZXktdjEAAAAA",
                "-----END OPENSSH PRIVATE KEY-----",
            ],
            2,
            "private_key",
        ),
        (&["ghp_0123456789abcdefghijABCDEFGHIJ012345"], 2, "github"),
    ];
    for (lines, line, kind) in cases {
        let diff = adding(path, lines);
        let want = vec![r(path, Reason::Secret { line: *line, kind })];
        assert_eq!(judge(&[modified(path)], &diff), Err(want), "{lines:?}");
    }
}

#[test]
fn secrets_only_in_added_lines_and_counted_by_hunk() {
    let path = "hosts/a.nix";
    // A removed secret is the change removing it: fine. An added line starting with `++` is
    // content, not a header, and is still scanned.
    let diff = format!(
        "diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -4,2 +7,2 @@\n-token sk-ant-api03-AbCdEf0123456789_-xyz\n keep\n+++ sk-ant-api03-AbCdEf0123456789_-xyz\n"
    );
    let want = vec![r(
        path,
        Reason::Secret {
            line: 8,
            kind: "anthropic",
        },
    )];
    assert_eq!(judge(&[modified(path)], &diff), Err(want));
}

#[test]
fn unreadable_diff_is_refused() {
    let path = "hosts/a.nix";
    for (diff, why) in [
        (
            format!("--- a/{path}\n+++ b/{path}\n@@ -1,1 +1,2 @@\n x\n"),
            "the diff ends inside a hunk".to_string(),
        ),
        (
            format!("--- a/{path}\n+++ b/{path}\n@@ -1 +x @@\n"),
            "bad hunk header `@@ -1 +x @@`".to_string(),
        ),
        (
            "@@ -1 +1 @@\n+x\n".to_string(),
            "a hunk before its `+++` header".to_string(),
        ),
        (
            format!("+++ b/{path}\n@@ -1 +1,2 @@\n x\n*y\n"),
            "unexpected line in a hunk: `*y`".to_string(),
        ),
    ] {
        let want = vec![r("", Reason::UnreadableDiff(why))];
        assert_eq!(judge(&[modified(path)], &diff), Err(want), "{diff}");
    }
}

#[test]
fn limits() {
    let many: Vec<ChangedFile> = (0..=MAX_FILES)
        .map(|i| modified(&format!("hosts/h{i}.nix")))
        .collect();
    let count = MAX_FILES + 1;
    let want = vec![r(
        "",
        Reason::TooManyFiles {
            count,
            max: MAX_FILES,
        },
    )];
    assert_eq!(judge(&many, ""), Err(want));
    assert_eq!(judge(&many[..MAX_FILES], ""), Ok(DiffVerdict::Change));

    let big = |added, removed| ChangedFile {
        added,
        removed,
        ..modified("hosts/a.nix")
    };
    let max = MAX_CHANGED_LINES;
    let want = vec![r(
        "",
        Reason::TooManyLines {
            count: max + 1,
            max,
        },
    )];
    assert_eq!(judge(&[big(max, 1)], ""), Err(want));
    assert_eq!(judge(&[big(max - 1, 1)], ""), Ok(DiffVerdict::Change));

    let diff = adding("hosts/a.nix", &[&"x".repeat(MAX_DIFF_BYTES)]);
    let bytes = diff.len();
    let want = vec![r(
        "",
        Reason::DiffTooLarge {
            bytes,
            max: MAX_DIFF_BYTES,
        },
    )];
    assert_eq!(judge(&[modified("hosts/a.nix")], &diff), Err(want));

    let huge = ChangedFile {
        size: Some(MAX_FILE_BYTES + 1),
        ..modified("hosts/a.nix")
    };
    let want = vec![r(
        "hosts/a.nix",
        Reason::FileTooLarge {
            size: MAX_FILE_BYTES + 1,
            max: MAX_FILE_BYTES,
        },
    )];
    assert_eq!(judge(&[huge], ""), Err(want));
}

#[test]
fn binary_files_cannot_be_checked_but_may_be_deleted() {
    let bin = ChangedFile {
        binary: true,
        ..modified("hosts/a.nix")
    };
    assert_eq!(
        judge(std::slice::from_ref(&bin), ""),
        Err(vec![r("hosts/a.nix", Reason::Binary)])
    );
    let gone = ChangedFile {
        status: FileStatus::Deleted,
        mode: None,
        ..bin
    };
    assert_eq!(judge(&[gone], ""), Ok(DiffVerdict::Change));
}

#[test]
fn every_refusal_is_reported() {
    let files = [
        modified("flake.nix"),
        modified(".mcp.json"),
        modified("hosts/ok.nix"),
    ];
    let diff = adding("hosts/ok.nix", &["sk-ant-api03-AbCdEf0123456789_-xyz"]);
    let want = vec![
        r("flake.nix", Reason::OutsideEdit),
        r(".mcp.json", Reason::Protected(".mcp.json".into())),
        r(
            "hosts/ok.nix",
            Reason::Secret {
                line: 2,
                kind: "anthropic",
            },
        ),
    ];
    assert_eq!(judge(&files, &diff), Err(want));
    assert_eq!(
        want_display(&judge(&files, &diff).unwrap_err()),
        "`flake.nix`: outside the change's `edit` globs; `.mcp.json`: protected (`.mcp.json`); `hosts/ok.nix`: line 2 adds a secret (anthropic)"
    );
}

fn want_display(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn link_resolution_is_lexical() {
    assert_eq!(resolve_link("a/b/l", "../c"), Some("a/c".into()));
    assert_eq!(resolve_link("l", "./x/./y"), Some("x/y".into()));
    assert_eq!(resolve_link("a/l", "../../x"), None);
    assert_eq!(resolve_link("a/l", "/x"), None);
}
