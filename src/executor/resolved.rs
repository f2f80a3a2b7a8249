//! A step made ready to run on one host: every field rendered and typed, and the step-level
//! settings the executor acts on (`become`, `timeout`, `retries`, `retry_delay`,
//! `ignore_errors`, a reboot's `timeout`) read from those typed values.
//!
//! # Where text becomes a typed value
//!
//! A field's text is parsed in one place, [`crate::plan::render_text`] (through
//! [`crate::runbook::model::FieldType::parse`]), which returns a [`Rendered`]: the text and its
//! [`FieldValue`]. The plan calls it for every field it can render (literals included), so a
//! [`Field::Ready`] arrives here already typed; the executor calls it on the host for a
//! [`Field::AtRunTime`] field. [`Resolved`] splits the rendered step into the texts the action
//! gets and a `Step<FieldValue>` of the same shape, from which the settings here and the
//! action's own scalar fields ([`crate::actions::Ready::new`]) are read. Either way neither the
//! executor nor an action parses text, so a bad value cannot fall back to a default: it fails
//! where it is rendered, and defaults apply only to fields the runbook left out.
//!
//! The runbook model keeps `Step<Text>` (template sources) rather than typed literals, because
//! one field type per stage (`Text` → [`Field`] → [`Rendered`]) lets [`Step::try_map`] walk every
//! stage; a literal is typed by the plan, the first stage that produces values, after
//! validation has checked that it parses.
//!
//! A typed value of another kind than its field asks for ([`StepError::Mistyped`]) would be a
//! bug in the model, reported as such rather than guessed around.

use std::convert::Infallible;
use std::time::Duration;

use thiserror::Error;

use super::facts::FactsError;
use super::reboot;
use crate::plan::{Field, Rendered};
use crate::runbook::model::{Action, FieldValue, Step};

/// Pause between attempts when `retries` is set without `retry_delay` (Ansible's default).
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Why a step could not be made ready to run on a host. Each message is one line of the step's
/// report, so causes are part of it rather than a chain.
#[derive(Debug, Error)]
pub(super) enum StepError {
    /// `facts.*` were needed and could not be gathered.
    #[error("gathering facts: {0}")]
    Facts(FactsError),
    /// A template failed, or rendered to a value its field does not take; secrets are masked.
    #[error("{0}")]
    Render(String),
    /// A field's typed value is not of the field's type: the model is inconsistent.
    #[error("internal error: `{0}` was not typed as its field")]
    Mistyped(&'static str),
    /// Rendering returned another number of fields than it was given.
    #[error("internal error: step fields changed while rendering")]
    FieldsChanged,
}

/// A step rendered for this host: the text its action gets, the typed value of every field
/// (for the action's own scalar fields, [`crate::actions::Ready::new`]) and its settings.
#[derive(Debug)]
pub(super) struct Resolved {
    /// Every field's rendered text.
    pub(super) step: Step<String>,
    /// Every field's typed value, in the same shape.
    pub(super) values: Step<FieldValue>,
    /// The step-level settings.
    pub(super) settings: Settings,
}

impl Resolved {
    /// Splits a rendered step into its texts and typed values, and reads its settings.
    pub(super) fn new(rendered: &Step<Rendered>) -> Result<Self, StepError> {
        let settings = Settings::of(rendered)?;
        let step = rendered
            .try_map(&mut |field| Ok::<_, Infallible>(field.text().to_owned()))
            .unwrap_or_else(|never| match never {});
        let values = rendered
            .try_map(&mut |field| Ok::<_, Infallible>(field.value()))
            .unwrap_or_else(|never| match never {});
        Ok(Self {
            step,
            values,
            settings,
        })
    }
}

/// The typed step-level settings of a rendered step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Settings {
    /// `become`; `None` when the step leaves it to the runbook.
    pub(super) become_root: Option<bool>,
    /// The limit on each remote command; `None` when the step sets none.
    pub(super) timeout: Option<Duration>,
    /// Extra attempts after a failure.
    pub(super) retries: u32,
    /// Pause between attempts.
    pub(super) retry_delay: Duration,
    /// A failure does not stop the host.
    pub(super) ignore_errors: bool,
    /// How long a `reboot` step waits for the host to come back (its default otherwise).
    pub(super) reboot_timeout: Duration,
}

impl Settings {
    /// Reads the step's typed scalar fields, with defaults for the absent ones.
    pub(super) fn of(step: &Step<Rendered>) -> Result<Self, StepError> {
        let reboot_timeout = match &step.action {
            Action::Reboot(spec) => typed(spec.timeout.as_ref(), "timeout", FieldValue::duration)?,
            _ => None,
        };
        Ok(Self {
            become_root: typed(step.become_root.as_ref(), "become", FieldValue::bool)?,
            timeout: typed(step.timeout.as_ref(), "timeout", FieldValue::duration)?,
            retries: typed(step.retries.as_ref(), "retries", FieldValue::count)?.unwrap_or(0),
            retry_delay: typed(
                step.retry_delay.as_ref(),
                "retry_delay",
                FieldValue::duration,
            )?
            .unwrap_or(DEFAULT_RETRY_DELAY),
            ignore_errors: typed(
                step.ignore_errors.as_ref(),
                "ignore_errors",
                FieldValue::bool,
            )?
            .unwrap_or(false),
            reboot_timeout: reboot_timeout.unwrap_or(reboot::DEFAULT_TIMEOUT),
        })
    }
}

/// The value of a rendered condition (`when`, or a `changed_when`/`failed_when` the plan
/// rendered).
pub(super) fn condition(rendered: &Rendered, field: &'static str) -> Result<bool, StepError> {
    rendered
        .value()
        .condition()
        .ok_or(StepError::Mistyped(field))
}

/// `ignore_errors` as far as the plan knows it, for steps that fail before they are rendered.
pub(super) fn ignore_errors_at_plan_time(step: &Step<Field>) -> bool {
    matches!(
        &step.ignore_errors,
        Some(Field::Ready(rendered)) if rendered.value().bool() == Some(true)
    )
}

/// The typed value of a field the step may leave out.
fn typed<T>(
    rendered: Option<&Rendered>,
    field: &'static str,
    value: fn(FieldValue) -> Option<T>,
) -> Result<Option<T>, StepError> {
    rendered
        .map(|rendered| value(rendered.value()).ok_or(StepError::Mistyped(field)))
        .transpose()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Resolved, Settings, StepError, ignore_errors_at_plan_time};
    use crate::plan::{Field, Rendered};
    use crate::runbook::model::{Action, Assert, FieldValue, Step};

    fn step<F>() -> Step<F> {
        Step {
            name: "s".into(),
            span: crate::diagnostic::Span::default(),
            action: Action::Assert(Assert {
                that: vec![],
                message: None,
            }),
            when: None,
            register: None,
            secret: false,
            become_root: None,
            become_user: None,
            env: vec![],
            timeout: None,
            retries: None,
            retry_delay: None,
            changed_when: None,
            failed_when: None,
            ignore_errors: None,
            check_mode: false,
        }
    }

    fn rendered(text: &str, value: FieldValue) -> Rendered {
        Rendered::new(text.into(), value, &[])
    }

    #[test]
    fn settings_are_read_from_typed_values_with_defaults_only_for_absent_fields() {
        let settings = Settings::of(&step()).expect("defaults");
        assert_eq!(settings.retries, 0);
        assert_eq!(settings.retry_delay, Duration::from_secs(5));
        assert_eq!(settings.timeout, None);
        let mut written = step();
        written.timeout = Some(rendered(
            "90s",
            FieldValue::Duration(Duration::from_secs(90)),
        ));
        written.retries = Some(rendered(" 2 ", FieldValue::Count(2)));
        written.ignore_errors = Some(rendered("yes", FieldValue::Bool(true)));
        let settings = Settings::of(&written).expect("valid");
        assert_eq!(settings.timeout, Some(Duration::from_secs(90)));
        assert_eq!(settings.retries, 2);
        assert!(settings.ignore_errors);
    }

    #[test]
    fn a_resolved_step_holds_the_texts_and_the_typed_values_in_one_shape() {
        let mut written = step();
        written.timeout = Some(rendered(
            "90s",
            FieldValue::Duration(Duration::from_secs(90)),
        ));
        let resolved = Resolved::new(&written).expect("valid");
        assert_eq!(resolved.step.timeout.as_deref(), Some("90s"));
        assert_eq!(
            resolved.values.timeout,
            Some(FieldValue::Duration(Duration::from_secs(90)))
        );
        assert_eq!(resolved.settings.timeout, Some(Duration::from_secs(90)));
    }

    #[test]
    fn a_value_of_another_type_is_an_internal_error_not_a_default() {
        let mut written = step();
        written.retry_delay = Some(rendered("soon", FieldValue::Text));
        let error = Settings::of(&written).expect_err("not a duration");
        assert!(matches!(error, StepError::Mistyped("retry_delay")));
    }

    #[test]
    fn ignore_errors_at_plan_time_reads_the_typed_value() {
        let mut planned = step::<Field>();
        assert!(!ignore_errors_at_plan_time(&planned));
        planned.ignore_errors = Some(Field::Ready(rendered("yes", FieldValue::Bool(true))));
        assert!(ignore_errors_at_plan_time(&planned));
        planned.ignore_errors = Some(Field::Ready(rendered("no", FieldValue::Bool(false))));
        assert!(!ignore_errors_at_plan_time(&planned));
    }
}
