//! The [`Renderer`]: strict Handlebars in two modes, shell-quoted command text and verbatim data.

use handlebars::{
    Handlebars, RenderContext, RenderError, RenderErrorReason, Renderable, StringOutput,
};
use serde_json::Value;

use super::error::{TemplateError, offset_of};
use super::helpers;
use super::references::{Parsed, parse};
use super::shell;
use crate::quote::shell_quote;

/// How values are inserted into the rendered text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `command` text: every `{{x}}` becomes shell words (see [`super::shell_quote`]; a list is
    /// one word per item), `{{{x}}}` inserts the raw text.
    Command,
    /// Every other field: values go in verbatim, nothing is escaped.
    Data,
}

/// Renders templates against a JSON context; cheap to share (`&Renderer` is `Sync`).
///
/// Each call compiles the template (no registration, no cache): compiling a runbook-sized
/// template costs microseconds, and keeping no state makes plan-time and run-time rendering
/// agree by construction.
#[derive(Debug)]
pub struct Renderer {
    /// Strict, shell-quoting escape function, command-mode value helper.
    command: Handlebars<'static>,
    /// Strict, no escaping, data-mode value helper.
    data: Handlebars<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    /// A renderer with opsgate's helpers registered in both modes.
    #[must_use]
    pub fn new() -> Self {
        let mut command = Handlebars::new();
        command.set_strict_mode(true);
        // The value helper quotes every output expression itself; this escape function only
        // guards output that somehow bypasses it, so nothing reaches a shell unquoted.
        command.register_escape_fn(shell_quote);
        helpers::register(&mut command, Mode::Command);
        let mut data = Handlebars::new();
        data.set_strict_mode(true);
        data.register_escape_fn(handlebars::no_escape);
        helpers::register(&mut data, Mode::Data);
        Self { command, data }
    }

    /// Renders `template` against `context`.
    ///
    /// Text without `{{` is returned unchanged. In command mode, a `{{x}}` inside the text's own
    /// quotes or a here-document is refused ([`TemplateError::QuotedExpression`]). Every variable the template reads from the
    /// context root is checked first, in every branch, so an undefined one is an error even
    /// inside an `{{#if}}` that is not taken; variables local to `each`/`with` are checked as
    /// they are read. A variable defined as `null` renders as empty text (in command mode, the
    /// empty word `''`).
    pub fn render(
        &self,
        mode: Mode,
        template: &str,
        context: &Value,
    ) -> Result<String, TemplateError> {
        if !is_template(template) {
            return Ok(template.to_owned());
        }
        let parsed = parse(template)?;
        if mode == Mode::Command {
            shell::check(template, &parsed.tags)?;
        }
        parsed.check_defined(context)?;
        let registry = match mode {
            Mode::Command => &self.command,
            Mode::Data => &self.data,
        };
        let handlebars_context = handlebars::Context::from(context.clone());
        let mut render_context = RenderContext::new(None);
        let mut output = StringOutput::new();
        parsed
            .template
            .render(
                registry,
                &handlebars_context,
                &mut render_context,
                &mut output,
            )
            .map_err(|error| runtime_error(template, &parsed, &error))?;
        output.into_string().map_err(|error| TemplateError::Render {
            message: error.to_string(),
            offset: None,
        })
    }

    /// Evaluates a condition (`when`, `changed_when`, `failed_when`, `assert.that`): renders in
    /// [`Mode::Data`] and requires the trimmed result to be `true` or `false`.
    pub fn condition(&self, template: &str, context: &Value) -> Result<bool, TemplateError> {
        let rendered = self.render(Mode::Data, template, context)?;
        match rendered.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(TemplateError::NotABoolean {
                rendered: other.to_owned(),
            }),
        }
    }
}

/// Whether `text` contains a template expression (`{{`); text without one renders as itself.
#[must_use]
pub fn is_template(text: &str) -> bool {
    text.contains("{{")
}

/// Converts a handlebars render error, locating it inside `source`.
fn runtime_error(source: &str, parsed: &Parsed, error: &RenderError) -> TemplateError {
    let element = match (error.line_no, error.column_no) {
        (Some(line), Some(column)) => Some(offset_of(source, line, column)),
        _ => None,
    };
    match error.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => TemplateError::Undefined {
            path: path.clone(),
            offset: parsed.locate(source, path, element),
            available: Vec::new(),
        },
        RenderErrorReason::MissingVariable(None) => TemplateError::Render {
            message: "a value the template reads is not defined".to_owned(),
            offset: element,
        },
        RenderErrorReason::HelperNotFound(name) => TemplateError::UnknownHelper {
            name: name.clone(),
            offset: element,
        },
        RenderErrorReason::Other(message) => TemplateError::Render {
            message: message.clone(),
            offset: element,
        },
        other => TemplateError::Render {
            message: lower_first(&other.to_string()),
            offset: element,
        },
    }
}

/// handlebars messages start with a capital; ours do not.
fn lower_first(text: &str) -> String {
    let mut characters = text.chars();
    characters.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(characters).collect()
    })
}
