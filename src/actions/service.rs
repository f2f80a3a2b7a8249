//! `service`: whether a service runs (`state`) and whether it starts at boot (`enabled`).
//!
//! Two backends, chosen on the host at run time by the test systemd itself documents
//! (`sd_booted(3)`: `/run/systemd/system` exists):
//!
//! - **systemd**: `systemctl show -p LoadState`, `is-active` and `is-enabled` to query;
//!   `systemctl start|stop|restart|reload|enable|disable` to change.
//! - **`SysV` init** (no systemd running, e.g. a container or a lab host): the init script
//!   `/etc/init.d/NAME`, run through the `service` command when there is one; `service NAME
//!   status` answers "running" by its exit code (LSB: 0 is running, anything else is not);
//!   "enabled" means an `S??NAME` start link in `/etc/rc[2-5].d` (or `/etc/rc.d/rc[2-5].d`),
//!   changed with `update-rc.d NAME enable|disable` (Debian) or `chkconfig NAME on|off`.
//!
//! The action queries first, so `started`/`stopped`/`enabled` change only what differs and a
//! second run is `ok`. `restarted` and `reloaded` are requests, not states: they always act and
//! are always `changed` — guard them with `when:` on a registered change. A `reloaded` service
//! that is not running is started instead, because there is nothing to reload and a reload would
//! fail. Under `--check` the query still runs (an unknown service fails in check mode too) and
//! the action stops after deciding.

use thiserror::Error;

use super::{Context, Outcome, RunMode, quote};
use crate::runbook::model::{Service, ServiceState};
use crate::transport::{CommandOutput, Transport, TransportError};

/// Longest piece of a failed command's output kept in the step's message; the full output is in
/// the step's stdout/stderr.
const MESSAGE_OUTPUT_LIMIT: usize = 2000;

/// How the host manages services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Systemd,
    SysV,
}

/// Whether the service starts at boot, as far as the backend can say.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Boot {
    Enabled,
    Disabled,
    /// systemd: `masked`; it can be neither started nor enabled until unmasked.
    Masked,
    /// systemd: `static`, `indirect`, `generated`, `alias`, … — started by something else, so
    /// `systemctl enable|disable` cannot change it. Counts as enabled.
    Fixed(String),
}

/// What the query found.
#[derive(Debug, PartialEq, Eq)]
enum Observed {
    /// No unit or init script of that name.
    Unknown(Backend),
    /// The service exists.
    Known {
        backend: Backend,
        running: bool,
        boot: Boot,
    },
}

/// One thing to do to the service, in the order decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Enable,
    Disable,
    Start,
    Stop,
    Restart,
    Reload,
}

impl Change {
    /// The verb `systemctl` and init scripts both understand.
    fn verb(self) -> &'static str {
        match self {
            Change::Enable => "enable",
            Change::Disable => "disable",
            Change::Start => "start",
            Change::Stop => "stop",
            Change::Restart => "restart",
            Change::Reload => "reload",
        }
    }

    /// How the operator reads it after the fact.
    fn done(self) -> &'static str {
        match self {
            Change::Enable => "enabled at boot",
            Change::Disable => "disabled at boot",
            Change::Start => "started",
            Change::Stop => "stopped",
            Change::Restart => "restarted",
            Change::Reload => "reloaded",
        }
    }
}

/// What the step asks for, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wanted {
    state: Option<ServiceState>,
    enabled: Option<bool>,
}

/// Queries the service, decides, then changes it (unless `--check`).
pub(super) async fn run<T: Transport>(
    context: &Context<'_, T>,
    service: &Service<String>,
    enabled: Option<bool>,
) -> Result<Outcome, TransportError> {
    let name = service.name.trim();
    if let Err(bad) = check_name(name) {
        return Ok(Outcome::failed(bad.to_string()));
    }
    let wanted = Wanted {
        state: service.state,
        enabled,
    };

    let output = context.shell(query_script(name)).await?;
    if !output.success() {
        return Ok(Outcome::failed_with(
            format!("cannot query service `{name}`: {}", output.failure()),
            &output,
        ));
    }
    let Some(observed) = parse_query(&output.stdout_text()) else {
        return Ok(Outcome::failed_with(
            format!("unexpected answer querying service `{name}`"),
            &output,
        ));
    };
    let (backend, running, boot) = match observed {
        // Under --check, the earlier step that would install it did not run.
        Observed::Unknown(backend) if context.mode == RunMode::Check => {
            return Ok(Outcome::skipped(format!(
                "check mode: {} (an earlier step that --check did not run may install it)",
                unknown(name, backend)
            )));
        }
        Observed::Unknown(backend) => return Ok(Outcome::failed(unknown(name, backend))),
        Observed::Known {
            backend,
            running,
            boot,
        } => (backend, running, boot),
    };
    let changes = match decide(wanted, running, &boot) {
        Ok(changes) => changes,
        Err(reason) => return Ok(Outcome::failed(format!("service `{name}`: {reason}"))),
    };
    if changes.is_empty() {
        return Ok(Outcome::ok(None));
    }
    let summary = |changes: &[Change]| {
        changes
            .iter()
            .map(|change| change.done())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if context.mode == RunMode::Check {
        let verbs: Vec<&str> = changes.iter().map(|change| change.verb()).collect();
        return Ok(Outcome::changed(format!(
            "would {} `{name}` ({})",
            verbs.join(" and "),
            backend_name(backend)
        )));
    }
    let mut done = Vec::new();
    for change in changes {
        let output = context.shell(change_script(backend, name, change)).await?;
        if !output.success() {
            let before = if done.is_empty() {
                String::new()
            } else {
                format!(" (already {})", summary(&done))
            };
            return Ok(Outcome::failed_with(
                format!(
                    "cannot {} `{name}`{before}: {}",
                    change.verb(),
                    failure_text(&output)
                ),
                &output,
            ));
        }
        done.push(change);
    }
    Ok(Outcome::changed(format!(
        "`{name}` {} ({})",
        summary(&done),
        backend_name(backend)
    )))
}

/// Refuses names that could not be exactly one unit or init script. `systemctl` reads `*`, `?`
/// and `[` as patterns over every loaded unit (`stop -- '*'` would stop sshd too), a `/` would
/// leave `/etc/init.d`, and a leading `-` would read as an option to `service`, which has no
/// `--`. Unit names are `[A-Za-z0-9:_.@-]`, which is what is allowed.
fn check_name(name: &str) -> Result<(), BadName> {
    if name.is_empty() {
        return Err(BadName::Empty);
    }
    if let Some(character) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":_.@-".contains(*c)))
    {
        return Err(BadName::Contains {
            name: name.to_owned(),
            character,
        });
    }
    if name.starts_with('-') {
        return Err(BadName::LeadingDash(name.to_owned()));
    }
    Ok(())
}

/// Why a service name is not exactly one unit or init script.
#[derive(Debug, Error, PartialEq, Eq)]
enum BadName {
    #[error("the service name is empty")]
    Empty,
    #[error(
        "`{name}` is not one service name: `{}` is not allowed (letters, digits and `:_.@-` \
         only; no wildcards — name each service in its own step)",
        character.escape_default()
    )]
    Contains { name: String, character: char },
    #[error("`{0}` is not a service name: it starts with `-`")]
    LeadingDash(String),
}

/// Why the wanted state cannot be reached on this host (the message follows "service `x`: ").
#[derive(Debug, Error, PartialEq, Eq)]
enum Impossible {
    #[error("it is masked, so it cannot be enabled; unmask it first (`systemctl unmask`)")]
    EnableMasked,
    #[error(
        "its unit is {0}: something else starts it, so systemctl cannot disable \
         it; use `state: stopped`, or mask it with a command step"
    )]
    DisableFixed(String),
    #[error("it is masked, so it cannot be started; unmask it first (`systemctl unmask`)")]
    StartMasked,
}

/// The `SysV` name of a service named like a systemd unit (`nginx.service` → `nginx`), so one
/// runbook works under both backends.
fn sysv_name(name: &str) -> &str {
    name.strip_suffix(".service").unwrap_or(name)
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Systemd => "systemd",
        Backend::SysV => "init script",
    }
}

/// The failure of an unknown service, naming where the action looked.
fn unknown(name: &str, backend: Backend) -> String {
    match backend {
        Backend::Systemd => format!(
            "service `{name}` is unknown: systemd has no unit `{name}`; install the package \
             that provides it first, or check the name with `systemctl list-unit-files`"
        ),
        Backend::SysV => format!(
            "service `{name}` is unknown: systemd does not run on this host and there is no \
             `/etc/init.d/{}`; install the package that provides it first, or check the name \
             with `ls /etc/init.d`",
            sysv_name(name)
        ),
    }
}

/// One command that reports the backend, whether the service exists, runs and starts at boot,
/// as `key value` lines; see [`parse_query`].
fn query_script(name: &str) -> String {
    let unit = quote(name);
    let script = quote(sysv_name(name));
    format!(
        "if [ -d /run/systemd/system ]; then \
           echo 'backend systemd'; \
           printf 'load %s\\n' \"$(systemctl show --property=LoadState -- {unit} 2>/dev/null)\"; \
           printf 'active %s\\n' \"$(systemctl is-active -- {unit} 2>/dev/null)\"; \
           printf 'boot %s\\n' \"$(systemctl is-enabled -- {unit} 2>/dev/null)\"; \
         else \
           echo 'backend sysv'; s={script}; \
           if [ ! -f \"/etc/init.d/$s\" ]; then echo 'load not-found'; exit 0; fi; \
           echo 'load loaded'; \
           if command -v service >/dev/null 2>&1; then service \"$s\" status >/dev/null 2>&1; \
           else \"/etc/init.d/$s\" status >/dev/null 2>&1; fi; \
           printf 'status %s\\n' \"$?\"; \
           boot=disabled; \
           for link in /etc/rc[2-5].d/S[0-9][0-9]\"$s\" /etc/rc.d/rc[2-5].d/S[0-9][0-9]\"$s\"; do \
             if [ -e \"$link\" ]; then boot=enabled; break; fi; \
           done; \
           printf 'boot %s\\n' \"$boot\"; \
         fi"
    )
}

/// Reads [`query_script`]'s answer; `None` when it is not one.
fn parse_query(answer: &str) -> Option<Observed> {
    let mut backend = None;
    let mut load = None;
    let mut active = None;
    let mut status = None;
    let mut boot = None;
    for line in answer.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let value = value.trim();
        match key {
            "backend" => {
                backend = Some(match value {
                    "systemd" => Backend::Systemd,
                    "sysv" => Backend::SysV,
                    _ => return None,
                });
            }
            // `systemctl show` prints `LoadState=loaded`.
            "load" => load = Some(value.strip_prefix("LoadState=").unwrap_or(value)),
            "active" => active = Some(value),
            "status" => status = Some(value.parse::<i32>().ok()?),
            "boot" => boot = Some(value),
            _ => {}
        }
    }
    let backend = backend?;
    match load? {
        // An empty LoadState means systemctl could not answer for that name at all.
        "not-found" | "" => return Some(Observed::Unknown(backend)),
        _ => {}
    }
    let running = match backend {
        // `activating` and `reloading` are on their way to running: starting again is a no-op
        // and stopping must stop them.
        Backend::Systemd => matches!(active?, "active" | "activating" | "reloading"),
        Backend::SysV => status? == 0,
    };
    let boot = match boot? {
        "enabled" | "enabled-runtime" => Boot::Enabled,
        // `linked` units are available but not enabled; `systemctl enable` enables them.
        "disabled" | "linked" | "linked-runtime" => Boot::Disabled,
        "masked" | "masked-runtime" => Boot::Masked,
        // `is-enabled` prints nothing for a unit without a unit file state (e.g. transient).
        "" => Boot::Fixed("without a unit file state".to_owned()),
        other => Boot::Fixed(other.to_owned()),
    };
    Some(Observed::Known {
        backend,
        running,
        boot,
    })
}

/// What to change, in order: boot-time enablement first (so a service that fails to start is
/// still left enabled as asked, which the next run retries), then the running state.
fn decide(wanted: Wanted, running: bool, boot: &Boot) -> Result<Vec<Change>, Impossible> {
    let mut changes = Vec::new();
    match (wanted.enabled, boot) {
        (None, _)
        | (Some(true), Boot::Enabled | Boot::Fixed(_))
        | (Some(false), Boot::Disabled | Boot::Masked) => {}
        (Some(true), Boot::Disabled) => changes.push(Change::Enable),
        (Some(false), Boot::Enabled) => changes.push(Change::Disable),
        (Some(true), Boot::Masked) => {
            return Err(Impossible::EnableMasked);
        }
        (Some(false), Boot::Fixed(state)) => {
            return Err(Impossible::DisableFixed(state.clone()));
        }
    }
    if *boot == Boot::Masked
        && matches!(
            wanted.state,
            Some(ServiceState::Started | ServiceState::Restarted | ServiceState::Reloaded)
        )
    {
        return Err(Impossible::StartMasked);
    }
    changes.extend(match wanted.state {
        None => None,
        Some(ServiceState::Started) => (!running).then_some(Change::Start),
        Some(ServiceState::Stopped) => running.then_some(Change::Stop),
        Some(ServiceState::Restarted) => Some(Change::Restart),
        // Nothing runs, so nothing can re-read its configuration: starting it reads it fresh.
        Some(ServiceState::Reloaded) if !running => Some(Change::Start),
        Some(ServiceState::Reloaded) => Some(Change::Reload),
    });
    Ok(changes)
}

/// The command for one change on one backend.
fn change_script(backend: Backend, name: &str, change: Change) -> String {
    match backend {
        Backend::Systemd => format!("systemctl {} -- {}", change.verb(), quote(name)),
        Backend::SysV => {
            let script = quote(sysv_name(name));
            match change {
                Change::Enable => format!(
                    "if command -v update-rc.d >/dev/null 2>&1; then \
                       update-rc.d {script} defaults && update-rc.d {script} enable; \
                     elif command -v chkconfig >/dev/null 2>&1; then \
                       chkconfig --add {script} && chkconfig {script} on; \
                     else echo 'neither update-rc.d nor chkconfig is installed' >&2; exit 127; fi"
                ),
                Change::Disable => format!(
                    "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d {script} disable; \
                     elif command -v chkconfig >/dev/null 2>&1; then chkconfig {script} off; \
                     else echo 'neither update-rc.d nor chkconfig is installed' >&2; exit 127; fi"
                ),
                // The daemon an init script starts may keep the script's stdout/stderr open;
                // over SSH that would hold the session until the daemon exits. Its output goes
                // through temp files instead, and is replayed once the script has returned.
                Change::Start | Change::Stop | Change::Restart | Change::Reload => format!(
                    "out=$(mktemp) && err=$(mktemp) || exit 1; \
                     if command -v service >/dev/null 2>&1; then \
                       service {script} {verb} </dev/null >\"$out\" 2>\"$err\"; \
                     else /etc/init.d/{script} {verb} </dev/null >\"$out\" 2>\"$err\"; fi; \
                     rc=$?; cat \"$out\"; cat \"$err\" >&2; rm -f \"$out\" \"$err\"; exit $rc",
                    verb = change.verb()
                ),
            }
        }
    }
}

/// A failed command's stderr in full (capped), or its stdout when stderr is empty: init scripts
/// often report failures on stdout, and the reason is rarely on the last line alone.
fn failure_text(output: &CommandOutput) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let text = if stderr.trim().is_empty() {
        stdout.trim()
    } else {
        stderr.trim()
    };
    let status = output
        .rc()
        .map_or_else(|| output.failure(), |rc| format!("exit code {rc}"));
    if text.is_empty() {
        return status;
    }
    let mut text = text.to_owned();
    if text.len() > MESSAGE_OUTPUT_LIMIT {
        let mut end = MESSAGE_OUTPUT_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" …");
    }
    format!("{status}: {text}")
}

#[cfg(test)]
mod tests {
    use super::{
        Backend, Boot, Change, Observed, Wanted, check_name, decide, parse_query, query_script,
    };
    use crate::runbook::model::ServiceState;

    fn wanted(state: Option<ServiceState>, enabled: Option<bool>) -> Wanted {
        Wanted { state, enabled }
    }

    #[test]
    fn systemd_answers_parse() {
        let answer = "backend systemd\nload LoadState=loaded\nactive active\nboot enabled";
        assert_eq!(
            parse_query(answer),
            Some(Observed::Known {
                backend: Backend::Systemd,
                running: true,
                boot: Boot::Enabled
            })
        );
        let answer = "backend systemd\nload LoadState=loaded\nactive failed\nboot static";
        assert_eq!(
            parse_query(answer),
            Some(Observed::Known {
                backend: Backend::Systemd,
                running: false,
                boot: Boot::Fixed("static".into())
            })
        );
        let answer = "backend systemd\nload LoadState=not-found\nactive inactive\nboot ";
        assert_eq!(
            parse_query(answer),
            Some(Observed::Unknown(Backend::Systemd))
        );
    }

    #[test]
    fn sysv_answers_parse() {
        assert_eq!(
            parse_query("backend sysv\nload loaded\nstatus 3\nboot enabled"),
            Some(Observed::Known {
                backend: Backend::SysV,
                running: false,
                boot: Boot::Enabled
            })
        );
        assert_eq!(
            parse_query("backend sysv\nload loaded\nstatus 0\nboot disabled"),
            Some(Observed::Known {
                backend: Backend::SysV,
                running: true,
                boot: Boot::Disabled
            })
        );
        assert_eq!(
            parse_query("backend sysv\nload not-found"),
            Some(Observed::Unknown(Backend::SysV))
        );
    }

    /// The query only reads, so it may run on the machine running the tests; whichever backend
    /// this machine has, an unknown name is reported as unknown.
    #[test]
    fn the_query_script_runs_in_a_posix_shell() {
        let output = std::process::Command::new("/bin/sh")
            .args(["-c", &query_script("opsgate-no-such-service.service")])
            .output()
            .expect("running /bin/sh");
        assert!(output.status.success(), "{output:?}");
        let answer = String::from_utf8(output.stdout).expect("utf-8");
        assert!(
            matches!(parse_query(&answer), Some(Observed::Unknown(_))),
            "{answer}"
        );
    }

    #[test]
    fn garbled_answers_are_rejected() {
        for answer in [
            "",
            "backend upstart\nload loaded",
            "backend sysv\nload loaded\nstatus x\nboot enabled",
            "backend sysv\nload loaded\nboot enabled",
            "load loaded\nstatus 0\nboot enabled",
        ] {
            assert_eq!(parse_query(answer), None, "{answer:?}");
        }
    }

    #[test]
    fn started_and_stopped_change_only_when_needed() {
        use ServiceState::{Started, Stopped};
        let cases = [
            (Some(Started), true, vec![]),
            (Some(Started), false, vec![Change::Start]),
            (Some(Stopped), true, vec![Change::Stop]),
            (Some(Stopped), false, vec![]),
            (None, true, vec![]),
            (None, false, vec![]),
        ];
        for (state, running, expected) in cases {
            assert_eq!(
                decide(wanted(state, None), running, &Boot::Enabled),
                Ok(expected),
                "{state:?} running={running}"
            );
        }
    }

    #[test]
    fn restarted_and_reloaded_always_act() {
        use ServiceState::{Reloaded, Restarted};
        let boot = Boot::Disabled;
        assert_eq!(
            decide(wanted(Some(Restarted), None), true, &boot),
            Ok(vec![Change::Restart])
        );
        assert_eq!(
            decide(wanted(Some(Restarted), None), false, &boot),
            Ok(vec![Change::Restart])
        );
        assert_eq!(
            decide(wanted(Some(Reloaded), None), true, &boot),
            Ok(vec![Change::Reload])
        );
        assert_eq!(
            decide(wanted(Some(Reloaded), None), false, &boot),
            Ok(vec![Change::Start]),
            "a stopped service is started, not reloaded"
        );
    }

    #[test]
    fn enablement_changes_first_and_only_when_needed() {
        let started = Some(ServiceState::Started);
        assert_eq!(
            decide(wanted(started, Some(true)), false, &Boot::Disabled),
            Ok(vec![Change::Enable, Change::Start])
        );
        assert_eq!(
            decide(wanted(None, Some(true)), false, &Boot::Enabled),
            Ok(vec![])
        );
        assert_eq!(
            decide(wanted(None, Some(false)), true, &Boot::Enabled),
            Ok(vec![Change::Disable])
        );
        assert_eq!(
            decide(wanted(None, Some(false)), true, &Boot::Masked),
            Ok(vec![])
        );
        assert_eq!(
            decide(
                wanted(None, Some(true)),
                true,
                &Boot::Fixed("static".into())
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn impossible_requests_say_why() {
        let static_unit = Boot::Fixed("static".into());
        let error = decide(wanted(None, Some(false)), true, &static_unit)
            .expect_err("static")
            .to_string();
        assert!(error.contains("static"), "{error}");
        let error = decide(wanted(None, Some(true)), false, &Boot::Masked)
            .expect_err("masked")
            .to_string();
        assert!(error.contains("unmask"), "{error}");
        let error = decide(
            wanted(Some(ServiceState::Started), None),
            false,
            &Boot::Masked,
        )
        .expect_err("masked")
        .to_string();
        assert!(error.contains("cannot be started"), "{error}");
        assert_eq!(
            decide(
                wanted(Some(ServiceState::Stopped), None),
                false,
                &Boot::Masked
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn names_that_are_not_one_service_are_refused() {
        for name in [
            "",
            "../../bin/sh",
            "-f",
            "two words",
            "a/b",
            "*",
            "ssh*",
            "ng[i]nx",
            "a;b",
        ] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        for name in ["nginx", "nginx.service", "getty@tty1.service", "php8.2-fpm"] {
            assert!(check_name(name).is_ok(), "{name:?}");
        }
    }
}
