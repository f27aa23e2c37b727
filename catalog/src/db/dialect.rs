//! SQLite's dialect, as the store writes it, in PostgreSQL's: each statement is translated
//! once (the translations are cached with the prepared statements).
//!
//! - Placeholders `?N` become `$N` (a bare `?` the next number).
//! - Scalar `MAX(a, b)` / `MIN(a, b)` become `GREATEST` / `LEAST` (the one-argument forms
//!   are aggregates in both and stay).
//! - `INSERT OR IGNORE INTO ...` becomes `INSERT INTO ... ON CONFLICT DO NOTHING`.
//! - In `CREATE TABLE` / `ALTER TABLE`: `INTEGER` is `BIGINT` (SQLite's integers are 64-bit),
//!   `BLOB` is `BYTEA`, `INTEGER PRIMARY KEY AUTOINCREMENT` is `BIGINT PRIMARY KEY` (the
//!   audit log numbers its records itself). SQLite's triggers are left out: the PostgreSQL
//!   schema has its own (`super::pg`).
//! - `BEGIN [DEFERRED|IMMEDIATE|EXCLUSIVE]` becomes `BEGIN` and the store's write lock.
//!
//! Text in single quotes is never changed. Anything else must already mean the same in
//! both dialects (the store's SQL keeps to that subset).

/// What a statement of a batch does to the transaction state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxEffect {
    None,
    Begin,
    End,
}

/// One statement with parameters, translated.
pub(super) fn statement(sql: &str) -> String {
    let sql = insert_or_ignore(sql.trim());
    let sql = scalar_min_max(&sql);
    placeholders(&sql)
}

/// A batch without parameters, translated, with what it does to the transaction state
/// (the last `BEGIN`/`COMMIT`/`ROLLBACK` in it).
pub(super) fn batch(sql: &str, write_lock: i64) -> (String, TxEffect) {
    let sql = strip_triggers(sql);
    let mut out = Vec::new();
    let mut effect = TxEffect::None;
    for st in split(&sql) {
        let st = st.trim();
        if st.is_empty() {
            continue;
        }
        let upper = st.to_ascii_uppercase();
        let first = upper.split_whitespace().next().unwrap_or("");
        match first {
            "BEGIN" => {
                out.push("BEGIN".to_string());
                out.push(format!("SELECT pg_advisory_xact_lock({write_lock})"));
                effect = TxEffect::Begin;
            }
            "COMMIT" | "END" | "ROLLBACK" => {
                out.push(first.to_string());
                effect = TxEffect::End;
            }
            "CREATE" | "ALTER" if upper.contains(" TABLE ") => out.push(column_types(st)),
            _ => out.push(statement(st)),
        }
    }
    (out.join(";\n"), effect)
}

/// Statements of a batch, split at `;` outside quotes.
fn split(sql: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in sql.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&sql[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&sql[start..]);
    parts
}

fn strip_triggers(sql: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"(?is)CREATE\s+TRIGGER\b.*?\bEND\s*;").expect("a valid pattern")
    });
    re.replace_all(sql, "").into_owned()
}

fn column_types(st: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b|\bINTEGER\b|\bBLOB\b")
            .expect("a valid pattern")
    });
    re.replace_all(st, |c: &regex::Captures<'_>| match &c[0] {
        "BLOB" => "BYTEA",
        "INTEGER" => "BIGINT",
        _ => "BIGINT PRIMARY KEY",
    })
    .into_owned()
}

fn insert_or_ignore(sql: &str) -> String {
    const HEAD: &str = "INSERT OR IGNORE INTO";
    if sql.len() >= HEAD.len() && sql[..HEAD.len()].eq_ignore_ascii_case(HEAD) {
        let rest = sql[HEAD.len()..].trim_end().trim_end_matches(';');
        format!("INSERT INTO{rest} ON CONFLICT DO NOTHING")
    } else {
        sql.to_string()
    }
}

fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quoted = false;
    let mut next = 1u32;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                out.push('$');
                if chars.peek().is_some_and(char::is_ascii_digit) {
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        out.push(d);
                        chars.next();
                    }
                } else {
                    out.push_str(&next.to_string());
                    next += 1;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// `MAX(a, b)` -> `GREATEST(a, b)`, `MIN(a, b)` -> `LEAST(a, b)`.
fn scalar_min_max(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut i = 0;
    let mut quoted = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' {
            quoted = !quoted;
        }
        let word_start = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if !quoted && word_start && bytes.len() >= i + 4 && sql.is_char_boundary(i + 4) {
            let head = &sql[i..i + 4];
            let pg = if head.eq_ignore_ascii_case("MAX(") {
                Some("GREATEST(")
            } else if head.eq_ignore_ascii_case("MIN(") {
                Some("LEAST(")
            } else {
                None
            };
            if let Some(pg) = pg.filter(|_| has_top_level_comma(&bytes[i + 4..])) {
                out.push_str(pg);
                i += 4;
                continue;
            }
        }
        // Copy one character (UTF-8 aware).
        let ch = sql[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

/// Whether the argument list starting after an opening parenthesis has a comma at its
/// own level before its closing parenthesis.
fn has_top_level_comma(rest: &[u8]) -> bool {
    let mut depth = 0usize;
    let mut quoted = false;
    for &c in rest {
        match c {
            b'\'' => quoted = !quoted,
            _ if quoted => {}
            b'(' => depth += 1,
            b')' if depth == 0 => return false,
            b')' => depth -= 1,
            b',' if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_quotes() {
        assert_eq!(
            statement("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $12"
        );
        assert_eq!(statement("VALUES (?, ?)"), "VALUES ($1, $2)");
    }

    #[test]
    fn scalar_max_min_only() {
        assert_eq!(
            statement("SET last_seen = MAX(last_seen, ?5), n = MIN(hits + CASE WHEN x THEN 0 ELSE ?3 END, 9)"),
            "SET last_seen = GREATEST(last_seen, $5), n = LEAST(hits + CASE WHEN x THEN 0 ELSE $3 END, 9)"
        );
        assert_eq!(
            statement("SELECT MAX(seq) FROM audit WHERE seq < (SELECT max(seq) FROM audit)"),
            "SELECT MAX(seq) FROM audit WHERE seq < (SELECT max(seq) FROM audit)"
        );
        assert_eq!(statement("SELECT XMAX(a, b)"), "SELECT XMAX(a, b)");
    }

    #[test]
    fn insert_or_ignore() {
        assert_eq!(
            statement("INSERT OR IGNORE INTO edge_services (edge, service) VALUES (?1, ?2)"),
            "INSERT INTO edge_services (edge, service) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        );
    }

    #[test]
    fn batches() {
        let (sql, effect) = batch("BEGIN IMMEDIATE", 7);
        assert_eq!(sql, "BEGIN;\nSELECT pg_advisory_xact_lock(7)");
        assert_eq!(effect, TxEffect::Begin);
        assert_eq!(batch("COMMIT", 7).1, TxEffect::End);
        let (sql, _) = batch(
            "CREATE TABLE IF NOT EXISTS a (seq INTEGER PRIMARY KEY AUTOINCREMENT, h BLOB, n INTEGER NOT NULL);
             CREATE TRIGGER IF NOT EXISTS x BEFORE UPDATE ON a
             BEGIN SELECT RAISE(ABORT, 'no; never'); END;
             CREATE TABLE IF NOT EXISTS b (t TEXT);",
            7,
        );
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS a (seq BIGINT PRIMARY KEY, h BYTEA, n BIGINT NOT NULL);\nCREATE TABLE IF NOT EXISTS b (t TEXT)"
        );
    }
}
