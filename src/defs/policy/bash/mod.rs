//! The Bash walker: parses a command with `brush-parser` and decides every simple command on its
//! argv. It understands a deliberately small subset of the shell — simple commands joined by
//! `;` `&&` `||` `|` `|&` `&` and newlines, quoting, safe environment prefixes, redirections,
//! heredocs, and a fixed list of wrappers it unwraps — and denies everything else, because what
//! the walker does not understand it cannot check.

mod decide;
mod error;
mod redirect;
mod words;
mod wrappers;

use std::io::Cursor;
use std::path::Path;

use brush_parser::Parser;
use brush_parser::ast::{
    self, AssignmentName, AssignmentValue, Command, CommandPrefixOrSuffixItem, CompoundCommand,
};
use serde::Serialize;

use super::model::{Permission, Policy, PolicyDecision};
use super::pattern::{ArgWord, wild_match};
pub use error::BashError;
use words::{expand, options};

/// Longest command the walker looks at; longer ones are denied rather than parsed.
const MAX_COMMAND: usize = 64 * 1024;
/// `sh -c 'sh -c …'` nesting and wrapper chains are cut off here.
pub(super) const MAX_DEPTH: usize = 6;
/// Simple commands in one command line, nested scripts included: a chain of 10,000 parts is
/// not something an operator can review, and each part costs a policy match.
pub const MAX_SIMPLE_COMMANDS: usize = 256;

/// The parsed structure of a command and the decision on it.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Lists separated by `;`, `&` or newlines.
    pub lists: Vec<ListInfo>,
    pub decision: PolicyDecision,
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
    pub verdict: PolicyDecision,
}

impl CommandInfo {
    pub(super) fn new(kind: &str) -> CommandInfo {
        CommandInfo {
            kind: kind.to_string(),
            argv: Vec::new(),
            assignments: Vec::new(),
            redirections: Vec::new(),
            substitutions: Vec::new(),
            heredocs: Vec::new(),
            unwrapped: Vec::new(),
            nested: Vec::new(),
            verdict: PolicyDecision::deny("not checked"),
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
pub fn check_command(policy: &Policy, command: &str, cwd: &Path) -> PolicyDecision {
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
            decision: PolicyDecision::deny(e.to_string()),
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
    if ex.decision.decision == Permission::Approve && walker.simple > 1 {
        ex.decision = PolicyDecision {
            decision: Permission::Deny,
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
    pub(super) policy: &'a Policy,
    pub(super) cwd: &'a Path,
    pub(super) home: Option<String>,
    /// Simple commands seen, nested scripts included.
    simple: usize,
}

fn too_many_commands() -> PolicyDecision {
    PolicyDecision::deny(format!(
        "more than {MAX_SIMPLE_COMMANDS} simple commands in one command line: not checked"
    ))
}

fn combine(parts: &[&PolicyDecision]) -> PolicyDecision {
    if parts.is_empty() {
        return PolicyDecision::deny("empty command: nothing to run");
    }
    if let Some(d) = parts.iter().find(|d| d.decision == Permission::Deny) {
        return (*d).clone();
    }
    if let Some(d) = parts.iter().find(|d| d.decision == Permission::Approve) {
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
    PolicyDecision::allow(
        Some(uniq.join("; ")),
        format!("all {} commands are allowed", parts.len()),
    )
}

impl Walker<'_> {
    pub(super) fn program(&mut self, command: &str, depth: usize) -> Explanation {
        let mut ex = Explanation {
            command: command.to_string(),
            error: None,
            lists: Vec::new(),
            decision: PolicyDecision::deny("not checked"),
        };
        let fail = |ex: &mut Explanation, msg: String| {
            ex.error = Some(msg.clone());
            ex.decision = PolicyDecision::deny(msg);
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
            fail(&mut ex, e.to_string());
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
        let verdicts: Vec<&PolicyDecision> = ex
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
        let mut problems: Vec<BashError> = Vec::new();
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
            if idx == prefix_len
                && let Some(w) = &sc.word_or_name
            {
                words.push(w);
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
                    problems.push(BashError::ProcessSubstitution);
                }
            }
        }
        if items.len() == prefix_len
            && let Some(w) = &sc.word_or_name
        {
            words.push(w);
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
            info.verdict = PolicyDecision::deny(p.to_string());
            return info;
        }
        if argv.is_empty() {
            info.verdict = PolicyDecision::deny(
                "no command: assignments or redirections alone change the shell's state",
            );
            return info;
        }
        info.verdict = self.argv(argv, &mut info, depth);
        info
    }

    fn assignment(&self, a: &ast::Assignment) -> Result<(), BashError> {
        let AssignmentName::VariableName(name) = &a.name else {
            return Err(BashError::ArrayAssignment);
        };
        let AssignmentValue::Scalar(value) = &a.value else {
            return Err(BashError::ArrayAssignment);
        };
        self.env_ok(name)?;
        let mut subs = Vec::new();
        let v = expand(&value.value, self.home.as_deref(), &mut subs)?;
        if v.glob {
            return Err(BashError::GlobInValue(name.clone()));
        }
        Ok(())
    }

    pub(super) fn env_ok(&self, name: &str) -> Result<(), BashError> {
        if self.policy.safe_env.iter().any(|p| wild_match(p, name)) {
            Ok(())
        } else {
            Err(BashError::EnvNotSafe {
                name: name.to_string(),
                allowed: self.policy.safe_env.join(", "),
            })
        }
    }
}

fn refused(kind: &str) -> CommandInfo {
    let mut ci = CommandInfo::new(kind);
    ci.verdict = PolicyDecision::deny(format!(
        "{kind} constructs are not checked by steward's policy; run simple commands one at a time"
    ));
    ci
}
