//! Goal rules that can never take effect: an `allow` or `approve` rule every one of whose
//! commands a `deny` rule also matches (deny beats approve beats allow), e.g.
//! `approve = ["journalctl --vacuum-size=ARG"]` under the default's `journalctl … --vacuum*`.
//! Goals are checked when they load, and each such rule becomes a warning.
//!
//! The test is a subsumption proof on the compiled patterns, not a sample of commands: a rule is
//! reported only when every argv it can match necessarily contains, for each word the deny rule
//! needs, a word the deny rule's loose matching accepts. What a matching argv must contain:
//! - each top-level literal positional of the rule (one of its alternatives, as is);
//! - each required flag, in any form the matcher accepts: `--name`, `--name=V`, `-n`, `-nV`, or
//!   inside a cluster of short flags (`-xn`).
//!
//! Limits (a shadowed rule that is *not* reported): literals inside `[ ]`, literal flag values,
//! placeholder values that a deny word would match (a deny on `--force` does not make `ARG`
//! always `--force`), a deny rule that wins only for some of the rule's commands (partly
//! shadowed), and an `allow` rule hidden behind an `approve` rule. A warning is never wrong: when
//! one is reported, no command the rule matches can get past the deny rule it names.

use serde::Serialize;

use super::PolicyError;
use super::model::{Origin, SharedPolicy};
use super::pattern::{ArgvPattern, FlagSpec, FlagValue, Pos, deny_word, wild_match};
use crate::defs::policy::GoalPolicy;

/// One goal rule that a deny rule always beats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shadowed {
    /// `allow` or `approve`: the goal's list the rule is in.
    pub list: &'static str,
    /// Position in that list, to find the rule in the goal file.
    pub index: usize,
    pub rule: String,
    /// Whose deny rule wins: the bundled default policy's or the goal's own.
    pub by_origin: Origin,
    pub by: String,
}

impl Shadowed {
    /// The warning in words, without a location.
    pub fn message(&self) -> String {
        let whose = match self.by_origin {
            Origin::Default => "the bundled default policy's",
            Origin::Goal => "the goal's own",
            Origin::Change => "the change run's",
        };
        format!(
            "policy.{} rule `{}` never takes effect: {whose} deny rule `{}` matches every command \
             it matches, and deny wins",
            self.list, self.rule, self.by
        )
    }
}

/// Every `allow` and `approve` rule of `policy` that a deny rule (the bundled default's or the
/// goal's own) always beats. Patterns that do not compile are skipped: loading reports them.
pub fn shadowed(policy: &GoalPolicy) -> Result<Vec<Shadowed>, PolicyError> {
    let shared = SharedPolicy::bundled()?;
    let compile = |origin: Origin, list: &[String]| -> Vec<(Origin, ArgvPattern)> {
        list.iter()
            .filter_map(|p| ArgvPattern::compile(p).ok().map(|c| (origin, c)))
            .collect()
    };
    let mut denies = compile(Origin::Default, &shared.deny);
    denies.extend(compile(Origin::Goal, &policy.deny));
    let mut out = Vec::new();
    for (list, rules) in [("allow", &policy.allow), ("approve", &policy.approve)] {
        for (index, source) in rules.iter().enumerate() {
            let Ok(rule) = ArgvPattern::compile(source) else {
                continue;
            };
            if let Some((origin, deny)) = denies.iter().find(|(_, d)| always_denied(&rule, d)) {
                out.push(Shadowed {
                    list,
                    index,
                    rule: source.clone(),
                    by_origin: *origin,
                    by: deny.source.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Whether every argv `rule` matches is also matched by `deny`'s loose matching.
pub fn always_denied(rule: &ArgvPattern, deny: &ArgvPattern) -> bool {
    let same_program = rule
        .command
        .iter()
        .all(|c| deny.command.iter().any(|d| wild_match(d, c)));
    if !same_program {
        return false;
    }
    let present = present_words(rule);
    deny.deny_words()
        .iter()
        .all(|alts| present.iter().any(|w| w.always_matched_by(alts)))
}

/// A word every argv matching a rule contains, in one of the forms the matcher accepts.
enum Present<'a> {
    /// A literal positional: exactly one of these words.
    Literal(&'a [String]),
    /// A required flag, under any of its names and forms.
    Flag(&'a FlagSpec),
}

fn present_words(rule: &ArgvPattern) -> Vec<Present<'_>> {
    let mut out: Vec<Present<'_>> = rule
        .positional
        .iter()
        .filter_map(|p| match p {
            Pos::Lit { alts } => Some(Present::Literal(alts)),
            Pos::Ph { .. } | Pos::Opt { .. } => None,
        })
        .collect();
    out.extend(rule.flags.iter().filter(|f| f.required).map(Present::Flag));
    out
}

impl Present<'_> {
    /// Whether one deny word (its alternatives) matches this word in every form it can take.
    fn always_matched_by(&self, deny_alts: &[String]) -> bool {
        match self {
            Present::Literal(words) => words
                .iter()
                .all(|w| deny_alts.iter().any(|p| deny_word(p, w))),
            Present::Flag(spec) => spec
                .names
                .iter()
                .all(|n| deny_alts.iter().any(|p| covers_flag(p, n, spec))),
        }
    }
}

/// Whether the deny word `p` matches the flag `name` in every form the matcher lets it take.
fn covers_flag(p: &str, name: &str, spec: &FlagSpec) -> bool {
    let takes_value = !matches!(spec.value, FlagValue::None);
    if name.starts_with("--") {
        // `--name`, and with a value also `--name=V`: a `--` deny word matches both by the part
        // before `=`; anything else might depend on V.
        if takes_value {
            p.starts_with("--") && wild_match(p, name)
        } else {
            deny_word(p, name)
        }
    } else if name.len() == 2 {
        // `-n`, `-nV` and clusters such as `-xn`: only the same short flag matches them all.
        p == name
    } else {
        // `-name` (one dash, several letters) is matched only as itself.
        deny_word(p, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(rule: &str, deny: &str) -> bool {
        always_denied(
            &ArgvPattern::compile(rule).unwrap(),
            &ArgvPattern::compile(deny).unwrap(),
        )
    }

    /// For each claimed shadowing, a sample of argvs the rule matches must all be denied: the
    /// proof is checked against the matcher itself.
    fn confirm(rule: &str, deny: &str, argvs: &[&str]) {
        use super::super::files::PathError;
        use super::super::pattern::{ArgWord, PathCheck};
        struct Any;
        impl PathCheck for Any {
            fn check_path_arg(&self, _: &ArgWord) -> Result<(), PathError> {
                Ok(())
            }
            fn check_fs_path_arg(&self, _: &ArgWord) -> Result<(), PathError> {
                Ok(())
            }
        }
        let (r, d) = (
            ArgvPattern::compile(rule).unwrap(),
            ArgvPattern::compile(deny).unwrap(),
        );
        for argv in argvs {
            let w: Vec<ArgWord> = argv.split_whitespace().map(ArgWord::lit).collect();
            assert!(
                r.matches(&w[0].text, &w[1..], &Any).is_ok(),
                "{rule} should match {argv}"
            );
            assert!(d.deny_matches(&w[0].text, &w[1..]), "{deny} misses {argv}");
        }
    }

    #[test]
    fn the_issue_example_is_shadowed() {
        let deny = "journalctl -D|--directory*|--file*|-M|--machine*|--root*|--image*|--flush|--rotate|--vacuum*";
        assert!(denied("journalctl --vacuum-size=ARG", deny));
        confirm(
            "journalctl --vacuum-size=ARG",
            deny,
            &["journalctl --vacuum-size=1G", "journalctl --vacuum-size 1G"],
        );
        assert!(denied("journalctl -u UNIT --flush", deny));
        // An optional denied flag leaves the rest of the rule useful.
        assert!(!denied("journalctl -u UNIT [--flush]", deny));
        assert!(!denied("journalctl -u UNIT -n NUM --no-pager", deny));
        assert!(!denied("journalctl --disk-usage", deny));
    }

    #[test]
    fn bare_programs_short_flags_and_literals() {
        assert!(denied("sed -n ARG FILE", "sed"));
        assert!(denied("rm -f PATH", "rm"));
        assert!(denied("mkfs.ext4 FILE", "mkfs*"));
        assert!(!denied("systemctl status UNIT", "rm"));
        // A short flag is always seen, alone, with a value glued on or in a cluster.
        assert!(denied(
            "systemctl -H NAME status UNIT",
            "systemctl -H|--host*"
        ));
        confirm(
            "systemctl -H NAME [-l] status UNIT",
            "systemctl -H|--host*",
            &[
                "systemctl -H h status x",
                "systemctl -Hh status x",
                "systemctl -l -H h status x",
            ],
        );
        assert!(denied(
            "systemctl --host=NAME status UNIT",
            "systemctl -H|--host*"
        ));
        assert!(denied("systemctl reboot", "systemctl poweroff|reboot|halt"));
        assert!(denied(
            "systemctl reboot|halt",
            "systemctl poweroff|reboot|halt"
        ));
        // One alternative escapes the deny: not always denied.
        assert!(!denied(
            "systemctl reboot|status",
            "systemctl poweroff|reboot|halt"
        ));
        assert!(!denied("systemctl reboot|halt", "systemctl -H|--host*"));
        // A placeholder might be anything, but need not be the denied word.
        assert!(!denied("curl ARG", "curl -T|--upload-file*"));
        assert!(!denied(
            "find PATH -name ARG",
            "find -exec|-execdir|-ok|-delete"
        ));
        // Every alias of a flag must be covered.
        assert!(!denied("git -C|--no-pager log", "git -C"));
        assert!(denied("git -C PATH log", "git -c|-C"));
    }

    #[test]
    fn goal_and_default_denies_are_both_reported() {
        let gp = GoalPolicy {
            allow: vec![
                "systemctl status UNIT".into(),
                "sed -n 1p FILE".into(),
                "nomad job stop JOB".into(),
            ],
            approve: vec!["journalctl --vacuum-size=ARG".into()],
            deny: vec!["nomad job stop".into()],
            ..Default::default()
        };
        let s = shadowed(&gp).unwrap();
        let found: Vec<(&str, usize, Origin)> =
            s.iter().map(|x| (x.list, x.index, x.by_origin)).collect();
        assert_eq!(
            found,
            [
                ("allow", 1, Origin::Default),
                ("allow", 2, Origin::Goal),
                ("approve", 0, Origin::Default),
            ]
        );
        assert!(s[2].by.contains("--vacuum*"), "{}", s[2].by);
        let m = s[2].message();
        assert!(
            m.contains("policy.approve rule `journalctl --vacuum-size=ARG`"),
            "{m}"
        );
        assert!(
            m.contains("default policy's deny rule `journalctl -D|"),
            "{m}"
        );
    }
}
