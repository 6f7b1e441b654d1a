//! The shell's line syntax, both ways: a line of bytes split into words, and a byte
//! string written so that it splits back into the same bytes.
//!
//! ## Model
//! Words are separated by ASCII whitespace. Within a word:
//! - `'…'` keeps everything up to the next `'` literally (no escapes);
//! - `"…"` keeps whitespace and `'`, and understands escapes;
//! - outside quotes and inside `"…"`, a backslash escapes: `\\` `\"` `\'` `\ ` (a
//!   space), `\n` `\t` `\r` `\0`, and `\xNN` (any byte, two hex digits).
//!
//! Quoted and unquoted parts next to each other form one word (`a"b c"` is `ab c`);
//! `""` is an empty word.
//!
//! ## Invariants
//! - [`split`] never panics and answers every input: words, or a [`SyntaxError`] that
//!   says what is wrong and where (a byte column, counted from 1).
//! - [`quote`] is the inverse of splitting: `split(quote(b))` is `[b]` for every byte
//!   string `b` (`quoting_round_trips_every_byte_string` in the tests), and a word that
//!   needs no quoting is written as is.
//!
//! ## Non-goals
//! - Variables, globbing, comments after a command (a `#` only starts a comment as the
//!   first thing on a line, which `Session::execute` handles).

/// Why a line could not be split into words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// The line is not UTF-8 text.
    #[error(
        "the line is not valid UTF-8 (byte 0x{byte:02x} at column {column}); \
         write such bytes as \\xNN, e.g. put k \"\\x{byte:02x}\""
    )]
    NotUtf8 {
        /// The first byte that is not part of a UTF-8 character.
        byte: u8,
        /// Its position, from 1.
        column: usize,
    },
    /// A quote opened and never closed.
    #[error("unterminated {kind} quote (opened at column {column})")]
    Unterminated {
        /// "single" or "double".
        kind: &'static str,
        /// Where it opened, from 1.
        column: usize,
    },
    /// A backslash as the last character of the line.
    #[error("the line ends with a lone backslash (write \\\\ for a backslash)")]
    TrailingBackslash,
    /// A backslash followed by a character that is not an escape.
    #[error(
        "unknown escape '\\{found}' at column {column} (escapes: \\\\ \\\" \\' \\n \\t \\r \\0 \
         \\xNN, and backslash-space)"
    )]
    UnknownEscape {
        /// The character after the backslash.
        found: char,
        /// The backslash's position, from 1.
        column: usize,
    },
    /// `\x` not followed by two hex digits.
    #[error("'\\x' at column {column} needs two hex digits (e.g. \\x00, \\xff)")]
    BadHex {
        /// The backslash's position, from 1.
        column: usize,
    },
}

/// Splits `line` into words (see the module doc). A line that is not UTF-8 is refused
/// as a whole: binary data is written with `\xNN` escapes.
pub fn split(line: &[u8]) -> Result<Vec<Vec<u8>>, SyntaxError> {
    let text = std::str::from_utf8(line).map_err(|e| {
        let at = e.valid_up_to();
        SyntaxError::NotUtf8 {
            byte: line.get(at).copied().unwrap_or(0),
            column: at + 1,
        }
    })?;
    let mut words = Vec::new();
    let mut word: Option<Vec<u8>> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_ascii_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(Vec::new);
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, c)) => push_char(w, c),
                        None => {
                            return Err(SyntaxError::Unterminated {
                                kind: "single",
                                column: at + 1,
                            })
                        }
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(Vec::new);
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((esc, '\\')) => escape(&mut chars, esc, w)?,
                        Some((_, c)) => push_char(w, c),
                        None => {
                            return Err(SyntaxError::Unterminated {
                                kind: "double",
                                column: at + 1,
                            })
                        }
                    }
                }
            }
            '\\' => escape(&mut chars, at, word.get_or_insert_with(Vec::new))?,
            c => push_char(word.get_or_insert_with(Vec::new), c),
        }
    }
    if let Some(w) = word {
        words.push(w);
    }
    Ok(words)
}

fn push_char(word: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    word.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Reads the escape after a backslash at byte `at` and appends what it stands for.
fn escape(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    at: usize,
    word: &mut Vec<u8>,
) -> Result<(), SyntaxError> {
    let column = at + 1;
    let Some((_, c)) = chars.next() else {
        return Err(SyntaxError::TrailingBackslash);
    };
    let byte = match c {
        '\\' | '"' | '\'' | ' ' => c as u8,
        'n' => b'\n',
        't' => b'\t',
        'r' => b'\r',
        '0' => 0,
        'x' => {
            let hi = chars.next().and_then(|(_, c)| c.to_digit(16));
            let lo = chars.next().and_then(|(_, c)| c.to_digit(16));
            match (hi, lo) {
                // Two hex digits are at most 0xff: the cast cannot truncate.
                (Some(hi), Some(lo)) => (hi * 16 + lo) as u8,
                _ => return Err(SyntaxError::BadHex { column }),
            }
        }
        found => return Err(SyntaxError::UnknownEscape { found, column }),
    };
    word.push(byte);
    Ok(())
}

/// Whether `c` may stand in a word unquoted (and, in output, be written as is).
fn plain(c: char) -> bool {
    !(c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'))
}

/// `bytes` written so that [`split`] reads them back as one word: as is when that is
/// already so (`alice`, `10`, `ключ`), else in double quotes with escapes
/// (`"two words"`, `""`, `"\xff\x00"`).
pub fn quote(bytes: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if !text.is_empty() && text.chars().all(plain) {
            return text.to_string();
        }
    }
    let mut out = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(line: &str) -> Vec<String> {
        split(line.as_bytes())
            .expect("splits")
            .into_iter()
            .map(|w| String::from_utf8(w).expect("utf8"))
            .collect()
    }

    #[test]
    fn quotes_and_escapes_group_and_stand_for_bytes() {
        assert_eq!(words("put \"a b\" v"), ["put", "a b", "v"]);
        assert_eq!(words("put 'a \"b\\n' v"), ["put", "a \"b\\n", "v"]);
        assert_eq!(words(r#"x a"b c"d "" e\ f"#), ["x", "ab cd", "", "e f"]);
        assert_eq!(words(r#""tab\there" 'it''s'"#), ["tab\there", "its"]);
        assert_eq!(words("  spaced\t out  "), ["spaced", "out"]);
        assert_eq!(
            split(br#"put k "\xff\x00""#).expect("splits")[2],
            vec![0xff, 0]
        );
    }

    #[test]
    fn every_malformed_line_says_what_and_where() {
        let err = |line: &[u8]| split(line).expect_err("malformed").to_string();
        assert_eq!(
            err(b"put \"a b v"),
            "unterminated double quote (opened at column 5)"
        );
        assert_eq!(
            err(b"put 'a b v"),
            "unterminated single quote (opened at column 5)"
        );
        assert!(err(b"put a \\").contains("lone backslash"));
        assert!(err(b"put a \\q").contains("unknown escape '\\q' at column 7"));
        assert!(err(b"put a \"\\x4\"").contains("two hex digits"));
        assert!(err(b"put a \xff b").contains("byte 0xff at column 7"));
        assert!(err(b"\xc3").contains("byte 0xc3 at column 1"));
    }

    #[test]
    fn quote_leaves_plain_words_alone() {
        assert_eq!(quote(b"alice"), "alice");
        assert_eq!(quote("ключ".as_bytes()), "ключ");
        assert_eq!(quote(b"two words"), "\"two words\"");
        assert_eq!(quote(b""), "\"\"");
        assert_eq!(quote(b"\xff\x00q\"\\"), r#""\xff\x00q\"\\""#);
    }

    proptest! {
        #[test]
        fn quoting_round_trips_every_byte_string(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            let written = quote(&bytes);
            prop_assert_eq!(split(written.as_bytes()).expect("re-parses"), vec![bytes]);
        }

        #[test]
        fn split_answers_every_input(line in proptest::collection::vec(any::<u8>(), 0..40)) {
            // Words or an error, never a panic.
            let _ = split(&line);
        }
    }
}
