//! `+++` TOML front matter shared by goals and knowledge notes.

/// A file split into its front matter and body, with the file lines where each starts, so that
/// errors in either can name a line of the file rather than of a fragment.
#[derive(Debug, Clone, Copy)]
pub struct Split<'a> {
    pub front: &'a str,
    /// 1-based file line of the front matter's first line (the line after the opening `+++`).
    pub front_line: usize,
    pub body: &'a str,
    /// 1-based file line of the body's first line.
    pub body_line: usize,
}

/// Splits `+++\n<toml>\n+++\n<body>`. The error is `(line, message)`.
pub fn split(text: &str) -> Result<Split<'_>, (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if first.trim_end() != "+++" {
        return Err((
            1,
            "expected `+++` on the first line (TOML front matter)".into(),
        ));
    }
    let front_start = first.len();
    let mut offset = front_start;
    let mut line_no = 1;
    for line in lines {
        line_no += 1;
        if line.trim_end() == "+++" {
            return Ok(Split {
                front: &text[front_start..offset],
                front_line: 2,
                body: &text[offset + line.len()..],
                body_line: line_no + 1,
            });
        }
        offset += line.len();
    }
    Err((
        1,
        "front matter opened with `+++` is never closed by a `+++` line".into(),
    ))
}

/// The file line and column of a TOML parse error inside the front matter (the opening `+++`
/// line when the error has no position).
pub fn toml_error_pos(split: &Split<'_>, e: &toml::de::Error) -> (usize, usize) {
    e.span()
        .map(|s| offset_pos(split, s.start))
        .unwrap_or((split.front_line.saturating_sub(1), 1))
}

/// The file line and column of a byte offset into the front matter.
pub fn offset_pos(split: &Split<'_>, offset: usize) -> (usize, usize) {
    let (line, column) = crate::config::line_col(split.front, offset);
    (line + split.front_line - 1, column)
}

/// The file line and column where `key` is assigned in the front matter (`key =` or `[key]`),
/// for errors found after parsing; else the opening `+++` line.
pub fn key_pos(split: &Split<'_>, key: &str) -> (usize, usize) {
    split
        .front
        .lines()
        .enumerate()
        .find_map(|(i, l)| {
            let t = l.trim_start();
            let found = t
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
                || t.trim_end() == format!("[{key}]");
            found.then(|| (i + split.front_line, l.len() - t.len() + 1))
        })
        .unwrap_or((split.front_line.saturating_sub(1), 1))
}

/// Where `key` is set inside `[table]` (or the table's header when `key` is `None` or not
/// found), for errors about a key of a sub-table.
pub fn table_key_pos(split: &Split<'_>, table: &str, key: Option<&str>) -> (usize, usize) {
    let header = format!("[{table}]");
    let lines: Vec<&str> = split.front.lines().collect();
    let Some(start) = lines.iter().position(|l| l.trim() == header) else {
        return key_pos(split, table);
    };
    let inside = lines[start + 1..]
        .iter()
        .take_while(|l| !is_table_header(l))
        .enumerate()
        .find_map(|(i, l)| {
            let t = l.trim_start();
            let k = key?;
            t.strip_prefix(k)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
                .then(|| (start + 1 + i + split.front_line, l.len() - t.len() + 1))
        });
    inside.unwrap_or((start + split.front_line, 1))
}

/// `[name]` or `[[name]]`, not a line of an array value such as `["nix", "flake"],`.
fn is_table_header(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('[') && t.ends_with(']') && !t.contains(['"', '\'', ','])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_counts_lines() {
        let s = split("+++\na = 1\nb = 2\n+++\nbody line 5\nline 6\n").unwrap();
        assert_eq!(s.front, "a = 1\nb = 2\n");
        assert_eq!(s.front_line, 2);
        assert_eq!(s.body, "body line 5\nline 6\n");
        assert_eq!(s.body_line, 5);
        assert_eq!(key_pos(&s, "b"), (3, 1));
        assert_eq!(key_pos(&s, "zz"), (1, 1));
        let s = split("+++\na = 1\n[t]\n  b = 2\n+++\n").unwrap();
        assert_eq!(key_pos(&s, "b"), (4, 3));
        assert_eq!(key_pos(&s, "t"), (3, 1));
        assert_eq!(offset_pos(&s, 10), (4, 1));
    }

    #[test]
    fn crlf_and_empty_body() {
        let s = split("+++\r\na = 1\r\n+++\r\n").unwrap();
        assert_eq!(s.front, "a = 1\r\n");
        assert_eq!(s.body, "");
    }

    #[test]
    fn missing_markers() {
        assert_eq!(split("no front matter").unwrap_err().0, 1);
        assert!(
            split("+++\na = 1\n")
                .unwrap_err()
                .1
                .contains("never closed")
        );
    }
}
