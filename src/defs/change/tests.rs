use super::*;

fn parse(text: &str) -> Result<ChangeSpec, ChangeError> {
    let v: toml::Value = toml::from_str(text).unwrap();
    ChangeSpec::from_value(&v)
}

const OK: &str = r#"
edit = ["hosts/**/*.nix", "jobs/*.hcl"]
validate = [["nix", "flake", "check"]]
profile = "nixos"
"#;

#[test]
fn valid_table_and_defaults() {
    let s = parse(OK).unwrap();
    assert_eq!(s.profile, Profile::Nixos);
    assert_eq!(s.repair_rounds, DEFAULT_REPAIR_ROUNDS);
    assert_eq!(s.validate, vec![vec!["nix", "flake", "check"]]);
    assert!(s.apply.is_none() && s.rollback.is_none());
}

#[test]
fn command_profile_with_apply_and_rollback() {
    let s = parse(
        r#"edit = ["a.txt"]
profile = "command"
apply = ["./deploy.sh"]
rollback = ["./undo.sh"]
repair_rounds = 5"#,
    )
    .unwrap();
    assert_eq!(s.profile, Profile::Command);
    assert_eq!(s.apply.as_deref(), Some(&["./deploy.sh".to_string()][..]));
    assert_eq!(s.repair_rounds, 5);
}

#[test]
fn globs_match_within_and_across_directories() {
    let s = parse(OK).unwrap();
    for (path, allowed) in [
        ("hosts/a/configuration.nix", true),
        ("hosts/a/b/c.nix", true),
        ("hosts/x.nix", true),
        ("jobs/web.hcl", true),
        ("jobs/sub/web.hcl", false),
        ("flake.nix", false),
        ("hosts/a/notes.md", false),
    ] {
        assert_eq!(s.allows(path), allowed, "{path}");
    }
}

#[test]
fn field_errors() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        (
            r#"edit = ["a"]
profile = "nixos"
colour = 1"#,
            None,
            "unknown field `colour`",
        ),
        (
            r#"edit = []
profile = "nixos""#,
            Some("edit"),
            "change.edit: must name at least one glob",
        ),
        (
            r#"edit = ["/etc/nixos/*.nix"]
profile = "nixos""#,
            Some("edit"),
            "change.edit: `/etc/nixos/*.nix`: must be relative to the workspace, not absolute",
        ),
        (
            r#"edit = ["hosts/../../x"]
profile = "nixos""#,
            Some("edit"),
            "change.edit: `hosts/../../x`: must not contain `..`",
        ),
        (
            r#"edit = ["./hosts/*.nix"]
profile = "nixos""#,
            Some("edit"),
            "change.edit: `./hosts/*.nix`: must not contain `.` components (write `hosts/*`, not `./hosts/*`)",
        ),
        (
            r#"edit = [""]
profile = "nixos""#,
            Some("edit"),
            "change.edit: ``: is empty",
        ),
        (
            r#"edit = ["a[b"]
profile = "nixos""#,
            Some("edit"),
            "change.edit: `a[b`: unclosed character class; missing ']'",
        ),
        (
            r#"edit = ["a"]
profile = "nixos"
validate = [[]]"#,
            Some("validate"),
            "change.validate: an argv must not be empty",
        ),
        (
            r#"edit = ["a"]
profile = "nixos"
validate = [[""]]"#,
            Some("validate"),
            "change.validate: the program must not be empty",
        ),
        (
            r#"edit = ["a"]
profile = "ansible""#,
            None,
            "unknown variant `ansible`",
        ),
        (r#"edit = ["a"]"#, None, "missing field `profile`"),
        (
            r#"edit = ["a"]
profile = "command"
rollback = ["undo"]"#,
            Some("apply"),
            "change.apply: the `command` profile needs it",
        ),
        (
            r#"edit = ["a"]
profile = "command"
apply = ["do"]"#,
            Some("rollback"),
            "change.rollback: the `command` profile needs it",
        ),
        (
            r#"edit = ["a"]
profile = "command"
apply = []
rollback = ["undo"]"#,
            Some("apply"),
            "change.apply: an argv must not be empty",
        ),
        (
            r#"edit = ["a"]
profile = "nixos"
apply = ["switch"]"#,
            Some("apply"),
            "change.apply: only the `command` profile takes it, not \"nixos\"",
        ),
        (
            r#"edit = ["a"]
profile = "compose"
rollback = ["down"]"#,
            Some("rollback"),
            "change.rollback: only the `command` profile takes it, not \"compose\"",
        ),
        (
            r#"edit = ["a"]
profile = "nomad"
repair_rounds = 6"#,
            Some("repair_rounds"),
            "change.repair_rounds: must be between 0 and 5, not 6",
        ),
        (
            r#"edit = ["a"]
profile = "nomad"
repair_rounds = -1"#,
            Some("repair_rounds"),
            "change.repair_rounds: must be between 0 and 5, not -1",
        ),
    ];
    for (text, field, msg) in cases {
        let e = parse(text).unwrap_err();
        assert_eq!(e.field(), *field, "{text}");
        let shown = e.to_string();
        if field.is_some() {
            assert_eq!(shown, *msg, "{text}");
        } else {
            assert!(shown.starts_with("change: "), "{shown}");
            assert!(shown.contains(msg), "{text}: {shown}");
        }
    }
}

#[test]
fn repair_rounds_zero_is_allowed() {
    let s = parse(
        r#"edit = ["a"]
profile = "compose"
repair_rounds = 0"#,
    )
    .unwrap();
    assert_eq!(s.repair_rounds, 0);
}

#[test]
fn protected_paths() {
    let extra = ProtectedPaths {
        workspace: "/srv/infra".into(),
        patterns: vec![".envrc".into(), "*.key".into(), "/srv/infra/secrets".into()],
        paths: vec!["steward.toml".into(), "modules/steward/".into()],
    };
    let cases: &[(&str, Option<&str>)] = &[
        (".git/config", Some(".git")),
        ("sub/.git/hooks/pre-commit", Some(".git")),
        (".claude/settings.json", Some(".claude")),
        ("sub/.claude/settings.json", Some(".claude")),
        (".mcp.json", Some(".mcp.json")),
        ("a/b/.mcp.json", Some(".mcp.json")),
        ("CLAUDE.md", Some("CLAUDE.md")),
        ("docs/CLAUDE.md", Some("CLAUDE.md")),
        ("hosts/.envrc", Some(".envrc")),
        ("certs/web.key", Some("*.key")),
        ("secrets/db.yaml", Some("/srv/infra/secrets")),
        ("steward.toml", Some("steward.toml")),
        ("modules/steward/default.nix", Some("modules/steward/")),
        ("modules/stewardship.nix", None),
        ("hosts/a.nix", None),
        (".gitignore", None),
        ("docs/CLAUDE.md.bak", None),
        ("my.claude/x", None),
    ];
    for (path, rule) in cases {
        assert_eq!(protected_by(path, &extra).as_deref(), *rule, "{path}");
        assert_eq!(is_protected(path, &extra), rule.is_some(), "{path}");
    }
}

#[test]
fn always_protected_without_extra() {
    let none = ProtectedPaths::default();
    assert!(is_protected("x/.git/config", &none));
    assert!(is_protected("CLAUDE.md", &none));
    assert!(!is_protected("README.md", &none));
}
