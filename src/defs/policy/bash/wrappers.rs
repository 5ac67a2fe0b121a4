//! Wrappers the walker unwraps (`sudo`, `env`, `timeout`, `nice`, `xargs`, …): each one's
//! options are read from a fixed table, and what is left is the command it runs.

use super::super::pattern::ArgWord;
use super::{BashError, Walker};

impl Walker<'_> {
    pub(super) fn unwrap(
        &self,
        name: &str,
        args: &[ArgWord],
    ) -> Option<Result<Vec<ArgWord>, BashError>> {
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
        env_ok: impl Fn(&str) -> Result<(), BashError>,
    ) -> Result<Vec<ArgWord>, BashError> {
        let value_ok = |v: &ArgWord| -> Result<(), BashError> {
            let neg_num = self.negative_values
                && v.text
                    .strip_prefix('-')
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            if v.glob || v.unknown || v.text.is_empty() || (v.text.starts_with('-') && !neg_num) {
                return Err(BashError::WrapValue {
                    name: name.to_string(),
                    value: v.text.clone(),
                });
            }
            Ok(())
        };
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a.glob || a.unknown {
                return Err(BashError::NotLiteral {
                    name: name.to_string(),
                    arg: a.text.clone(),
                });
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
                    let v = args.get(i + 1).ok_or_else(|| BashError::NeedsValue {
                        name: name.to_string(),
                        flag: t.to_string(),
                    })?;
                    value_ok(v)?;
                    i += 2;
                } else if let Some((f, v)) = t.split_once('=').filter(|(f, _)| f.starts_with("--"))
                {
                    if !self.values.contains(&f) {
                        return Err(BashError::OptionNotAllowed {
                            name: name.to_string(),
                            flag: f.to_string(),
                        });
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
                    return Err(BashError::OptionNotAllowed {
                        name: name.to_string(),
                        flag: t.to_string(),
                    });
                }
                continue;
            }
            if self.assignments
                && let Some((var, _)) = t.split_once('=')
            {
                env_ok(var)?;
                i += 1;
                continue;
            }
            break;
        }
        if self.duration {
            let d = args
                .get(i)
                .ok_or_else(|| BashError::NeedsDuration(name.to_string()))?;
            let num = d.text.trim_end_matches(['s', 'm', 'h', 'd']);
            if d.glob || num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return Err(BashError::NotDuration {
                    name: name.to_string(),
                    arg: d.text.clone(),
                });
            }
            i += 1;
        }
        let inner = args[i..].to_vec();
        if inner.is_empty() {
            return Err(BashError::NoInnerCommand(name.to_string()));
        }
        Ok(inner)
    }
}

pub(super) fn unwrap_xargs(args: &[ArgWord]) -> Result<Vec<ArgWord>, BashError> {
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
    spec.unwrap("xargs", args, |_| Err(BashError::XargsAssignment))
}
