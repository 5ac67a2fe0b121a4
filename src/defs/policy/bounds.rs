//! Bounds checked before a command reaches the shell parser. brush-parser recurses once per
//! nesting level (a 7 KB command of nested `{ … }` overflowed the hook's stack) and backtracks
//! exponentially on nested `case` items without `;;` (doubling per level). The walker denies
//! every compound command and substitution anyway, so a command nested deeply enough to hurt
//! the parser can only be denied: this scan denies it first, in linear time, with the reason.
//!
//! The scan is conservative, not a second parser: it follows quotes, escapes, comments and
//! heredoc bodies (so text inside them never counts), and counts as an opener every bracket,
//! substitution and compound keyword it sees, including a keyword used as a plain argument.

/// Deepest nesting of brackets, substitutions and compound commands passed to the parser.
pub const MAX_NESTING: usize = 24;
/// Deepest nesting of `case` (the construct the parser backtracks on).
pub const MAX_CASE_NESTING: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Paren,
    Brace,
    DollarParen,
    DollarBrace,
    Backtick,
    DoubleQuote,
    If,
    Case,
    Loop,
}

impl Open {
    /// Double quotes change how text is read but nest nothing.
    fn counts(self) -> bool {
        self != Open::DoubleQuote
    }
}

/// How deep a command nests, as the scan sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Nesting {
    pub depth: usize,
    pub case_depth: usize,
}

/// A command nested deeper than the parser may be asked to follow; the deny reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TooDeep {
    #[error("`case` nested {0} deep (more than {MAX}): not parsed", MAX = MAX_CASE_NESTING)]
    Case(usize),
    #[error(
        "brackets, substitutions or compound commands nested {0} deep (more than {MAX}): not \
         parsed",
        MAX = MAX_NESTING
    )]
    Nesting(usize),
}

/// `Err` with the reason when the command nests deeper than the parser may be asked to follow.
pub fn check(command: &str) -> Result<(), TooDeep> {
    let n = nesting(command);
    if n.case_depth > MAX_CASE_NESTING {
        return Err(TooDeep::Case(n.case_depth));
    }
    if n.depth > MAX_NESTING {
        return Err(TooDeep::Nesting(n.depth));
    }
    Ok(())
}

/// The deepest nesting in `command`: one pass, no allocation beyond the stack of openers.
pub fn nesting(command: &str) -> Nesting {
    let mut scan = Scan {
        s: command.as_bytes(),
        i: 0,
        stack: Vec::new(),
        heredocs: Vec::new(),
        max: Nesting::default(),
    };
    scan.run();
    scan.max
}

struct Scan<'a> {
    s: &'a [u8],
    i: usize,
    stack: Vec<Open>,
    /// Heredoc delimiters whose bodies start after the current line: (delimiter, strip tabs).
    heredocs: Vec<(Vec<u8>, bool)>,
    max: Nesting,
}

impl Scan<'_> {
    fn run(&mut self) {
        while self.i < self.s.len() {
            if self.top() == Some(Open::DoubleQuote) {
                self.in_double_quotes();
            } else {
                self.in_code();
            }
        }
    }

    fn top(&self) -> Option<Open> {
        self.stack.last().copied()
    }

    fn peek(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }

    fn push(&mut self, o: Open) {
        self.stack.push(o);
        let depth = self.stack.iter().filter(|o| o.counts()).count();
        let case_depth = self.stack.iter().filter(|&&o| o == Open::Case).count();
        self.max.depth = self.max.depth.max(depth);
        self.max.case_depth = self.max.case_depth.max(case_depth);
    }

    fn pop_if(&mut self, want: &[Open]) {
        if self.top().is_some_and(|t| want.contains(&t)) {
            self.stack.pop();
        }
    }

    fn in_double_quotes(&mut self) {
        match self.s[self.i] {
            b'\\' => self.i += 2,
            b'"' => {
                self.stack.pop();
                self.i += 1;
            }
            b'$' | b'`' => {
                self.substitution();
            }
            _ => self.i += 1,
        }
    }

    /// `$(`, `${` or a backtick at `i`; anything else after `$` is plain text.
    fn substitution(&mut self) {
        match (self.s[self.i], self.peek(1)) {
            (b'$', Some(b'(')) => {
                self.push(Open::DollarParen);
                self.i += 2;
            }
            (b'$', Some(b'{')) => {
                self.push(Open::DollarBrace);
                self.i += 2;
            }
            (b'`', _) => {
                if self.top() == Some(Open::Backtick) {
                    self.stack.pop();
                } else {
                    self.push(Open::Backtick);
                }
                self.i += 1;
            }
            _ => self.i += 1,
        }
    }

    fn in_code(&mut self) {
        let c = self.s[self.i];
        match c {
            b'\\' => self.i += 2,
            b'\'' => self.skip_single_quoted(),
            b'"' => {
                self.stack.push(Open::DoubleQuote);
                self.i += 1;
            }
            b'$' | b'`' => self.substitution(),
            b'(' => {
                self.push(Open::Paren);
                self.i += 1;
            }
            b')' => {
                // A `case` pattern's `)` closes nothing.
                self.pop_if(&[Open::Paren, Open::DollarParen]);
                self.i += 1;
            }
            b'{' => {
                self.push(Open::Brace);
                self.i += 1;
            }
            b'}' => {
                self.pop_if(&[Open::Brace, Open::DollarBrace]);
                self.i += 1;
            }
            b'#' if self.at_word_start() => self.skip_comment(),
            b'<' if self.peek(1) == Some(b'<') && self.peek(2) != Some(b'<') => self.heredoc(),
            b'\n' => {
                self.i += 1;
                self.skip_heredoc_bodies();
            }
            b'a'..=b'z' if self.at_word_start() => self.word(),
            _ => self.i += 1,
        }
    }

    fn at_word_start(&self) -> bool {
        self.i == 0
            || matches!(
                self.s[self.i - 1],
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'{' | b'}' | b'`'
            )
    }

    fn is_delimiter(c: Option<u8>) -> bool {
        matches!(
            c,
            None | Some(b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>')
        )
    }

    fn word(&mut self) {
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_lowercase() {
            self.i += 1;
        }
        if !Self::is_delimiter(self.peek(0)) {
            return;
        }
        match &self.s[start..self.i] {
            b"if" => self.push(Open::If),
            b"case" => self.push(Open::Case),
            b"for" | b"while" | b"until" | b"select" => self.push(Open::Loop),
            b"fi" => self.pop_if(&[Open::If]),
            b"esac" => self.pop_if(&[Open::Case]),
            b"done" => self.pop_if(&[Open::Loop]),
            _ => {}
        }
    }

    fn skip_single_quoted(&mut self) {
        self.i += 1;
        while self.i < self.s.len() && self.s[self.i] != b'\'' {
            self.i += 1;
        }
        self.i += 1;
    }

    fn skip_comment(&mut self) {
        while self.i < self.s.len() && self.s[self.i] != b'\n' {
            self.i += 1;
        }
    }

    /// `<<DELIM` or `<<-DELIM`: remember the delimiter; the body starts on the next line.
    fn heredoc(&mut self) {
        self.i += 2;
        let strip_tabs = self.peek(0) == Some(b'-');
        if strip_tabs {
            self.i += 1;
        }
        while matches!(self.peek(0), Some(b' ' | b'\t')) {
            self.i += 1;
        }
        let mut delim = Vec::new();
        while let Some(c) = self.peek(0) {
            if Self::is_delimiter(Some(c)) {
                break;
            }
            // Quoting the delimiter only changes whether the body expands.
            if !matches!(c, b'\'' | b'"' | b'\\') {
                delim.push(c);
            }
            self.i += 1;
        }
        if !delim.is_empty() {
            self.heredocs.push((delim, strip_tabs));
        }
    }

    fn skip_heredoc_bodies(&mut self) {
        for (delim, strip_tabs) in std::mem::take(&mut self.heredocs) {
            while self.i < self.s.len() {
                let end = self.s[self.i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(self.s.len(), |p| self.i + p);
                let mut line = &self.s[self.i..end];
                if strip_tabs {
                    while let [b'\t', rest @ ..] = line {
                        line = rest;
                    }
                }
                self.i = end + 1;
                if line == delim.as_slice() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(c: &str) -> usize {
        nesting(c).depth
    }

    #[test]
    fn plain_commands_do_not_nest() {
        assert_eq!(depth("journalctl -u nginx -n 50 --no-pager"), 0);
        assert_eq!(depth("df -h / && du -sh /var/log | sort -h"), 0);
        assert_eq!(depth("grep -e '{{{{((((' file"), 0);
        assert_eq!(depth("echo \"a (b) {c}\" # if case ((("), 0);
        assert_eq!(depth("echo a\\(b"), 0);
    }

    #[test]
    fn every_opener_counts() {
        assert_eq!(depth("{ { true; }; }"), 2);
        assert_eq!(depth("( ( true ) )"), 2);
        assert_eq!(depth("echo $(echo $(true))"), 2);
        assert_eq!(depth("echo \"$(echo \"$(true)\")\""), 2);
        assert_eq!(depth("echo ${a:-${b}}"), 2);
        assert_eq!(depth("if true; then if true; then :; fi; fi"), 2);
        assert_eq!(depth("while true; do for i in 1; do :; done; done"), 2);
        assert_eq!(depth("echo `true`"), 1);
    }

    #[test]
    fn closed_constructs_do_not_accumulate() {
        let flat = "{ true; }; ".repeat(100);
        assert_eq!(depth(&flat), 1);
        let cases = "case x in x) true;; esac; ".repeat(50);
        assert_eq!(nesting(&cases).case_depth, 1);
    }

    #[test]
    fn case_patterns_close_nothing() {
        let n = nesting("case x in (a) true;; b) ( true );; esac");
        assert_eq!(
            n,
            Nesting {
                depth: 2,
                case_depth: 1
            }
        );
    }

    #[test]
    fn heredoc_bodies_are_text() {
        let c = "cat > f.nix <<'EOF'\n{ a = { b = { c = { d = 1; }; }; }; }\nif case\nEOF\ntrue";
        assert_eq!(depth(c), 0);
        let tabs = "cat <<-END\n\t{ { {\n\tEND\n{ true; }";
        assert_eq!(depth(tabs), 1);
    }

    #[test]
    fn deep_nesting_is_refused_with_the_reason() {
        let braces = format!("{}true{}", "{ ".repeat(1200), " ; }".repeat(1200));
        let e = check(&braces).unwrap_err();
        assert!(e.to_string().contains("1200 deep"), "{e}");
        let mut case = String::from("true");
        for _ in 0..25 {
            case = format!("case x in x) {case} esac");
        }
        let e = check(&case).unwrap_err();
        assert!(e.to_string().contains("`case` nested 25 deep"), "{e}");
        assert!(check("if true; then echo $(date); fi").is_ok());
    }
}
