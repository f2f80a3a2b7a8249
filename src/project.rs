//! Where a project keeps its files (SPEC §1): `opsgate.yaml` when present, else the defaults
//! `inventory/hosts.yaml`, `runbooks/`, `policy/operators.yaml` and the state directory
//! `.opsgate/state`, all relative to the directory opsgate runs in.
//!
//! Paths in `opsgate.yaml` are relative to that file's directory. Command-line options win over
//! the file, and `OPSGATE_STATE_DIR` sits between them for the state directory.
//!
//! `service:` names the team-mode service (SPEC §4.6): its socket. The service reads it to know
//! where to listen; the command line reads it to know where to connect.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diagnostic::{Diagnostic, Diagnostics, read_source};

/// The project configuration file's name.
pub const CONFIG_FILE: &str = "opsgate.yaml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Schema {
    inventory: Option<PathBuf>,
    runbooks: Option<PathBuf>,
    policy: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    service: Option<ServiceSchema>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceSchema {
    socket: Option<PathBuf>,
}

/// Where the team-mode socket lives when `opsgate.yaml` says nothing.
pub const DEFAULT_SOCKET: &str = "/run/opsgate/opsgate.sock";

/// Resolved project paths.
#[derive(Debug, Clone)]
pub struct Project {
    /// The inventory file.
    pub inventory: PathBuf,
    /// The runbook catalog directory.
    pub runbooks: PathBuf,
    /// The operators policy file.
    pub policy: PathBuf,
    /// The state directory (audit database).
    pub state_dir: PathBuf,
    /// The service's socket, when `opsgate.yaml` has a `service:` section (team mode).
    pub service_socket: Option<PathBuf>,
}

/// Explicit choices from the command line and environment, which win over `opsgate.yaml`.
#[derive(Debug, Default)]
pub struct Overrides {
    /// `-i/--inventory`.
    pub inventory: Option<PathBuf>,
    /// `--policy`.
    pub policy: Option<PathBuf>,
    /// `--state-dir` or `OPSGATE_STATE_DIR`.
    pub state_dir: Option<PathBuf>,
}

impl Project {
    /// Reads `opsgate.yaml` from `directory` if it exists and applies the overrides.
    pub fn load(directory: &Path, overrides: Overrides) -> Result<Project, Diagnostics> {
        let config_path = directory.join(CONFIG_FILE);
        let schema = if config_path.exists() {
            read_schema(&config_path)?
        } else {
            Schema::default()
        };
        Ok(Project::resolve(schema, directory, overrides))
    }

    /// Reads the configuration file `config` (which must exist, under any name); its relative
    /// paths resolve against its directory. What `opsgate serve --config` loads.
    pub fn load_config(config: &Path) -> Result<Project, Diagnostics> {
        let schema = read_schema(config)?;
        let directory = match config.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        Ok(Project::resolve(schema, directory, Overrides::default()))
    }

    fn resolve(schema: Schema, directory: &Path, overrides: Overrides) -> Project {
        let base = directory.to_path_buf();
        let resolve = |path: Option<PathBuf>, default: &str| {
            let path = path.unwrap_or_else(|| PathBuf::from(default));
            if path.is_absolute() || base == Path::new(".") {
                path
            } else {
                base.join(path)
            }
        };
        let service_socket = schema
            .service
            .map(|service| resolve(service.socket, DEFAULT_SOCKET));
        Project {
            inventory: overrides
                .inventory
                .unwrap_or_else(|| resolve(schema.inventory, "inventory/hosts.yaml")),
            runbooks: resolve(schema.runbooks, "runbooks"),
            policy: overrides
                .policy
                .unwrap_or_else(|| resolve(schema.policy, "policy/operators.yaml")),
            state_dir: overrides
                .state_dir
                .unwrap_or_else(|| resolve(schema.state_dir, ".opsgate/state")),
            service_socket,
        }
    }

    /// Resolves a `RUNBOOK` argument (SPEC §2): a path when it contains `/` or ends in `.yaml`,
    /// else a catalog id — `runbooks/<id>.yaml`, or the catalog file whose `runbook:` is `id`.
    pub fn runbook_path(&self, argument: &str) -> Result<PathBuf, Diagnostic> {
        if argument.contains('/') || is_yaml(Path::new(argument)) {
            return Ok(PathBuf::from(argument));
        }
        let direct = self.runbooks.join(format!("{argument}.yaml"));
        if direct.exists() {
            return Ok(direct);
        }
        let catalog = self.catalog();
        for path in &catalog {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            if text
                .lines()
                .any(|line| line.trim() == format!("runbook: {argument}"))
            {
                return Ok(path.clone());
            }
        }
        let ids: Vec<String> = catalog
            .iter()
            .filter_map(|path| {
                path.file_stem()
                    .map(|stem| format!("`{}`", stem.to_string_lossy()))
            })
            .collect();
        let hint = if ids.is_empty() {
            format!(
                "the catalog `{}` has no runbooks; give a path instead",
                self.runbooks.display()
            )
        } else {
            format!(
                "the catalog `{}` has {}",
                self.runbooks.display(),
                ids.join(", ")
            )
        };
        Err(Diagnostic::error(format!("no runbook `{argument}` in the catalog")).hint(hint))
    }

    /// Every `*.yaml` file of the catalog directory, sorted.
    #[must_use]
    pub fn catalog(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.runbooks)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| is_yaml(path))
            .collect();
        paths.sort();
        paths
    }
}

/// Reads and parses a configuration file.
fn read_schema(path: &Path) -> Result<Schema, Diagnostics> {
    let file = read_source(path)?;
    serde_saphyr::from_str(&file.text)
        .map_err(|error| Diagnostics::from(Diagnostic::from_yaml(&file, &error)))
}

/// `.yaml` or `.yml`, in any case: a file the catalog and `validate DIR` consider.
pub(crate) fn is_yaml(path: &Path) -> bool {
    path.extension().is_some_and(|extension| {
        extension.eq_ignore_ascii_case("yaml") || extension.eq_ignore_ascii_case("yml")
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{DEFAULT_SOCKET, Overrides, Project};

    #[test]
    fn a_service_configuration_resolves_against_its_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("service.yaml");
        std::fs::write(
            &config,
            "runbooks: catalog\nstate_dir: /var/lib/opsgate/state\nservice:\n  socket: run/og.sock\n",
        )
        .expect("config");
        let project = Project::load_config(&config).expect("loads");
        assert_eq!(project.runbooks, dir.path().join("catalog"));
        assert_eq!(project.policy, dir.path().join("policy/operators.yaml"));
        assert_eq!(project.state_dir, PathBuf::from("/var/lib/opsgate/state"));
        assert_eq!(project.service_socket, Some(dir.path().join("run/og.sock")));

        std::fs::write(&config, "service: {}\n").expect("config");
        let project = Project::load_config(&config).expect("loads");
        assert_eq!(
            project.service_socket.as_deref(),
            Some(Path::new(DEFAULT_SOCKET))
        );

        std::fs::write(dir.path().join("opsgate.yaml"), "inventory: hosts.yaml\n").expect("config");
        let project = Project::load(dir.path(), Overrides::default()).expect("loads");
        assert_eq!(project.service_socket, None);
        assert_eq!(project.inventory, dir.path().join("hosts.yaml"));
    }

    #[test]
    fn unknown_service_keys_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("opsgate.yaml");
        std::fs::write(&config, "service:\n  sock: /x\n").expect("config");
        assert!(Project::load_config(&config).is_err());
    }
}
