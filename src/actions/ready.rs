//! An action ready to run: its rendered fields plus the typed values of its scalar fields
//! (modes, durations, ports, counts, booleans, conditions).
//!
//! The values come typed from rendering ([`crate::plan::render_text`] parses each field once,
//! as its type); this module only picks them out, so actions never parse their own fields. An
//! absent field gets its documented default here; a value of another type than its field is a
//! [`MistypedField`], an internal error that fails the step, never a silent default.

use std::time::Duration;

use thiserror::Error;

use crate::runbook::model::{
    Action, Assert, Backup, Copy, FieldValue, FileState, Service, User, WaitFor, WaitTarget,
};

/// How long `wait_for` waits without a `timeout`.
const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// A scalar field of an action whose typed value is not of the field's type: the model is
/// inconsistent.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("internal error: `{field}` was not typed as its field")]
pub struct MistypedField {
    /// The field's YAML key.
    pub field: &'static str,
}

/// An action with its scalar fields typed.
#[derive(Debug)]
pub enum Ready<'a> {
    /// `copy` or `template`.
    Copy {
        /// The rendered spec.
        spec: &'a Copy<String>,
        /// Permission bits to set.
        mode: Option<u32>,
        /// Keep the previous file.
        backup: bool,
    },
    /// `file`.
    File {
        /// The rendered spec.
        spec: &'a FileState<String>,
        /// Permission bits to set.
        mode: Option<u32>,
    },
    /// `wait_for`.
    WaitFor {
        /// The rendered spec.
        spec: &'a WaitFor<String>,
        /// How long to wait.
        timeout: Duration,
        /// The port, for a port target.
        port: Option<u16>,
    },
    /// `assert`.
    Assert {
        /// The rendered spec.
        spec: &'a Assert<String>,
        /// Each condition's value, in order.
        that: Vec<bool>,
    },
    /// `backup`.
    Backup {
        /// The rendered spec.
        spec: &'a Backup<String>,
        /// Backups to keep; `None` keeps every one.
        keep: Option<u32>,
    },
    /// `service`.
    Service {
        /// The rendered spec.
        spec: &'a Service<String>,
        /// Start at boot; `None` leaves it as it is.
        enabled: Option<bool>,
    },
    /// `user`.
    User {
        /// The rendered spec.
        spec: &'a User<String>,
        /// Create a system account.
        system: bool,
    },
    /// An action without scalar fields to type.
    Other(&'a Action<String>),
}

impl<'a> Ready<'a> {
    /// Picks the typed values of the action's scalar fields out of `values`, the same action
    /// with each field's [`FieldValue`].
    pub fn new(
        action: &'a Action<String>,
        values: &Action<FieldValue>,
    ) -> Result<Self, MistypedField> {
        Ok(match (action, values) {
            (Action::Copy(spec), Action::Copy(values))
            | (Action::Template(spec), Action::Template(values)) => Ready::Copy {
                spec,
                mode: typed(values.attributes.mode, "mode", FieldValue::mode)?,
                backup: typed(values.backup, "backup", FieldValue::bool)?.unwrap_or(false),
            },
            (Action::File(spec), Action::File(values)) => Ready::File {
                spec,
                mode: typed(values.attributes.mode, "mode", FieldValue::mode)?,
            },
            (Action::WaitFor(spec), Action::WaitFor(values)) => Ready::WaitFor {
                spec,
                timeout: typed(values.timeout, "timeout", FieldValue::duration)?
                    .unwrap_or(DEFAULT_WAIT),
                port: match &values.target {
                    WaitTarget::Port { port, .. } => typed(Some(*port), "port", FieldValue::port)?,
                    WaitTarget::Path(_) | WaitTarget::Command(_) => None,
                },
            },
            (Action::Assert(spec), Action::Assert(values)) => Ready::Assert {
                spec,
                that: values
                    .that
                    .iter()
                    .map(|value| value.condition().ok_or(MistypedField { field: "that" }))
                    .collect::<Result<_, _>>()?,
            },
            (Action::Backup(spec), Action::Backup(values)) => Ready::Backup {
                spec,
                keep: typed(values.keep, "keep", FieldValue::count)?,
            },
            (Action::Service(spec), Action::Service(values)) => Ready::Service {
                spec,
                enabled: typed(values.enabled, "enabled", FieldValue::bool)?,
            },
            (Action::User(spec), Action::User(values)) => Ready::User {
                spec,
                system: typed(values.system, "system", FieldValue::bool)?.unwrap_or(false),
            },
            (other, _) => Ready::Other(other),
        })
    }
}

/// The typed value of a field the action may leave out.
fn typed<T>(
    value: Option<FieldValue>,
    field: &'static str,
    get: fn(FieldValue) -> Option<T>,
) -> Result<Option<T>, MistypedField> {
    value
        .map(|value| get(value).ok_or(MistypedField { field }))
        .transpose()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{MistypedField, Ready};
    use crate::runbook::model::{Action, FieldValue, WaitFor, WaitTarget};

    fn wait<F>(timeout: Option<F>, port: F) -> Action<F> {
        Action::WaitFor(WaitFor {
            target: WaitTarget::Port { port, host: None },
            timeout,
        })
    }

    #[test]
    fn an_absent_timeout_is_the_default_and_typed_values_are_picked_out() {
        let action = wait(None, "22".to_owned());
        let values = wait(None, FieldValue::Port(22));
        let Ok(Ready::WaitFor { timeout, port, .. }) = Ready::new(&action, &values) else {
            panic!("a wait_for is ready");
        };
        assert_eq!((timeout, port), (Duration::from_secs(60), Some(22)));
        let action = wait(Some("90s".to_owned()), "22".to_owned());
        let values = wait(
            Some(FieldValue::Duration(Duration::from_secs(90))),
            FieldValue::Port(22),
        );
        let Ok(Ready::WaitFor { timeout, .. }) = Ready::new(&action, &values) else {
            panic!("a wait_for is ready");
        };
        assert_eq!(timeout, Duration::from_secs(90));
    }

    #[test]
    fn a_value_of_another_type_is_an_error_not_a_default() {
        let action = wait(Some("soon".to_owned()), "22".to_owned());
        let values = wait(Some(FieldValue::Text), FieldValue::Port(22));
        assert_eq!(
            Ready::new(&action, &values).map(drop),
            Err(MistypedField { field: "timeout" })
        );
    }
}
