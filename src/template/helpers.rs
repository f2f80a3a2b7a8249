//! The helpers a template may call, all strict about undefined values.
//!
//! handlebars' own `if`, `and` and `or` treat an undefined value as false, and its `eq` says
//! `1 == 1.0` is false; runbook conditions need neither surprise, so these replace them:
//! - `if`/`unless`: an undefined value is an error; truthiness is Handlebars' (`null`, `false`,
//!   `0`, `""`, `[]`, `{}` are false; `includeZero=true` makes `0` true).
//! - `eq ne lt gt le ge`: numbers compare numerically (`7 == 7.0`); a number and a string
//!   compare numerically when the string holds a number (`stdout` `"3"` equals `3`), else they
//!   are unequal; two strings compare as numbers when both hold one, else as text; ordering
//!   anything else (`null`, booleans, lists, a number with a non-numeric string) is an error.
//! - `and or`: two or more values, Handlebars truthiness; `not`: one value.
//! - `lookup container key`, `len value`: strict versions of the handlebars built-ins.
//! - the value helper: every output expression is rewritten to call it (see
//!   [`super::references`]); it renders a value for the registry's [`Mode`].

use std::cmp::Ordering;

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, JsonTruthy, Output, PathAndJson,
    RenderContext, RenderError, RenderErrorReason, Renderable, ScopedJson,
};
use serde_json::{Number, Value};

use super::references::VALUE_HELPER;
use super::renderer::Mode;
use crate::quote::shell_quote;

/// Registers every opsgate helper on `registry`, replacing handlebars' lenient built-ins and
/// removing the ones opsgate does not offer.
pub(crate) fn register(registry: &mut Handlebars<'static>, mode: Mode) {
    for unsupported in ["gte", "lte", "log", "raw"] {
        registry.unregister_helper(unsupported);
    }
    registry.register_helper(VALUE_HELPER, Box::new(ValueHelper { mode }));
    registry.register_helper("if", Box::new(StrictIf { positive: true }));
    registry.register_helper("unless", Box::new(StrictIf { positive: false }));
    for (name, comparison) in [
        ("eq", Comparison::Equal),
        ("ne", Comparison::NotEqual),
        ("lt", Comparison::Less),
        ("gt", Comparison::Greater),
        ("le", Comparison::LessOrEqual),
        ("ge", Comparison::GreaterOrEqual),
    ] {
        registry.register_helper(name, Box::new(Compare { name, comparison }));
    }
    registry.register_helper("and", Box::new(Logic::And));
    registry.register_helper("or", Box::new(Logic::Or));
    registry.register_helper("not", Box::new(Logic::Not));
    registry.register_helper("lookup", Box::new(Lookup));
    registry.register_helper("len", Box::new(Length));
}

/// An error for a helper given something it cannot use.
fn failure(message: String) -> RenderError {
    RenderErrorReason::Other(message).into()
}

/// The strict-mode error for an undefined value, naming its path when it has one.
fn undefined(parameter: &PathAndJson<'_>) -> RenderError {
    RenderError::strict_error(parameter.relative_path())
}

/// Every parameter's value, an error for an undefined one, and `count` checked.
fn values<'a>(
    helper: &'a Helper<'_>,
    name: &str,
    count: Count,
) -> Result<Vec<&'a Value>, RenderError> {
    let given = helper.params().len();
    let fits = match count {
        Count::Exactly(expected) => given == expected,
        Count::AtLeast(minimum) => given >= minimum,
    };
    if !fits {
        let expected = match count {
            Count::Exactly(1) => "one value".to_owned(),
            Count::Exactly(expected) => format!("{expected} values"),
            Count::AtLeast(minimum) => format!("at least {minimum} values"),
        };
        return Err(failure(format!("`{name}` takes {expected}, got {given}")));
    }
    helper
        .params()
        .iter()
        .map(|parameter| {
            if parameter.is_value_missing() {
                Err(undefined(parameter))
            } else {
                Ok(parameter.value())
            }
        })
        .collect()
}

/// How many parameters a helper takes.
#[derive(Clone, Copy)]
enum Count {
    Exactly(usize),
    AtLeast(usize),
}

/// Renders the block body or the `{{else}}` part by `condition`.
fn render_branch<'reg: 'rc, 'rc>(
    helper: &Helper<'rc>,
    registry: &'reg Handlebars<'reg>,
    context: &'rc Context,
    render_context: &mut RenderContext<'reg, 'rc>,
    out: &mut dyn Output,
    condition: bool,
) -> HelperResult {
    let branch = if condition {
        helper.template()
    } else {
        helper.inverse()
    };
    match branch {
        Some(template) => template.render(registry, context, render_context, out),
        None => Ok(()),
    }
}

/// Writes a value-producing helper's result: as a block, picks the branch by its truthiness;
/// inline (which the rewrite into the value helper normally prevents), writes it through the
/// registry's escape function.
fn write_or_branch<'reg: 'rc, 'rc>(
    value: &Value,
    helper: &Helper<'rc>,
    registry: &'reg Handlebars<'reg>,
    context: &'rc Context,
    render_context: &mut RenderContext<'reg, 'rc>,
    out: &mut dyn Output,
) -> HelperResult {
    if helper.is_block() {
        return render_branch(
            helper,
            registry,
            context,
            render_context,
            out,
            value.is_truthy(false),
        );
    }
    let text = data_text(value);
    let text = if render_context.is_disable_escape() {
        text
    } else {
        registry.get_escape_fn()(&text)
    };
    out.write(&text).map_err(RenderError::from)
}

/// Renders any output expression's value for its mode.
struct ValueHelper {
    mode: Mode,
}

impl HelperDef for ValueHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        _registry: &'reg Handlebars<'reg>,
        _context: &'rc Context,
        render_context: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let parameter = helper
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex(VALUE_HELPER, 0))?;
        if parameter.is_value_missing() {
            return Err(undefined(parameter));
        }
        let value = parameter.value();
        let text = match self.mode {
            Mode::Data => data_text(value),
            Mode::Command if render_context.is_disable_escape() => raw_command_text(value),
            Mode::Command => {
                if contains_nul(value) {
                    let what = parameter
                        .relative_path()
                        .map_or_else(String::new, |path| format!("`{path}` "));
                    return Err(failure(format!(
                        "the value {what}contains a NUL byte, which a shell command cannot carry"
                    )));
                }
                quoted_command_text(value)
            }
        };
        out.write(&text).map_err(RenderError::from)
    }
}

/// A value as data: strings verbatim, numbers and booleans as text, `null` as nothing, lists
/// and maps as compact JSON.
pub(crate) fn data_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

/// A value as shell words: a list is one quoted word per item, anything else one quoted word
/// (`null` is the empty word `''`, a map its JSON text).
fn quoted_command_text(value: &Value) -> String {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| shell_quote(&data_text(item)))
            .collect::<Vec<_>>()
            .join(" "),
        other => shell_quote(&data_text(other)),
    }
}

/// A value inserted raw into a command (`{{{x}}}`): like data, but a list is its items joined
/// by spaces, so `{{{params.flags}}}` gives `-a -b`.
fn raw_command_text(value: &Value) -> String {
    match value {
        Value::Array(items) => items.iter().map(data_text).collect::<Vec<_>>().join(" "),
        other => data_text(other),
    }
}

/// Whether a NUL byte hides anywhere in `value`.
fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map
            .iter()
            .any(|(key, item)| key.contains('\0') || contains_nul(item)),
        _ => false,
    }
}

/// `if` and `unless`, erroring on an undefined value.
struct StrictIf {
    positive: bool,
}

impl HelperDef for StrictIf {
    fn call<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        registry: &'reg Handlebars<'reg>,
        context: &'rc Context,
        render_context: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let name = if self.positive { "if" } else { "unless" };
        let value = values(helper, name, Count::Exactly(1))?[0];
        let include_zero = helper
            .hash_get("includeZero")
            .and_then(|flag| flag.value().as_bool())
            .unwrap_or(false);
        let condition = value.is_truthy(include_zero) == self.positive;
        render_branch(helper, registry, context, render_context, out, condition)
    }
}

/// Which comparison a [`Compare`] helper makes.
#[derive(Clone, Copy)]
enum Comparison {
    Equal,
    NotEqual,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
}

/// `eq ne lt gt le ge`.
struct Compare {
    name: &'static str,
    comparison: Comparison,
}

impl Compare {
    fn decide(&self, left: &Value, right: &Value) -> Result<bool, RenderError> {
        if let Some(order) = numeric_order(left, right) {
            return Ok(match self.comparison {
                Comparison::Equal => order == Ordering::Equal,
                Comparison::NotEqual => order != Ordering::Equal,
                Comparison::Less => order == Ordering::Less,
                Comparison::Greater => order == Ordering::Greater,
                Comparison::LessOrEqual => order != Ordering::Greater,
                Comparison::GreaterOrEqual => order != Ordering::Less,
            });
        }
        match self.comparison {
            Comparison::Equal => Ok(left == right),
            Comparison::NotEqual => Ok(left != right),
            Comparison::Less
            | Comparison::Greater
            | Comparison::LessOrEqual
            | Comparison::GreaterOrEqual => {
                let (Value::String(left), Value::String(right)) = (left, right) else {
                    return Err(failure(format!(
                        "`{}` cannot order {} and {}",
                        self.name,
                        describe(left),
                        describe(right)
                    )));
                };
                let order = left.cmp(right);
                Ok(match self.comparison {
                    Comparison::Less => order == Ordering::Less,
                    Comparison::Greater => order == Ordering::Greater,
                    Comparison::LessOrEqual => order != Ordering::Greater,
                    _ => order != Ordering::Less,
                })
            }
        }
    }
}

impl HelperDef for Compare {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        _registry: &'reg Handlebars<'reg>,
        _context: &'rc Context,
        _render_context: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let values = values(helper, self.name, Count::Exactly(2))?;
        Ok(ScopedJson::Derived(Value::Bool(
            self.decide(values[0], values[1])?,
        )))
    }

    fn call<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        registry: &'reg Handlebars<'reg>,
        context: &'rc Context,
        render_context: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let value = self.call_inner(helper, registry, context, render_context)?;
        write_or_branch(
            value.as_json(),
            helper,
            registry,
            context,
            render_context,
            out,
        )
    }
}

/// A value named for an error message: its type and, for scalars, the value.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "`null`".to_owned(),
        Value::Bool(flag) => format!("boolean `{flag}`"),
        Value::Number(number) => format!("number `{number}`"),
        Value::String(text) => format!("text `{text}`"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a map".to_owned(),
    }
}

/// A number to compare: exact for integers, `f64` otherwise.
#[derive(Clone, Copy)]
enum Numeric {
    Integer(i128),
    Float(f64),
}

impl Numeric {
    fn from_number(number: &Number) -> Option<Self> {
        if let Some(integer) = number.as_i64() {
            Some(Self::Integer(i128::from(integer)))
        } else if let Some(integer) = number.as_u64() {
            Some(Self::Integer(i128::from(integer)))
        } else {
            number.as_f64().map(Self::Float)
        }
    }

    /// A number written as text (`"3"`, `" 2.5 "`); `inf`, `nan` and the like are not numbers.
    fn from_text(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty()
            || !text.bytes().all(|byte| {
                byte.is_ascii_digit() || matches!(byte, b'-' | b'+' | b'.' | b'e' | b'E')
            })
        {
            return None;
        }
        if let Ok(integer) = text.parse::<i128>() {
            return Some(Self::Integer(integer));
        }
        text.parse::<f64>()
            .ok()
            .filter(|float| float.is_finite())
            .map(Self::Float)
    }

    fn compare(self, other: Self) -> Option<Ordering> {
        match (self, other) {
            (Self::Integer(left), Self::Integer(right)) => Some(left.cmp(&right)),
            (left, right) => left.as_float().partial_cmp(&right.as_float()),
        }
    }

    // An integer beyond 2^53 loses precision against a float; exact comparison needs both
    // sides integral, which `compare` handles first.
    fn as_float(self) -> f64 {
        match self {
            Self::Integer(integer) => integer as f64,
            Self::Float(float) => float,
        }
    }
}

/// The numeric order of two values, when both are numbers, one is a number and the other a
/// numeric string, or both are numeric strings.
fn numeric_order(left: &Value, right: &Value) -> Option<Ordering> {
    let (left, right) = match (left, right) {
        (Value::Number(left), Value::Number(right)) => {
            (Numeric::from_number(left)?, Numeric::from_number(right)?)
        }
        (Value::Number(left), Value::String(right)) => {
            (Numeric::from_number(left)?, Numeric::from_text(right)?)
        }
        (Value::String(left), Value::Number(right)) => {
            (Numeric::from_text(left)?, Numeric::from_number(right)?)
        }
        (Value::String(left), Value::String(right)) => {
            (Numeric::from_text(left)?, Numeric::from_text(right)?)
        }
        _ => return None,
    };
    left.compare(right)
}

/// `and`, `or`, `not`.
#[derive(Clone, Copy)]
enum Logic {
    And,
    Or,
    Not,
}

impl HelperDef for Logic {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        _registry: &'reg Handlebars<'reg>,
        _context: &'rc Context,
        _render_context: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let result = match self {
            Self::And => values(helper, "and", Count::AtLeast(2))?
                .iter()
                .all(|value| value.is_truthy(false)),
            Self::Or => values(helper, "or", Count::AtLeast(2))?
                .iter()
                .any(|value| value.is_truthy(false)),
            Self::Not => !values(helper, "not", Count::Exactly(1))?[0].is_truthy(false),
        };
        Ok(ScopedJson::Derived(Value::Bool(result)))
    }

    fn call<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        registry: &'reg Handlebars<'reg>,
        context: &'rc Context,
        render_context: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let value = self.call_inner(helper, registry, context, render_context)?;
        write_or_branch(
            value.as_json(),
            helper,
            registry,
            context,
            render_context,
            out,
        )
    }
}

/// `lookup container key`: a map entry or list item chosen at render time.
struct Lookup;

impl HelperDef for Lookup {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        _registry: &'reg Handlebars<'reg>,
        _context: &'rc Context,
        _render_context: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let values = values(helper, "lookup", Count::Exactly(2))?;
        let (container, key) = (values[0], values[1]);
        let found = match (container, key) {
            (Value::Object(map), Value::String(key)) => map.get(key),
            (Value::Array(items), Value::Number(index)) => index
                .as_u64()
                .and_then(|index| items.get(usize::try_from(index).ok()?)),
            (Value::Array(items), Value::String(index)) => index
                .parse::<usize>()
                .ok()
                .and_then(|index| items.get(index)),
            _ => {
                return Err(failure(format!(
                    "`lookup` cannot look up {} in {}",
                    describe(key),
                    describe(container)
                )));
            }
        };
        if let Some(value) = found {
            return Ok(ScopedJson::Derived(value.clone()));
        }
        let base = helper
            .param(0)
            .and_then(PathAndJson::relative_path)
            .map_or("value", String::as_str);
        let path = format!("{base}.{}", data_text(key));
        Err(RenderError::strict_error(Some(&path)))
    }
}

/// `len value`: items of a list, entries of a map, characters of a text.
struct Length;

impl HelperDef for Length {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        _registry: &'reg Handlebars<'reg>,
        _context: &'rc Context,
        _render_context: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let value = values(helper, "len", Count::Exactly(1))?[0];
        let length = match value {
            Value::Array(items) => items.len(),
            Value::Object(map) => map.len(),
            Value::String(text) => text.chars().count(),
            other => return Err(failure(format!("`len` cannot measure {}", describe(other)))),
        };
        Ok(ScopedJson::Derived(Value::from(length)))
    }
}
