//! Text from targets, made visible: a hostile host's escape sequences, carriage returns and
//! bidirectional overrides never reach a terminal, an XML file or a Markdown page as they are.
//!
//! [`visible`] writes every *hidden* character ([`is_hidden`]) as an escape a reader sees:
//! `\n`, `\r`, `\t`, and `\u{1b}` (Rust's notation, lowercase hexadecimal) for the others. The
//! JSON report keeps the exact text; the escapes are only for the formats people read. A
//! backslash in the text is left as it is, so `\u{1b}` in a report for people may also be those
//! six characters: the JSON report tells them apart.

use std::borrow::Cow;

/// Whether a character must not be written as it is into a terminal, JUnit XML or Markdown:
/// control characters (C0, DEL, C1, which terminals interpret and XML 1.0 mostly cannot carry),
/// the characters that reorder or hide text (Unicode's bidirectional controls U+061C, U+200E,
/// U+200F, U+202A to U+202E, U+2066 to U+2069, as in "Trojan Source"), the line and paragraph
/// separators U+2028 and U+2029, and the noncharacters U+FFFE and U+FFFF.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{FFFE}'
                | '\u{FFFF}'
        )
}

/// `text` on one line with every hidden character escaped (line feeds too); borrowed when there
/// is none.
pub fn visible(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// As [`visible`], but line feeds and tabs stay: for text that spans lines (a libtest failure's
/// details, an error message).
pub fn visible_lines(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_hidden(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !is_hidden(c) || keep(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.extend(other.escape_unicode()),
        }
    }
    Cow::Owned(out)
}

/// At most `limit` characters of `text` for a report people read; a longer text is cut with
/// `… (N more characters in report.json)`, so that nothing is dropped silently. The JSON report
/// and JUnit always hold the whole text.
pub fn fold(text: &str, limit: usize) -> Cow<'_, str> {
    match text.char_indices().nth(limit) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => {
            let more = text[cut..].chars().count();
            Cow::Owned(format!(
                "{}… ({more} more character{} in report.json)",
                &text[..cut],
                if more == 1 { "" } else { "s" }
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_become_visible_escapes() {
        assert_eq!(
            visible("a\u{1b}[31mred\u{7}\r\0\u{202e}txt\nnext\tx"),
            "a\\u{1b}[31mred\\u{7}\\r\\u{0}\\u{202e}txt\\nnext\\tx"
        );
        assert_eq!(visible_lines("one\ntwo\t\u{1b}"), "one\ntwo\t\\u{1b}");
        assert!(matches!(visible("plain text é ✓"), Cow::Borrowed(_)));
        assert_eq!(
            visible("\u{9b}\u{2028}\u{ffff}"),
            "\\u{9b}\\u{2028}\\u{ffff}"
        );
    }

    #[test]
    fn folding_says_how_much_is_left_out() {
        assert_eq!(fold("abcdef", 6), "abcdef");
        assert_eq!(
            fold("abcdef", 4),
            "abcd… (2 more characters in report.json)"
        );
        assert_eq!(fold("ééé", 2), "éé… (1 more character in report.json)");
    }
}
