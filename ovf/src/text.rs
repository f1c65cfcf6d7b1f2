//! Positions in text: the one rule for turning a byte offset into `line:column`, shared by the
//! OVF reader, the definition parser and `haproxy-firstboot`'s environment parser.

/// A 1-based place in a text: `line` counts `\n` line ends (a CRLF is one line end, a lone `\r`
/// none), `column` counts characters (not bytes) from the start of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// The position of the byte `offset` in `text`. An offset past the end is the end of the
/// text; an offset inside a multi-byte character is that character's position.
pub fn line_column(text: &str, offset: usize) -> Position {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = text.get(..end).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
    Position { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Position {
        Position { line, column }
    }

    #[test]
    fn lines_and_columns_are_one_based() {
        assert_eq!(line_column("", 0), at(1, 1));
        assert_eq!(line_column("ab\ncd", 0), at(1, 1));
        assert_eq!(line_column("ab\ncd", 2), at(1, 3));
        assert_eq!(line_column("ab\ncd", 3), at(2, 1));
        assert_eq!(line_column("ab\ncd", 4), at(2, 2));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        // "é" is 2 bytes, "€" 3, "𝄞" 4.
        let text = "x\né€𝄞y";
        assert_eq!(line_column(text, 2), at(2, 1));
        assert_eq!(line_column(text, 4), at(2, 2));
        assert_eq!(line_column(text, 7), at(2, 3));
        assert_eq!(line_column(text, 11), at(2, 4));
    }

    #[test]
    fn an_offset_inside_a_character_is_that_character() {
        let text = "x\né€𝄞y";
        assert_eq!(line_column(text, 3), at(2, 1));
        assert_eq!(line_column(text, 5), at(2, 2));
        assert_eq!(line_column(text, 6), at(2, 2));
        assert_eq!(line_column(text, 10), at(2, 3));
    }

    #[test]
    fn crlf_is_one_line_end() {
        let text = "a\r\nb\r\n\r\ncé";
        assert_eq!(line_column(text, 1), at(1, 2)); // the \r belongs to line 1
        assert_eq!(line_column(text, 3), at(2, 1));
        assert_eq!(line_column(text, 6), at(3, 1));
        assert_eq!(line_column(text, 8), at(4, 1));
        assert_eq!(line_column(text, 9), at(4, 2));
        // A lone \r does not end a line.
        assert_eq!(line_column("a\rb", 2), at(1, 3));
    }

    #[test]
    fn an_offset_past_the_end_is_the_end() {
        assert_eq!(line_column("ab\nc", 4), at(2, 2));
        assert_eq!(line_column("ab\nc", 5), at(2, 2));
        assert_eq!(line_column("ab\nc", usize::MAX), at(2, 2));
        assert_eq!(line_column("ab\n", 99), at(2, 1));
        assert_eq!(line_column("", 99), at(1, 1));
    }
}
