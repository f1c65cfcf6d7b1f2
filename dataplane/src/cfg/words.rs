//! haproxy.cfg words: splitting a line the way haproxy does, and quoting a value so haproxy
//! reads it back as exactly one word.
//!
//! haproxy's rules (configuration manual, "Quoting and escaping"): words are separated by
//! blanks; `\` escapes the next character; inside `"…"` blanks are literal, `\` still escapes
//! and `$NAME` expands environment variables; inside `'…'` everything is literal; an unquoted,
//! unescaped `#` starts a comment.

/// The words of one configuration line, quotes and escapes removed, comment dropped.
pub fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), _) => word.push(c),
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            (Some(_), _) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// `value` as one haproxy word: as it is when it needs no quoting, else in double quotes with
/// `"`, `\` and `$` escaped (so no environment variable is expanded).
pub fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | '\\' | '#' | '$'));
    if plain {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Words joined into a line, each quoted as needed.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_haproxy() {
        assert_eq!(
            split("  server s1 10.0.0.1:80 check # web"),
            ["server", "s1", "10.0.0.1:80", "check"]
        );
        assert_eq!(
            split(r#"log-format "%ci %[src] x""#),
            ["log-format", "%ci %[src] x"]
        );
        assert_eq!(split(r"a\ b 'c d' e\#f"), ["a b", "c d", "e#f"]);
        assert_eq!(split(r#""""#), [""]);
        assert!(split("# only a comment").is_empty());
    }

    #[test]
    fn quoted_values_read_back_as_one_word() {
        for v in [
            "plain",
            "with space",
            "q\"uote",
            "back\\slash",
            "$HOME",
            "#hash",
            "",
            "tab\there",
            "'single'",
        ] {
            let line = format!("k {}", quote(v));
            assert_eq!(split(&line), ["k", v], "{line}");
        }
    }
}
