//! Just enough of Rust's lexer for the source checks: each line's code without comments and
//! without the text of its string literals, and the literals themselves.

/// One line of a source file, as the checks see it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Line {
    /// The code: comments dropped, every string literal left as an empty `""`.
    pub code: String,
    /// The text of the string literals that start on this line (escapes left as written).
    pub literals: Vec<String>,
}

/// Where the lexer is between two characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    /// Inside `"..."`.
    Str,
    /// Inside a raw string closed by `"` and this many `#`.
    Raw(usize),
    /// Inside `/* ... */`, this deep.
    Block(usize),
}

/// Splits `text` into lines of code and literals. A literal that spans lines belongs to the
/// line it starts on; char literals and lifetimes are told apart so `'"'` opens no string.
pub fn lines(text: &str) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::new();
    let mut state = State::Code;
    let mut literal = String::new();
    // The line a literal being read started on.
    let mut literal_line = 0;
    for (n, raw) in text.lines().enumerate() {
        out.push(Line::default());
        let chars: Vec<char> = raw.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            match state {
                State::Str => {
                    if c == '\\' {
                        literal.push(c);
                        if let Some(escaped) = next {
                            literal.push(escaped);
                        }
                        i += 2;
                        continue;
                    }
                    if c == '"' {
                        out[literal_line]
                            .literals
                            .push(std::mem::take(&mut literal));
                        out[n].code.push('"');
                        state = State::Code;
                    } else {
                        literal.push(c);
                    }
                }
                State::Raw(hashes) => {
                    let closes = c == '"'
                        && chars.len() >= i + 1 + hashes
                        && chars[i + 1..i + 1 + hashes].iter().all(|h| *h == '#');
                    if closes {
                        out[literal_line]
                            .literals
                            .push(std::mem::take(&mut literal));
                        out[n].code.push('"');
                        state = State::Code;
                        i += 1 + hashes;
                        continue;
                    }
                    literal.push(c);
                }
                State::Block(depth) => {
                    if c == '*' && next == Some('/') {
                        state = if depth == 1 {
                            State::Code
                        } else {
                            State::Block(depth - 1)
                        };
                        i += 2;
                        continue;
                    }
                    if c == '/' && next == Some('*') {
                        state = State::Block(depth + 1);
                        i += 2;
                        continue;
                    }
                }
                State::Code => {
                    if c == '/' && next == Some('/') {
                        break;
                    }
                    if c == '/' && next == Some('*') {
                        state = State::Block(1);
                        i += 2;
                        continue;
                    }
                    if c == '"' {
                        out[n].code.push('"');
                        literal_line = n;
                        state = State::Str;
                    } else if let Some(hashes) = raw_string_start(&chars, i) {
                        // `r"`, `r#"`, `br"`...: skip the prefix up to and including the quote.
                        let prefix = chars[i..].iter().position(|ch| *ch == '"').unwrap_or(0);
                        out[n].code.push('"');
                        literal_line = n;
                        state = State::Raw(hashes);
                        i += prefix + 1;
                        continue;
                    } else if c == '\'' {
                        let skip = char_literal_len(&chars[i..]);
                        out[n].code.extend(&chars[i..i + skip]);
                        i += skip;
                        continue;
                    } else {
                        out[n].code.push(c);
                    }
                }
            }
            i += 1;
        }
        if state == State::Str || matches!(state, State::Raw(_)) {
            literal.push('\n');
        }
    }
    out
}

/// The number of `#` of a raw string (`r"`, `r#"`, `br##"`...) starting at `chars[i]`, if one
/// starts there (and `r` is not the end of a longer name).
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    if i > 0 && is_ident_char(chars[i - 1]) {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|c| **c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some(hashes)
}

/// How many characters from `chars[0] == '\''` belong to a char literal (`'x'`, `'\''`,
/// `'\u{1F600}'`), or 1 for a lifetime or label (`'a`).
fn char_literal_len(chars: &[char]) -> usize {
    if chars.get(1) == Some(&'\\') {
        // An escape: runs to the next quote after the escaped character.
        return chars
            .iter()
            .skip(3)
            .position(|c| *c == '\'')
            .map_or(1, |p| p + 4);
    }
    if chars.get(2) == Some(&'\'') {
        3
    } else {
        1
    }
}

/// Whether `c` can be part of a Rust identifier.
pub fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The byte offsets where `word` stands in `code` as a whole identifier (not inside a longer
/// name such as `LoginFailure`).
pub fn word_positions<'a>(code: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    code.match_indices(word)
        .map(|(at, _)| at)
        .filter(move |at| {
            let before = code[..*at].chars().next_back();
            let after = code[at + word.len()..].chars().next();
            !before.is_some_and(is_ident_char) && !after.is_some_and(is_ident_char)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_comments_leave_the_code() {
        let text = concat!(
            "let a = \"INVALID_FIELD\"; // \"NOT_FOUND\" in a comment\n",
            "let b = '\"'; let c = '\\''; fn f<'a>(x: &'a str) {}\n",
            "let d = r#\"raw \"quoted\" text\"#; /* \"gone\" */ let e = b\"bytes\";\n",
            "let f = \"two \\\n",
            "  lines\"; let g = \"esc\\\"aped\";\n",
        );
        let lines = lines(text);
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0].code, "let a = \"\"; ");
        assert_eq!(lines[0].literals, ["INVALID_FIELD"]);
        assert_eq!(
            lines[1].code,
            "let b = '\"'; let c = '\\''; fn f<'a>(x: &'a str) {}"
        );
        assert!(lines[1].literals.is_empty());
        assert_eq!(lines[2].literals, ["raw \"quoted\" text", "bytes"]);
        assert!(!lines[2].code.contains("gone"));
        assert_eq!(lines[3].literals, ["two \\\n  lines"]);
        assert_eq!(lines[4].literals, ["esc\\\"aped"]);
        assert_eq!(lines[4].code, "\"; let g = \"\";");
    }

    #[test]
    fn words_stand_alone() {
        let found = |code: &str, word: &str| word_positions(code, word).count();
        assert_eq!(found("sf_auth::ErrorKind::Transient", "ErrorKind"), 1);
        assert_eq!(found("LoginFailure::Expired", "Failure"), 0);
        assert_eq!(found("Failure::Config | FailureType::System", "Failure"), 1);
        assert_eq!(found("let failure_type = 1;", "failure_type"), 1);
    }
}
