//! Diagnostics that point at the source: `file:line:col`, the offending line and a caret.
//!
//! Every error about user input (runbooks, inventories, policy, `-p` values) becomes a
//! [`Diagnostic`]. Loading and validation collect *all* of them into [`Diagnostics`] so the
//! operator fixes a file in one pass instead of one error per run. Rendering happens once, at
//! the edge (`cli`), through [`Diagnostic::render`]; nothing here prints.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file the user wrote, kept whole so diagnostics can quote the offending line.
#[derive(Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as the user named it (relative paths stay relative, for readable messages).
    pub path: PathBuf,
    /// The file's full text.
    pub text: String,
}

impl SourceFile {
    /// Wraps a file's path and text for sharing between diagnostics.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            path: path.into(),
            text: text.into(),
        })
    }

    /// The 1-based line `line` of the file, without its newline.
    #[must_use]
    pub fn line(&self, line: u32) -> Option<&str> {
        self.text.lines().nth((line as usize).checked_sub(1)?)
    }
}

/// A position in a [`SourceFile`]: 1-based line and column, and how many characters to underline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span {
    /// 1-based line; 0 means "somewhere in the file".
    pub line: u32,
    /// 1-based column in characters.
    pub column: u32,
    /// Characters to underline (at least one caret is drawn).
    pub length: u32,
}

impl Span {
    /// A span at `line:column` underlining `length` characters.
    #[must_use]
    pub fn new(line: u32, column: u32, length: u32) -> Self {
        Self {
            line,
            column,
            length,
        }
    }

    /// The span of a YAML node as serde-saphyr reports it; scalars are underlined to the end of
    /// their token on that line, which is what a reader's eye looks for.
    #[must_use]
    pub fn from_location(location: serde_saphyr::Location) -> Self {
        Self {
            line: location.line() as u32,
            column: location.column() as u32,
            length: 0,
        }
    }

    /// Whether the span names a real place (serde-saphyr reports line 0 when it lost track).
    #[must_use]
    pub fn is_known(&self) -> bool {
        self.line > 0
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Stops the command (exit 2).
    Error,
    /// Reported, but the command goes on.
    Warning,
}

/// One problem in the user's input, with where it is and how to fix it.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong: lower-case start, subject first, user literals in backticks.
    pub message: String,
    /// The file and place, when the problem has one.
    pub location: Option<(Arc<SourceFile>, Span)>,
    /// Ways to fix it, rendered after a blank line as `hint: …`.
    pub hints: Vec<String>,
}

impl Diagnostic {
    /// An error without a location yet.
    #[must_use]
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            message: message.into(),
            location: None,
            hints: vec![],
        }
    }

    /// A warning without a location yet.
    #[must_use]
    pub fn warning(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            message: message.into(),
            location: None,
            hints: vec![],
        }
    }

    /// Points the diagnostic at `span` in `file`.
    #[must_use]
    pub fn at(mut self, file: &Arc<SourceFile>, span: Span) -> Self {
        self.location = Some((Arc::clone(file), span));
        self
    }

    /// Adds a hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// Whether this diagnostic stops the command.
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    fn sort_key(&self) -> (PathBuf, Span) {
        match &self.location {
            Some((file, span)) => (file.path.clone(), *span),
            None => (PathBuf::new(), Span::default()),
        }
    }

    /// Renders the diagnostic the way rustc and just do:
    ///
    /// ```text
    /// error: step `x` uses undeclared param `y`
    ///  --> runbooks/a.yaml:14:14
    ///    |
    /// 14 |     command: echo {{params.y}}
    ///    |              ^^^^^^^^^^^^^^^^^
    ///
    /// hint: declare it under `params:`
    /// ```
    #[must_use]
    pub fn render(&self, style: Style) -> String {
        let label = match self.severity {
            Severity::Error => style.paint("error", Paint::Red),
            Severity::Warning => style.paint("warning", Paint::Yellow),
        };
        let mut out = format!("{label}: {}\n", self.message);
        if let Some((file, span)) = &self.location {
            render_snippet(&mut out, file, *span, style);
        }
        if !self.hints.is_empty() {
            out.push('\n');
            for hint in &self.hints {
                let _ = writeln!(out, "{}: {hint}", style.paint("hint", Paint::Cyan));
            }
        }
        out
    }
}

fn render_snippet(out: &mut String, file: &SourceFile, span: Span, style: Style) {
    let path = file.path.display();
    if !span.is_known() {
        let _ = writeln!(out, " --> {path}");
        return;
    }
    let _ = writeln!(out, " --> {path}:{}:{}", span.line, span.column);
    let Some(text) = file.line(span.line) else {
        return;
    };
    let gutter = span.line.to_string().len();
    let pad = " ".repeat(gutter);
    let column = span.column.max(1) as usize;
    let length = if span.length > 0 {
        span.length as usize
    } else {
        token_length(text, column)
    };
    let carets = style.paint(&"^".repeat(length.max(1)), Paint::Red);
    // Tabs keep their width in the caret line so the caret stays under the token.
    let indent: String = text
        .chars()
        .take(column - 1)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let _ = write!(
        out,
        "{pad} |\n{} | {text}\n{pad} | {indent}{carets}\n",
        span.line
    );
}

/// Length of the YAML token starting at the 1-based `column` of `line`: a quoted string up to its
/// closing quote, otherwise up to the end of the line minus a trailing comment.
fn token_length(line: &str, column: usize) -> usize {
    let rest: String = line.chars().skip(column - 1).collect();
    let mut chars = rest.chars();
    match chars.next() {
        Some(quote @ ('"' | '\'')) => chars.position(|c| c == quote).map_or(rest.len(), |n| n + 2),
        Some(_) => {
            let end = [" #", ": "]
                .iter()
                .filter_map(|stop| rest.find(stop))
                .min()
                .unwrap_or(rest.len());
            let end = if rest.ends_with(':') && end == rest.len() {
                end - 1
            } else {
                end
            };
            rest[..end].trim_end().chars().count()
        }
        None => 1,
    }
}

/// Whether rendered output uses ANSI colours; decided once, at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// ANSI colours (a TTY, and neither `NO_COLOR` nor `--no-color`).
    Color,
    /// Plain text.
    Plain,
}

/// The few colours the renderers use.
#[derive(Debug, Clone, Copy)]
pub enum Paint {
    /// Errors and failures.
    Red,
    /// Warnings and changes.
    Yellow,
    /// Success.
    Green,
    /// Hints and skipped steps.
    Cyan,
    /// De-emphasised text.
    Dim,
    /// Emphasis.
    Bold,
}

impl Style {
    /// `text` wrapped in the colour's escape codes, or unchanged when plain.
    #[must_use]
    pub fn paint(self, text: &str, paint: Paint) -> String {
        if self == Style::Plain {
            return text.to_owned();
        }
        let code = match paint {
            Paint::Red => "31",
            Paint::Yellow => "33",
            Paint::Green => "32",
            Paint::Cyan => "36",
            Paint::Dim => "2",
            Paint::Bold => "1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// Every diagnostic a load or validation produced, sorted by position.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// An empty collection.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Adds one diagnostic and returns it, for callers that attach hints afterwards.
    pub fn push_mut(&mut self, diagnostic: Diagnostic) -> &mut Diagnostic {
        self.0.push(diagnostic);
        let last = self.0.len() - 1;
        &mut self.0[last]
    }

    /// Adds every diagnostic of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// Whether any diagnostic is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// The number of errors.
    #[must_use]
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    /// All diagnostics, sorted by file and position.
    #[must_use]
    pub fn sorted(mut self) -> Vec<Diagnostic> {
        self.0.sort_by_key(Diagnostic::sort_key);
        self.0
    }

    /// Iterates in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// Splits off the warnings, leaving the errors; used when a load succeeds with warnings.
    #[must_use]
    pub fn into_warnings(self) -> Vec<Diagnostic> {
        self.0.into_iter().filter(|d| !d.is_error()).collect()
    }

    /// `Ok(value)` when there are no errors, else the whole collection as the error.
    pub fn into_result<T>(self, value: T) -> Result<(T, Vec<Diagnostic>), Diagnostics> {
        if self.has_errors() {
            Err(self)
        } else {
            Ok((value, self.into_warnings()))
        }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Self {
        Self(vec![diagnostic])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in the input",
            crate::plural::counted(self.error_count(), "error")
        )
    }
}

impl std::error::Error for Diagnostics {}

impl Diagnostic {
    /// A YAML syntax or shape error from serde-saphyr, at its location; unknown keys get a
    /// "did you mean" hint and the list of keys allowed there.
    #[must_use]
    pub fn from_yaml(file: &Arc<SourceFile>, error: &serde_saphyr::Error) -> Self {
        let span = error
            .location()
            .map(Span::from_location)
            .unwrap_or_default();
        let diagnostic = match innermost(error) {
            serde_saphyr::Error::SerdeUnknownField {
                field, expected, ..
            } => {
                let mut diagnostic = Diagnostic::error(format!("unknown key `{field}`"));
                if let Some(close) = closest(field, expected.iter().copied()) {
                    diagnostic = diagnostic.hint(format!("did you mean `{close}`?"));
                }
                let expected: Vec<String> = expected.iter().map(|key| format!("`{key}`")).collect();
                diagnostic.hint(format!("allowed here: {}", expected.join(", ")))
            }
            serde_saphyr::Error::SerdeMissingField { field, .. } => {
                Diagnostic::error(format!("missing key `{field}`"))
            }
            other => Diagnostic::error(yaml_message(&other.to_string())),
        };
        diagnostic.at(file, span)
    }
}

/// The key a serde-saphyr "unknown field" error names, if that is what it is.
#[must_use]
pub fn unknown_yaml_key(error: &serde_saphyr::Error) -> Option<&str> {
    match innermost(error) {
        serde_saphyr::Error::SerdeUnknownField { field, .. } => Some(field),
        _ => None,
    }
}

fn innermost(mut error: &serde_saphyr::Error) -> &serde_saphyr::Error {
    while let serde_saphyr::Error::WithSnippet { error: inner, .. }
    | serde_saphyr::Error::AliasError { error: inner, .. } = error
    {
        error = inner;
    }
    error
}

/// serde-saphyr's messages carry their own "line X column Y:" and snippet; the renderer prints
/// the location itself, so keep only the message, lower-cased per the message style.
fn yaml_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message).trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let text = match first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_, text)) => text,
        None => first,
    };
    let text = text.split(" at line ").next().unwrap_or(text).trim();
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => "invalid YAML".to_owned(),
    }
}

/// The candidate closest to `word`, when close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    let best = crate::suggest::close_names(word, candidates.iter().copied())
        .into_iter()
        .next()?;
    candidates.into_iter().find(|candidate| *candidate == best)
}

/// Reads a user file into a [`SourceFile`], turning I/O failures into a diagnostic that names it.
pub fn read_source(path: &Path) -> Result<Arc<SourceFile>, Diagnostic> {
    std::fs::read_to_string(path)
        .map(|text| SourceFile::new(path, text))
        .map_err(|error| {
            Diagnostic::error(format!("cannot read `{}`: {error}", path.display()))
                .hint("check the path and that the file is readable")
        })
}

#[cfg(test)]
mod tests {
    use super::{Diagnostic, SourceFile, Span, Style};

    #[test]
    fn render_points_a_caret_at_the_token() {
        let file = SourceFile::new("runbooks/a.yaml", "runbook: a\ntargets: dbs # group\n");
        let rendered = Diagnostic::error("runbook `a` targets unknown group `dbs`")
            .at(&file, Span::new(2, 10, 0))
            .hint("inventory defines groups `db`, `web`")
            .render(Style::Plain);
        assert_eq!(
            rendered,
            "error: runbook `a` targets unknown group `dbs`\n --> runbooks/a.yaml:2:10\n  |\n2 | targets: dbs # group\n  |          ^^^\n\nhint: inventory defines groups `db`, `web`\n"
        );
    }

    #[test]
    fn quoted_tokens_are_underlined_to_the_closing_quote() {
        assert_eq!(super::token_length(r#"  when: "{{x}}" # c"#, 9), 7);
    }
}
