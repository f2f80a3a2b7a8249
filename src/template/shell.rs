//! Refuses command text where a quoted value would land inside the author's own shell quoting.
//!
//! Each `{{x}}` in command text becomes one single-quoted shell word. That is only safe where
//! a new word may start: inside the author's quotes it *ends* them. `echo '{{x}}'` with
//! `x; rm -rf /` renders `echo ''x; rm -rf /''`, and `echo "{{x}}"` with `$(id)` renders
//! `echo "'$(id)'"`, which runs `id`. Here-documents expand `$(…)` too. So the literal text
//! around the tags is followed with a small POSIX shell lexer, and a quoted expression inside
//! single quotes, double quotes, `$'…'` or a here-document is an error. Raw `{{{x}}}` is the
//! author's explicit choice and is not checked (`validate` warns about it instead).
//!
//! The lexer is deliberately conservative: `"$(echo {{x}})"` is refused although it would be
//! safe, because telling it apart needs a full parser; write `$(echo {{x}})` without the outer
//! quotes instead. Tags are opaque: their output never changes the lexer's state.

use super::error::TemplateError;
use super::scan::{Tag, TagOutput};

/// Where in the shell's grammar the lexer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside any quotes: a new word may start.
    Plain,
    /// Inside `'…'`.
    Single,
    /// Inside `"…"`.
    Double,
    /// Inside bash's `$'…'`.
    AnsiC,
    /// In a `# comment` up to the end of the line.
    Comment,
    /// In the body of a here-document.
    HereDocument,
}

/// A here-document announced by `<<WORD` whose body starts at the next newline.
#[derive(Debug)]
struct PendingDocument {
    delimiter: String,
    strip_tabs: bool,
}

/// Checks that every shell-quoted expression in `source` starts where a shell word may start.
pub(crate) fn check(source: &str, tags: &[Tag]) -> Result<(), TemplateError> {
    let bytes = source.as_bytes();
    let mut state = State::Plain;
    let mut pending: Vec<PendingDocument> = Vec::new();
    let mut document: Option<PendingDocument> = None;
    let mut tags = tags.iter().peekable();
    let mut position = 0;
    let mut line_start = true;
    while position < bytes.len() {
        if let Some(tag) = tags.next_if(|tag| tag.start == position) {
            if tag.output == TagOutput::Quoted {
                let context = match state {
                    State::Plain | State::Comment => None,
                    State::Single => Some("single quotes"),
                    State::Double => Some("double quotes"),
                    State::AnsiC => Some("`$'…'` quotes"),
                    State::HereDocument => Some("a here-document"),
                };
                if let Some(context) = context {
                    return Err(TemplateError::QuotedExpression {
                        context: context.to_owned(),
                        offset: Some(tag.start),
                    });
                }
            }
            position = tag.end.max(position + 1);
            line_start = false;
            continue;
        }
        let byte = bytes[position];
        if state == State::HereDocument {
            if line_start {
                let line_end = source[position..]
                    .find('\n')
                    .map_or(source.len(), |end| position + end);
                let line = &source[position..line_end];
                if let Some(current) = &document {
                    let line = if current.strip_tabs {
                        line.trim_start_matches('\t')
                    } else {
                        line
                    };
                    if line == current.delimiter {
                        document = None;
                        state = if pending.is_empty() {
                            State::Plain
                        } else {
                            State::HereDocument
                        };
                        if state == State::HereDocument {
                            document = Some(pending.remove(0));
                        }
                        position = line_end;
                        continue;
                    }
                }
            }
            line_start = byte == b'\n';
            position += 1;
            continue;
        }
        line_start = byte == b'\n';
        match (state, byte) {
            (State::Plain | State::Double | State::AnsiC, b'\\') => position += 1,
            (State::Plain, b'\'') => state = State::Single,
            (State::Plain, b'"') => state = State::Double,
            (State::Plain, b'$') if bytes.get(position + 1) == Some(&b'\'') => {
                state = State::AnsiC;
                position += 1;
            }
            (State::Plain, b'#') if position == 0 || starts_word(bytes[position - 1]) => {
                state = State::Comment;
            }
            (State::Plain, b'<')
                if bytes.get(position + 1) == Some(&b'<')
                    && bytes.get(position + 2) != Some(&b'<') =>
            {
                let (announced, end) = here_document(source, position + 2);
                pending.push(announced);
                position = end;
                continue;
            }
            (State::Plain | State::Comment, b'\n') if !pending.is_empty() => {
                document = Some(pending.remove(0));
                state = State::HereDocument;
                line_start = true;
            }
            (State::Comment, b'\n') => state = State::Plain,
            (State::Single | State::AnsiC, b'\'') | (State::Double, b'"') => {
                state = State::Plain;
            }
            _ => {}
        }
        position += 1;
    }
    Ok(())
}

/// Whether a `#` after `previous` starts a comment (it must begin a word).
fn starts_word(previous: u8) -> bool {
    previous.is_ascii_whitespace() || matches!(previous, b';' | b'&' | b'|' | b'(' | b')')
}

/// Reads the delimiter after `<<` (or `<<-`) at `start`; returns it and where it ends.
fn here_document(source: &str, start: usize) -> (PendingDocument, usize) {
    let bytes = source.as_bytes();
    let mut position = start;
    let strip_tabs = bytes.get(position) == Some(&b'-');
    if strip_tabs {
        position += 1;
    }
    while matches!(bytes.get(position), Some(b' ' | b'\t')) {
        position += 1;
    }
    let mut delimiter = String::new();
    let mut quote = None;
    while let Some(&byte) = bytes.get(position) {
        match (quote, byte) {
            (None, b'\'' | b'"') => quote = Some(byte),
            (Some(open), _) if byte == open => quote = None,
            (None, b'\\') => {}
            (None, _)
                if byte.is_ascii_whitespace()
                    || matches!(byte, b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')') =>
            {
                break;
            }
            _ => {
                let character = source[position..].chars().next().unwrap_or_default();
                delimiter.push(character);
                position += character.len_utf8();
                continue;
            }
        }
        position += 1;
    }
    (
        PendingDocument {
            delimiter,
            strip_tabs,
        },
        position,
    )
}

#[cfg(test)]
mod tests {
    use super::check;
    use crate::template::TemplateError;
    use crate::template::scan::scan;

    #[test]
    fn values_must_start_a_shell_word() {
        let cases: &[(&str, Option<(&str, usize)>)] = &[
            ("echo {{x}}", None),
            ("echo --name={{x}}.txt", None),
            ("echo '{{x}}'", Some(("single quotes", 6))),
            ("echo \"{{x}}\"", Some(("double quotes", 6))),
            ("echo \"Deploying {{x}} now\"", Some(("double quotes", 16))),
            ("echo $'{{x}}'", Some(("`$'…'` quotes", 7))),
            ("echo 'a' {{x}} \"b\" {{y}}", None),
            ("echo 'it'\\''s' {{x}}", None),
            ("echo \\' {{x}}", None),
            ("echo \"a \\\" b\" {{x}}", None),
            ("echo '{{{x}}}'", None),
            ("echo '{{#if c}}yes{{/if}}'", None),
            ("echo a#b {{x}}", None),
            ("echo a # it's a comment {{x}}\necho {{y}}", None),
            (
                "cat <<EOF\n{{x}}\nEOF\necho {{y}}",
                Some(("a here-document", 10)),
            ),
            (
                "cat <<'EOF' > f\nline {{x}}\nEOF",
                Some(("a here-document", 21)),
            ),
            ("cat <<-EOF\n\tbody\n\tEOF\necho {{y}}", None),
            ("cat <<EOF\nbody\nEOF\necho {{y}}", None),
            ("cat <<<{{x}}", None),
            ("sh -c 'echo {{x}}'", Some(("single quotes", 12))),
        ];
        for (source, expected) in cases {
            let result = check(source, &scan(source).tags);
            match expected {
                None => assert_eq!(result, Ok(()), "command {source:?}"),
                Some((context, offset)) => assert_eq!(
                    result,
                    Err(TemplateError::QuotedExpression {
                        context: (*context).to_owned(),
                        offset: Some(*offset)
                    }),
                    "command {source:?}"
                ),
            }
        }
    }
}
