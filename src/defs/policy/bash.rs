//! The Bash walker: parses a command with `brush-parser` and decides every simple command on its
//! argv. It understands a deliberately small subset of the shell — simple commands joined by
//! `;` `&&` `||` `|` `|&` `&` and newlines, quoting, safe environment prefixes, redirections,
//! heredocs, and a fixed list of wrappers it unwraps — and denies everything else, because what
//! the walker does not understand it cannot check.

use std::io::Cursor;
use std::path::Path;

use brush_parser::ast::{
    self, AssignmentName, AssignmentValue, Command, CommandPrefixOrSuffixItem, CompoundCommand,
    IoFileRedirectKind, IoFileRedirectTarget, IoRedirect,
};
use brush_parser::word::{self, WordPiece, WordPieceWithSource};
use brush_parser::{Parser, ParserOptions};
use serde::Serialize;

use super::files::{Access, PathCtx};
use super::model::{Decision, Policy, Verdict};
use super::pattern::{ArgWord, wild_match};

/// Longest command the walker looks at; longer ones are denied rather than parsed.
const MAX_COMMAND: usize = 64 * 1024;
/// `sh -c 'sh -c …'` nesting and wrapper chains are cut off here.
const MAX_DEPTH: usize = 6;
/// Simple commands in one command line, nested scripts included: a chain of 10,000 parts is
/// not something an operator can review, and each part costs a policy match.
pub const MAX_SIMPLE_COMMANDS: usize = 256;

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

/// The parsed structure of a command and the decision on it.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Lists separated by `;`, `&` or newlines.
    pub lists: Vec<ListInfo>,
    pub decision: Decision,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListInfo {
    /// `;` (also newline) or `&` (background).
    pub separator: String,
    pub pipelines: Vec<PipelineInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineInfo {
    /// `&&` or `||` before this pipeline; none for the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    pub negated: bool,
    pub timed: bool,
    pub commands: Vec<CommandInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommandInfo {
    /// `simple`, or the construct the walker refuses (`subshell`, `if`, `function`, …).
    pub kind: String,
    pub argv: Vec<String>,
    pub assignments: Vec<String>,
    pub redirections: Vec<RedirectionInfo>,
    pub substitutions: Vec<String>,
    pub heredocs: Vec<HeredocInfo>,
    /// The argv at each wrapper level: `sudo timeout 5 x` → [sudo…], [timeout…], [x].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unwrapped: Vec<Vec<String>>,
    /// `sh -c '…'` scripts, explained in turn.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nested: Vec<Explanation>,
    pub verdict: Decision,
}

impl CommandInfo {
    fn new(kind: &str) -> CommandInfo {
        CommandInfo {
            kind: kind.to_string(),
            argv: Vec::new(),
            assignments: Vec::new(),
            redirections: Vec::new(),
            substitutions: Vec::new(),
            heredocs: Vec::new(),
            unwrapped: Vec::new(),
            nested: Vec::new(),
            verdict: Decision::deny("not checked"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RedirectionInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    pub op: String,
    pub target: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeredocInfo {
    pub delimiter: String,
    /// Unquoted delimiter: the body undergoes expansion.
    pub expands: bool,
    pub body: String,
}

/// Decides a Bash command: every simple command must be allowed (deny beats approve beats allow);
/// an approval-required command must be the whole command, because the executor later runs that
/// one argv for the human, without a shell.
pub fn check_command(policy: &Policy, command: &str, cwd: &Path) -> Decision {
    explain_with(policy, command, cwd).decision
}

/// The parsed structure with per-command verdicts under the bundled default policy only (no goal:
/// nothing is allowed, so the verdicts show what the walker and the default denies say).
pub fn explain(command: &str) -> Explanation {
    let cwd = std::env::current_dir().unwrap_or_else(|_| Path::new("/").to_path_buf());
    match Policy::build("explain", &crate::defs::policy::GoalPolicy::default(), &cwd) {
        Ok(policy) => explain_with(&policy, command, &cwd),
        Err(e) => Explanation {
            command: command.to_string(),
            error: Some(e.to_string()),
            lists: Vec::new(),
            decision: Decision::deny(e.to_string()),
        },
    }
}

/// The parsed structure with per-command verdicts under `policy`.
pub fn explain_with(policy: &Policy, command: &str, cwd: &Path) -> Explanation {
    let mut walker = Walker {
        policy,
        cwd,
        home: std::env::var("HOME").ok().filter(|h| h.starts_with('/')),
        simple: 0,
    };
    let mut ex = walker.program(command, 0);
    if ex.decision.decision == Verdict::Approve && walker.simple > 1 {
        ex.decision = Decision {
            decision: Verdict::Deny,
            rule: ex.decision.rule.clone(),
            argv: None,
            reason: format!(
                "{} — an approval-required command must be submitted alone, not inside a \
                 chain, pipeline or wrapper script",
                ex.decision.reason
            ),
        };
    }
    ex
}

struct Walker<'a> {
    policy: &'a Policy,
    cwd: &'a Path,
    home: Option<String>,
    /// Simple commands seen, nested scripts included.
    simple: usize,
}

fn options() -> ParserOptions {
    ParserOptions {
        // Extended globs would hide `@(…)` patterns in words the walker treats as text.
        enable_extended_globbing: false,
        ..ParserOptions::default()
    }
}

fn too_many_commands() -> Decision {
    Decision::deny(format!(
        "more than {MAX_SIMPLE_COMMANDS} simple commands in one command line: not checked"
    ))
}

fn combine(parts: &[&Decision]) -> Decision {
    if parts.is_empty() {
        return Decision::deny("empty command: nothing to run");
    }
    if let Some(d) = parts.iter().find(|d| d.decision == Verdict::Deny) {
        return (*d).clone();
    }
    if let Some(d) = parts.iter().find(|d| d.decision == Verdict::Approve) {
        return (*d).clone();
    }
    let rules: Vec<String> = parts.iter().filter_map(|d| d.rule.clone()).collect();
    let mut uniq: Vec<String> = Vec::new();
    for r in rules {
        if !uniq.contains(&r) {
            uniq.push(r);
        }
    }
    if let [one] = parts {
        return (*one).clone();
    }
    Decision::allow(
        Some(uniq.join("; ")),
        format!("all {} commands are allowed", parts.len()),
    )
}

impl Walker<'_> {
    fn program(&mut self, command: &str, depth: usize) -> Explanation {
        let mut ex = Explanation {
            command: command.to_string(),
            error: None,
            lists: Vec::new(),
            decision: Decision::deny("not checked"),
        };
        let fail = |ex: &mut Explanation, msg: String| {
            ex.error = Some(msg.clone());
            ex.decision = Decision::deny(msg);
        };
        if command.len() > MAX_COMMAND {
            fail(&mut ex, format!("command longer than {MAX_COMMAND} bytes"));
            return ex;
        }
        if command
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            fail(&mut ex, "command contains control characters".to_string());
            return ex;
        }
        if let Err(e) = super::bounds::check(command) {
            fail(&mut ex, e);
            return ex;
        }
        let program = match Parser::new(Cursor::new(command.as_bytes()), &options()).parse_program()
        {
            Ok(p) => p,
            Err(e) => {
                fail(
                    &mut ex,
                    format!("could not parse the command as shell: {e}"),
                );
                return ex;
            }
        };
        for complete in &program.complete_commands {
            for item in &complete.0 {
                let separator = match item.1 {
                    ast::SeparatorOperator::Async => "&",
                    ast::SeparatorOperator::Sequence => ";",
                };
                let mut list = ListInfo {
                    separator: separator.to_string(),
                    pipelines: Vec::new(),
                };
                list.pipelines
                    .push(self.pipeline(&item.0.first, None, depth));
                for more in &item.0.additional {
                    let (op, p) = match more {
                        ast::AndOr::And(p) => ("&&", p),
                        ast::AndOr::Or(p) => ("||", p),
                    };
                    list.pipelines.push(self.pipeline(p, Some(op), depth));
                }
                ex.lists.push(list);
            }
        }
        let verdicts: Vec<&Decision> = ex
            .lists
            .iter()
            .flat_map(|l| &l.pipelines)
            .flat_map(|p| &p.commands)
            .map(|c| &c.verdict)
            .collect();
        ex.decision = combine(&verdicts);
        if self.simple > MAX_SIMPLE_COMMANDS {
            ex.decision = too_many_commands();
        }
        ex
    }

    fn pipeline(&mut self, p: &ast::Pipeline, op: Option<&str>, depth: usize) -> PipelineInfo {
        let mut info = PipelineInfo {
            operator: op.map(str::to_string),
            negated: p.bang,
            timed: p.timed.is_some(),
            commands: Vec::new(),
        };
        for cmd in &p.seq {
            let ci = match cmd {
                Command::Simple(sc) => self.simple_command(sc, depth),
                Command::Compound(c, _) => {
                    let kind = match c {
                        CompoundCommand::Arithmetic(_) => "arithmetic",
                        CompoundCommand::ArithmeticForClause(_) | CompoundCommand::ForClause(_) => {
                            "for"
                        }
                        CompoundCommand::BraceGroup(_) => "brace group",
                        CompoundCommand::Subshell(_) => "subshell",
                        CompoundCommand::CaseClause(_) => "case",
                        CompoundCommand::IfClause(_) => "if",
                        CompoundCommand::WhileClause(_) => "while",
                        CompoundCommand::UntilClause(_) => "until",
                        CompoundCommand::Coprocess(_) => "coproc",
                    };
                    refused(kind)
                }
                Command::Function(_) => refused("function"),
                Command::ExtendedTest(..) => refused("[[ ]] test"),
            };
            info.commands.push(ci);
        }
        info
    }

    fn simple_command(&mut self, sc: &ast::SimpleCommand, depth: usize) -> CommandInfo {
        self.simple += 1;
        if self.simple > MAX_SIMPLE_COMMANDS {
            // Past the bound each part costs O(1): the whole command is denied anyway.
            let mut info = CommandInfo::new("simple");
            info.verdict = too_many_commands();
            return info;
        }
        let mut info = CommandInfo::new("simple");
        let mut problems: Vec<String> = Vec::new();
        let mut argv: Vec<ArgWord> = Vec::new();
        let mut words: Vec<&ast::Word> = Vec::new();
        let mut items: Vec<&CommandPrefixOrSuffixItem> = Vec::new();
        if let Some(prefix) = &sc.prefix {
            items.extend(prefix.0.iter());
        }
        let prefix_len = items.len();
        if let Some(suffix) = &sc.suffix {
            items.extend(suffix.0.iter());
        }
        for (idx, item) in items.iter().enumerate() {
            if idx == prefix_len {
                if let Some(w) = &sc.word_or_name {
                    words.push(w);
                }
            }
            match item {
                CommandPrefixOrSuffixItem::IoRedirect(r) => {
                    if let Err(e) = self.redirect(r, &mut info) {
                        problems.push(e);
                    }
                }
                CommandPrefixOrSuffixItem::Word(w) => words.push(w),
                CommandPrefixOrSuffixItem::AssignmentWord(a, w) => {
                    if idx < prefix_len {
                        info.assignments.push(w.value.clone());
                        if let Err(e) = self.assignment(a) {
                            problems.push(e);
                        }
                    } else {
                        // After the command name `X=y` is an ordinary argument (`env X=y …`).
                        words.push(w);
                    }
                }
                CommandPrefixOrSuffixItem::ProcessSubstitution(kind, sub) => {
                    let k = match kind {
                        ast::ProcessSubstitutionKind::Read => "<",
                        ast::ProcessSubstitutionKind::Write => ">",
                    };
                    info.substitutions.push(format!("{k}({})", sub.list));
                    problems.push("process substitution is not allowed".to_string());
                }
            }
        }
        if items.len() == prefix_len {
            if let Some(w) = &sc.word_or_name {
                words.push(w);
            }
        }
        for w in words {
            match expand(&w.value, self.home.as_deref(), &mut info.substitutions) {
                Ok(a) => {
                    info.argv.push(a.text.clone());
                    argv.push(a);
                }
                Err(e) => {
                    info.argv.push(w.value.clone());
                    problems.push(e);
                }
            }
        }
        if let Some(p) = problems.into_iter().next() {
            info.verdict = Decision::deny(p);
            return info;
        }
        if argv.is_empty() {
            info.verdict = Decision::deny(
                "no command: assignments or redirections alone change the shell's state",
            );
            return info;
        }
        info.verdict = self.argv(argv, &mut info, depth);
        info
    }

    fn assignment(&self, a: &ast::Assignment) -> Result<(), String> {
        let AssignmentName::VariableName(name) = &a.name else {
            return Err("array assignments are not allowed".to_string());
        };
        let AssignmentValue::Scalar(value) = &a.value else {
            return Err("array assignments are not allowed".to_string());
        };
        self.env_ok(name)?;
        let mut subs = Vec::new();
        let v = expand(&value.value, self.home.as_deref(), &mut subs)?;
        if v.glob {
            return Err(format!("glob in the value of `{name}`"));
        }
        Ok(())
    }

    fn env_ok(&self, name: &str) -> Result<(), String> {
        if self.policy.safe_env.iter().any(|p| wild_match(p, name)) {
            Ok(())
        } else {
            Err(format!(
                "environment variable `{name}` may not be set (allowed: {}); variables such as \
                 PATH, LD_PRELOAD, PAGER or GIT_* change what a command runs",
                self.policy.safe_env.join(", ")
            ))
        }
    }

    fn redirect(&self, r: &IoRedirect, info: &mut CommandInfo) -> Result<(), String> {
        let home = self.home.as_deref();
        let mut subs = Vec::new();
        let path_check = |raw: &str, access: Access| -> Result<(), String> {
            self.policy
                .check_path(raw, self.cwd, access)
                .map(|_| ())
                .map_err(|e| format!("redirection: {e}"))
        };
        let literal = |w: &ast::Word, subs: &mut Vec<String>| -> Result<String, String> {
            let a = expand(&w.value, home, subs)?;
            if a.glob {
                return Err(format!("glob in redirection target `{}`", w.value));
            }
            Ok(a.text)
        };
        let result = match r {
            IoRedirect::File(fd, kind, target) => {
                let (op, access) = match kind {
                    IoFileRedirectKind::Read => ("<", Access::Read),
                    IoFileRedirectKind::Write => (">", Access::Write),
                    IoFileRedirectKind::Append => (">>", Access::Write),
                    IoFileRedirectKind::ReadAndWrite => ("<>", Access::Write),
                    IoFileRedirectKind::Clobber => (">|", Access::Write),
                    IoFileRedirectKind::DuplicateInput => ("<&", Access::Read),
                    IoFileRedirectKind::DuplicateOutput => (">&", Access::Write),
                };
                let (shown, res) = match target {
                    IoFileRedirectTarget::Filename(w) => (
                        w.value.clone(),
                        literal(w, &mut subs).and_then(|p| path_check(&p, access)),
                    ),
                    IoFileRedirectTarget::Fd(n) => (n.to_string(), Ok(())),
                    IoFileRedirectTarget::Duplicate(w) => {
                        let res = literal(w, &mut subs).and_then(|t| {
                            let fdish = t == "-"
                                || (!t.is_empty()
                                    && t.trim_end_matches('-').chars().all(|c| c.is_ascii_digit()));
                            if fdish {
                                Ok(())
                            } else {
                                path_check(&t, access)
                            }
                        });
                        (w.value.clone(), res)
                    }
                    IoFileRedirectTarget::ProcessSubstitution(_, sub) => {
                        subs.push(format!("({})", sub.list));
                        (
                            format!("({})", sub.list),
                            Err("process substitution is not allowed".to_string()),
                        )
                    }
                };
                info.redirections.push(RedirectionInfo {
                    fd: *fd,
                    op: op.to_string(),
                    target: shown,
                });
                res
            }
            IoRedirect::OutputAndError(w, append) => {
                info.redirections.push(RedirectionInfo {
                    fd: None,
                    op: if *append { "&>>" } else { "&>" }.to_string(),
                    target: w.value.clone(),
                });
                literal(w, &mut subs).and_then(|p| path_check(&p, Access::Write))
            }
            IoRedirect::HereString(fd, w) => {
                info.redirections.push(RedirectionInfo {
                    fd: *fd,
                    op: "<<<".to_string(),
                    target: w.value.clone(),
                });
                literal(w, &mut subs).map(|_| ())
            }
            IoRedirect::HereDocument(fd, doc) => {
                info.redirections.push(RedirectionInfo {
                    fd: *fd,
                    op: if doc.remove_tabs { "<<-" } else { "<<" }.to_string(),
                    target: doc.here_end.value.clone(),
                });
                info.heredocs.push(HeredocInfo {
                    delimiter: doc.here_end.value.clone(),
                    expands: doc.requires_expansion,
                    body: doc.doc.value.clone(),
                });
                if doc.requires_expansion {
                    heredoc_static(&doc.doc.value, &mut subs)
                } else {
                    Ok(())
                }
            }
        };
        info.substitutions.extend(subs);
        result
    }

    /// Decides one argv, unwrapping wrappers until a real command is left.
    fn argv(&mut self, mut argv: Vec<ArgWord>, info: &mut CommandInfo, depth: usize) -> Decision {
        for _ in 0..=MAX_DEPTH {
            info.unwrapped
                .push(argv.iter().map(|a| a.text.clone()).collect());
            let Some(first) = argv.first() else {
                return Decision::deny("wrapper without a command");
            };
            if first.unknown || first.glob {
                return Decision::deny(format!(
                    "the command name `{}` is not a literal",
                    first.text
                ));
            }
            let name = match command_name(&first.text) {
                Ok(n) => n.to_string(),
                Err(e) => return Decision::deny(e),
            };
            let args = &argv[1..];
            if let Some(rule) = self
                .policy
                .deny
                .iter()
                .find(|r| r.pattern.deny_matches(&name, args))
            {
                return Decision::deny_by(
                    rule,
                    format!(
                        "`{}` is denied by policy rule `{}`",
                        show(&argv),
                        rule.pattern.source
                    ),
                );
            }
            if SHELL_STATE.contains(&name.as_str()) {
                return Decision::deny(format!(
                    "`{name}` changes the shell's state or runs text as code; steward does not \
                     allow it"
                ));
            }
            if SHELLS.contains(&name.as_str()) {
                return self.shell_c(&name, args, info, depth);
            }
            if AWKS.contains(&name.as_str()) {
                if let Err(e) = awk_ok(args) {
                    return Decision::deny(e);
                }
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
                    Err(e) => return Decision::deny(e),
                }
            }
            match self.unwrap(&name, args) {
                Some(Ok(inner)) => {
                    argv = inner;
                    continue;
                }
                Some(Err(e)) => return Decision::deny(e),
                None => {}
            }
            return self
                .rules(&name, args, true)
                .unwrap_or_else(|| Decision::deny(format!("no rule matches `{}`", show(&argv))));
        }
        Decision::deny("wrappers nested too deeply")
    }

    /// Approve rules, then allow rules. With `explain_miss`, a miss explains the closest rule.
    fn rules(&self, name: &str, args: &[ArgWord], explain_miss: bool) -> Option<Decision> {
        let ctx = PathCtx {
            policy: self.policy,
            cwd: self.cwd,
        };
        for rule in &self.policy.approve {
            if rule.pattern.matches(name, args, &ctx).is_ok() {
                return Some(Decision {
                    decision: Verdict::Approve,
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
                    return Some(Decision::allow(
                        Some(rule.label()),
                        format!("allowed by `{}`", rule.pattern.source),
                    ));
                }
                Err(why) => {
                    if rule.pattern.command.iter().any(|c| c == name) {
                        let same_sub = match (rule.pattern.positional.first(), first_pos) {
                            (Some(super::pattern::Pos::Lit { alts }), Some(f)) => {
                                alts.iter().any(|a| a == f)
                            }
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
        Some(Decision::deny(match closest.map(|(_, c)| c) {
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
    ) -> Decision {
        if depth >= MAX_DEPTH {
            return Decision::deny("shell scripts nested too deeply");
        }
        let mut i = 0;
        let mut script = None;
        while i < args.len() {
            let a = &args[i];
            if a.glob || a.unknown {
                return Decision::deny(format!("`{name}`: argument `{}` is not literal", a.text));
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
                return Decision::deny(format!("`{name}` option `{t}` is not allowed"));
            }
            i += 1;
            if has_c {
                script = args.get(i).map(|a| a.text.clone());
                if args.get(i).is_some_and(|a| a.unknown || a.glob) {
                    return Decision::deny(format!("`{name} -c` needs a literal script"));
                }
                break;
            }
        }
        let Some(script) = script else {
            return Decision::deny(format!(
                "`{name}` is allowed only as `{name} -c 'COMMAND'`: a script file or stdin \
                 cannot be checked"
            ));
        };
        let nested = self.program(&script, depth + 1);
        let d = nested.decision.clone();
        info.nested.push(nested);
        match d.decision {
            Verdict::Deny => Decision {
                reason: format!("in `{name} -c`: {}", d.reason),
                ..d
            },
            _ => d,
        }
    }

    fn unwrap(&self, name: &str, args: &[ArgWord]) -> Option<Result<Vec<ArgWord>, String>> {
        let spec = match name {
            "sudo" => WrapSpec {
                bools: &["-n", "--non-interactive", "-H", "--set-home"],
                values: &["-u", "--user", "-g", "--group"],
                ..WrapSpec::default()
            },
            "env" => WrapSpec {
                bools: &["-i", "--ignore-environment", "-"],
                values: &["-u", "--unset"],
                assignments: true,
                ..WrapSpec::default()
            },
            "timeout" => WrapSpec {
                bools: &["--preserve-status", "--foreground", "-v", "--verbose"],
                values: &["-s", "--signal", "-k", "--kill-after"],
                duration: true,
                ..WrapSpec::default()
            },
            "nice" => WrapSpec {
                values: &["-n", "--adjustment"],
                negative_values: true,
                dash_number: true,
                ..WrapSpec::default()
            },
            "nohup" | "exec" | "setsid" => WrapSpec::default(),
            "command" => WrapSpec {
                bools: &["-p"],
                ..WrapSpec::default()
            },
            "stdbuf" => WrapSpec {
                values: &["-i", "-o", "-e", "--input", "--output", "--error"],
                ..WrapSpec::default()
            },
            "time" => WrapSpec {
                bools: &["-p", "--portability", "-v", "--verbose"],
                ..WrapSpec::default()
            },
            "ionice" => WrapSpec {
                bools: &["-t", "--ignore"],
                values: &["-c", "--class", "-n", "--classdata"],
                ..WrapSpec::default()
            },
            _ => return None,
        };
        Some(spec.unwrap(name, args, |n| self.env_ok(n)))
    }
}

#[derive(Default)]
struct WrapSpec {
    bools: &'static [&'static str],
    values: &'static [&'static str],
    /// `NAME=value` words before the command (env).
    assignments: bool,
    /// A duration comes before the command (timeout).
    duration: bool,
    /// Flag values may be negative numbers (nice -n -5).
    negative_values: bool,
    /// `-5` means an adjustment (nice).
    dash_number: bool,
}

impl WrapSpec {
    fn unwrap(
        &self,
        name: &str,
        args: &[ArgWord],
        env_ok: impl Fn(&str) -> Result<(), String>,
    ) -> Result<Vec<ArgWord>, String> {
        let value_ok = |v: &ArgWord| -> Result<(), String> {
            let neg_num = self.negative_values
                && v.text
                    .strip_prefix('-')
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            if v.glob || v.unknown || v.text.is_empty() || (v.text.starts_with('-') && !neg_num) {
                return Err(format!(
                    "`{name}`: option value `{}` is not accepted",
                    v.text
                ));
            }
            Ok(())
        };
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a.glob || a.unknown {
                return Err(format!("`{name}`: argument `{}` is not literal", a.text));
            }
            let t = a.text.as_str();
            if t == "--" {
                i += 1;
                break;
            }
            if t.starts_with('-') && t.len() > 1 || t == "-" {
                if self.bools.contains(&t) {
                    i += 1;
                } else if self.values.contains(&t) {
                    let v = args
                        .get(i + 1)
                        .ok_or_else(|| format!("`{name}`: `{t}` needs a value"))?;
                    value_ok(v)?;
                    i += 2;
                } else if let Some((f, v)) = t.split_once('=').filter(|(f, _)| f.starts_with("--"))
                {
                    if !self.values.contains(&f) {
                        return Err(format!("`{name}` option `{f}` is not allowed"));
                    }
                    value_ok(&ArgWord::lit(v))?;
                    i += 1;
                } else if let Some((_, rest)) = t
                    .split_at_checked(2)
                    .filter(|(s, _)| !t.starts_with("--") && self.values.contains(s))
                {
                    value_ok(&ArgWord::lit(rest))?;
                    i += 1;
                } else if self.dash_number && t[1..].chars().all(|c| c.is_ascii_digit()) {
                    i += 1;
                } else {
                    return Err(format!("`{name}` option `{t}` is not allowed"));
                }
                continue;
            }
            if self.assignments {
                if let Some((var, _)) = t.split_once('=') {
                    env_ok(var)?;
                    i += 1;
                    continue;
                }
            }
            break;
        }
        if self.duration {
            let d = args
                .get(i)
                .ok_or_else(|| format!("`{name}` needs a duration and a command"))?;
            let num = d.text.trim_end_matches(['s', 'm', 'h', 'd']);
            if d.glob || num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return Err(format!("`{name}`: `{}` is not a duration", d.text));
            }
            i += 1;
        }
        let inner = args[i..].to_vec();
        if inner.is_empty() {
            return Err(format!("`{name}` without a command to run"));
        }
        Ok(inner)
    }
}

fn unwrap_xargs(args: &[ArgWord]) -> Result<Vec<ArgWord>, String> {
    let spec = WrapSpec {
        bools: &[
            "-0",
            "--null",
            "-r",
            "--no-run-if-empty",
            "-t",
            "--verbose",
            "-x",
            "--exit",
        ],
        values: &[
            "-n",
            "--max-args",
            "-L",
            "--max-lines",
            "-P",
            "--max-procs",
            "-s",
            "--max-chars",
            "-d",
            "--delimiter",
        ],
        ..WrapSpec::default()
    };
    spec.unwrap("xargs", args, |_| {
        Err("xargs takes no assignments".to_string())
    })
}

/// awk programs that can run commands or write files are refused; `>` is refused even as a
/// comparison, because telling the two apart needs an awk parser.
fn awk_ok(args: &[ArgWord]) -> Result<(), String> {
    for a in args {
        let t = a.text.as_str();
        if matches!(
            t,
            "-f" | "--file" | "-E" | "--exec" | "-i" | "--include" | "-l" | "--load"
        ) || t.starts_with("--file=")
            || t.starts_with("--exec=")
        {
            return Err(format!("awk option `{t}` loads code from a file"));
        }
        for bad in [
            "system", "|", "getline", ">", "ENVIRON", "PROCINFO", "close(",
        ] {
            if t.contains(bad) {
                return Err(format!(
                    "awk program uses `{bad}` (commands, pipes, file writes or the environment)"
                ));
            }
        }
    }
    Ok(())
}

fn command_name(text: &str) -> Result<&str, String> {
    match text.rsplit_once('/') {
        None if text.is_empty() => Err("empty command name".to_string()),
        None => Ok(text),
        Some((dir, base)) => {
            if !base.is_empty() && BIN_DIRS.contains(&dir) {
                Ok(base)
            } else {
                Err(format!(
                    "`{text}`: commands may be named by path only from a standard bin directory"
                ))
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

fn refused(kind: &str) -> CommandInfo {
    let mut ci = CommandInfo::new(kind);
    ci.verdict = Decision::deny(format!(
        "{kind} constructs are not checked by steward's policy; run simple commands one at a time"
    ));
    ci
}

/// Quote removal with everything that would expand at run time refused: parameter and
/// arithmetic expansion, command substitution. Tilde is expanded from `$HOME`; `$'…'` strings
/// are decoded so that what they decode to is what gets checked.
fn expand(raw: &str, home: Option<&str>, subs: &mut Vec<String>) -> Result<ArgWord, String> {
    let pieces =
        word::parse(raw, &options()).map_err(|e| format!("could not parse word `{raw}`: {e}"))?;
    let mut out = ArgWord::lit("");
    for (i, p) in pieces.iter().enumerate() {
        piece(raw, p, i == 0, false, home, &mut out, subs)?;
    }
    if out.text.contains('\0') {
        return Err(format!("`{raw}` contains NUL"));
    }
    Ok(out)
}

fn piece(
    raw: &str,
    p: &WordPieceWithSource,
    first: bool,
    quoted: bool,
    home: Option<&str>,
    out: &mut ArgWord,
    subs: &mut Vec<String>,
) -> Result<(), String> {
    let src = raw
        .get(p.start_index..p.end_index)
        .unwrap_or(raw)
        .to_string();
    match &p.piece {
        WordPiece::Text(s) => {
            if !quoted {
                if s.contains(['{', '}']) {
                    return Err(format!("brace expansion in `{raw}` (quote it)"));
                }
                if s.contains(['(', ')']) {
                    return Err(format!("unquoted parenthesis in `{raw}`"));
                }
                if s.contains(['*', '?', '[']) {
                    out.glob = true;
                }
            }
            out.text.push_str(s);
        }
        WordPiece::SingleQuotedText(s) => out.text.push_str(s),
        WordPiece::AnsiCQuotedText(s) => out.text.push_str(&decode_ansi_c(s)?),
        WordPiece::DoubleQuotedSequence(inner) | WordPiece::GettextDoubleQuotedSequence(inner) => {
            for q in inner {
                piece(raw, q, false, true, home, out, subs)?;
            }
        }
        WordPiece::TildeExpansion(t) => match (t, first && !quoted, home) {
            (word::TildeExpr::Home, true, Some(h)) => out.text.push_str(h),
            _ => return Err(format!("tilde expansion `{src}` is not allowed here")),
        },
        WordPiece::ParameterExpansion(_) => {
            return Err(format!(
                "parameter expansion `{src}` is not allowed (its value is unknown to the policy)"
            ));
        }
        WordPiece::CommandSubstitution(_) | WordPiece::BackquotedCommandSubstitution(_) => {
            subs.push(src.clone());
            return Err(format!("command substitution `{src}` is not allowed"));
        }
        WordPiece::ArithmeticExpression(_) => {
            return Err(format!("arithmetic expansion `{src}` is not allowed"));
        }
        WordPiece::EscapeSequence(e) => {
            let c = e.strip_prefix('\\').unwrap_or(e);
            if c == "\n" {
                // line continuation: nothing
            } else if quoted && !matches!(c, "$" | "`" | "\"" | "\\") {
                out.text.push_str(e);
            } else {
                out.text.push_str(c);
            }
        }
    }
    Ok(())
}

/// A heredoc with an unquoted delimiter is expanded by the shell: refused if it would be.
fn heredoc_static(body: &str, subs: &mut Vec<String>) -> Result<(), String> {
    let pieces = word::parse_heredoc(body, &options())
        .map_err(|e| format!("could not parse heredoc: {e}"))?;
    fn walk(
        pieces: &[WordPieceWithSource],
        body: &str,
        subs: &mut Vec<String>,
    ) -> Result<(), String> {
        for p in pieces {
            let src = body
                .get(p.start_index..p.end_index)
                .unwrap_or("")
                .to_string();
            match &p.piece {
                WordPiece::CommandSubstitution(_) | WordPiece::BackquotedCommandSubstitution(_) => {
                    subs.push(src.clone());
                    return Err(format!(
                        "heredoc body contains command substitution `{src}`"
                    ));
                }
                WordPiece::ParameterExpansion(_) | WordPiece::ArithmeticExpression(_) => {
                    return Err(format!(
                        "heredoc body expands `{src}` (quote the delimiter)"
                    ));
                }
                WordPiece::DoubleQuotedSequence(inner)
                | WordPiece::GettextDoubleQuotedSequence(inner) => walk(inner, body, subs)?,
                _ => {}
            }
        }
        Ok(())
    }
    walk(&pieces, body, subs)
}

/// Decodes the body of `$'…'`. Unknown escapes are refused rather than guessed.
fn decode_ansi_c(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    let hex = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, max: usize| -> Option<u32> {
        let mut v = 0u32;
        let mut n = 0;
        while n < max {
            match chars.peek().and_then(|c| c.to_digit(16)) {
                Some(d) => {
                    v = v * 16 + d;
                    chars.next();
                    n += 1;
                }
                None => break,
            }
        }
        (n > 0).then_some(v)
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err("`$'…'` ends with a backslash".to_string());
        };
        let decoded = match e {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'a' => '\x07',
            'b' => '\x08',
            'e' | 'E' => '\x1b',
            'f' => '\x0c',
            'v' => '\x0b',
            '\\' | '\'' | '"' | '?' => e,
            'x' => hex(&mut chars, 2)
                .and_then(char::from_u32)
                .ok_or("bad `\\x` escape in `$'…'`")?,
            'u' => hex(&mut chars, 4)
                .and_then(char::from_u32)
                .ok_or("bad `\\u` escape in `$'…'`")?,
            'U' => hex(&mut chars, 8)
                .and_then(char::from_u32)
                .ok_or("bad `\\U` escape in `$'…'`")?,
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                char::from_u32(v).ok_or("bad octal escape in `$'…'`")?
            }
            other => return Err(format!("escape `\\{other}` in `$'…'` is not accepted")),
        };
        if decoded.is_control() && decoded != '\n' && decoded != '\t' {
            return Err("`$'…'` decodes to a control character".to_string());
        }
        out.push(decoded);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_c() {
        assert_eq!(decode_ansi_c(r"\x72m").unwrap(), "rm");
        assert_eq!(decode_ansi_c(r"\162m").unwrap(), "rm");
        assert_eq!(decode_ansi_c(r"a\tb").unwrap(), "a\tb");
        assert!(decode_ansi_c(r"\x1b").is_err());
        assert!(decode_ansi_c(r"\q").is_err());
    }

    #[test]
    fn quote_removal() {
        let mut s = Vec::new();
        assert_eq!(expand("r''m", None, &mut s).unwrap().text, "rm");
        assert_eq!(expand("\"rm\"", None, &mut s).unwrap().text, "rm");
        assert_eq!(expand("r\\m", None, &mut s).unwrap().text, "rm");
        assert_eq!(expand("$'\\x72m'", None, &mut s).unwrap().text, "rm");
        assert!(expand("$HOME", None, &mut s).is_err());
        assert!(expand("\"$(id)\"", None, &mut s).is_err());
        assert!(expand("*.log", None, &mut s).unwrap().glob);
        assert!(!expand("'*.log'", None, &mut s).unwrap().glob);
        assert_eq!(expand("~/x", Some("/h"), &mut s).unwrap().text, "/h/x");
    }
}
