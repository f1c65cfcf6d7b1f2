//! How values from outside appear in messages: bounded, escaped, and never for secrets.
//!
//! Every message that shows input text goes through [`value`] (any text: a short escaped prefix
//! and its length) or [`property`] (a property's value: the same, or only its length when the
//! appliance definition marks the property secret). A 10 MB value thus costs one short line,
//! and a password or private key is never shown, not even in part.

use crate::definition::ApplianceFacts;

/// Characters of a value shown before it is cut.
pub const PREFIX_CHARS: usize = 40;

/// Characters of a one-line status (`guestinfo.appliance.firstboot.status`).
pub const STATUS_CHARS: usize = 240;

/// `"text"` with control characters, `"` and `\` escaped; a value longer than
/// [`PREFIX_CHARS`] becomes `"prefix…" (N characters)`.
pub fn value(text: &str) -> String {
    let total = text.chars().count();
    let mut out = String::from("\"");
    for c in text.chars().take(PREFIX_CHARS) {
        push_escaped(&mut out, c);
    }
    if total > PREFIX_CHARS {
        out.push_str(&format!("…\" ({total} characters)"));
    } else {
        out.push('"');
    }
    out
}

/// The value of property `key` for a message: [`value`], or for a secret (as `facts` declare
/// it) only its length (`a value of N characters`).
pub fn property(facts: &ApplianceFacts, key: &str, text: &str) -> String {
    if facts.is_secret(key) {
        secret(text)
    } else {
        value(text)
    }
}

/// A secret described by its length only.
pub fn secret(text: &str) -> String {
    let n = text.chars().count();
    format!("a value of {n} character{}", if n == 1 { "" } else { "s" })
}

/// A message (already free of secrets) as one line of at most `max` characters: whitespace
/// runs collapse to one space, control characters are escaped, and a longer line is cut
/// with `…`.
pub fn one_line(message: &str, max: usize) -> String {
    let chars = message
        .split_whitespace()
        .enumerate()
        .flat_map(|(i, word)| (i > 0).then_some(' ').into_iter().chain(word.chars()))
        .flat_map(escape_control);
    let mut out: Vec<char> = chars.take(max.saturating_add(1)).collect();
    if out.len() > max {
        out.truncate(max.saturating_sub(1));
        out.push('…');
    }
    out.into_iter().collect()
}

/// `c` itself, or its escape when it is a control character.
fn escape_control(c: char) -> Vec<char> {
    if c.is_control() {
        c.escape_default().collect()
    } else {
        vec![c]
    }
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        c if c.is_control() => out.extend(c.escape_default()),
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_whole_and_escaped() {
        assert_eq!(value("a.example"), "\"a.example\"");
        assert_eq!(value("a\"b\\c\nd\te\u{1}"), "\"a\\\"b\\\\c\\nd\\te\\u{1}\"");
        assert_eq!(value(""), "\"\"");
    }

    #[test]
    fn long_values_show_a_prefix_and_their_length() {
        let long = "é".repeat(100);
        assert_eq!(
            value(&long),
            format!("\"{}…\" (100 characters)", "é".repeat(PREFIX_CHARS))
        );
        assert_eq!(
            value(&"x".repeat(PREFIX_CHARS)),
            format!("\"{}\"", "x".repeat(40))
        );
    }

    #[test]
    fn secrets_are_described_by_length_only() {
        let facts = crate::definition::appliance();
        assert_eq!(
            property(facts, "appliance.root_pwd", "hunter22"),
            "a value of 8 characters"
        );
        assert_eq!(
            property(facts, "appliance.ca_cert_key", "k"),
            "a value of 1 character"
        );
        assert_eq!(property(facts, "network.hostname", "h"), "\"h\"");
    }

    #[test]
    fn one_line_collapses_and_cuts() {
        assert_eq!(one_line("a\n  b\tc", 100), "a b c");
        let cut = one_line(&"w ".repeat(500), 20);
        assert_eq!(cut.chars().count(), 20, "{cut}");
        assert!(cut.ends_with('…'));
        assert_eq!(one_line("x\u{7}y", 10), "x\\u{7}y");
    }
}
