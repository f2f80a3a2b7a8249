//! A light lexical pass over template text that finds where each variable and helper name is.
//!
//! handlebars' AST keeps only the line and column of each statement, not of each variable in
//! it, so this scanner walks the `{{…}}` tags itself and records the byte offset of every
//! variable path and helper name in document order. It runs only on text that handlebars has
//! already compiled, so it can be lenient: its one job is offsets, the AST stays the authority
//! on meaning ([`super::references`] pairs the two by text, in order).

/// What a token is, as far as offsets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A variable path (`params.keep`, `this`, `@index`, `../x`).
    Path,
    /// A helper name (`eq`, `if`, `each`).
    Helper,
    /// A partial or decorator tag (`{{> name}}`, `{{* name}}`), which opsgate does not support.
    Unsupported,
}

/// One token found inside a `{{…}}` tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// What the token is.
    pub(crate) kind: TokenKind,
    /// Byte offset in the template.
    pub(crate) offset: usize,
    /// Length in bytes.
    pub(crate) length: usize,
}

/// What a whole `{{…}}` tag does to the output, for the shell-quoting check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagOutput {
    /// `{{x}}` or `{{helper …}}`: a value, shell-quoted in command text.
    Quoted,
    /// `{{{x}}}` or `{{&x}}`: a value inserted raw.
    Raw,
    /// Blocks, `{{else}}`, closing tags, comments: no output of their own.
    Nothing,
}

/// The span of one `{{…}}` tag (comments and raw blocks included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag {
    /// Byte offset of the opening `{{`.
    pub(crate) start: usize,
    /// Byte offset just after the closing `}}`.
    pub(crate) end: usize,
    /// What the tag outputs.
    pub(crate) output: TagOutput,
}

/// Everything the scanner found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Variables and helper names, in document order.
    pub(crate) tokens: Vec<Token>,
    /// Tags, in document order.
    pub(crate) tags: Vec<Tag>,
}

/// One lexical item inside a tag.
#[derive(Debug)]
enum Item {
    /// A bare word: a path, a helper name, a number or a keyword; `(offset, length)`.
    Word(usize, usize),
    /// A string, array or object literal.
    Literal,
    /// A parenthesised subexpression.
    Group(Vec<Item>),
    /// `=` between a hash key and its value.
    Equals,
    /// `|` around block parameters.
    Pipe,
}

/// What the tag's sigil says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    /// `{{x}}`, `{{{x}}}`, `{{&x}}`, `{{helper a b}}`.
    Expression,
    /// `{{#helper …}}`, `{{{{raw}}}}`.
    Block,
    /// `{{/helper}}`.
    Close,
    /// `{{^}}` or `{{^helper …}}`.
    Inverse,
}

/// Finds every tag, variable path and helper name in `source`, in document order.
pub(crate) fn scan(source: &str) -> Scan {
    let bytes = source.as_bytes();
    let mut scanned = Scan::default();
    let tokens = &mut scanned.tokens;
    let mut position = 0;
    while let Some(found) = source[position..].find("{{") {
        let open = position + found;
        let mut backslashes = 0;
        while open > position + backslashes && bytes[open - 1 - backslashes] == b'\\' {
            backslashes += 1;
        }
        if backslashes == 1 {
            // `\{{` is literal text (and `\{{{{` too); two or more backslashes escape themselves.
            position = open
                + if source[open..].starts_with("{{{{") {
                    4
                } else {
                    2
                };
            continue;
        }
        if source[open..].starts_with("{{{{") {
            position = scan_raw_block(source, open, tokens);
            scanned.tags.push(Tag {
                start: open,
                end: position,
                output: TagOutput::Nothing,
            });
            continue;
        }
        let mut cursor = open + 2;
        if source[cursor..].starts_with("!--") || source[cursor..].starts_with('!') {
            let terminator = if source[cursor..].starts_with("!--") {
                "--}}"
            } else {
                "}}"
            };
            position = source[cursor..]
                .find(terminator)
                .map_or(source.len(), |end| cursor + end + terminator.len());
            scanned.tags.push(Tag {
                start: open,
                end: position,
                output: TagOutput::Nothing,
            });
            continue;
        }
        if bytes.get(cursor) == Some(&b'~') {
            cursor += 1;
        }
        let mut closing_braces = 2;
        let mut kind = TagKind::Expression;
        let mut output = TagOutput::Quoted;
        let mut supported = true;
        match bytes.get(cursor) {
            Some(b'{') => {
                closing_braces = 3;
                output = TagOutput::Raw;
                cursor += 1;
                if bytes.get(cursor) == Some(&b'~') {
                    cursor += 1;
                }
            }
            Some(b'&') => {
                output = TagOutput::Raw;
                cursor += 1;
            }
            Some(b'#') => {
                cursor += 1;
                supported = !matches!(bytes.get(cursor), Some(b'>' | b'*'));
                kind = TagKind::Block;
            }
            Some(b'>' | b'*') => supported = false,
            Some(b'/') => kind = TagKind::Close,
            Some(b'^') => {
                cursor += 1;
                kind = TagKind::Inverse;
            }
            _ => {}
        }
        let (items, end) = lex(source, cursor, false);
        if supported {
            if kind != TagKind::Expression || starts_with_else(source, &items) {
                output = TagOutput::Nothing;
            }
            classify_tag(source, kind, &items, tokens);
        } else {
            output = TagOutput::Nothing;
            tokens.push(Token {
                kind: TokenKind::Unsupported,
                offset: open,
                length: 2,
            });
        }
        position = skip_closing(bytes, end, closing_braces);
        scanned.tags.push(Tag {
            start: open,
            end: position,
            output,
        });
    }
    scanned
}

/// Whether a tag's first word is `else` (`{{else}}`, `{{else if x}}`).
fn starts_with_else(source: &str, items: &[Item]) -> bool {
    matches!(items.first(), Some(Item::Word(offset, length)) if &source[*offset..*offset + length] == "else")
}

/// Scans `{{{{helper …}}}} … {{{{/helper}}}}` and returns the position after it.
fn scan_raw_block(source: &str, open: usize, tokens: &mut Vec<Token>) -> usize {
    let (items, end) = lex(source, open + 4, false);
    classify_tag(source, TagKind::Block, &items, tokens);
    let after_open = skip_closing(source.as_bytes(), end, 4);
    match source[after_open..].find("{{{{/") {
        Some(close) => {
            let close = after_open + close;
            source[close..]
                .find("}}}}")
                .map_or(source.len(), |end| close + end + 4)
        }
        None => source.len(),
    }
}

/// Skips the closing `~` and braces of a tag that ends at `end`.
fn skip_closing(bytes: &[u8], mut end: usize, braces: usize) -> usize {
    let mut seen = 0;
    while end < bytes.len() && seen < braces {
        match bytes[end] {
            b'}' => seen += 1,
            b'~' => {}
            _ => break,
        }
        end += 1;
    }
    end
}

/// Splits the inside of a tag (or of a subexpression when `nested`) into items; returns them
/// and the position where the tag's closing `}` (or `~`, or the group's `)`) begins.
fn lex(source: &str, mut cursor: usize, nested: bool) -> (Vec<Item>, usize) {
    let bytes = source.as_bytes();
    let mut items = Vec::new();
    while cursor < bytes.len() {
        match bytes[cursor] {
            byte if byte.is_ascii_whitespace() => cursor += 1,
            b'}' => return (items, cursor),
            b'~' if bytes.get(cursor + 1) == Some(&b'}') => return (items, cursor),
            b')' => {
                if nested {
                    return (items, cursor + 1);
                }
                cursor += 1;
            }
            b'(' => {
                let (group, end) = lex(source, cursor + 1, true);
                items.push(Item::Group(group));
                cursor = end;
            }
            b'=' => {
                items.push(Item::Equals);
                cursor += 1;
            }
            b'|' => {
                items.push(Item::Pipe);
                cursor += 1;
            }
            quote @ (b'"' | b'\'') => {
                cursor += 1;
                while cursor < bytes.len() && bytes[cursor] != quote {
                    cursor += if bytes[cursor] == b'\\' { 2 } else { 1 };
                }
                cursor += 1;
                items.push(Item::Literal);
            }
            b'{' => {
                cursor = skip_object_literal(bytes, cursor);
                items.push(Item::Literal);
            }
            _ => {
                let start = cursor;
                while cursor < bytes.len() {
                    match bytes[cursor] {
                        b'[' => {
                            // `[any text]` is one path segment, spaces and dots included.
                            cursor = source[cursor..]
                                .find(']')
                                .map_or(bytes.len(), |end| cursor + end + 1);
                        }
                        byte if byte.is_ascii_whitespace() => break,
                        b'(' | b')' | b'{' | b'}' | b'|' | b'=' | b'~' | b'"' | b'\'' => break,
                        _ => cursor += 1,
                    }
                }
                if cursor == start {
                    cursor += 1;
                } else {
                    items.push(Item::Word(start, cursor - start));
                }
            }
        }
    }
    (items, cursor)
}

/// Skips a `{…}` object literal, nesting and strings included; returns the position after it.
fn skip_object_literal(bytes: &[u8], mut cursor: usize) -> usize {
    let mut depth = 0;
    while cursor < bytes.len() {
        match bytes[cursor] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return cursor + 1;
                }
            }
            quote @ (b'"' | b'\'') => {
                cursor += 1;
                while cursor < bytes.len() && bytes[cursor] != quote {
                    cursor += if bytes[cursor] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        cursor += 1;
    }
    cursor
}

/// Records the tokens of one tag according to its kind.
fn classify_tag(source: &str, kind: TagKind, items: &[Item], tokens: &mut Vec<Token>) {
    match kind {
        TagKind::Close => {}
        TagKind::Block => classify_call(source, items, true, tokens),
        TagKind::Inverse => {
            if !items.is_empty() {
                classify_call(source, items, true, tokens);
            }
        }
        TagKind::Expression if starts_with_else(source, items) => {
            // `{{else}}` or an else-chain `{{else if x}}`.
            if items.len() > 1 {
                classify_call(source, &items[1..], true, tokens);
            }
        }
        TagKind::Expression => classify_call(source, items, false, tokens),
    }
}

/// Records the tokens of a call: a helper name (or a lone path) followed by parameters, hash
/// entries and block parameters. `helper_head` says the first word names a helper even without
/// parameters (blocks and subexpressions).
fn classify_call(source: &str, items: &[Item], helper_head: bool, tokens: &mut Vec<Token>) {
    let Some((head, rest)) = items.split_first() else {
        return;
    };
    match head {
        Item::Word(offset, length) => {
            let kind = if helper_head || !rest.is_empty() {
                TokenKind::Helper
            } else {
                TokenKind::Path
            };
            if kind == TokenKind::Helper || !is_literal(&source[*offset..offset + length]) {
                tokens.push(Token {
                    kind,
                    offset: *offset,
                    length: *length,
                });
            }
        }
        Item::Group(group) => classify_call(source, group, true, tokens),
        Item::Literal | Item::Equals | Item::Pipe => {}
    }
    let mut index = 0;
    while index < rest.len() {
        match &rest[index] {
            Item::Word(offset, length) => {
                let text = &source[*offset..offset + length];
                if text == "as" && matches!(rest.get(index + 1), Some(Item::Pipe)) {
                    // `as |item index|`: names, not reads; skip to the closing pipe.
                    index += 2;
                    while index < rest.len() && !matches!(rest[index], Item::Pipe) {
                        index += 1;
                    }
                } else if matches!(rest.get(index + 1), Some(Item::Equals)) {
                    // A hash key; its value is the next item.
                    index += 1;
                } else if !is_literal(text) {
                    tokens.push(Token {
                        kind: TokenKind::Path,
                        offset: *offset,
                        length: *length,
                    });
                }
            }
            Item::Group(group) => classify_call(source, group, true, tokens),
            Item::Literal | Item::Equals | Item::Pipe => {}
        }
        index += 1;
    }
}

/// Whether a bare word is a number, `true`, `false`, `null` or an array literal.
fn is_literal(word: &str) -> bool {
    matches!(word, "true" | "false" | "null")
        || word
            .strip_prefix('-')
            .unwrap_or(word)
            .starts_with(|c: char| c.is_ascii_digit())
        || (word.starts_with('[') && serde_json::from_str::<serde_json::Value>(word).is_ok())
}

#[cfg(test)]
mod tests {
    use super::{TagOutput, TokenKind, scan};

    /// Renders tokens as `kind:text` for compact expectations.
    fn tokens(source: &str) -> Vec<String> {
        scan(source)
            .tokens
            .iter()
            .map(|token| {
                let kind = match token.kind {
                    TokenKind::Path => "path",
                    TokenKind::Helper => "helper",
                    TokenKind::Unsupported => "unsupported",
                };
                format!(
                    "{kind}:{}",
                    &source[token.offset..token.offset + token.length]
                )
            })
            .collect()
    }

    #[test]
    fn finds_paths_and_helpers_in_document_order() {
        let cases: &[(&str, &[&str])] = &[
            ("plain text", &[]),
            (
                "a {{x}} b {{{y.z}}} {{&w}}",
                &["path:x", "path:y.z", "path:w"],
            ),
            ("{{ ~x~ }}{{~{y}~}}", &["path:x", "path:y"]),
            ("{{eq a 'b'}}", &["helper:eq", "path:a"]),
            (
                "{{#if (eq params.env \"pro d\")}}x{{/if}}",
                &["helper:if", "helper:eq", "path:params.env"],
            ),
            (
                "{{#each host.groups as |group index|}}{{group}}{{@index}}{{else}}{{n}}{{/each}}",
                &[
                    "helper:each",
                    "path:host.groups",
                    "path:group",
                    "path:@index",
                    "path:n",
                ],
            ),
            (
                "{{#if a}}{{else if b}}{{^}}{{/if}}",
                &["helper:if", "path:a", "helper:if", "path:b"],
            ),
            (
                "{{lookup vars 'x' default=vars.y}}",
                &["helper:lookup", "path:vars", "path:vars.y"],
            ),
            (
                "{{gt x 1}}{{gt x -1.5}}{{eq x true}}{{eq x null}}",
                &[
                    "helper:gt",
                    "path:x",
                    "helper:gt",
                    "path:x",
                    "helper:eq",
                    "path:x",
                    "helper:eq",
                    "path:x",
                ],
            ),
            ("{{params.[my key].x}}", &["path:params.[my key].x"]),
            ("{{ (eq a b) }}", &["helper:eq", "path:a", "path:b"]),
            ("\\{{not.a.tag}} {{real}}", &["path:real"]),
            ("\\\\{{real}}", &["path:real"]),
            ("{{! comment {{x}} }}{{!-- {{y}} --}}{{z}}", &["path:z"]),
            (
                "{{> partial}}{{#> layout}}{{/layout}}",
                &["unsupported:{{", "unsupported:{{"],
            ),
            ("{{eq 'it\\'s' x}}", &["helper:eq", "path:x"]),
            (
                "{{{{raw}}}} {{x}} {{{{/raw}}}}{{y}}",
                &["helper:raw", "path:y"],
            ),
            ("{{eq s '}}'}}{{t}}", &["helper:eq", "path:s", "path:t"]),
            (
                "{{this}}{{../x}}{{@root.p}}",
                &["path:this", "path:../x", "path:@root.p"],
            ),
        ];
        for (source, expected) in cases {
            assert_eq!(tokens(source), *expected, "scanning {source:?}");
        }
    }

    #[test]
    fn tags_say_what_they_output() {
        let source = "a {{x}} {{{y}}} {{&z}} {{#if c}}{{else}}{{/if}} {{! note }} {{eq a b}}";
        let outputs: Vec<(String, TagOutput)> = scan(source)
            .tags
            .iter()
            .map(|tag| (source[tag.start..tag.end].to_owned(), tag.output))
            .collect();
        let expected = [
            ("{{x}}", TagOutput::Quoted),
            ("{{{y}}}", TagOutput::Raw),
            ("{{&z}}", TagOutput::Raw),
            ("{{#if c}}", TagOutput::Nothing),
            ("{{else}}", TagOutput::Nothing),
            ("{{/if}}", TagOutput::Nothing),
            ("{{! note }}", TagOutput::Nothing),
            ("{{eq a b}}", TagOutput::Quoted),
        ];
        let expected: Vec<(String, TagOutput)> = expected
            .iter()
            .map(|(text, output)| ((*text).to_owned(), *output))
            .collect();
        assert_eq!(outputs, expected);
    }
}
