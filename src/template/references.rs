//! Which variables a template reads, found through handlebars' own AST.
//!
//! [`references`] is what `validate` and `plan` use to reject an undeclared `{{params.x}}` or a
//! register name used too early, and what the renderer uses to enforce strictness where
//! handlebars does not (`{{#if x}}` on an undefined `x`, hash values). The walk also rejects
//! what opsgate does not support (unknown helpers, partials, decorators, inline `{{if x}}`) and
//! rewrites every output expression into a call of the renderer's value helper, so that lists
//! and `null` render the same way whatever produced them.

use std::collections::HashMap;

use handlebars::template::{Parameter, Subexpression, Template, TemplateElement};
use handlebars::{Path, PathSeg, TemplateErrorReason};
use serde_json::Value;

use super::error::{HELPERS, TemplateError, friendly_syntax_message, offset_of};
use super::scan::{Scan, Tag, Token, TokenKind, scan};
use super::shell;

/// The helper every output expression is rewritten to call (see [`super::helpers`]).
pub(crate) const VALUE_HELPER: &str = "opsgate-value";

/// Helpers that only make sense with a block (`{{#if x}}…{{/if}}`).
const BLOCK_ONLY: &[&str] = &["if", "unless", "each", "with"];
/// Helpers that produce a value and cannot take a block.
const VALUE_ONLY: &[&str] = &["lookup", "len"];
/// Helpers whose block changes the context: paths inside are relative to the item.
const SCOPING: &[&str] = &["each", "with"];

/// One variable the template reads from the context root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The path from the context root: `["params", "keep"]`, `["pending", "stdout"]`,
    /// `["facts", "os_family"]`, `["host", "name"]`; `[0]` indexes become `"0"`.
    pub path: Vec<String>,
    /// Whether the variable is output raw, inside `{{{ }}}` (or `{{& }}`).
    pub raw: bool,
    /// Byte offset of the variable as written, prefixes such as `../` and `@root.` included.
    pub offset: usize,
    /// Length in bytes of the variable as written.
    pub length: usize,
}

/// Every variable path `template` reads from the context root, in document order: plain
/// expressions, helper arguments and hash values, block parameters (`{{#if x}}`,
/// `{{#each items}}`). Paths relative to an `each` or `with` item (`this`, `name`, block
/// parameters) and `@index`-style locals are not reported; `@root.x` and `../x` reaching the
/// root are.
pub fn references(template: &str) -> Result<Vec<Reference>, TemplateError> {
    parse(template).map(|parsed| parsed.references)
}

/// [`references`] for `command` text, which also refuses a shell-quoted `{{x}}` placed inside
/// the author's own quotes or a here-document ([`TemplateError::QuotedExpression`]), where the
/// quoting opsgate adds would end the author's instead of protecting the value.
pub fn command_references(template: &str) -> Result<Vec<Reference>, TemplateError> {
    let parsed = parse(template)?;
    shell::check(template, &parsed.tags)?;
    Ok(parsed.references)
}

/// A template compiled, checked and rewritten for rendering.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// The handlebars AST, with output expressions rewritten to call [`VALUE_HELPER`].
    pub(crate) template: Template,
    /// Root variables, in document order.
    pub(crate) references: Vec<Reference>,
    /// Every variable token (root or local), to locate runtime errors.
    paths: Vec<Token>,
    /// Every `{{…}}` tag, for the command-text quoting check.
    pub(crate) tags: Vec<Tag>,
}

impl Parsed {
    /// The offset of the first occurrence of variable `path` at or after `from` (the start of
    /// the statement handlebars blamed), or `from` itself when the path is not written there
    /// (a `lookup` key, for instance).
    pub(crate) fn locate(&self, source: &str, path: &str, from: Option<usize>) -> Option<usize> {
        let start = from.unwrap_or(0);
        self.paths
            .iter()
            .find(|token| {
                token.offset >= start && &source[token.offset..token.offset + token.length] == path
            })
            .map(|token| token.offset)
            .or(from)
    }

    /// Checks every root reference against `context`; the first undefined one is the error.
    pub(crate) fn check_defined(&self, context: &Value) -> Result<(), TemplateError> {
        for reference in &self.references {
            let mut value = context;
            for (depth, segment) in reference.path.iter().enumerate() {
                let next = match value {
                    Value::Object(map) => map.get(segment),
                    Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
                    _ => None,
                };
                if let Some(next) = next {
                    value = next;
                    continue;
                }
                let mut available: Vec<String> = match value {
                    Value::Object(map) => map.keys().cloned().collect(),
                    _ => Vec::new(),
                };
                available.sort();
                return Err(TemplateError::Undefined {
                    path: reference.path[..=depth].join("."),
                    offset: Some(reference.offset),
                    available,
                });
            }
        }
        Ok(())
    }
}

/// Compiles `source`, collects its references and rewrites it for rendering.
pub(crate) fn parse(source: &str) -> Result<Parsed, TemplateError> {
    let mut template = Template::compile(source).map_err(|error| syntax_error(source, &error))?;
    let Scan { tokens, tags } = scan(source);
    if let Some(token) = tokens
        .iter()
        .find(|token| token.kind == TokenKind::Unsupported)
    {
        return Err(TemplateError::Syntax {
            message: "partials and decorators (`{{> …}}`, `{{* …}}`) are not supported".to_owned(),
            offset: Some(token.offset),
        });
    }
    let mut walk = Walk {
        source,
        tokens: &tokens,
        consumed: vec![false; tokens.len()],
        references: Vec::new(),
        depth: 0,
    };
    walk.template(&mut template)?;
    let mut references = walk.references;
    references.sort_by_key(|reference| reference.offset);
    let paths = tokens
        .into_iter()
        .filter(|token| token.kind == TokenKind::Path)
        .collect();
    Ok(Parsed {
        template,
        references,
        paths,
        tags,
    })
}

/// Converts a handlebars compile error, with its line and column made a byte offset.
fn syntax_error(source: &str, error: &handlebars::TemplateError) -> TemplateError {
    let message = match error.reason() {
        TemplateErrorReason::InvalidSyntax(message) => {
            let message = friendly_syntax_message(message);
            if error
                .pos()
                .is_some_and(|(line, column)| offset_of(source, line, column) >= source.len())
            {
                format!(
                    "the template ends inside a `{{{{…}}}}` tag or an unclosed block: {message}"
                )
            } else {
                message
            }
        }
        TemplateErrorReason::MismatchingClosedHelper(open, close)
        | TemplateErrorReason::MismatchingClosedDecorator(open, close) => {
            format!("`{{{{#{open}}}}}` is closed by `{{{{/{close}}}}}`")
        }
        TemplateErrorReason::InvalidParam(parameter) => format!("invalid value `{parameter}`"),
        other => other.to_string(),
    };
    TemplateError::Syntax {
        message,
        offset: error
            .pos()
            .map(|(line, column)| offset_of(source, line, column)),
    }
}

/// State of one walk over the AST.
struct Walk<'a> {
    source: &'a str,
    tokens: &'a [Token],
    /// Tokens already paired with an AST node, so repeated names pair in order.
    consumed: Vec<bool>,
    references: Vec<Reference>,
    /// How many `each`/`with` blocks enclose the current node.
    depth: usize,
}

impl Walk<'_> {
    /// Pairs the next unconsumed token of `kind` spelled `text`; returns `(offset, length)`.
    fn pair(&mut self, kind: TokenKind, text: &str) -> Option<(usize, usize)> {
        let index = self.tokens.iter().enumerate().position(|(index, token)| {
            !self.consumed[index]
                && token.kind == kind
                && &self.source[token.offset..token.offset + token.length] == text
        })?;
        self.consumed[index] = true;
        Some((self.tokens[index].offset, self.tokens[index].length))
    }

    /// Walks a template body; blocks cannot sit inside `{{{ }}}`, so nothing here is raw.
    fn template(&mut self, template: &mut Template) -> Result<(), TemplateError> {
        for element in &mut template.elements {
            match element {
                TemplateElement::Expression(helper) => self.expression(helper, false)?,
                TemplateElement::HtmlExpression(helper) => self.expression(helper, true)?,
                TemplateElement::HelperBlock(helper) => {
                    let name = helper.name.as_name().unwrap_or_default().to_owned();
                    self.helper_name(&name, Usage::Block)?;
                    for parameter in &mut helper.params {
                        self.parameter(parameter, false)?;
                    }
                    for value in sorted_hash(&mut helper.hash) {
                        self.parameter(value, false)?;
                    }
                    let scoping = SCOPING.contains(&name.as_str());
                    if let Some(body) = &mut helper.template {
                        self.depth += usize::from(scoping);
                        let result = self.template(body);
                        self.depth -= usize::from(scoping);
                        result?;
                    }
                    if let Some(inverse) = &mut helper.inverse {
                        self.template(inverse)?;
                    }
                }
                TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
                _ => {
                    return Err(TemplateError::Syntax {
                        message: "partials and decorators (`{{> …}}`, `{{* …}}`) are not supported"
                            .to_owned(),
                        offset: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// Walks an output expression and rewrites it into `{{opsgate-value <what it output>}}`.
    fn expression(
        &mut self,
        helper: &mut handlebars::template::HelperTemplate,
        raw: bool,
    ) -> Result<(), TemplateError> {
        let value = if helper.params.is_empty() && helper.hash.is_empty() {
            // A lone path `{{x}}` or subexpression `{{ (eq a b) }}`.
            let mut name =
                std::mem::replace(&mut helper.name, Parameter::Name(VALUE_HELPER.to_owned()));
            self.parameter(&mut name, raw)?;
            name
        } else {
            let name = helper.name.as_name().unwrap_or_default().to_owned();
            self.helper_name(&name, Usage::Inline)?;
            for parameter in &mut helper.params {
                self.parameter(parameter, raw)?;
            }
            for value in sorted_hash(&mut helper.hash) {
                self.parameter(value, raw)?;
            }
            let call = Subexpression::new(
                Parameter::Name(name),
                std::mem::take(&mut helper.params),
                std::mem::take(&mut helper.hash),
            );
            helper.name = Parameter::Name(VALUE_HELPER.to_owned());
            Parameter::Subexpression(call)
        };
        helper.params = vec![value];
        Ok(())
    }

    fn parameter(&mut self, parameter: &mut Parameter, raw: bool) -> Result<(), TemplateError> {
        match parameter {
            Parameter::Path(path) => {
                self.path(path, raw);
                Ok(())
            }
            Parameter::Subexpression(subexpression) => {
                let TemplateElement::Expression(helper) = subexpression.element.as_mut() else {
                    return Ok(());
                };
                let name = match &helper.name {
                    Parameter::Name(name) => name.clone(),
                    Parameter::Path(path) => raw_path(path).to_owned(),
                    _ => String::new(),
                };
                self.helper_name(&name, Usage::Inline)?;
                for parameter in &mut helper.params {
                    self.parameter(parameter, raw)?;
                }
                for value in sorted_hash(&mut helper.hash) {
                    self.parameter(value, raw)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Pairs a path with its token and records it when it reads from the context root.
    fn path(&mut self, path: &Path, raw: bool) {
        let written = raw_path(path);
        // The scanner finds every path handlebars does; the text search is a fallback that
        // keeps an offset meaningful should they ever disagree.
        let (offset, length) = self
            .pair(TokenKind::Path, written)
            .or_else(|| {
                self.source
                    .find(written)
                    .map(|offset| (offset, written.len()))
            })
            .unwrap_or((0, written.len()));
        let Path::Relative((segments, _)) = path else {
            // `@index`, `@key`, `@first`: locals of the enclosing `each`.
            return;
        };
        let names: Vec<String> = segments
            .iter()
            .filter_map(|segment| match segment {
                PathSeg::Named(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        let rooted = written
            .trim_start_matches("this.")
            .trim_start_matches("this/")
            .trim_start_matches("./")
            .starts_with("@root");
        let ups = segments
            .iter()
            .filter(|segment| !matches!(segment, PathSeg::Named(_)))
            .count()
            .saturating_sub(usize::from(rooted));
        if names.is_empty() || !(rooted || ups >= self.depth) {
            return;
        }
        self.references.push(Reference {
            path: names,
            raw,
            offset,
            length,
        });
    }

    fn helper_name(&mut self, name: &str, usage: Usage) -> Result<(), TemplateError> {
        let offset = self.pair(TokenKind::Helper, name).map(|(offset, _)| offset);
        if !HELPERS.contains(&name) {
            return Err(TemplateError::UnknownHelper {
                name: name.to_owned(),
                offset,
            });
        }
        match usage {
            Usage::Inline if BLOCK_ONLY.contains(&name) => Err(TemplateError::Syntax {
                message: format!("`{name}` needs a block: `{{{{#{name} …}}}}…{{{{/{name}}}}}`"),
                offset,
            }),
            Usage::Block if VALUE_ONLY.contains(&name) => Err(TemplateError::Syntax {
                message: format!(
                    "`{name}` gives a value and cannot open a block: use `{{{{{name} …}}}}`"
                ),
                offset,
            }),
            _ => Ok(()),
        }
    }
}

/// How a helper is called.
#[derive(Clone, Copy)]
enum Usage {
    /// `{{#name …}}…{{/name}}`.
    Block,
    /// `{{name …}}` or `(name …)`.
    Inline,
}

/// The path as written in the template.
fn raw_path(path: &Path) -> &str {
    match path {
        Path::Relative((_, raw)) | Path::Local((_, _, raw)) => raw,
    }
}

/// Hash values in key order, so a walk is deterministic (handlebars keeps them in a `HashMap`).
fn sorted_hash(hash: &mut HashMap<String, Parameter>) -> Vec<&mut Parameter> {
    let mut entries: Vec<(&String, &mut Parameter)> = hash.iter_mut().collect();
    entries.sort_by(|left, right| left.0.cmp(right.0));
    entries.into_iter().map(|(_, value)| value).collect()
}
