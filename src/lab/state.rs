//! `DIR/lab.json`: what `lab up` started, so `status` and `down` act on exactly those processes.
//!
//! The file is rewritten (temp file + rename) right after each sshd is spawned, so a `lab up`
//! that dies half-way still leaves a record of every process it started.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{LabError, io_error};
use super::host::LabHost;
use super::isolation::Isolation;

/// File name of the state inside the lab directory.
pub(crate) const STATE_FILE: &str = "lab.json";

/// Version of the state format; bumped when a field changes meaning.
const VERSION: u32 = 1;

/// The recorded lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) version: u32,
    /// Account the hosts log in as.
    pub(crate) user: String,
    /// Whether the hosts have filesystems of their own, and if not why. Absent from labs
    /// recorded before overlays existed.
    #[serde(default)]
    pub(crate) isolation: Isolation,
    /// Hosts in start order; a host appears as soon as its sshd is spawned.
    pub(crate) hosts: Vec<LabHost>,
}

impl State {
    pub(crate) fn new(user: String, isolation: Isolation) -> Self {
        Self {
            version: VERSION,
            user,
            isolation,
            hosts: Vec::new(),
        }
    }

    pub(crate) fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    /// Reads the state of the lab in `dir`; `None` when there is none.
    pub(crate) fn read(dir: &Path) -> Result<Option<Self>, LabError> {
        let path = Self::path(dir);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error("read", path)(error)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| LabError::CorruptState { path, source })
    }

    pub(crate) fn write(&self, dir: &Path) -> Result<(), LabError> {
        let path = Self::path(dir);
        let temporary = dir.join(format!("{STATE_FILE}.tmp"));
        let mut text =
            serde_json::to_string_pretty(self).map_err(|source| LabError::CorruptState {
                path: path.clone(),
                source,
            })?;
        text.push('\n');
        fs::write(&temporary, text).map_err(io_error("write", &temporary))?;
        fs::rename(&temporary, &path).map_err(io_error("write", &path))
    }

    /// Records a freshly spawned host, replacing an earlier attempt with the same name. Hosts
    /// start in parallel; the record stays in name order (`lab2` before `lab10`).
    pub(crate) fn record(&mut self, host: LabHost) {
        if let Some(known) = self.hosts.iter_mut().find(|known| known.name == host.name) {
            *known = host;
            return;
        }
        self.hosts.push(host);
        self.hosts.sort_by(|one, other| {
            (one.name.len(), &one.name).cmp(&(other.name.len(), &other.name))
        });
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::path::PathBuf;

    use super::State;
    use crate::lab::{HostFilesystem, Isolation, LabHost};

    fn host(name: &str, port: u16) -> LabHost {
        LabHost {
            name: name.to_owned(),
            address: Ipv4Addr::LOCALHOST,
            port,
            pid: 1,
            lab_root: PathBuf::from("/lab"),
            filesystem: HostFilesystem::Shared,
        }
    }

    #[test]
    fn record_keeps_hosts_in_name_order_and_replaces_a_retried_start() {
        let mut state = State::new("ops".to_owned(), Isolation::Overlay);
        for name in ["lab10", "lab2", "lab1"] {
            state.record(host(name, 1));
        }
        state.record(host("lab2", 2));
        let recorded: Vec<_> = state
            .hosts
            .iter()
            .map(|host| (host.name.as_str(), host.port))
            .collect();
        assert_eq!(recorded, [("lab1", 1), ("lab2", 2), ("lab10", 1)]);
    }

    #[test]
    fn a_state_recorded_before_overlays_reads_as_shared() {
        let old = r#"{"version":1,"user":"ops","hosts":[{"name":"lab1","address":"127.0.0.2",
            "port":2222,"pid":7,"lab_root":"/lab/hosts/lab1/root"}]}"#;
        let state: State = serde_json::from_str(old).expect("old state reads");
        assert_eq!(state.isolation, Isolation::default());
        assert_eq!(state.hosts[0].filesystem, HostFilesystem::Shared);
    }
}
