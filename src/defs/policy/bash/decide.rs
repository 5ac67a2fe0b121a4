//! The decision on one simple command's argv: hard denies, shell-state builtins, `sh -c`
//! scripts (walked in turn), awk programs, wrappers unwrapped, then the approve and allow rules.

use super::super::files::PathCtx;
use super::super::model::{Origin, Permission, PolicyDecision};
use super::super::pattern::{ArgWord, Pos};
use super::wrappers::unwrap_xargs;
use super::{BashError, CommandInfo, MAX_DEPTH, Walker};

/// Directories whose programs may be named by absolute path (matched on the basename).
const BIN_DIRS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/run/current-system/sw/bin",
    "/run/wrappers/bin",
];

/// Builtins and programs that change the shell's state or run text as code: the walker's later
/// checks (relative paths, the command name itself) would no longer mean what they say.
const SHELL_STATE: &[&str] = &[
    "eval",
    "source",
    ".",
    "alias",
    "unalias",
    "trap",
    "set",
    "shopt",
    "enable",
    "builtin",
    "declare",
    "typeset",
    "export",
    "local",
    "readonly",
    "unset",
    "cd",
    "pushd",
    "popd",
    "hash",
    "fc",
    "history",
    "let",
    "read",
    "mapfile",
    "readarray",
    "coproc",
    "getopts",
    "bind",
    "su",
    "runuser",
    "chroot",
    "watch",
    "systemd-run",
    "script",
    "ulimit",
    "umask",
    "zsh",
    "fish",
    "csh",
    "tcsh",
    "doas",
    "pkexec",
    "setpriv",
    "unshare",
    "nsenter",
    "capsh",
    "flock",
];

/// Shells whose `-c` string is parsed and checked like a command of its own.
const SHELLS: &[&str] = &["sh", "bash", "dash", "ash"];

const AWKS: &[&str] = &["awk", "gawk", "mawk", "nawk", "busybox-awk"];

impl Walker<'_> {
    /// Decides one argv, unwrapping wrappers until a real command is left.
    pub(super) fn argv(
        &mut self,
        mut argv: Vec<ArgWord>,
        info: &mut CommandInfo,
        depth: usize,
    ) -> PolicyDecision {
        for level in 0..=MAX_DEPTH {
            info.unwrapped
                .push(argv.iter().map(|a| a.text.clone()).collect());
            let Some(first) = argv.first() else {
                return PolicyDecision::deny("wrapper without a command");
            };
            if first.unknown || first.glob {
                return PolicyDecision::deny(format!(
                    "the command name `{}` is not a literal",
                    first.text
                ));
            }
            let name = match command_name(&first.text) {
                Ok(n) => n.to_string(),
                Err(e) => return PolicyDecision::deny(e.to_string()),
            };
            let args = &argv[1..];
            if let Some(rule) = self
                .policy
                .deny
                .iter()
                .find(|r| r.pattern.deny_matches(&name, args))
            {
                let reason = match rule.origin {
                    Origin::Change => format!(
                        "`{}`: {} (rule `{}`)",
                        show(&argv),
                        super::super::STEWARD_COMMITS,
                        rule.pattern.source
                    ),
                    Origin::Default | Origin::Goal => format!(
                        "`{}` is denied by policy rule `{}`",
                        show(&argv),
                        rule.pattern.source
                    ),
                };
                return PolicyDecision::deny_by(rule, reason);
            }
            if SHELL_STATE.contains(&name.as_str()) {
                return PolicyDecision::deny(format!(
                    "`{name}` changes the shell's state or runs text as code; steward does not \
                     allow it"
                ));
            }
            // A change's validator runs as the goal wrote it: not behind a wrapper.
            if level == 0
                && let Some(scope) = &self.policy.edit
                && let Some(d) = scope.validator(&argv, self.cwd)
            {
                return d;
            }
            if SHELLS.contains(&name.as_str()) {
                return self.shell_c(&name, args, info, depth);
            }
            if AWKS.contains(&name.as_str())
                && let Err(e) = awk_ok(args)
            {
                return PolicyDecision::deny(e.to_string());
            }
            if name == "xargs" {
                // An exact allow rule for the whole xargs line wins; otherwise the command xargs
                // runs gets arguments nobody has seen, which no placeholder accepts.
                if let Some(d) = self.rules(&name, args, false) {
                    return d;
                }
                match unwrap_xargs(args) {
                    Ok(mut inner) => {
                        inner.push(ArgWord::unknown());
                        argv = inner;
                        continue;
                    }
                    Err(e) => return PolicyDecision::deny(e.to_string()),
                }
            }
            match self.unwrap(&name, args) {
                Some(Ok(inner)) => {
                    argv = inner;
                    continue;
                }
                Some(Err(e)) => return PolicyDecision::deny(e.to_string()),
                None => {}
            }
            return self.rules(&name, args, true).unwrap_or_else(|| {
                PolicyDecision::deny(format!("no rule matches `{}`", show(&argv)))
            });
        }
        PolicyDecision::deny("wrappers nested too deeply")
    }

    /// Approve rules, then allow rules. With `explain_miss`, a miss explains the closest rule.
    fn rules(&self, name: &str, args: &[ArgWord], explain_miss: bool) -> Option<PolicyDecision> {
        let ctx = PathCtx {
            policy: self.policy,
            cwd: self.cwd,
        };
        for rule in &self.policy.approve {
            if rule.pattern.matches(name, args, &ctx).is_ok() {
                return Some(PolicyDecision {
                    decision: Permission::Approve,
                    rule: Some(rule.label()),
                    argv: Some(
                        std::iter::once(name.to_string())
                            .chain(args.iter().map(|a| a.text.clone()))
                            .collect(),
                    ),
                    reason: format!(
                        "`{} {}` requires a human's approval (rule `{}`)",
                        name,
                        args.iter()
                            .map(|a| a.text.as_str())
                            .collect::<Vec<_>>()
                            .join(" "),
                        rule.pattern.source
                    ),
                });
            }
        }
        // The closest rule, for a useful reason: same command, and the same first positional word
        // (subcommand) if there is one.
        let first_pos = args
            .iter()
            .find(|a| !a.text.starts_with('-'))
            .map(|a| a.text.as_str());
        let mut closest: Option<(u8, String)> = None;
        for rule in &self.policy.allow {
            match rule.pattern.matches(name, args, &ctx) {
                Ok(()) => {
                    return Some(PolicyDecision::allow(
                        Some(rule.label()),
                        format!("allowed by `{}`", rule.pattern.source),
                    ));
                }
                Err(why) => {
                    if rule.pattern.command.iter().any(|c| c == name) {
                        let same_sub = match (rule.pattern.positional.first(), first_pos) {
                            (Some(Pos::Lit { alts }), Some(f)) => alts.iter().any(|a| a == f),
                            _ => false,
                        };
                        let score = if same_sub { 2 } else { 1 };
                        if closest.as_ref().is_none_or(|(s, _)| *s < score) {
                            closest = Some((score, format!("`{}`: {why}", rule.pattern.source)));
                        }
                    }
                }
            }
        }
        if !explain_miss {
            return None;
        }
        let full = std::iter::once(name)
            .chain(args.iter().map(|a| a.text.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        Some(PolicyDecision::deny(match closest.map(|(_, c)| c) {
            Some(c) => format!("no allow rule matches `{full}` (closest {c})"),
            None => format!("no allow rule matches `{full}`"),
        }))
    }

    fn shell_c(
        &mut self,
        name: &str,
        args: &[ArgWord],
        info: &mut CommandInfo,
        depth: usize,
    ) -> PolicyDecision {
        if depth >= MAX_DEPTH {
            return PolicyDecision::deny("shell scripts nested too deeply");
        }
        let mut i = 0;
        let mut script = None;
        while i < args.len() {
            let a = &args[i];
            if a.glob || a.unknown {
                return PolicyDecision::deny(format!(
                    "`{name}`: argument `{}` is not literal",
                    a.text
                ));
            }
            let t = a.text.as_str();
            // Only -e -u -x (and clusters of them), then -c: other options load profiles or
            // read commands from elsewhere.
            let Some(flags) = t.strip_prefix('-').filter(|f| !f.is_empty()) else {
                break;
            };
            let (opts, has_c) = match flags.strip_suffix('c') {
                Some(o) => (o, true),
                None => (flags, false),
            };
            if !opts.chars().all(|c| "eux".contains(c)) {
                return PolicyDecision::deny(format!("`{name}` option `{t}` is not allowed"));
            }
            i += 1;
            if has_c {
                script = args.get(i).map(|a| a.text.clone());
                if args.get(i).is_some_and(|a| a.unknown || a.glob) {
                    return PolicyDecision::deny(format!("`{name} -c` needs a literal script"));
                }
                break;
            }
        }
        let Some(script) = script else {
            return PolicyDecision::deny(format!(
                "`{name}` is allowed only as `{name} -c 'COMMAND'`: a script file or stdin \
                 cannot be checked"
            ));
        };
        let nested = self.program(&script, depth + 1);
        let d = nested.decision.clone();
        info.nested.push(nested);
        match d.decision {
            Permission::Deny => PolicyDecision {
                reason: format!("in `{name} -c`: {}", d.reason),
                ..d
            },
            _ => d,
        }
    }
}

/// awk programs that can run commands or write files are refused; `>` is refused even as a
/// comparison, because telling the two apart needs an awk parser.
fn awk_ok(args: &[ArgWord]) -> Result<(), BashError> {
    for a in args {
        let t = a.text.as_str();
        if matches!(
            t,
            "-f" | "--file" | "-E" | "--exec" | "-i" | "--include" | "-l" | "--load"
        ) || t.starts_with("--file=")
            || t.starts_with("--exec=")
        {
            return Err(BashError::AwkFile(t.to_string()));
        }
        for bad in [
            "system", "|", "getline", ">", "ENVIRON", "PROCINFO", "close(",
        ] {
            if t.contains(bad) {
                return Err(BashError::AwkProgram(bad));
            }
        }
    }
    Ok(())
}

fn command_name(text: &str) -> Result<&str, BashError> {
    match text.rsplit_once('/') {
        None if text.is_empty() => Err(BashError::EmptyName),
        None => Ok(text),
        Some((dir, base)) => {
            if !base.is_empty() && BIN_DIRS.contains(&dir) {
                Ok(base)
            } else {
                Err(BashError::PathName(text.to_string()))
            }
        }
    }
}

fn show(argv: &[ArgWord]) -> String {
    argv.iter()
        .map(|a| a.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}
