//! Loading, validation and layering of inventories. Patterns and the Ansible import are tested
//! beside their code.

use std::path::PathBuf;

use serde_json::json;

use crate::diagnostic::{Diagnostic, SourceFile, Style};
use crate::inventory::{GroupName, Host, HostName, Inventory};

const PATH: &str = "/srv/ops/inventory/hosts.yaml";

fn parse(text: &str) -> Inventory {
    match Inventory::parse(SourceFile::new(PATH, text)) {
        Ok((inventory, _)) => inventory,
        Err(errors) => panic!("{}", render_all(&errors.sorted())),
    }
}

fn render_all(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|diagnostic| diagnostic.render(Style::Plain))
        .collect()
}

/// Every diagnostic (errors and warnings) the text produces, rendered plainly.
fn diagnostics(text: &str) -> String {
    match Inventory::parse(SourceFile::new("inventory/hosts.yaml", text)) {
        Ok((_, warnings)) => render_all(&warnings),
        Err(errors) => render_all(&errors.sorted()),
    }
}

fn host<'a>(inventory: &'a Inventory, name: &str) -> &'a Host {
    inventory
        .host(name)
        .unwrap_or_else(|| panic!("host `{name}`"))
}

#[test]
fn the_example_inventory_loads_without_warnings() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("inventory/hosts.yaml");
    let (inventory, warnings) = Inventory::load(&path).expect("example inventory is valid");
    assert!(warnings.is_empty(), "{}", render_all(&warnings));
    let names: Vec<&str> = inventory
        .hosts()
        .iter()
        .map(|host| host.name.as_str())
        .collect();
    assert_eq!(names, ["web1", "web2", "db1", "bastion"]);
    let groups: Vec<&str> = inventory.group_names().map(GroupName::as_str).collect();
    assert_eq!(groups, ["web", "db", "production"]);

    let web2 = host(&inventory, "web2");
    assert_eq!(web2.address, "10.0.0.12");
    assert_eq!(web2.port, Some(2222));
    assert_eq!(web2.user.as_deref(), Some("ops"));
    assert_eq!(web2.jump.as_ref().map(HostName::as_str), Some("bastion"));
    assert_eq!(web2.environment.as_deref(), Some("production"));
    assert_eq!(
        web2.groups
            .iter()
            .map(GroupName::as_str)
            .collect::<Vec<_>>(),
        ["web", "production"]
    );
    assert_eq!(
        serde_json::Value::Object(web2.vars.clone()),
        json!({ "backup_root": "/var/backups/app", "app_root": "/srv/app", "http_port": 8080 })
    );

    let db1 = host(&inventory, "db1");
    assert_eq!(
        (db1.user.as_deref(), db1.port),
        (Some("postgres"), Some(22))
    );
    assert_eq!(db1.vars["pg_version"], 16);

    let bastion = host(&inventory, "bastion");
    assert!(bastion.groups.is_empty());
    assert_eq!(bastion.environment, None);

    let text = std::fs::read(&path).expect("read");
    assert_eq!(
        inventory.digest(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&text))
    );
    assert_eq!(inventory.source().path, path);
}

#[test]
fn connection_keys_layer_defaults_then_groups_in_inventory_order_then_host() {
    let inventory = parse(
        "defaults: { user: d, port: 2200, address: shared.example, ssh_options: [ConnectTimeout=1, Compression=no] }
groups:
  first:  { hosts: [h1, h2], user: g1, port: 2201, ssh_options: [compression=yes, LogLevel=ERROR] }
  second: { hosts: [h1], user: g2, identity_file: keys/id }
hosts:
  h1: { user: own, ssh_options: [ConnectTimeout=3] }
  h2: {}
  h3: { address: 10.0.0.3 }
",
    );
    let h1 = host(&inventory, "h1");
    assert_eq!(h1.user.as_deref(), Some("own"), "host wins");
    assert_eq!(h1.port, Some(2201), "a group beats defaults");
    assert_eq!(
        h1.address, "shared.example",
        "defaults apply when nothing closer sets it"
    );
    assert_eq!(
        h1.ssh_options,
        ["ConnectTimeout=3", "compression=yes", "LogLevel=ERROR"],
        "merged per option, case-insensitively"
    );
    assert_eq!(
        h1.identity_file,
        Some(PathBuf::from("/srv/ops/inventory/keys/id"))
    );

    let h2 = host(&inventory, "h2");
    assert_eq!(h2.user.as_deref(), Some("g1"));
    assert_eq!(h2.identity_file, None);

    let inventory = parse(
        "groups:\n  first: { hosts: [h], user: a }\n  second: { hosts: [h], user: b }\nhosts:\n  h:\n",
    );
    assert_eq!(
        host(&inventory, "h").user.as_deref(),
        Some("b"),
        "the later group wins"
    );

    let inventory = parse("hosts:\n  plain:\n");
    let plain = host(&inventory, "plain");
    assert_eq!(plain.address, "plain", "address defaults to the host name");
    assert_eq!((plain.port, plain.user.as_deref()), (None, None));
}

#[test]
fn variables_merge_defaults_then_groups_in_inventory_order_then_host() {
    let inventory = parse(
        "defaults: { vars: { a: defaults, b: defaults, c: defaults, d: defaults, nested: { x: 1, y: 1 } } }
groups:
  parent: { children: [child], vars: { b: parent, c: parent } }
  child:  { hosts: [h], vars: { c: child, nested: { x: 2 } } }
  other:  { hosts: [h], vars: { d: other } }
hosts:
  h: { vars: { d: host } }
",
    );
    let h = host(&inventory, "h");
    assert_eq!(
        serde_json::Value::Object(h.vars.clone()),
        json!({ "a": "defaults", "b": "parent", "c": "child", "d": "host", "nested": { "x": 2 } }),
        "groups layer in the order of `groups:`; top-level keys are replaced whole"
    );
    assert_eq!(
        h.groups.iter().map(GroupName::as_str).collect::<Vec<_>>(),
        ["parent", "child", "other"]
    );
}

#[test]
fn environment_is_inherited_through_children() {
    let inventory = parse(
        "groups:
  production: { children: [web], environment: production }
  web: { children: [frontends] }
  frontends: { hosts: [web1] }
  staging: { hosts: [stage1], environment: staging }
  also-production: { hosts: [web1], environment: production }
hosts:
  web1:
  stage1:
  loose:
",
    );
    let environment = |name: &str| host(&inventory, name).environment.clone();
    assert_eq!(environment("web1").as_deref(), Some("production"));
    assert_eq!(environment("stage1").as_deref(), Some("staging"));
    assert_eq!(environment("loose"), None);
    assert_eq!(
        inventory
            .group_hosts("production")
            .iter()
            .map(|host| host.name.as_str())
            .collect::<Vec<_>>(),
        ["web1"]
    );
    assert_eq!(
        inventory.group("web").map(|group| group.children.len()),
        Some(1)
    );
}

#[test]
fn paths_resolve_against_the_inventory_directory_and_home() {
    let inventory = parse(
        "defaults: { known_hosts: ../known_hosts, ssh_config: /etc/ssh/custom }\nhosts:\n  h: { identity_file: ~/.ssh/id_ed25519 }\n",
    );
    let h = host(&inventory, "h");
    assert_eq!(
        h.known_hosts,
        Some(PathBuf::from("/srv/ops/inventory/../known_hosts"))
    );
    assert_eq!(h.ssh_config, Some(PathBuf::from("/etc/ssh/custom")));
    let home = std::env::home_dir().expect("tests run with a home directory");
    assert_eq!(h.identity_file, Some(home.join(".ssh/id_ed25519")));
}

#[test]
fn an_inherited_jump_naming_the_host_itself_is_skipped() {
    let inventory = parse(
        "defaults: { jump: outer }
groups:
  dmz: { hosts: [bastion, web1], jump: bastion }
hosts:
  outer:
  bastion:
  web1:
",
    );
    let jump = |name: &str| {
        host(&inventory, name)
            .jump
            .as_ref()
            .map(|jump| jump.as_str().to_owned())
    };
    assert_eq!(jump("web1").as_deref(), Some("bastion"));
    assert_eq!(
        jump("bastion").as_deref(),
        Some("outer"),
        "falls back to the next layer"
    );
    assert_eq!(jump("outer"), None);
}

/// Rendered diagnostics, exactly: location, caret line and hints.
#[test]
fn errors_render_with_file_line_column_caret_and_hint() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown key",
            "hosts:\n  web1: { address: 10.0.0.1, prot: 22 }\n",
            "error: unknown key `prot`
 --> inventory/hosts.yaml:2:30
  |
2 |   web1: { address: 10.0.0.1, prot: 22 }
  |                              ^^^^

hint: did you mean `port`?
hint: allowed keys here: `address`, `port`, `user`, `jump`, `identity_file`, `known_hosts`, `ssh_config`, `host_key`, `ssh_options`, `vars`
",
        ),
        (
            "wrong type",
            "groups:\n  web: { hosts: web1 }\nhosts:\n  web1:\n",
            "error: wrong type for `hosts`: expected a list
 --> inventory/hosts.yaml:2:17
  |
2 |   web: { hosts: web1 }
  |                 ^^^^

hint: at the top level `hosts` maps each host name to its settings; in a group it is a list of host names
",
        ),
        (
            "YAML syntax",
            "hosts:\n  web1:\n    address: a\n   port: 2\n",
            "error: while parsing a block mapping, did not find expected key
 --> inventory/hosts.yaml:4:4
  |
4 |    port: 2
  |    ^^^^^^^

hint: an inventory is YAML: check the indentation (spaces, not tabs) and closing brackets near here
",
        ),
        (
            "unknown host in a group",
            "groups:\n  web: { hosts: [web1, webb2] }\nhosts:\n  web1:\n  web2:\n",
            "error: group `web` lists unknown host `webb2`
 --> inventory/hosts.yaml:2:24
  |
2 |   web: { hosts: [web1, webb2] }
  |                        ^^^^^

hint: did you mean `web2`?
hint: define `webb2` under `hosts:`
",
        ),
        (
            "a group listed as a host",
            "groups:\n  web: { hosts: [web1, db] }\n  db: { hosts: [db1] }\nhosts:\n  web1:\n  db1:\n",
            "error: group `web` lists unknown host `db`
 --> inventory/hosts.yaml:2:24
  |
2 |   web: { hosts: [web1, db] }
  |                        ^^

hint: `db` is a group: list it under `children:`
",
        ),
        (
            "unknown child group",
            "groups:\n  production:\n    children:\n      - dbs\n  db: { hosts: [db1] }\nhosts:\n  db1:\n",
            "error: group `production` lists unknown child group `dbs`
 --> inventory/hosts.yaml:4:9
  |
4 |       - dbs
  |         ^^^

hint: did you mean `db`?
hint: define `dbs` under `groups:`
",
        ),
        (
            "children cycle",
            "groups:\n  a: { children: [b] }\n  b: { children: [a], hosts: [h] }\nhosts:\n  h:\n",
            "error: groups form a cycle through `children`: `a -> b -> a`
 --> inventory/hosts.yaml:3:19
  |
3 |   b: { children: [a], hosts: [h] }
  |                   ^

hint: remove one of these `children:` entries; a group cannot contain itself
",
        ),
        (
            "jump to an unknown host",
            "hosts:\n  web1: { jump: bastoin }\n  bastion:\n",
            "error: host `web1` jumps through unknown host `bastoin`
 --> inventory/hosts.yaml:2:17
  |
2 |   web1: { jump: bastoin }
  |                 ^^^^^^^

hint: did you mean `bastion`?
hint: define `bastoin` under `hosts:`
",
        ),
        (
            "jump to itself",
            "hosts:\n  web1: { jump: web1 }\n",
            "error: host `web1` jumps through itself
 --> inventory/hosts.yaml:2:17
  |
2 |   web1: { jump: web1 }
  |                 ^^^^

hint: remove `jump`, or name the bastion host to connect through
",
        ),
        (
            "jump to a group",
            "groups:\n  bastions: { hosts: [b1] }\nhosts:\n  b1:\n  web1: { jump: bastions }\n",
            "error: host `web1` jumps through unknown host `bastions`
 --> inventory/hosts.yaml:5:17
  |
5 |   web1: { jump: bastions }
  |                 ^^^^^^^^

hint: `bastions` is a group; `jump` names one host
",
        ),
        (
            "jump cycle",
            "hosts:\n  a: { jump: b }\n  b: { jump: a }\n",
            "error: jump hosts form a cycle: `a -> b -> a`
 --> inventory/hosts.yaml:2:3
  |
2 |   a: { jump: b }
  |   ^

hint: a host cannot reach itself through its jump hosts; the bastion at the end of a chain needs no `jump`
",
        ),
        (
            "both a host and a group",
            "groups:\n  web1: { hosts: [web1] }\nhosts:\n  web1:\n",
            "error: `web1` is both a host and a group
 --> inventory/hosts.yaml:2:3
  |
2 |   web1: { hosts: [web1] }
  |   ^^^^

hint: rename the group or the host: host patterns could not tell them apart
",
        ),
        (
            "invalid port",
            "defaults:\n  port: 70000\nhosts:\n  web1:\n",
            "error: defaults has invalid port `70000`
 --> inventory/hosts.yaml:2:9
  |
2 |   port: 70000
  |         ^^^^^

hint: a port is a number from 1 to 65535
",
        ),
        (
            "ssh option without `=`",
            "groups:\n  web: { hosts: [web1], ssh_options: [\"ServerAliveInterval 30\"] }\nhosts:\n  web1:\n",
            "error: group `web` has ssh option `ServerAliveInterval 30` that is not `Key=Value`
 --> inventory/hosts.yaml:2:39
  |
2 |   web: { hosts: [web1], ssh_options: [\"ServerAliveInterval 30\"] }
  |                                       ^^^^^^^^^^^^^^^^^^^^^^^^

hint: write it as `ssh -o` takes it, e.g. `ServerAliveInterval=30`
",
        ),
        (
            "ssh option outside the allowlist",
            "hosts:\n  web1: { ssh_options: [ConnectTimeout=5, \"ProxyCommand=sh -c id\"] }\n",
            "error: host `web1` has ssh option `ProxyCommand`, which is not allowed
 --> inventory/hosts.yaml:2:43
  |
2 |   web1: { ssh_options: [ConnectTimeout=5, \"ProxyCommand=sh -c id\"] }
  |                                           ^^^^^^^^^^^^^^^^^^^^^^^

hint: use `jump:` to connect through a bastion host
hint: `ssh_options` only tune the connection; allowed options: `AddressFamily`, `Ciphers`, `Compression`, `ConnectionAttempts`, `ConnectTimeout`, `IdentitiesOnly`, `IPQoS`, `KexAlgorithms`, `LogLevel`, `MACs`, `ServerAliveCountMax`, `ServerAliveInterval`, `TCPKeepAlive`
",
        ),
        (
            "ssh algorithm list that widens the defaults",
            "hosts:\n  web1: { ssh_options: [Ciphers=+3des-cbc] }\n",
            "error: host `web1` has ssh option `Ciphers` with `+3des-cbc`, which is not enabled by default
 --> inventory/hosts.yaml:2:25
  |
2 |   web1: { ssh_options: [Ciphers=+3des-cbc] }
  |                         ^^^^^^^^^^^^^^^^^

hint: `Ciphers` may only list algorithms OpenSSH enables by default, without `+`, `-` or `^`: `chacha20-poly1305@openssh.com`, `aes128-ctr`, `aes192-ctr`, `aes256-ctr`, `aes128-gcm@openssh.com`, `aes256-gcm@openssh.com`
",
        ),
        (
            "conflicting environments",
            "groups:\n  prod: { hosts: [web1], environment: production }\n  stage: { hosts: [web1], environment: staging }\nhosts:\n  web1:\n",
            "error: host `web1` has conflicting environments: `production` from group `prod`, `staging` from group `stage`
 --> inventory/hosts.yaml:5:3
  |
5 |   web1:
  |   ^^^^

hint: a host has one environment: align the groups' `environment:` values or move the host out of one of them
",
        ),
        (
            "environment on a host",
            "hosts:\n  web1: { environment: staging }\n",
            "error: unknown key `environment`
 --> inventory/hosts.yaml:2:11
  |
2 |   web1: { environment: staging }
  |           ^^^^^^^^^^^

hint: allowed keys here: `address`, `port`, `user`, `jump`, `identity_file`, `known_hosts`, `ssh_config`, `host_key`, `ssh_options`, `vars`
hint: `environment` is set on groups; hosts inherit it
",
        ),
        (
            "reserved and invalid names",
            "groups:\n  all: { hosts: [\"web 1\"] }\nhosts:\n  \"web 1\":\n",
            "error: group name `all` is reserved: host patterns read it as every host
 --> inventory/hosts.yaml:2:3
  |
2 |   all: { hosts: [\"web 1\"] }
  |   ^^^

hint: choose another name; `all` already selects every host
error: host name `web 1` contains ` `
 --> inventory/hosts.yaml:4:3
  |
4 |   \"web 1\":
  |   ^^^^^^^

hint: names start with a letter, digit or `_` and continue with letters, digits, `_`, `.` or `-`
",
        ),
        (
            "duplicate host",
            "hosts:\n  web1:\n  web1:\n",
            "error: duplicate key `web1`
 --> inventory/hosts.yaml:3:3
  |
3 |   web1:
  |   ^^^^

hint: a key may appear once in a mapping; merge the two entries
",
        ),
        (
            "invalid host key and empty values",
            "hosts:\n  web1: { host_key: \"ssh-ed25519\", address: \"\" }\n",
            "error: host `web1` has an invalid `host_key`
 --> inventory/hosts.yaml:2:21
  |
2 |   web1: { host_key: \"ssh-ed25519\", address: \"\" }
  |                     ^^^^^^^^^^^^^

hint: paste the server's public key line, e.g. `ssh-ed25519 AAAAC3Nza…` (from `ssh-keyscan -t ed25519 HOST` or /etc/ssh/ssh_host_ed25519_key.pub)
error: host `web1` has an empty `address`
 --> inventory/hosts.yaml:2:45
  |
2 |   web1: { host_key: \"ssh-ed25519\", address: \"\" }
  |                                             ^^

hint: set a value or remove `address`
",
        ),
        (
            "warnings",
            "groups:\n  empty: {}\n  web: { hosts: [web1, web1] }\nhosts:\n  web1:\n",
            "warning: group `empty` has no hosts and no children
 --> inventory/hosts.yaml:2:3
  |
2 |   empty: {}
  |   ^^^^^

hint: list its members under `hosts:` or `children:`, or remove it
warning: group `web` lists host `web1` twice
 --> inventory/hosts.yaml:3:24
  |
3 |   web: { hosts: [web1, web1] }
  |                        ^^^^
",
        ),
    ];
    for (name, text, expected) in cases {
        assert_eq!(diagnostics(text), *expected, "case: {name}");
    }
}

#[test]
fn every_error_is_reported_in_one_pass() {
    let text = "groups:
  web: { hosts: [web1, nope], children: [missing] }
  loop: { children: [loop] }
hosts:
  web1: { port: 0, jump: ghost, ssh_options: [bad] }
";
    let errors = Inventory::parse(SourceFile::new("i.yaml", text)).expect_err("invalid");
    let messages: Vec<String> = errors
        .sorted()
        .into_iter()
        .map(|error| error.message)
        .collect();
    assert_eq!(
        messages,
        [
            "group `web` lists unknown host `nope`",
            "group `web` lists unknown child group `missing`",
            "groups form a cycle through `children`: `loop -> loop`",
            "host `web1` has invalid port `0`",
            "host `web1` jumps through unknown host `ghost`",
            "host `web1` has ssh option `bad` that is not `Key=Value`",
        ]
    );
}

#[test]
fn cycles_are_each_reported_once_with_their_path() {
    let cases: &[(&str, &[&str])] = &[
        ("a: { children: [a] }", &["`a -> a`"]),
        (
            "a: { children: [b] }\n  b: { children: [c] }\n  c: { children: [a] }",
            &["`a -> b -> c -> a`"],
        ),
        (
            "a: { children: [b, c] }\n  b: { children: [a] }\n  c: { children: [c] }",
            &["`a -> b -> a`", "`c -> c`"],
        ),
        ("a: { children: [b] }\n  b: { children: [c] }\n  c: {}", &[]),
        (
            "a: { children: [c] }\n  b: { children: [c] }\n  c: { hosts: [h] }",
            &[],
        ),
    ];
    for (groups, expected) in cases {
        let text = format!("groups:\n  {groups}\nhosts:\n  h:\n");
        let found: Vec<String> = match Inventory::parse(SourceFile::new("i.yaml", text)) {
            Ok(_) => Vec::new(),
            Err(errors) => errors
                .sorted()
                .into_iter()
                .filter_map(|error| {
                    error
                        .message
                        .split_once(": ")
                        .map(|(_, cycle)| cycle.to_owned())
                })
                .collect(),
        };
        assert_eq!(found, *expected, "{groups}");
    }
}

#[test]
fn an_empty_file_is_an_inventory_without_hosts() {
    let (inventory, warnings) = Inventory::parse(SourceFile::new("i.yaml", "")).expect("valid");
    assert!(inventory.hosts().is_empty());
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].message, "the inventory defines no hosts");
}

#[test]
fn load_reports_a_missing_file() {
    let errors =
        Inventory::load(std::path::Path::new("/nonexistent/hosts.yaml")).expect_err("missing");
    assert!(errors.iter().next().is_some_and(|error| {
        error
            .message
            .starts_with("cannot read `/nonexistent/hosts.yaml`")
    }));
}
