// The hook's hostile inputs, shared by tests/hook_hostile.rs and bench/hook.sh
// (examples/hook_bench.rs): (what, tool, tool_input, a fragment of the deny reason).
// Each crosses one bound; each was a crash, a hang or a quadratic walk before the bounds.

fn hostile_nested(n: usize, form: &str) -> String {
    let mut s = String::from("true");
    for _ in 0..n {
        s = form.replace("%s", &s);
    }
    s
}

#[allow(dead_code)]
fn hostile_cases() -> Vec<(&'static str, &'static str, serde_json::Value, &'static str)> {
    let bash = |c: String| serde_json::json!({ "command": c });
    let long_path = format!("/{}", "a/".repeat(400_000));
    vec![
        (
            "7.5 KB of nested braces",
            "Bash",
            bash(format!("{}true{}", "{ ".repeat(1200), " ; }".repeat(1200))),
            "nested 1200 deep",
        ),
        (
            "25 nested case without ;;",
            "Bash",
            bash(hostile_nested(25, "case x in x) %s esac")),
            "`case` nested 25 deep",
        ),
        ("3,000 nested $( )", "Bash", bash(hostile_nested(3000, "echo $(%s)")), "nested 3000 deep"),
        ("3,000 nested backticks", "Bash", bash(format!("echo {}", "`".repeat(3000))), ""),
        ("1,500 nested if", "Bash", bash(hostile_nested(1500, "if %s; then true; fi")), "nested 1500 deep"),
        (
            "1,500 nested while",
            "Bash",
            bash(hostile_nested(1500, "while %s; do true; done")),
            "nested 1500 deep",
        ),
        ("1,000 nested ${ }", "Bash", bash(hostile_nested(1000, "echo ${a:-%s}")), "nested 1000 deep"),
        ("1,000 nested ( )", "Bash", bash(hostile_nested(1000, "( %s )")), "nested 1000 deep"),
        ("24 nested { } (the bound)", "Bash", bash(hostile_nested(24, "{ %s; }")), "brace group"),
        ("6 nested case (the bound)", "Bash", bash(hostile_nested(6, "case x in x) %s esac")), ""),
        (
            "a 10,000-part chain",
            "Bash",
            bash(vec!["true"; 10_000].join(";")),
            "more than 256 simple commands",
        ),
        (
            "a 10,000-part pipeline",
            "Bash",
            bash(vec!["true"; 10_000].join("|")),
            "more than 256 simple commands",
        ),
        ("a 1 MB command", "Bash", bash("uptime ".repeat(150_000)), "longer than"),
        (
            "a Read of 400k path components",
            "Read",
            serde_json::json!({ "file_path": long_path }),
            "PATH_MAX",
        ),
        (
            "a 4 KB path of 2,000 components",
            "Read",
            serde_json::json!({ "file_path": format!("/{}", "a/".repeat(2000)) }),
            "",
        ),
        ("df on 400k path components", "Bash", bash(format!("df -h {long_path}")), ""),
    ]
}
