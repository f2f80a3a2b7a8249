//! An action ready to run: its rendered fields plus the typed values of its scalar fields
//! (modes, durations, ports, counts, booleans, conditions), parsed once before it runs.
//!
//! Actions take these typed values and never parse their own fields again; an absent field gets
//! its documented default here, and a present one that does not parse is an [`InvalidField`],
//! which fails the step, never a silent default.

use std::time::Duration;

use thiserror::Error;

use crate::runbook::model::{
    Action, Assert, Backup, Copy, FileState, Service, User, ValueError, WaitFor, WaitTarget,
    bool_value, condition_value, count_value, parse_duration, parse_mode, port_value,
};

/// How long `wait_for` waits without a `timeout`.
const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// A scalar field of an action whose rendered text is not a value of its type.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("`{field}`: {error}")]
pub struct InvalidField {
    /// The field's YAML key.
    pub field: &'static str,
    /// Why its text does not parse.
    pub error: ValueError,
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
    /// Types the action's scalar fields, naming the first that does not parse.
    pub fn parse(action: &'a Action<String>) -> Result<Self, InvalidField> {
        Ok(match action {
            Action::Copy(spec) | Action::Template(spec) => Ready::Copy {
                spec,
                mode: optional(spec.attributes.mode.as_deref(), "mode", parse_mode)?,
                backup: optional(spec.backup.as_deref(), "backup", bool_value)?.unwrap_or(false),
            },
            Action::File(spec) => Ready::File {
                spec,
                mode: optional(spec.attributes.mode.as_deref(), "mode", parse_mode)?,
            },
            Action::WaitFor(spec) => Ready::WaitFor {
                spec,
                timeout: optional(spec.timeout.as_deref(), "timeout", parse_duration)?
                    .unwrap_or(DEFAULT_WAIT),
                port: match &spec.target {
                    WaitTarget::Port { port, .. } => {
                        optional(Some(port.as_str()), "port", port_value)?
                    }
                    WaitTarget::Path(_) | WaitTarget::Command(_) => None,
                },
            },
            Action::Assert(spec) => Ready::Assert {
                spec,
                that: spec
                    .that
                    .iter()
                    .map(|condition| {
                        condition_value(condition).map_err(|error| InvalidField {
                            field: "that",
                            error,
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
            Action::Backup(spec) => Ready::Backup {
                spec,
                keep: optional(spec.keep.as_deref(), "keep", count_value)?,
            },
            Action::Service(spec) => Ready::Service {
                spec,
                enabled: optional(spec.enabled.as_deref(), "enabled", bool_value)?,
            },
            Action::User(spec) => Ready::User {
                spec,
                system: optional(spec.system.as_deref(), "system", bool_value)?.unwrap_or(false),
            },
            other => Ready::Other(other),
        })
    }
}

/// Parses a field the action may leave out.
fn optional<T>(
    text: Option<&str>,
    field: &'static str,
    parse: fn(&str) -> Result<T, ValueError>,
) -> Result<Option<T>, InvalidField> {
    text.map(parse)
        .transpose()
        .map_err(|error| InvalidField { field, error })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{InvalidField, Ready};
    use crate::runbook::model::{Action, ValueError, WaitFor, WaitTarget};

    fn wait(timeout: Option<&str>, port: &str) -> Action<String> {
        Action::WaitFor(WaitFor {
            target: WaitTarget::Port {
                port: port.into(),
                host: None,
            },
            timeout: timeout.map(str::to_owned),
        })
    }

    #[test]
    fn an_absent_timeout_is_the_default_and_a_bad_one_is_an_error() {
        let action = wait(None, "22");
        let Ok(Ready::WaitFor { timeout, port, .. }) = Ready::parse(&action) else {
            panic!("a wait_for is ready");
        };
        assert_eq!((timeout, port), (Duration::from_secs(60), Some(22)));
        let action = wait(Some("soon"), "22");
        assert_eq!(
            Ready::parse(&action).map(drop),
            Err(InvalidField {
                field: "timeout",
                error: ValueError::NotDuration("soon".into())
            })
        );
        let action = wait(None, "http");
        assert!(Ready::parse(&action).is_err());
    }
}
