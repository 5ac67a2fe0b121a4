//! The policy boundary as a table: Bash commands and file-tool calls that must be allowed, denied
//! or sent for approval under a health-check goal's policy, against real temp dirs and symlinks.

use std::path::{Path, PathBuf};

use serde_json::json;
use steward::defs::policy::GoalPolicy;
use steward::defs::policy::{self, Permission, Policy};

include!("../data/policy_table.rs");

#[test]
fn bash_cases() {
    let f = fixture();
    let mut failures = Vec::new();
    for (expected, cmd) in BASH {
        let cmd = f.sub(cmd);
        let d = policy::check_command(&f.policy, &cmd, &f.ws);
        if d.decision != *expected {
            failures.push(format!(
                "{cmd:?}: expected {expected:?}, got {:?} ({})",
                d.decision, d.reason
            ));
        }
        assert!(!d.reason.is_empty(), "{cmd:?} has no reason");
    }
    let counts = |v: Permission| BASH.iter().filter(|(e, _)| *e == v).count();
    eprintln!(
        "bash cases: {} ({} allow, {} deny, {} approve)",
        BASH.len(),
        counts(A),
        counts(D),
        counts(P)
    );
    assert!(BASH.len() >= 200);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn file_cases() {
    let f = fixture();
    let mut failures = Vec::new();
    for (expected, tool, input) in FILES {
        let input: serde_json::Value = serde_json::from_str(&f.sub(input)).unwrap();
        let d = policy::check_tool(&f.policy, tool, &input, &f.ws);
        if d.decision != *expected {
            failures.push(format!(
                "{tool} {input}: expected {expected:?}, got {:?} ({})",
                d.decision, d.reason
            ));
        }
    }
    eprintln!("file cases: {}", FILES.len());
    assert!(FILES.len() >= 40);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn grep_and_glob_without_path_use_the_cwd() {
    let f = fixture();
    let d = policy::check_tool(
        &f.policy,
        "Grep",
        &json!({"pattern":"x"}),
        Path::new("/etc"),
    );
    assert_eq!(d.decision, D, "{}", d.reason);
    let d = policy::check_tool(&f.policy, "Glob", &json!({"pattern":"*"}), Path::new("/"));
    assert_eq!(d.decision, D, "{}", d.reason);
}

#[test]
fn decisions_serialise_with_a_decision_field() {
    let f = fixture();
    let d = policy::check_command(&f.policy, "systemctl status nginx", &f.ws);
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["decision"], "allow");
    assert_eq!(
        v["rule"],
        "goal: systemctl status|is-active|is-failed [--no-pager] UNIT"
    );
    let d = policy::check_command(&f.policy, "sudo timeout 5 systemctl restart nginx", &f.ws);
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["decision"], "approve");
    assert_eq!(v["argv"], json!(["systemctl", "restart", "nginx"]));
    let d = policy::check_command(&f.policy, "rm -rf /", &f.ws);
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["rule"], "default: rm");
}

#[test]
fn explain_shows_the_structure() {
    let f = fixture();
    let ex = policy::explain_with(
        &f.policy,
        "LANG=C sudo timeout 5 systemctl status nginx 2>&1 | grep x > out/y <<'E'\nbody\nE\n",
        &f.ws,
    );
    let v = serde_json::to_value(&ex).unwrap();
    let cmds = &v["lists"][0]["pipelines"][0]["commands"];
    assert_eq!(cmds[0]["assignments"][0], "LANG=C");
    assert_eq!(cmds[0]["argv"][0], "sudo");
    assert_eq!(cmds[0]["unwrapped"][2][0], "systemctl");
    assert_eq!(cmds[0]["redirections"][0]["op"], ">&");
    assert_eq!(cmds[1]["heredocs"][0]["body"], "body\n");
    assert_eq!(cmds[0]["verdict"]["decision"], "allow");
    assert_eq!(v["decision"]["decision"], "allow");
    let ex = policy::explain("echo $(id) `uptime` | sh -c 'rm x'");
    let v = serde_json::to_value(&ex).unwrap();
    let cmds = &v["lists"][0]["pipelines"][0]["commands"];
    assert_eq!(cmds[0]["substitutions"].as_array().unwrap().len(), 2);
    assert_eq!(
        cmds[1]["nested"][0]["lists"][0]["pipelines"][0]["commands"][0]["argv"][0],
        "rm"
    );
    assert_eq!(v["decision"]["decision"], "deny");
}

/// Deny reasons are what the model reads and the audit records: these, which the table above
/// does not reach, must read word for word as they do (typed errors keep the wording).
#[test]
fn refusal_reasons_read_word_for_word() {
    let f = fixture();
    let cases: &[(&str, &str)] = &[
        (r"echo $'\x'", r"bad `\x` escape in `$'…'`"),
        (r"echo $'\uZ'", r"bad `\u` escape in `$'…'`"),
        (r"echo $'\q'", r"escape `\q` in `$'…'` is not accepted"),
        (r"echo $'\001'", r"`$'…'` decodes to a control character"),
        ("LANG=* ls", "glob in the value of `LANG`"),
        ("X[1]=a ls", "array assignments are not allowed"),
        ("sudo -u", "`sudo`: `-u` needs a value"),
        ("sudo -u -x ls", "`sudo`: option value `-x` is not accepted"),
        ("sudo * ls", "`sudo`: argument `*` is not literal"),
        (
            "sudo --bogus=1 ls",
            "`sudo` option `--bogus` is not allowed",
        ),
        ("timeout", "`timeout` needs a duration and a command"),
        ("'' x", "empty command name"),
        ("cat < <(id)", "process substitution is not allowed"),
        (
            "systemctl --no-pager=x status nginx",
            "no allow rule matches `systemctl --no-pager=x status nginx` (closest \
             `systemctl status|is-active|is-failed [--no-pager] UNIT`: flag `--no-pager` takes \
             no value)",
        ),
    ];
    let mut wrong = Vec::new();
    for (cmd, reason) in cases {
        let d = policy::check_command(&f.policy, cmd, &f.ws);
        if d.decision != D || d.reason != *reason {
            wrong.push(format!("{cmd:?}: {:?} {:?}", d.decision, d.reason));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let bad = |gp: GoalPolicy| Policy::build("g", &gp, &f.ws).unwrap_err().to_string();
    assert_eq!(
        bad(GoalPolicy {
            read: vec!["rel/dir".into()],
            ..Default::default()
        }),
        "goal `g`: pattern `rel/dir`: file roots must be absolute (or start with {workspace}) \
         and contain no `..`"
    );
    assert_eq!(
        bad(GoalPolicy {
            allow: vec!["ls FOO".into()],
            ..Default::default()
        }),
        "goal `g`: pattern `ls FOO`: unknown placeholder `FOO` (known: UNIT NUM PATH FILE FSPATH \
         JOB NAME TIME ARG)"
    );
}

/// `DUMP_POLICY_CASES=1 cargo test --test policy_cases dump -- --nocapture` prints every decision.
#[test]
fn dump() {
    if std::env::var_os("DUMP_POLICY_CASES").is_none() {
        return;
    }
    let f = fixture();
    for (_, cmd) in BASH {
        let cmd = f.sub(cmd);
        let d = policy::check_command(&f.policy, &cmd, &f.ws);
        println!("{:?}\t{cmd:?}\t{}", d.decision, d.reason);
    }
}

/// Random splices of shell fragments: the walker never allows a command containing a fragment
/// that can only be dangerous, and never takes the hook down (a panic would be exit 2 anyway).
#[test]
fn random_fragments_never_allow_danger() {
    let f = fixture();
    let frags = [
        "systemctl status nginx",
        "uptime",
        " ",
        ";",
        "&&",
        "||",
        "|",
        "&",
        "\n",
        "$(",
        ")",
        "`",
        "'",
        "\"",
        "\\",
        "$'\\x72m'",
        "rm -rf /",
        "> /tmp/x",
        "<(",
        ">(",
        "{",
        "}",
        "(",
        "[[",
        "$HOME",
        "${X}",
        "$((1))",
        "<<EOF\n",
        "EOF\n",
        "sh -c ",
        "sudo ",
        "env ",
        "xargs ",
        "*",
        "~",
        "#",
        "=",
        "FOO=1 ",
        "python3 -c x",
        "-H host",
        "echo ",
        "cat ",
        ".env",
        "..",
        "/",
    ];
    let danger = [
        "rm -rf /",
        "> /tmp/x",
        "python3 -c x",
        "-H host",
        "$(",
        "`",
        "<(",
        ">(",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut allowed = 0;
    let mut errors = 0;
    for _ in 0..3000 {
        let n = 1 + (next() % 7) as usize;
        let cmd: String = (0..n)
            .map(|_| frags[(next() % frags.len() as u64) as usize])
            .collect();
        let input = serde_json::to_vec(&json!({
            "tool_name": "Bash", "tool_input": {"command": cmd}, "cwd": f.ws,
        }))
        .unwrap();
        let a = policy::hook_decision_with(&f.policy, &input);
        assert!(a.exit_code == 0 || a.exit_code == 2, "{cmd:?}");
        if a.exit_code == 2 {
            errors += 1;
        }
        if a.decision.as_ref().is_some_and(|d| d.decision == A) {
            allowed += 1;
            // Quoted, escaped or commented-out fragments are text, not danger.
            if cmd.contains(['\'', '"', '\\', '#']) {
                continue;
            }
            for d in danger {
                assert!(!cmd.contains(d), "allowed {cmd:?} containing {d:?}");
            }
        }
    }
    eprintln!("random fragments: {allowed} of 3000 allowed, {errors} blocked by exit 2");
}
