//! Strict Handlebars templates: shell-quoted in command text, verbatim everywhere else.
//!
//! This module owns the template language of runbooks (SPEC §2): rendering ([`Renderer`]),
//! conditions ([`Renderer::condition`]), shell quoting ([`shell_quote`]) and static analysis
//! ([`references`]) for `validate` and `plan`. It must not know about runbooks, steps or
//! hosts: it takes a template string and a JSON context and gives back text or a
//! [`TemplateError`] carrying the byte offset inside the template, which callers turn into
//! `file:line:col`.
//!
//! # Rules
//! - **Strict.** Reading an undefined variable is an error, never an empty string, including
//!   `{{#if x}}`, helper arguments and hash values, and including branches that are not taken
//!   (every root variable is checked before rendering). A variable defined as `null` (`rc`
//!   after a timeout) is defined: `{{#if x.rc}}` is false and `{{x.rc}}` renders as empty
//!   text (`''` in command text).
//! - **Two modes.** [`Mode::Command`]: each `{{x}}` becomes one POSIX shell word (a string in
//!   single quotes unless it is made only of `[A-Za-z0-9_./:,@%+-]`; a number or boolean as
//!   its text; `null` as `''`; a list as one word per item, an empty list as nothing; a map as
//!   its JSON text, quoted); `{{{x}}}` inserts raw text (a list joined by spaces).
//!   A `{{x}}` inside the command's own `'…'`, `"…"` or a here-document is refused, because
//!   there the added quotes would end the author's instead of protecting the value.
//!   [`Mode::Data`]: no escaping at all; strings verbatim, numbers and booleans as text,
//!   `null` as nothing, lists and maps as compact JSON.
//! - **Literals** may use `"` or `'` (`{{eq params.env 'production'}}`); handlebars-rust
//!   accepts both natively.
//! - **Helpers**: `eq ne lt gt le ge and or not` (numbers compare numerically, see
//!   `helpers.rs`), plus `if unless each with lookup len`. Any other helper, partials,
//!   decorators and inline `{{if x}}` are rejected when the template is parsed.

mod error;
mod helpers;

mod references;
mod renderer;
mod scan;
mod shell;

pub use crate::quote::shell_quote;
pub use error::TemplateError;
pub use references::{Reference, command_references, references};
pub use renderer::{Mode, Renderer, is_template};

#[cfg(test)]
mod tests;
