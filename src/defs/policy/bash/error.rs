//! Why the walker refuses part of a command. Each message is the deny reason the hook returns
//! to the model and records in the audit, so the wording is part of the behaviour.

use brush_parser::WordParseError;

use super::super::files::PathError;

#[derive(Debug, thiserror::Error)]
pub enum BashError {
    // Words (words.rs).
    #[error("could not parse word `{raw}`: {source}")]
    WordParse { raw: String, source: WordParseError },
    #[error("`{0}` contains NUL")]
    Nul(String),
    #[error("brace expansion in `{0}` (quote it)")]
    Brace(String),
    #[error("unquoted parenthesis in `{0}`")]
    Paren(String),
    #[error("tilde expansion `{0}` is not allowed here")]
    Tilde(String),
    #[error("parameter expansion `{0}` is not allowed (its value is unknown to the policy)")]
    Parameter(String),
    #[error("command substitution `{0}` is not allowed")]
    CommandSubstitution(String),
    #[error("arithmetic expansion `{0}` is not allowed")]
    Arithmetic(String),
    #[error("could not parse heredoc: {0}")]
    HeredocParse(WordParseError),
    #[error("heredoc body contains command substitution `{0}`")]
    HeredocSubstitution(String),
    #[error("heredoc body expands `{0}` (quote the delimiter)")]
    HeredocExpands(String),
    #[error("`$'…'` ends with a backslash")]
    AnsiTrailingBackslash,
    /// `x`, `u` or `U` without the hex digits of a character.
    #[error("bad `\\{0}` escape in `$'…'`")]
    AnsiBadHex(char),
    #[error("bad octal escape in `$'…'`")]
    AnsiBadOctal,
    #[error("escape `\\{0}` in `$'…'` is not accepted")]
    AnsiUnknown(char),
    #[error("`$'…'` decodes to a control character")]
    AnsiControl,

    // Assignments and the environment (mod.rs).
    #[error("array assignments are not allowed")]
    ArrayAssignment,
    #[error("glob in the value of `{0}`")]
    GlobInValue(String),
    /// `allowed` is the policy's safe_env list as shown: `A, B`.
    #[error(
        "environment variable `{name}` may not be set (allowed: {allowed}); variables such as \
         PATH, LD_PRELOAD, PAGER or GIT_* change what a command runs"
    )]
    EnvNotSafe { name: String, allowed: String },
    #[error("process substitution is not allowed")]
    ProcessSubstitution,

    // Redirections (redirect.rs).
    #[error("redirection: {0}")]
    Redirection(PathError),
    #[error("glob in redirection target `{0}`")]
    GlobInRedirection(String),

    // Wrappers (wrappers.rs).
    #[error("`{name}`: option value `{value}` is not accepted")]
    WrapValue { name: String, value: String },
    #[error("`{name}`: argument `{arg}` is not literal")]
    NotLiteral { name: String, arg: String },
    #[error("`{name}`: `{flag}` needs a value")]
    NeedsValue { name: String, flag: String },
    #[error("`{name}` option `{flag}` is not allowed")]
    OptionNotAllowed { name: String, flag: String },
    #[error("`{0}` needs a duration and a command")]
    NeedsDuration(String),
    #[error("`{name}`: `{arg}` is not a duration")]
    NotDuration { name: String, arg: String },
    #[error("`{0}` without a command to run")]
    NoInnerCommand(String),
    #[error("xargs takes no assignments")]
    XargsAssignment,

    // The command itself (decide.rs).
    #[error("awk option `{0}` loads code from a file")]
    AwkFile(String),
    #[error("awk program uses `{0}` (commands, pipes, file writes or the environment)")]
    AwkProgram(&'static str),
    #[error("empty command name")]
    EmptyName,
    #[error("`{0}`: commands may be named by path only from a standard bin directory")]
    PathName(String),
}
