//! Cutting a file's bytes into log entries (tokens), as the Collector's stanza scanner does:
//! by newline (a `\r` before it dropped), by `multiline.line_start_pattern` (an entry runs
//! from one match to the next), by `multiline.line_end_pattern` (an entry ends where a match
//! ends), or not at all (`encoding: nop`, entries of at most `max_log_size` bytes). An entry
//! longer than `max_log_size` is cut into pieces of `max_log_size` bytes. Patterns are
//! compiled in multi-line mode, so `^` matches at the start of every line.

use regex::bytes::Regex;

/// How entries are delimited.
#[derive(Debug, Clone)]
pub enum Splitter {
    /// One entry per line.
    Newline,
    /// An entry starts at each match (text before the first match is an entry of its own).
    LineStart {
        /// The pattern, compiled with `(?m)`.
        re: Regex,
        /// Leave the matched text out of the entry.
        omit: bool,
    },
    /// An entry ends where each match ends.
    LineEnd {
        /// The pattern, compiled with `(?m)`.
        re: Regex,
        /// Leave the matched text out of the entry.
        omit: bool,
    },
    /// No splitting (`encoding: nop`): entries of up to `max_log_size` bytes.
    None,
}

/// One entry found in a buffer: its bytes are `data[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// First byte of the entry.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// Where the scan goes on after this entry (past its delimiter).
    pub next: usize,
}

impl Splitter {
    /// Cuts `data` (read from the file's current offset) into entries. Returns the entries
    /// and how many bytes of `data` they consumed; bytes after that are an unfinished entry
    /// that waits for more data, unless `flush` is set (the file has not grown for
    /// `force_flush_period`), in which case the rest is an entry too.
    pub fn split(&self, data: &[u8], flush: bool, max: usize) -> (Vec<Token>, usize) {
        let max = max.max(1);
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos < data.len() {
            let rest = &data[pos..];
            let found = match self {
                Splitter::Newline => match memchr::memchr(b'\n', rest) {
                    Some(i) => {
                        let end = if i > 0 && rest[i - 1] == b'\r' {
                            i - 1
                        } else {
                            i
                        };
                        Some((0, end, i + 1))
                    }
                    None => None,
                },
                Splitter::LineStart { re, omit } => line_start(re, *omit, rest),
                Splitter::LineEnd { re, omit } => re.find(rest).map(|m| {
                    let end = if *omit { m.start() } else { m.end() };
                    (0, end, m.end().max(1))
                }),
                Splitter::None => None,
            };
            match found {
                // An entry longer than max_log_size: its first max_log_size bytes are one
                // entry and the scan continues inside it.
                Some((s, e, _)) if e - s > max => {
                    pos += s + max;
                    out.push(Token {
                        start: pos - max,
                        end: pos,
                        next: pos,
                    });
                }
                Some((s, e, adv)) => {
                    out.push(Token {
                        start: pos + s,
                        end: pos + e,
                        next: pos + adv,
                    });
                    pos += adv;
                }
                None if rest.len() >= max => {
                    out.push(Token {
                        start: pos,
                        end: pos + max,
                        next: pos + max,
                    });
                    pos += max;
                }
                None if flush => {
                    let (s, e) = match self {
                        Splitter::LineStart { re, omit: true } => match re.find(rest) {
                            Some(m) if m.start() == 0 => (m.end(), rest.len()),
                            _ => (0, rest.len()),
                        },
                        _ => (0, rest.len()),
                    };
                    out.push(Token {
                        start: pos + s,
                        end: pos + e,
                        next: data.len(),
                    });
                    pos = data.len();
                }
                None => break,
            }
        }
        (out, pos)
    }
}

/// The entry at the start of `rest` under a line-start pattern: `(start, end, advance)`.
fn line_start(re: &Regex, omit: bool, rest: &[u8]) -> Option<(usize, usize, usize)> {
    let mut matches = re.find_iter(rest);
    let first = matches.next()?;
    if first.start() != 0 {
        // Text before the first match is an entry of its own.
        return Some((0, first.start(), first.start()));
    }
    let second = matches.find(|m| m.start() > first.end())?;
    let start = if omit { first.end() } else { 0 };
    Some((start, second.start(), second.start()))
}

/// Trims ASCII whitespace as the Collector does unless told to preserve it.
pub fn trim(b: &[u8], keep_leading: bool, keep_trailing: bool) -> &[u8] {
    let mut s = 0;
    let mut e = b.len();
    if !keep_leading {
        while s < e && b[s].is_ascii_whitespace() {
            s += 1;
        }
    }
    if !keep_trailing {
        while e > s && b[e - 1].is_ascii_whitespace() {
            e -= 1;
        }
    }
    &b[s..e]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn texts(sp: &Splitter, data: &str, flush: bool, max: usize) -> (Vec<String>, usize) {
        let (toks, used) = sp.split(data.as_bytes(), flush, max);
        (
            toks.iter()
                .map(|t| data[t.start..t.end].to_string())
                .collect(),
            used,
        )
    }

    #[test]
    fn newline_split_keeps_an_unfinished_line_until_flush() {
        let (t, used) = texts(&Splitter::Newline, "a\r\nb\n\nc", false, 100);
        assert_eq!(t, vec!["a", "b", ""]);
        assert_eq!(used, 6);
        let (t, used) = texts(&Splitter::Newline, "a\nc", true, 100);
        assert_eq!(t, vec!["a", "c"]);
        assert_eq!(used, 3);
    }

    #[test]
    fn long_lines_are_cut_at_max_log_size() {
        let (t, used) = texts(&Splitter::Newline, "abcdefg\nhi\n", false, 3);
        assert_eq!(t, vec!["abc", "def", "g", "hi"]);
        assert_eq!(used, 11);
        // No newline yet, but a full max_log_size is already there.
        let (t, used) = texts(&Splitter::Newline, "abcdefg", false, 3);
        assert_eq!(t, vec!["abc", "def"]);
        assert_eq!(used, 6);
    }

    #[test]
    fn line_start_pattern_groups_continuation_lines() {
        let sp = Splitter::LineStart {
            re: Regex::new(r"(?m)^\d{4}-").unwrap(),
            omit: false,
        };
        let data = "junk\n2024-a\n  at x\n  at y\n2024-b\n2024-c\n  z\n";
        let (t, used) = texts(&sp, data, false, 1000);
        assert_eq!(t, vec!["junk\n", "2024-a\n  at x\n  at y\n", "2024-b\n"]);
        assert_eq!(used, data.find("2024-c").unwrap());
        let (t, _) = texts(&sp, &data[used..], true, 1000);
        assert_eq!(t, vec!["2024-c\n  z\n"]);
    }

    #[test]
    fn line_end_pattern_ends_entries_after_the_match() {
        let sp = Splitter::LineEnd {
            re: Regex::new(r"(?m)END\n").unwrap(),
            omit: false,
        };
        let (t, used) = texts(&sp, "a\nb END\nc END\nd", false, 1000);
        assert_eq!(t, vec!["a\nb END\n", "c END\n"]);
        assert_eq!(used, 14);
    }

    #[test]
    fn nop_cuts_only_at_max_log_size_or_flush() {
        let (t, used) = texts(&Splitter::None, "abcde", false, 2);
        assert_eq!(t, vec!["ab", "cd"]);
        assert_eq!(used, 4);
        let (t, _) = texts(&Splitter::None, "e", true, 2);
        assert_eq!(t, vec!["e"]);
    }

    #[test]
    fn trim_respects_preserve_flags() {
        assert_eq!(trim(b"  a b \n", false, false), b"a b");
        assert_eq!(trim(b"  a \n", true, false), b"  a");
        assert_eq!(trim(b"  a \n", false, true), b"a \n");
    }
}
