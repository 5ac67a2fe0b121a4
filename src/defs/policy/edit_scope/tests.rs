use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;
use crate::defs::policy::{GoalPolicy, Permission, check_command, check_tool};

struct Fixture {
    _dir: tempfile::TempDir,
    live: PathBuf,
    tree: PathBuf,
    outside: PathBuf,
    policy: Policy,
}

fn spec() -> ChangeSpec {
    let v: toml::Value = toml::from_str(
        r#"edit = ["nix/**", "hosts/*.nix"]
validate = [["nix", "flake", "check", "--option", "substituters", ""], ["make", "UNIT", "*"]]
profile = "compose""#,
    )
    .unwrap();
    ChangeSpec::from_value(&v).unwrap()
}

/// The diff check's rules for `live`, as a change run builds them.
fn rules(live: &Path) -> ProtectedPaths {
    ProtectedPaths {
        workspace: live.to_path_buf(),
        patterns: vec!["steward.nix".into()],
        paths: vec!["nix/steward/".into()],
    }
}

fn write(p: &Path, text: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// A live workspace, its "worktree" (a plain tree: the checks are on paths) and a place outside.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(dir.path()).unwrap();
    let (live, tree, outside) = (base.join("live"), base.join("tree"), base.join("outside"));
    for f in ["hosts/a.nix", "nix/mod.nix", "README.md", "steward.toml"] {
        write(&live.join(f), "x");
        write(&tree.join(f), "x");
    }
    write(&tree.join(".claude/settings.json"), "{}");
    write(&tree.join(".git/hooks/pre-commit"), "#!/bin/sh");
    write(&tree.join("nix/sub/CLAUDE.md"), "x");
    write(&outside.join("x.nix"), "x");
    std::os::unix::fs::symlink(outside.join("x.nix"), tree.join("nix/escape.nix")).unwrap();
    std::os::unix::fs::symlink(tree.join(".claude"), tree.join("nix/dotclaude")).unwrap();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let gp = GoalPolicy {
        allow: s(&["git log", "git commit -am ARG", "cat PATH"]),
        approve: vec![],
        deny: vec![],
        read: s(&["{workspace}"]),
        write: s(&[
            "{workspace}",
            "{workspace}/out",
            &outside.display().to_string(),
        ]),
    };
    let policy = Policy::build("change", &gp, &live)
        .unwrap()
        .with_edit_scope(&tree, &spec(), &rules(&live), &[live.join("steward.toml")])
        .unwrap();
    Fixture {
        _dir: dir,
        live,
        tree,
        outside,
        policy,
    }
}

fn edit(f: &Fixture, tool: &str, path: &Path) -> PolicyDecision {
    let field = if tool == "NotebookEdit" {
        "notebook_path"
    } else {
        "file_path"
    };
    check_tool(&f.policy, tool, &json!({ field: path }), &f.tree)
}

fn denied(d: &PolicyDecision, needle: &str) {
    assert_eq!(d.decision, Permission::Deny, "{d:?}");
    assert!(d.reason.contains(needle), "`{needle}` not in: {}", d.reason);
}

#[test]
fn an_edit_inside_the_globs_is_allowed_for_every_file_tool() {
    let f = fixture();
    for tool in ["Edit", "Write", "MultiEdit", "NotebookEdit"] {
        let d = edit(&f, tool, &f.tree.join("hosts/a.nix"));
        assert!(d.is_allow(), "{tool}: {d:?}");
        assert_eq!(d.rule.as_deref(), Some("change: edit globs"));
    }
    assert!(edit(&f, "Edit", &f.tree.join("nix/mod.nix")).is_allow());
}

#[test]
fn a_new_file_in_a_new_directory_under_a_glob_is_allowed() {
    let f = fixture();
    let d = edit(&f, "Write", &f.tree.join("nix/services/new/web.nix"));
    assert!(d.is_allow(), "{d:?}");
    // `hosts/*.nix` does not cross directories.
    let d = edit(&f, "Write", &f.tree.join("hosts/new/web.nix"));
    denied(
        &d,
        "`hosts/new/web.nix` is outside the change's edit globs (nix/**, hosts/*.nix)",
    );
}

#[test]
fn a_file_outside_the_globs_is_denied_naming_the_globs() {
    let f = fixture();
    let d = edit(&f, "Edit", &f.tree.join("README.md"));
    denied(
        &d,
        "`README.md` is outside the change's edit globs (nix/**, hosts/*.nix)",
    );
    // Relative to the session's cwd, as a path without a directory.
    let d = check_tool(
        &f.policy,
        "Write",
        &json!({"file_path": "README.md"}),
        &f.tree,
    );
    denied(&d, "outside the change's edit globs");
}

#[test]
fn the_live_workspace_and_places_outside_the_tree_are_denied() {
    let f = fixture();
    let d = edit(&f, "Edit", &f.live.join("hosts/a.nix"));
    denied(&d, "outside the change's worktree");
    let d = edit(&f, "Write", &f.outside.join("x.nix"));
    denied(&d, "outside the change's worktree");
}

#[test]
fn dot_dot_and_symlink_escapes_are_denied() {
    let f = fixture();
    let up = format!("{}/nix/../../outside/x.nix", f.tree.display());
    let d = check_tool(&f.policy, "Write", &json!({"file_path": up}), &f.tree);
    denied(&d, "`..` is not accepted");
    // nix/escape.nix matches `nix/**` but is a symlink to a file outside the tree.
    let d = edit(&f, "Edit", &f.tree.join("nix/escape.nix"));
    denied(&d, "outside the change's worktree");
    // nix/dotclaude → .claude: the resolved path is protected.
    let d = edit(&f, "Write", &f.tree.join("nix/dotclaude/settings.json"));
    denied(&d, "protected: .claude");
}

#[test]
fn protected_paths_are_denied_whatever_the_globs_say() {
    let f = fixture();
    let cases = [
        (".claude/settings.json", "protected: .claude"),
        (".git/hooks/pre-commit", "protected: .git"),
        ("nix/sub/CLAUDE.md", "protected: CLAUDE.md"),
        ("nix/.mcp.json", "protected: .mcp.json"),
        ("nix/.envrc", "protected: .envrc"),
        (
            "nix/certs/web.key",
            "protected: a secret path (matches `*.key`)",
        ),
        (
            "nix/.ssh/config",
            "protected: a secret path (matches `.ssh`)",
        ),
    ];
    for (rel, why) in cases {
        denied(&edit(&f, "Write", &f.tree.join(rel)), why);
    }
}

#[test]
fn steward_config_is_protected_in_the_tree_too() {
    let f = fixture();
    let v: toml::Value =
        toml::from_str("edit = [\"*.toml\", \"nix/**\"]\nprofile = \"nixos\"").unwrap();
    let spec = ChangeSpec::from_value(&v).unwrap();
    let state = f.outside.join("state");
    fs::create_dir_all(&state).unwrap();
    let p = Policy::build("change", &GoalPolicy::default(), &f.live)
        .unwrap()
        .with_edit_scope(
            &f.tree,
            &spec,
            &ProtectedPaths {
                workspace: f.live.clone(),
                ..ProtectedPaths::default()
            },
            &[f.live.join("steward.toml"), state],
        )
        .unwrap();
    let d = check_tool(
        &p,
        "Edit",
        &json!({"file_path": f.tree.join("steward.toml")}),
        &f.tree,
    );
    denied(&d, "protected: steward.toml");
    let d = check_tool(
        &p,
        "Write",
        &json!({"file_path": f.tree.join("other.toml")}),
        &f.tree,
    );
    assert!(d.is_allow(), "{d:?}");
}

#[test]
fn a_protected_state_dir_holding_the_worktree_protects_all_but_the_worktree() {
    let f = fixture();
    // The worktree lives in steward's state dir (the base of the fixture).
    let state = f.tree.parent().unwrap().to_path_buf();
    let p = Policy::build("change", &GoalPolicy::default(), &f.live)
        .unwrap()
        .with_edit_scope(&f.tree, &spec(), &rules(&f.live), &[state])
        .unwrap();
    let d = check_tool(
        &p,
        "Edit",
        &json!({"file_path": f.tree.join("hosts/a.nix")}),
        &f.tree,
    );
    assert!(d.is_allow(), "{d:?}");
}

#[test]
fn the_worktree_is_read_and_never_a_shell_write_root() {
    let f = fixture();
    assert!(f.policy.read.contains(&f.tree));
    assert_eq!(f.policy.write, vec![f.outside.clone()]);
    let d = check_tool(
        &f.policy,
        "Read",
        &json!({"file_path": f.tree.join("README.md")}),
        &f.tree,
    );
    assert!(d.is_allow(), "{d:?}");
    let d = check_command(&f.policy, "git log > hosts/a.nix", &f.tree);
    denied(&d, "a change run edits files with Edit/Write only");
    let d = check_command(&f.policy, "git log >> nix/new.nix", &f.tree);
    denied(&d, "a change run edits files with Edit/Write only");
    let out = format!("git log > {}/out/log", f.live.display());
    denied(&check_command(&f.policy, &out, &f.tree), "Edit/Write only");
    // A write root outside both still works.
    let ok = format!("git log > {}/log.txt", f.outside.display());
    assert!(check_command(&f.policy, &ok, &f.tree).is_allow());
}

#[test]
fn git_writers_are_denied_even_when_the_goal_allows_them() {
    let f = fixture();
    for cmd in [
        "git commit -am x",
        "git push",
        "git add -A",
        "git reset --hard HEAD~1",
        "git checkout -- .",
        "git stash",
        "git config user.name x",
        "git worktree add /tmp/x",
        "git branch -f main HEAD~1",
        "git tag v1",
        "sudo git commit -am x",
    ] {
        let d = check_command(&f.policy, cmd, &f.tree);
        denied(&d, STEWARD_COMMITS);
        assert!(
            d.rule
                .as_deref()
                .is_some_and(|r| r.starts_with("change: git ")),
            "{d:?}"
        );
    }
    assert!(check_command(&f.policy, "git log", &f.tree).is_allow());
    // Without the edit scope the goal's rule allows the commit: the scope is what denies it.
    let plain = Policy {
        edit: None,
        deny: f
            .policy
            .deny
            .iter()
            .filter(|r| r.origin != Origin::Change)
            .cloned()
            .collect(),
        ..f.policy.clone()
    };
    assert!(check_command(&plain, "git commit -am x", &f.tree).is_allow());
}

#[test]
fn validate_argv_is_allowed_exactly_and_only_in_the_tree() {
    let f = fixture();
    let ok = "nix flake check --option substituters ''";
    let d = check_command(&f.policy, ok, &f.tree);
    assert!(d.is_allow(), "{d:?}");
    assert_eq!(d.rule.as_deref(), Some("change: validate"));
    // `UNIT` and `*` are literal words: quoted `*` matches, an expanding `*` or another word does not.
    assert!(check_command(&f.policy, "make UNIT '*'", &f.tree).is_allow());
    denied(
        &check_command(&f.policy, "make UNIT *", &f.tree),
        "no allow rule",
    );
    denied(
        &check_command(&f.policy, "make nginx '*'", &f.tree),
        "no allow rule",
    );
    for variant in [
        "nix flake check",
        "nix flake check --option substituters '' --impure",
        "nix flake check --option substituters https://evil",
        "timeout 60 nix flake check --option substituters ''",
    ] {
        denied(&check_command(&f.policy, variant, &f.tree), "no allow rule");
    }
    denied(
        &check_command(&f.policy, ok, &f.live),
        "allowed only in its worktree",
    );
    denied(
        &check_command(&f.policy, &format!("{ok} > out.txt"), &f.tree),
        "Edit/Write only",
    );
}

#[test]
fn the_scope_survives_the_policy_file_and_an_old_format_is_refused() {
    let f = fixture();
    let file = f.outside.join("policy.json");
    f.policy.to_file(&file).unwrap();
    let back = Policy::from_file(&file).unwrap();
    assert_eq!(back, f.policy);
    let input = |rel: &str| json!({ "file_path": f.tree.join(rel) });
    assert!(check_tool(&back, "Edit", &input("hosts/a.nix"), &f.tree).is_allow());
    denied(
        &check_tool(&back, "Edit", &input("README.md"), &f.tree),
        "outside the change's edit globs",
    );
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    v["format"] = json!(1);
    v.as_object_mut().unwrap().remove("edit");
    fs::write(&file, v.to_string()).unwrap();
    let e = Policy::from_file(&file).unwrap_err().to_string();
    assert!(
        e.contains("policy format 1 but this steward reads format 2"),
        "{e}"
    );
}

#[test]
fn a_bad_worktree_or_relative_protected_path_is_refused() {
    let f = fixture();
    let base = Policy::build("change", &GoalPolicy::default(), &f.live).unwrap();
    let e = base
        .clone()
        .with_edit_scope(&f.live.join("missing"), &spec(), &rules(&f.live), &[])
        .unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
    let e = base
        .with_edit_scope(
            &f.tree,
            &spec(),
            &rules(&f.live),
            &[PathBuf::from("steward.toml")],
        )
        .unwrap_err();
    assert!(e.to_string().contains("must be absolute"), "{e}");
}

#[test]
fn a_policy_built_on_the_worktree_loses_its_write_roots_there() {
    let f = fixture();
    // A change run builds the goal's policy with the worktree as `{workspace}`.
    let gp = GoalPolicy {
        allow: vec!["git log".into()],
        read: vec!["{workspace}".into()],
        write: vec!["{workspace}".into(), "{workspace}/out".into()],
        ..GoalPolicy::default()
    };
    let p = Policy::build("change", &gp, &f.tree)
        .unwrap()
        .with_edit_scope(&f.tree, &spec(), &rules(&f.live), &[])
        .unwrap();
    assert!(p.write.is_empty(), "{:?}", p.write);
    assert_eq!(p.read, vec![f.tree.clone()]);
    for target in [f.tree.join("out/log"), f.live.join("log")] {
        let cmd = format!("git log > {}", target.display());
        denied(&check_command(&p, &cmd, &f.tree), "Edit/Write only");
    }
    let d = check_tool(
        &p,
        "Edit",
        &json!({"file_path": f.tree.join("hosts/a.nix")}),
        &f.tree,
    );
    assert!(d.is_allow(), "{d:?}");
}

#[test]
fn a_validator_named_by_a_relative_path_is_not_run_by_the_agent() {
    let f = fixture();
    let v: toml::Value =
        toml::from_str("edit = [\"nix/**\"]\nvalidate = [[\"./check.sh\"]]\nprofile = \"nixos\"")
            .unwrap();
    let spec = ChangeSpec::from_value(&v).unwrap();
    let p = Policy::build("change", &GoalPolicy::default(), &f.live)
        .unwrap()
        .with_edit_scope(&f.tree, &spec, &rules(&f.live), &[])
        .unwrap();
    denied(&check_command(&p, "./check.sh", &f.tree), "./check.sh");
}
