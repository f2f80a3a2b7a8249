//! The serde mirror of an inventory file, with a source location on every value a later check
//! may point at.
//!
//! Every struct denies unknown keys, so a misspelt key fails the parse at its own line and
//! column. Nothing is checked here beyond YAML types; the rules live in [`super::validate`].

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

/// Variables as written: any YAML mapping.
pub(crate) type Vars = serde_json::Map<String, serde_json::Value>;

/// A YAML mapping kept in file order with the location of every key. The inventory's order is
/// meaningful (hosts roll out in it, groups layer variables in it), and serde's maps would lose
/// it; duplicate keys are rejected by the parser before they get here.
#[derive(Debug)]
pub(crate) struct Entries<V>(pub(crate) Vec<(Spanned<String>, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a mapping")
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Entries::default())
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InventoryFile {
    pub(crate) defaults: Option<Spanned<Defaults>>,
    #[serde(default)]
    pub(crate) groups: Option<Entries<Option<GroupEntry>>>,
    #[serde(default)]
    pub(crate) hosts: Option<Entries<Option<HostEntry>>>,
}

/// The connection keys, shared by `defaults`, groups and hosts. Serde's `flatten` would lose both
/// `deny_unknown_fields` and the locations, so each struct spells them out through this macro.
macro_rules! with_connection_keys {
    ($(#[$meta:meta])* struct $name:ident { $($field:ident : $type:ty,)* }) => {
        $(#[$meta])*
        pub(crate) struct $name {
            pub(crate) address: Option<Spanned<String>>,
            /// Wider than `u16` so that `port: 70000` gets a range message instead of a type one.
            pub(crate) port: Option<Spanned<i64>>,
            pub(crate) user: Option<Spanned<String>>,
            pub(crate) jump: Option<Spanned<String>>,
            pub(crate) identity_file: Option<Spanned<String>>,
            pub(crate) known_hosts: Option<Spanned<String>>,
            pub(crate) ssh_config: Option<Spanned<String>>,
            pub(crate) host_key: Option<Spanned<String>>,
            pub(crate) ssh_options: Option<Vec<Spanned<String>>>,
            $(pub(crate) $field: $type,)*
        }

        impl $name {
            pub(crate) fn connection(&self) -> Connection<'_> {
                Connection {
                    address: self.address.as_ref(),
                    port: self.port.as_ref(),
                    user: self.user.as_ref(),
                    jump: self.jump.as_ref(),
                    identity_file: self.identity_file.as_ref(),
                    known_hosts: self.known_hosts.as_ref(),
                    ssh_config: self.ssh_config.as_ref(),
                    host_key: self.host_key.as_ref(),
                    ssh_options: self.ssh_options.as_deref().unwrap_or_default(),
                }
            }
        }
    };
}

with_connection_keys! {
    /// `defaults:`: connection keys and variables for every host.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Defaults {
        vars: Option<Vars>,
    }
}

with_connection_keys! {
    /// One entry under `groups:`.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct GroupEntry {
        hosts: Option<Vec<Spanned<String>>>,
        children: Option<Vec<Spanned<String>>>,
        environment: Option<Spanned<String>>,
        vars: Option<Vars>,
    }
}

with_connection_keys! {
    /// One entry under `hosts:`.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct HostEntry {
        vars: Option<Vars>,
    }
}

/// A borrowed view of the connection keys of one layer (defaults, a group or a host).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Connection<'a> {
    pub(crate) address: Option<&'a Spanned<String>>,
    pub(crate) port: Option<&'a Spanned<i64>>,
    pub(crate) user: Option<&'a Spanned<String>>,
    pub(crate) jump: Option<&'a Spanned<String>>,
    pub(crate) identity_file: Option<&'a Spanned<String>>,
    pub(crate) known_hosts: Option<&'a Spanned<String>>,
    pub(crate) ssh_config: Option<&'a Spanned<String>>,
    pub(crate) host_key: Option<&'a Spanned<String>>,
    pub(crate) ssh_options: &'a [Spanned<String>],
}

/// What each key holds, for the hint under a wrong-type error.
pub(crate) fn describe_key(key: &str) -> Option<&'static str> {
    Some(match key {
        "defaults" => "`defaults` is a mapping of connection keys and `vars`",
        "groups" => {
            "`groups` maps each group name to its `hosts`, `children`, `vars` and `environment`"
        }
        "hosts" => {
            "at the top level `hosts` maps each host name to its settings; in a group it is a list \
             of host names"
        }
        "children" => "`children` is a list of group names",
        "vars" => "`vars` is a mapping of variable names to values",
        "port" => "`port` is a TCP port number from 1 to 65535",
        "ssh_options" => "`ssh_options` is a list of `Key=Value` strings, as `ssh -o` takes them",
        "address" => "`address` is a host name or IP address",
        "user" => "`user` is the remote login name",
        "jump" => "`jump` is the name of another host of this inventory",
        "identity_file" => "`identity_file` is the path of a private key file",
        "known_hosts" => "`known_hosts` is the path of a known_hosts file",
        "ssh_config" => "`ssh_config` is the path of an ssh_config file",
        "host_key" => "`host_key` is a public key such as `ssh-ed25519 AAAA…`",
        "environment" => "`environment` is a name such as `production` or `staging`",
        _ => return None,
    })
}
