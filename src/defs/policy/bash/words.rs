//! Words: quote removal, with everything that would expand at run time refused; `$'…'`
//! decoding; heredoc bodies.

use brush_parser::ParserOptions;
use brush_parser::word::{self, WordPiece, WordPieceWithSource};

use super::super::pattern::ArgWord;
use super::BashError;

pub(super) fn options() -> ParserOptions {
    ParserOptions {
        // Extended globs would hide `@(…)` patterns in words the walker treats as text.
        enable_extended_globbing: false,
        ..ParserOptions::default()
    }
}

/// Quote removal with everything that would expand at run time refused: parameter and
/// arithmetic expansion, command substitution. Tilde is expanded from `$HOME`; `$'…'` strings
/// are decoded so that what they decode to is what gets checked.
pub(super) fn expand(
    raw: &str,
    home: Option<&str>,
    subs: &mut Vec<String>,
) -> Result<ArgWord, BashError> {
    let pieces = word::parse(raw, &options()).map_err(|source| BashError::WordParse {
        raw: raw.to_string(),
        source,
    })?;
    let mut out = ArgWord::lit("");
    for (i, p) in pieces.iter().enumerate() {
        piece(raw, p, i == 0, false, home, &mut out, subs)?;
    }
    if out.text.contains('\0') {
        return Err(BashError::Nul(raw.to_string()));
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
) -> Result<(), BashError> {
    // The piece's source text, for messages: only built when one is needed.
    let src = || {
        raw.get(p.start_index..p.end_index)
            .unwrap_or(raw)
            .to_string()
    };
    match &p.piece {
        WordPiece::Text(s) => {
            if !quoted {
                if s.contains(['{', '}']) {
                    return Err(BashError::Brace(raw.to_string()));
                }
                if s.contains(['(', ')']) {
                    return Err(BashError::Paren(raw.to_string()));
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
            _ => return Err(BashError::Tilde(src())),
        },
        WordPiece::ParameterExpansion(_) => {
            return Err(BashError::Parameter(src()));
        }
        WordPiece::CommandSubstitution(_) | WordPiece::BackquotedCommandSubstitution(_) => {
            subs.push(src());
            return Err(BashError::CommandSubstitution(src()));
        }
        WordPiece::ArithmeticExpression(_) => {
            return Err(BashError::Arithmetic(src()));
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
pub(super) fn heredoc_static(body: &str, subs: &mut Vec<String>) -> Result<(), BashError> {
    let pieces = word::parse_heredoc(body, &options()).map_err(BashError::HeredocParse)?;
    fn walk(
        pieces: &[WordPieceWithSource],
        body: &str,
        subs: &mut Vec<String>,
    ) -> Result<(), BashError> {
        for p in pieces {
            let src = || {
                body.get(p.start_index..p.end_index)
                    .unwrap_or("")
                    .to_string()
            };
            match &p.piece {
                WordPiece::CommandSubstitution(_) | WordPiece::BackquotedCommandSubstitution(_) => {
                    subs.push(src());
                    return Err(BashError::HeredocSubstitution(src()));
                }
                WordPiece::ParameterExpansion(_) | WordPiece::ArithmeticExpression(_) => {
                    return Err(BashError::HeredocExpands(src()));
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
fn decode_ansi_c(s: &str) -> Result<String, BashError> {
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
            return Err(BashError::AnsiTrailingBackslash);
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
            'x' | 'u' | 'U' => {
                let digits = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                hex(&mut chars, digits)
                    .and_then(char::from_u32)
                    .ok_or(BashError::AnsiBadHex(e))?
            }
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
                char::from_u32(v).ok_or(BashError::AnsiBadOctal)?
            }
            other => return Err(BashError::AnsiUnknown(other)),
        };
        if decoded.is_control() && decoded != '\n' && decoded != '\t' {
            return Err(BashError::AnsiControl);
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
