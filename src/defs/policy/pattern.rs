//! The argv pattern language, compiled once (at policy build time) into a serialisable form so
//! the hook only deserialises and matches: no text parsing or regex building per call.
//!
//! A pattern is whitespace-separated words:
//! - the first word is the command name (`a|b` alternatives; `*`/`?` globs only mean something
//!   in deny rules, e.g. `mkfs*`);
//! - a literal word (`status`, `status|is-active`) must appear as that positional argument;
//! - an UPPERCASE placeholder stands for one argument of a shape (`UNIT`, `NUM`, `PATH`, `FILE`,
//!   `FSPATH`, `JOB`, `NAME`, `TIME`, `ARG`); `...` after it means one or more;
//! - `PATH`/`FILE` are files the command reads: inside the read roots. `FSPATH` is a place the
//!   command only measures or lists (`df -h /`, `du -sh /var/log`, `ls -l /etc`): any absolute
//!   path without `..`, globs or `~`, never a secret (resolved), and refused at compile time for
//!   programs that print file contents (`cat FSPATH` is an error: use `PATH`);
//! - a word starting with `-` is a flag; if the next word of the same group is a placeholder or a
//!   literal, the flag takes that value (`-n NUM`, `-p err`, `--since=TIME`);
//! - `[ ... ]` makes its words optional (flags inside are optional flags);
//! - `--` ends a flag's reach: in `du -s -h -- FSPATH...` the `-h` takes no value and `FSPATH`
//!   is positional (the argv itself need not contain `--`).
//!
//! Matching an argv (allow and approve rules): positionals must match in order; flags may appear
//! anywhere and in any order, `--flag=value` equals `--flag value`, `-nVALUE` equals `-n VALUE`;
//! flags outside `[ ]` are required; **any flag the pattern does not name fails the match** — that
//! is what keeps `systemctl -H host status x` and `git log --output=/x` out.
//!
//! Deny rules match more loosely (they are a backstop): the command name (globs allowed) and every
//! further literal or flag word of the pattern must occur somewhere in the argv.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::files::PathError;

/// Why a pattern does not compile (reported with the goal and the pattern).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("empty alternative in `{0}`")]
    EmptyAlternative(String),
    #[error("unknown placeholder `{0}` (known: UNIT NUM PATH FILE FSPATH JOB NAME TIME ARG)")]
    UnknownPlaceholder(String),
    #[error("must start with a literal command name")]
    NoCommand,
    #[error("unbalanced `]`")]
    UnbalancedClose,
    #[error("unclosed `[`")]
    Unclosed,
    #[error("optional groups nested too deeply")]
    TooDeep,
    #[error("flag value `{0}` cannot repeat")]
    RepeatedFlagValue(String),
    #[error(
        "`FSPATH` is for programs that measure or list paths (df, du, ls, findmnt); `{0}` reads \
         or evaluates file contents: use `PATH` or `FILE` (inside the read roots)"
    )]
    FsPathReader(String),
}

/// Why an argv does not match a pattern: the walker shows it as the closest rule's reason.
#[derive(Debug, thiserror::Error)]
pub enum Mismatch {
    #[error("command differs")]
    CommandDiffers,
    #[error("glob in flag `{0}`")]
    GlobInFlag(String),
    #[error("flag `{0}` is not in the pattern")]
    UnknownFlag(String),
    #[error("flag `{0}` takes no value")]
    FlagTakesNoValue(String),
    #[error("flag `{0}` needs a value")]
    FlagNeedsValue(String),
    /// The flag's names as written, `-n|--lines`.
    #[error("required flag `{0}` missing")]
    MissingFlag(String),
    #[error("arguments do not fit the pattern")]
    DoesNotFit,
    /// `alts` as written, `a|b`.
    #[error("`{text}` is not one of {alts}")]
    NotOneOf { text: String, alts: String },
    #[error("{0:?} cannot be checked: xargs supplies it at run time")]
    RunTimeValue(Shape),
    #[error("path `{0}` starts with `-`")]
    PathDash(String),
    #[error("glob `{text}` where {shape:?} is expected")]
    GlobForShape { text: String, shape: Shape },
    #[error("`{text}` is not a {shape:?}")]
    NotShape { text: String, shape: Shape },
    #[error(transparent)]
    Path(#[from] PathError),
}

/// The shape a placeholder's argument must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Shape {
    Unit,
    Num,
    Path,
    File,
    /// A file-system location to measure or list, not to read: any absolute path, no secret.
    FsPath,
    Job,
    Name,
    Time,
    Arg,
}

impl Shape {
    fn parse(word: &str) -> Option<Shape> {
        Some(match word {
            "UNIT" => Shape::Unit,
            "NUM" => Shape::Num,
            "PATH" => Shape::Path,
            "FILE" => Shape::File,
            "FSPATH" => Shape::FsPath,
            "JOB" => Shape::Job,
            "NAME" => Shape::Name,
            "TIME" => Shape::Time,
            "ARG" => Shape::Arg,
            _ => return None,
        })
    }

    pub fn is_path(self) -> bool {
        matches!(self, Shape::Path | Shape::File | Shape::FsPath)
    }
}

/// Programs that print (or copy, hash or evaluate) what is inside the files they are given.
/// `FSPATH` would let them read any file outside the read roots, so a pattern may not combine
/// them: this catches the obvious mistakes; it is not the boundary (the operator's rules are).
/// `nix` is here because a path outside the store is read as a flake and evaluated.
const CONTENT_READERS: &[&str] = &[
    "cat",
    "tac",
    "nl",
    "head",
    "tail",
    "less",
    "more",
    "most",
    "view",
    "vi",
    "vim",
    "nano",
    "grep",
    "egrep",
    "fgrep",
    "zgrep",
    "rg",
    "ag",
    "ack",
    "awk",
    "gawk",
    "mawk",
    "nawk",
    "sed",
    "cut",
    "paste",
    "sort",
    "uniq",
    "join",
    "comm",
    "diff",
    "cmp",
    "strings",
    "od",
    "xxd",
    "hexdump",
    "base32",
    "base64",
    "basenc",
    "cp",
    "install",
    "tar",
    "zip",
    "gzip",
    "zcat",
    "bzcat",
    "xzcat",
    "zstdcat",
    "jq",
    "yq",
    "openssl",
    "md5sum",
    "sha1sum",
    "sha224sum",
    "sha256sum",
    "sha384sum",
    "sha512sum",
    "b2sum",
    "cksum",
    "sum",
    "tee",
    "dd",
    "file",
    "git",
    "source",
    "nix",
    "nix-build",
    "nix-instantiate",
    "nix-shell",
    "nix-env",
    "nix-store",
];

/// A positional element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Pos {
    Lit { alts: Vec<String> },
    Ph { shape: Shape, many: bool },
    Opt { items: Vec<Pos> },
}

/// What follows a flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum FlagValue {
    None,
    Lit { alts: Vec<String> },
    Ph { shape: Shape },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagSpec {
    pub names: Vec<String>,
    pub value: FlagValue,
    pub required: bool,
}

impl FlagSpec {
    fn takes_value(&self) -> bool {
        !matches!(self.value, FlagValue::None)
    }
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgvPattern {
    pub source: String,
    pub command: Vec<String>,
    pub positional: Vec<Pos>,
    pub flags: Vec<FlagSpec>,
}

/// One argument as the walker sees it after quote removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgWord {
    pub text: String,
    /// Contains unquoted glob characters: the shell would expand it.
    pub glob: bool,
    /// Supplied at run time by `xargs`: nothing is known about it.
    pub unknown: bool,
}

impl ArgWord {
    pub fn lit(text: impl Into<String>) -> ArgWord {
        ArgWord {
            text: text.into(),
            glob: false,
            unknown: false,
        }
    }

    pub fn unknown() -> ArgWord {
        ArgWord {
            text: "<xargs input>".to_string(),
            glob: false,
            unknown: true,
        }
    }
}

/// Checks path arguments; implemented by the policy (roots, secrets).
pub trait PathCheck {
    /// `PATH`/`FILE`: a file the command reads, inside the read roots.
    fn check_path_arg(&self, word: &ArgWord) -> Result<(), PathError>;
    /// `FSPATH`: a location the command measures or lists: absolute, no secret.
    fn check_fs_path_arg(&self, word: &ArgWord) -> Result<(), PathError>;
}

#[derive(Debug)]
enum Tok {
    Open,
    Close,
    Word(String),
}

fn tokenize(pattern: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    for raw in pattern.split_whitespace() {
        let mut w = raw;
        while let Some(rest) = w.strip_prefix('[') {
            out.push(Tok::Open);
            w = rest;
        }
        let mut closes = 0;
        while let Some(rest) = w.strip_suffix(']') {
            closes += 1;
            w = rest;
        }
        if !w.is_empty() {
            out.push(Tok::Word(w.to_string()));
        }
        for _ in 0..closes {
            out.push(Tok::Close);
        }
    }
    out
}

fn is_flag(word: &str) -> bool {
    word.len() > 1 && word.starts_with('-') && word != "--"
}

fn alts(word: &str) -> Result<Vec<String>, PatternError> {
    let v: Vec<String> = word.split('|').map(str::to_string).collect();
    if v.iter().any(|a| a.is_empty()) {
        return Err(PatternError::EmptyAlternative(word.to_string()));
    }
    Ok(v)
}

fn placeholder(word: &str) -> Result<Option<(Shape, bool)>, PatternError> {
    if !super::is_placeholder(word) {
        return Ok(None);
    }
    let many = word.ends_with("...");
    let name = word.trim_end_matches("...");
    match Shape::parse(name) {
        Some(s) => Ok(Some((s, many))),
        None => Err(PatternError::UnknownPlaceholder(name.to_string())),
    }
}

impl ArgvPattern {
    /// Compiles a pattern string; errors are reported in `PolicyError::Pattern`.
    pub fn compile(source: &str) -> Result<ArgvPattern, PatternError> {
        let toks = tokenize(source);
        let mut iter = toks.into_iter().peekable();
        let command = match iter.next() {
            Some(Tok::Word(w)) if !is_flag(&w) && placeholder(&w)?.is_none() => alts(&w)?,
            _ => return Err(PatternError::NoCommand),
        };
        let mut flags = Vec::new();
        let positional = parse_group(&mut iter, &mut flags, false, 0)?;
        if iter.next().is_some() {
            return Err(PatternError::UnbalancedClose);
        }
        let pattern = ArgvPattern {
            source: source.to_string(),
            command,
            positional,
            flags,
        };
        if pattern.uses(Shape::FsPath)
            && let Some(c) = pattern
                .command
                .iter()
                .find(|c| CONTENT_READERS.contains(&c.as_str()))
        {
            return Err(PatternError::FsPathReader(c.clone()));
        }
        Ok(pattern)
    }

    /// Whether any positional or flag value is a placeholder of this shape.
    pub fn uses(&self, shape: Shape) -> bool {
        fn pos(items: &[Pos], shape: Shape) -> bool {
            items.iter().any(|p| match p {
                Pos::Lit { .. } => false,
                Pos::Ph { shape: s, .. } => *s == shape,
                Pos::Opt { items } => pos(items, shape),
            })
        }
        pos(&self.positional, shape)
            || self
                .flags
                .iter()
                .any(|f| matches!(f.value, FlagValue::Ph { shape: s } if s == shape))
    }

    /// Exact matching, for allow and approve rules. `Err` says why it does not match.
    pub fn matches(
        &self,
        name: &str,
        args: &[ArgWord],
        paths: &dyn PathCheck,
    ) -> Result<(), Mismatch> {
        if !self.command.iter().any(|c| c == name) {
            return Err(Mismatch::CommandDiffers);
        }
        let mut seen = vec![false; self.flags.len()];
        let mut positionals: Vec<&ArgWord> = Vec::new();
        let mut after_dd = false;
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            i += 1;
            if a.unknown || after_dd || !a.text.starts_with('-') || a.text == "-" {
                positionals.push(a);
                continue;
            }
            if a.text == "--" {
                after_dd = true;
                continue;
            }
            if a.glob {
                return Err(Mismatch::GlobInFlag(a.text.clone()));
            }
            let text = a.text.as_str();
            // `--flag=value`
            if let Some((flag, value)) = text.split_once('=').filter(|_| text.starts_with("--")) {
                let Some(k) = self.find_flag(flag) else {
                    return Err(Mismatch::UnknownFlag(flag.to_string()));
                };
                if !self.flags[k].takes_value() {
                    return Err(Mismatch::FlagTakesNoValue(flag.to_string()));
                }
                check_value(&self.flags[k].value, &ArgWord::lit(value), paths)?;
                seen[k] = true;
                continue;
            }
            if let Some(k) = self.find_flag(text) {
                if self.flags[k].takes_value() {
                    let Some(v) = args.get(i) else {
                        return Err(Mismatch::FlagNeedsValue(text.to_string()));
                    };
                    i += 1;
                    check_value(&self.flags[k].value, v, paths)?;
                }
                seen[k] = true;
                continue;
            }
            // `-n5` for a short flag `-n` that takes a value.
            if !text.starts_with("--") && text.len() > 2 {
                // split_at_checked: `-é` must not panic on a char boundary.
                let (short, rest) = text.split_at_checked(2).unwrap_or((text, ""));
                if let Some(k) = self
                    .find_flag(short)
                    .filter(|k| self.flags[*k].takes_value())
                {
                    check_value(&self.flags[k].value, &ArgWord::lit(rest), paths)?;
                    seen[k] = true;
                    continue;
                }
            }
            // `-la` for boolean short flags `-l` and `-a` that are both in the pattern.
            if !text.starts_with("--") && text.len() > 2 {
                let ks: Option<Vec<usize>> = text[1..]
                    .chars()
                    .map(|c| {
                        self.find_flag(&format!("-{c}"))
                            .filter(|k| !self.flags[*k].takes_value())
                    })
                    .collect();
                if let Some(ks) = ks {
                    for k in ks {
                        seen[k] = true;
                    }
                    continue;
                }
            }
            return Err(Mismatch::UnknownFlag(text.to_string()));
        }
        for (k, spec) in self.flags.iter().enumerate() {
            if spec.required && !seen[k] {
                return Err(Mismatch::MissingFlag(spec.names.join("|")));
            }
        }
        if match_pos(&self.positional, &positionals, paths)? {
            Ok(())
        } else {
            Err(Mismatch::DoesNotFit)
        }
    }

    fn find_flag(&self, text: &str) -> Option<usize> {
        self.flags
            .iter()
            .position(|f| f.names.iter().any(|n| n == text))
    }

    /// Loose matching, for deny rules: the command (glob) and every literal or flag word of the
    /// pattern occurs somewhere in the argv.
    pub fn deny_matches(&self, name: &str, args: &[ArgWord]) -> bool {
        if !self.command.iter().any(|c| wild_match(c, name)) {
            return false;
        }
        self.deny_words().iter().all(|alts| {
            args.iter()
                .any(|a| alts.iter().any(|p| deny_word(p, &a.text)))
        })
    }

    /// The words a deny rule needs in the argv, each as its alternatives: the top-level literal
    /// positionals, every flag name and every literal flag value.
    pub(super) fn deny_words(&self) -> Vec<&Vec<String>> {
        let mut words: Vec<&Vec<String>> = Vec::new();
        collect_lits(&self.positional, &mut words);
        for f in &self.flags {
            words.push(&f.names);
            if let FlagValue::Lit { alts } = &f.value {
                words.push(alts);
            }
        }
        words
    }
}

/// Does one argv word satisfy one word of a deny pattern?
pub(super) fn deny_word(pattern: &str, word: &str) -> bool {
    if wild_match(pattern, word) {
        return true;
    }
    // `--data=x` against `--data`; `-sT` against `-T`: err on the side of denying.
    if pattern.starts_with("--") {
        return word
            .split_once('=')
            .is_some_and(|(f, _)| wild_match(pattern, f));
    }
    if pattern.len() == 2
        && pattern.starts_with('-')
        && !word.starts_with("--")
        && word.starts_with('-')
    {
        return pattern[1..].chars().all(|c| word[1..].contains(c));
    }
    false
}

fn collect_lits<'a>(items: &'a [Pos], out: &mut Vec<&'a Vec<String>>) {
    for p in items {
        match p {
            Pos::Lit { alts } => out.push(alts),
            Pos::Opt { .. } | Pos::Ph { .. } => {}
        }
    }
}

type Toks = std::iter::Peekable<std::vec::IntoIter<Tok>>;

fn parse_group(
    iter: &mut Toks,
    flags: &mut Vec<FlagSpec>,
    optional: bool,
    depth: usize,
) -> Result<Vec<Pos>, PatternError> {
    if depth > 4 {
        return Err(PatternError::TooDeep);
    }
    let mut items = Vec::new();
    while let Some(tok) = iter.peek() {
        match tok {
            Tok::Close => {
                if depth == 0 {
                    return Err(PatternError::UnbalancedClose);
                }
                iter.next();
                return Ok(items);
            }
            Tok::Open => {
                iter.next();
                let inner = parse_group(iter, flags, true, depth + 1)?;
                if !inner.is_empty() {
                    items.push(Pos::Opt { items: inner });
                }
            }
            Tok::Word(_) => {
                let Some(Tok::Word(w)) = iter.next() else {
                    break;
                };
                if w == "--" {
                    continue;
                }
                if is_flag(&w) {
                    let (name, inline) = match w.split_once('=') {
                        Some((n, v)) if w.starts_with("--") => (n.to_string(), Some(v.to_string())),
                        _ => (w.clone(), None),
                    };
                    let value_word = match inline {
                        Some(v) => Some(v),
                        None => match iter.peek() {
                            Some(Tok::Word(next)) if !is_flag(next) && next != "--" => {
                                let next = next.clone();
                                iter.next();
                                Some(next)
                            }
                            _ => None,
                        },
                    };
                    let value = match value_word {
                        None => FlagValue::None,
                        Some(v) => match placeholder(&v)? {
                            Some((shape, false)) => FlagValue::Ph { shape },
                            Some((_, true)) => {
                                return Err(PatternError::RepeatedFlagValue(v));
                            }
                            None => FlagValue::Lit { alts: alts(&v)? },
                        },
                    };
                    flags.push(FlagSpec {
                        names: alts(&name)?,
                        value,
                        required: !optional,
                    });
                } else if let Some((shape, many)) = placeholder(&w)? {
                    items.push(Pos::Ph { shape, many });
                } else {
                    items.push(Pos::Lit { alts: alts(&w)? });
                }
            }
        }
    }
    if depth > 0 {
        return Err(PatternError::Unclosed);
    }
    Ok(items)
}

fn check_value(value: &FlagValue, arg: &ArgWord, paths: &dyn PathCheck) -> Result<(), Mismatch> {
    match value {
        FlagValue::None => Ok(()),
        FlagValue::Lit { alts } => {
            if !arg.glob && !arg.unknown && alts.contains(&arg.text) {
                Ok(())
            } else {
                Err(Mismatch::NotOneOf {
                    text: arg.text.clone(),
                    alts: alts.join("|"),
                })
            }
        }
        FlagValue::Ph { shape } => check_shape(*shape, arg, paths),
    }
}

/// Does one argument fit a placeholder's shape?
pub fn check_shape(shape: Shape, arg: &ArgWord, paths: &dyn PathCheck) -> Result<(), Mismatch> {
    if arg.unknown {
        return Err(Mismatch::RunTimeValue(shape));
    }
    if shape.is_path() {
        if arg.text.starts_with('-') {
            return Err(Mismatch::PathDash(arg.text.clone()));
        }
        if shape == Shape::FsPath {
            return Ok(paths.check_fs_path_arg(arg)?);
        }
        return Ok(paths.check_path_arg(arg)?);
    }
    if arg.glob {
        return Err(Mismatch::GlobForShape {
            text: arg.text.clone(),
            shape,
        });
    }
    let t = arg.text.as_str();
    let ok = match shape {
        Shape::Unit => {
            !t.is_empty()
                && t.len() <= 256
                && !t.starts_with('-')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@._:-".contains(c))
        }
        Shape::Num => !t.is_empty() && t.len() <= 18 && t.chars().all(|c| c.is_ascii_digit()),
        Shape::Job | Shape::Name => {
            !t.is_empty()
                && t.len() <= 256
                && t.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@._:-".contains(c))
        }
        Shape::Time => TIME.as_ref().is_some_and(|r| r.is_match(t)),
        Shape::Arg => !t.starts_with('-'),
        Shape::Path | Shape::File | Shape::FsPath => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Mismatch::NotShape {
            text: t.to_string(),
            shape,
        })
    }
}

/// journalctl's time forms: relative (`-1h`, `-2d 3h`), words, dates, times, `N unit ago`, `@epoch`.
static TIME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let unit = r"(?:us|ms|s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hour|hours|d|day|days|w|week|weeks|M|month|months|y|year|years)";
    let rel = format!(r"[+-]?\d{{1,6}}\s?{unit}(?:\s?\d{{1,6}}\s?{unit})*");
    let date = r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?";
    let clock = r"\d{2}:\d{2}(?::\d{2})?";
    let ago = format!(r"\d{{1,6}}\s{unit}\sago");
    let re = format!(r"^(?:{rel}|today|yesterday|now|tomorrow|{date}|{clock}|{ago}|@\d{{1,12}})$");
    // A constant expression; if it ever failed to build, no TIME would match (fail closed), and
    // the unit test below would catch it.
    Regex::new(&re).ok()
});

fn match_pos(items: &[Pos], args: &[&ArgWord], paths: &dyn PathCheck) -> Result<bool, Mismatch> {
    // Returns Ok(true) on match; shape failures are remembered so the reason is useful.
    let mut last_err = None;
    let ok = match_rec(items, args, paths, &mut last_err, 0);
    match (ok, last_err) {
        (true, _) => Ok(true),
        (false, Some(e)) => Err(e),
        (false, None) => Ok(false),
    }
}

fn match_rec(
    items: &[Pos],
    args: &[&ArgWord],
    paths: &dyn PathCheck,
    err: &mut Option<Mismatch>,
    depth: usize,
) -> bool {
    if depth > 64 {
        return false;
    }
    let Some((first, rest)) = items.split_first() else {
        return args.is_empty();
    };
    match first {
        Pos::Lit { alts } => match args.split_first() {
            Some((a, more)) if !a.glob && !a.unknown && alts.contains(&a.text) => {
                match_rec(rest, more, paths, err, depth + 1)
            }
            _ => false,
        },
        Pos::Ph { shape, many } => {
            let max = if *many { args.len() } else { args.len().min(1) };
            for n in 1..=max {
                let (taken, more) = args.split_at(n);
                let bad = taken
                    .iter()
                    .find_map(|a| check_shape(*shape, a, paths).err());
                if let Some(e) = bad {
                    *err = Some(e);
                    break;
                }
                if match_rec(rest, more, paths, err, depth + 1) {
                    return true;
                }
            }
            false
        }
        Pos::Opt { items: inner } => {
            let mut with: Vec<Pos> = inner.clone();
            with.extend_from_slice(rest);
            match_rec(&with, args, paths, err, depth + 1)
                || match_rec(rest, args, paths, err, depth + 1)
        }
    }
}

/// `*` and `?` wildcards, for deny-rule command names and secret globs.
pub fn wild_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct AnyPath;
    impl PathCheck for AnyPath {
        fn check_path_arg(&self, w: &ArgWord) -> Result<(), PathError> {
            if w.text.starts_with("/ok") {
                Ok(())
            } else {
                Err(PathError::NotAbsolutePath(w.text.clone()))
            }
        }
        fn check_fs_path_arg(&self, w: &ArgWord) -> Result<(), PathError> {
            if w.text.starts_with('/') {
                Ok(())
            } else {
                Err(PathError::FsPathRelative(w.text.clone()))
            }
        }
    }

    fn m(p: &str, argv: &str) -> bool {
        let pat = ArgvPattern::compile(p).unwrap();
        let words: Vec<ArgWord> = argv.split_whitespace().map(ArgWord::lit).collect();
        pat.matches(&words[0].text, &words[1..], &AnyPath).is_ok()
    }

    #[test]
    fn flags_any_order_nothing_extra() {
        let p = "journalctl -u UNIT -n NUM --no-pager";
        assert!(m(p, "journalctl -u nginx -n 50 --no-pager"));
        assert!(m(p, "journalctl --no-pager -n 50 -u nginx"));
        assert!(m(p, "journalctl -unginx -n50 --no-pager"));
        assert!(!m(p, "journalctl -u nginx -n 50"));
        assert!(!m(p, "journalctl -u nginx -n 50 --no-pager -f"));
        assert!(!m(p, "journalctl -u -H -n 50 --no-pager"));
        assert!(m("journalctl --since TIME", "journalctl --since=-1h"));
        assert!(m("journalctl --since TIME", "journalctl --since -1h"));
        assert!(!m("journalctl --since TIME", "journalctl --since rm"));
    }

    #[test]
    fn positionals_optional_and_alternatives() {
        assert!(m(
            "systemctl status|is-active UNIT",
            "systemctl is-active nginx.service"
        ));
        assert!(!m(
            "systemctl status UNIT",
            "systemctl status -H host nginx"
        ));
        assert!(!m("systemctl status UNIT", "systemctl status nginx extra"));
        assert!(m("df -h [PATH]", "df -h"));
        assert!(m("df -h [PATH]", "df -h /ok/x"));
        assert!(!m("df -h [PATH]", "df -h /etc"));
        assert!(m("echo ARG...", "echo a b c"));
        assert!(!m("echo ARG...", "echo"));
        assert!(m("nomad job status [JOB]", "nomad job status"));
        assert!(m(
            "docker logs --tail NUM NAME",
            "docker logs web --tail 20"
        ));
        assert!(ArgvPattern::compile("UNIT").is_err());
        assert!(ArgvPattern::compile("x [a").is_err());
        assert!(ArgvPattern::compile("x FOO").is_err());
    }

    #[test]
    fn fspath_measures_anywhere_but_never_feeds_a_reader() {
        assert!(m("df -h [FSPATH...]", "df -h / /var"));
        // `--` ends a flag's reach in a pattern: `-h` takes no value, FSPATH is positional.
        let du = "du -s -h -- FSPATH...";
        for ok in [
            "du -sh /etc",
            "du -hs /etc /var",
            "du -s -h /etc",
            "du -sh -- /etc",
        ] {
            assert!(m(du, ok), "{ok}");
        }
        for bad in [
            "du -sh etc",
            "du -sh -- -x",
            "du -sh --files0-from=/x /",
            "du -sh",
        ] {
            assert!(!m(du, bad), "{bad}");
        }
        let p = ArgvPattern::compile("du -x -d|--max-depth NUM [-h] FSPATH").unwrap();
        assert!(p.uses(Shape::FsPath) && !p.uses(Shape::Path));
        assert!(m("du -x -d|--max-depth NUM [-h] FSPATH", "du -x -d1 /"));
        assert!(m(
            "du -x -d|--max-depth NUM [-h] FSPATH",
            "du -xh --max-depth=1 /var"
        ));
        for bad in [
            "cat FSPATH",
            "head -n NUM FSPATH",
            "grep ARG FSPATH...",
            "x|tail FSPATH",
        ] {
            let e = ArgvPattern::compile(bad).unwrap_err();
            assert!(e.to_string().contains("file contents"), "{bad}: {e}");
        }
        assert!(ArgvPattern::compile("openssl x509 -in FSPATH").is_err());
        assert!(ArgvPattern::compile("nix path-info -S FSPATH").is_err());
        assert!(ArgvPattern::compile("cat FILE").is_ok());
    }

    #[test]
    fn deny_loose() {
        let p = ArgvPattern::compile("curl -T|--upload-file|--data*").unwrap();
        let w = |s: &str| s.split_whitespace().map(ArgWord::lit).collect::<Vec<_>>();
        assert!(p.deny_matches("curl", &w("-sT f http://x")));
        assert!(p.deny_matches("curl", &w("--data-binary=@f http://x")));
        assert!(!p.deny_matches("curl", &w("-s http://x")));
        let p = ArgvPattern::compile("mkfs*").unwrap();
        assert!(p.deny_matches("mkfs.ext4", &w("/dev/sda")));
    }

    #[test]
    fn times() {
        for t in [
            "-1h",
            "today",
            "2026-01-01 10:00",
            "1 hour ago",
            "@1700000000",
            "-30min",
            "10:00",
        ] {
            assert!(TIME.as_ref().unwrap().is_match(t), "{t}");
        }
        for t in ["rm", "-H", "1h; x", ""] {
            assert!(!TIME.as_ref().unwrap().is_match(t), "{t}");
        }
    }
}
