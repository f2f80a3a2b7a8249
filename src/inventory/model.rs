//! The validated inventory: hosts with their connection settings resolved, groups, names.
//!
//! Nothing here parses YAML or reports diagnostics; [`super::validate`] is the only way in, so an
//! [`Inventory`] always satisfies the rules of the module documentation (known names, no cycles,
//! one environment per host).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::diagnostic::SourceFile;

/// The name every pattern may use for all hosts; it can be neither a host nor a group.
pub const ALL: &str = "all";

/// Why a string cannot be a host or group name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("name is empty")]
    Empty,
    /// The name is `all`, which every pattern reads as "every host".
    #[error("name `all` is reserved: host patterns read it as every host")]
    Reserved,
    /// The name contains a character host patterns use as an operator (or that is unusual).
    #[error("name `{name}` contains `{character}`")]
    InvalidCharacter {
        /// The offending name.
        name: String,
        /// The first character that is not allowed.
        character: char,
    },
}

impl NameError {
    /// How to fix the name.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            NameError::Empty | NameError::InvalidCharacter { .. } => vec![
                "names start with a letter, digit or `_` and continue with letters, digits, `_`, \
                 `.` or `-`"
                    .to_owned(),
            ],
            NameError::Reserved => {
                vec!["choose another name; `all` already selects every host".to_owned()]
            }
        }
    }
}

/// Checks the shared name rules: `[A-Za-z0-9_][A-Za-z0-9_.-]*` and not `all`. Pattern operators
/// (`, : ! & * ?`) and whitespace are excluded so that every name can be written in a pattern.
fn check_name(name: &str) -> Result<(), NameError> {
    let mut characters = name.chars();
    let Some(first) = characters.next() else {
        return Err(NameError::Empty);
    };
    if name == ALL {
        return Err(NameError::Reserved);
    }
    let invalid = |character: char| NameError::InvalidCharacter {
        name: name.to_owned(),
        character,
    };
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Err(invalid(first));
    }
    match characters.find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        Some(character) => Err(invalid(character)),
        None => Ok(()),
    }
}

/// Hosts and groups follow one naming rule and behave alike as names; one definition keeps the
/// two newtypes from drifting apart.
macro_rules! inventory_name {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Checks `name` against the naming rules shared by hosts and groups.
            pub fn new(name: &str) -> Result<Self, NameError> {
                check_name(name).map(|()| Self(name.to_owned()))
            }

            /// Wraps a name whose check already ran during validation: a failed check is
            /// reported there and discards the inventory being built, so this never lets a bad
            /// name escape.
            pub(super) fn unchecked(name: &str) -> Self {
                Self(name.to_owned())
            }

            /// The name as written in the inventory.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

inventory_name!(
    /// The name of a host of the inventory (the key under `hosts:`).
    HostName
);
inventory_name!(
    /// The name of a group of the inventory (the key under `groups:`).
    GroupName
);

/// One host with every setting resolved: defaults, then its groups in inventory order, then the
/// host's own keys (the later layer wins).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Host {
    /// The host's name in the inventory.
    pub name: HostName,
    /// What `ssh` connects to; the host's name when no layer sets `address` (as `ssh name` does).
    pub address: String,
    /// The SSH port; `None` leaves it to the ssh configuration (usually 22).
    pub port: Option<u16>,
    /// The remote login; `None` leaves it to the ssh configuration.
    pub user: Option<String>,
    /// Private key file, resolved against the inventory file's directory, `~/` expanded.
    pub identity_file: Option<PathBuf>,
    /// `known_hosts` file, resolved like `identity_file`.
    pub known_hosts: Option<PathBuf>,
    /// `ssh_config` file, resolved like `identity_file`.
    pub ssh_config: Option<PathBuf>,
    /// A pinned public host key (`ssh-ed25519 AAAA…`), accepted in addition to `known_hosts`.
    pub host_key: Option<String>,
    /// `-o` settings as `Key=Value`; merged per key, the more specific layer wins.
    pub ssh_options: Vec<String>,
    /// The host to jump through (`ssh -J`); never the host itself.
    pub jump: Option<HostName>,
    /// Every group containing the host, directly or through `children`, in inventory order.
    pub groups: Vec<GroupName>,
    /// The environment inherited from the host's groups (`production`, `staging`, …).
    pub environment: Option<String>,
    /// Variables merged defaults → groups in inventory order → host; top-level keys override.
    pub vars: serde_json::Map<String, serde_json::Value>,
}

impl Host {
    /// Whether the host belongs to `group`, directly or through children.
    #[must_use]
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|name| name.as_str() == group)
    }
}

/// A group as written: its direct members, its child groups, its environment and variables.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The group's name.
    pub name: GroupName,
    /// Hosts listed under the group's `hosts:` (not those of its children).
    pub hosts: Vec<HostName>,
    /// Groups listed under `children:`; their hosts belong to this group too.
    pub children: Vec<GroupName>,
    /// The environment the group gives its hosts.
    pub environment: Option<String>,
    /// The group's own variables (before merging).
    pub vars: serde_json::Map<String, serde_json::Value>,
}

/// A validated inventory; immutable, cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub(super) source: Arc<SourceFile>,
    /// In the order of the `hosts:` mapping, which is the order rolling batches use.
    pub(super) hosts: Vec<Host>,
    /// In the order of the `groups:` mapping.
    pub(super) groups: Vec<Group>,
    pub(super) host_index: HashMap<String, usize>,
    pub(super) group_index: HashMap<String, usize>,
}

impl Inventory {
    /// Every host, in inventory order.
    #[must_use]
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The host called `name`.
    #[must_use]
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.host_index.get(name).map(|&index| &self.hosts[index])
    }

    /// Every group, in inventory order.
    #[must_use]
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group called `name`.
    #[must_use]
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.group_index.get(name).map(|&index| &self.groups[index])
    }

    /// Every group name, in inventory order.
    pub fn group_names(&self) -> impl Iterator<Item = &GroupName> {
        self.groups.iter().map(|group| &group.name)
    }

    /// Every host of `group`, directly or through children, in inventory order.
    #[must_use]
    pub fn group_hosts(&self, group: &str) -> Vec<&Host> {
        self.hosts
            .iter()
            .filter(|host| host.in_group(group))
            .collect()
    }

    /// The SHA-256 of the inventory file's exact bytes, in lower-case hex; plans and the audit
    /// record it so that a saved plan notices an edited inventory.
    #[must_use]
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.source.text.as_bytes()))
    }

    /// The file the inventory was read from.
    #[must_use]
    pub fn source(&self) -> &Arc<SourceFile> {
        &self.source
    }

    /// The position of `name` in the inventory's host order.
    pub(super) fn host_position(&self, name: &str) -> Option<usize> {
        self.host_index.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::{HostName, NameError};

    #[test]
    fn names_follow_the_shared_rules() {
        let cases: &[(&str, Result<(), NameError>)] = &[
            ("web1", Ok(())),
            ("db1.internal", Ok(())),
            ("10.0.0.1", Ok(())),
            ("_x-y", Ok(())),
            ("", Err(NameError::Empty)),
            ("all", Err(NameError::Reserved)),
            (
                "web*",
                Err(NameError::InvalidCharacter {
                    name: "web*".into(),
                    character: '*',
                }),
            ),
            (
                "-web",
                Err(NameError::InvalidCharacter {
                    name: "-web".into(),
                    character: '-',
                }),
            ),
            (
                "a b",
                Err(NameError::InvalidCharacter {
                    name: "a b".into(),
                    character: ' ',
                }),
            ),
            (
                "a:b",
                Err(NameError::InvalidCharacter {
                    name: "a:b".into(),
                    character: ':',
                }),
            ),
        ];
        for (name, expected) in cases {
            assert_eq!(&HostName::new(name).map(|_| ()), expected, "{name}");
        }
    }
}
