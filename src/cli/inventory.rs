//! `opsgate inventory [list|graph|import]`: look at the inventory, or convert an Ansible one.
//!
//! Ungated (SPEC §4.1): it reads files and prints, and never contacts a host. Data goes to the
//! writer it is given (stdout); warnings come back to the caller, which renders them on stderr
//! with every other diagnostic.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::args::{InventoryArgs, InventoryCommand};
use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile, Span};
use crate::inventory::{GroupName, Host, ImportError, Inventory, PatternError, import_ansible};

/// Why `opsgate inventory` failed.
#[derive(Debug, thiserror::Error)]
pub enum InventoryCliError {
    /// The inventory (or a converted one) is invalid; each diagnostic says where and why.
    #[error(transparent)]
    Inventory(#[from] Diagnostics),
    /// The host pattern given to `list` is invalid.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// The Ansible inventory could not be read.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// The file named on the command line.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The Ansible inventory could not be converted.
    #[error("cannot import `{}`", path.display())]
    Import {
        /// The file named on the command line.
        path: PathBuf,
        /// Why.
        #[source]
        source: ImportError,
    },
    /// Writing to the output failed (a closed pipe, a full disk).
    #[error("cannot write the output")]
    Output(#[from] io::Error),
}

impl InventoryCliError {
    /// Whether the user's input is at fault (exit 2): the inventory or a host pattern.
    #[must_use]
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            InventoryCliError::Inventory(_) | InventoryCliError::Pattern(_)
        )
    }

    /// Ways to fix the problem.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            InventoryCliError::Inventory(_) | InventoryCliError::Output(_) => Vec::new(),
            InventoryCliError::Pattern(error) => error.hints(),
            InventoryCliError::Read { .. } => {
                vec!["check the path and that the file is readable".to_owned()]
            }
            InventoryCliError::Import { source, .. } => source.hints(),
        }
    }
}

/// Runs `opsgate inventory …` against the inventory at `inventory_path`, writing data to `out`
/// (`list` prints every resolved setting of each host as a JSON array under the global `--json`).
/// Returns the warnings to show on stderr.
pub(crate) fn run(
    args: &InventoryArgs,
    inventory_path: &Path,
    json: bool,
    out: &mut dyn Write,
) -> Result<Vec<Diagnostic>, InventoryCliError> {
    let format = if json { Format::Json } else { Format::Table };
    match &args.command {
        None => list(inventory_path, None, format, out),
        Some(InventoryCommand::List { pattern }) => {
            list(inventory_path, pattern.as_deref(), format, out)
        }
        Some(InventoryCommand::Graph) => graph(inventory_path, out),
        Some(InventoryCommand::Import { file }) => import(file, out),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Table,
    Json,
}

fn list(
    inventory_path: &Path,
    pattern: Option<&str>,
    format: Format,
    out: &mut dyn Write,
) -> Result<Vec<Diagnostic>, InventoryCliError> {
    let (inventory, mut warnings) = Inventory::load(inventory_path)?;
    let hosts: Vec<&Host> = match pattern {
        Some(pattern) => inventory.select(pattern)?,
        None => inventory.hosts().iter().collect(),
    };
    if let (Some(pattern), true) = (pattern, hosts.is_empty()) {
        warnings.push(
            Diagnostic::warning(format!("host pattern `{pattern}` selects no host"))
                .at(inventory.source(), Span::default()),
        );
    }
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &hosts).map_err(io::Error::from)?;
            writeln!(out)?;
        }
        Format::Table => out.write_all(table(&hosts).as_bytes())?,
    }
    Ok(warnings)
}

/// One line per host: name, where ssh connects, login, groups, environment.
fn table(hosts: &[&Host]) -> String {
    let header = ["HOST", "ADDRESS", "USER", "GROUPS", "ENVIRONMENT"].map(str::to_owned);
    let mut rows = vec![header];
    for host in hosts {
        let address = match (host.port, host.address.contains(':')) {
            (Some(port), true) => format!("[{}]:{port}", host.address),
            (Some(port), false) => format!("{}:{port}", host.address),
            (None, _) => host.address.clone(),
        };
        let groups: Vec<&str> = host.groups.iter().map(GroupName::as_str).collect();
        rows.push([
            host.name.to_string(),
            address,
            host.user.clone().unwrap_or_else(|| "-".to_owned()),
            if groups.is_empty() {
                "-".to_owned()
            } else {
                groups.join(",")
            },
            host.environment.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    let mut widths = [0; 5];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in &rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

fn graph(inventory_path: &Path, out: &mut dyn Write) -> Result<Vec<Diagnostic>, InventoryCliError> {
    let (inventory, warnings) = Inventory::load(inventory_path)?;
    out.write_all(tree(&inventory).as_bytes())?;
    Ok(warnings)
}

/// `@all` with every top-level group (one that is nobody's child), its children and hosts
/// below it, then the hosts in no group. Groups are marked `@` as `ansible-inventory --graph`
/// does, so names read unambiguously without colour.
fn tree(inventory: &Inventory) -> String {
    enum Node<'a> {
        Group(&'a str),
        Host(&'a str),
    }
    fn children<'a>(inventory: &'a Inventory, group: &str) -> Vec<Node<'a>> {
        let Some(group) = inventory.group(group) else {
            return Vec::new();
        };
        let groups = group
            .children
            .iter()
            .map(|child| Node::Group(child.as_str()));
        groups
            .chain(group.hosts.iter().map(|host| Node::Host(host.as_str())))
            .collect()
    }
    fn write_nodes(inventory: &Inventory, nodes: &[Node<'_>], prefix: &str, text: &mut String) {
        for (index, node) in nodes.iter().enumerate() {
            let last = index + 1 == nodes.len();
            let (branch, continuation) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            match node {
                Node::Host(name) => {
                    let _ = writeln!(text, "{prefix}{branch}{name}");
                }
                Node::Group(name) => {
                    let environment = inventory
                        .group(name)
                        .and_then(|group| group.environment.as_deref())
                        .map(|environment| format!("  (environment: {environment})"))
                        .unwrap_or_default();
                    let _ = writeln!(text, "{prefix}{branch}@{name}{environment}");
                    let nested = children(inventory, name);
                    write_nodes(inventory, &nested, &format!("{prefix}{continuation}"), text);
                }
            }
        }
    }
    let mut top: Vec<Node<'_>> = inventory
        .groups()
        .iter()
        .filter(|group| {
            !inventory
                .groups()
                .iter()
                .any(|parent| parent.children.contains(&group.name))
        })
        .map(|group| Node::Group(group.name.as_str()))
        .collect();
    top.extend(
        inventory
            .hosts()
            .iter()
            .filter(|host| host.groups.is_empty())
            .map(|host| Node::Host(host.name.as_str())),
    );
    let mut text = String::from("@all\n");
    write_nodes(inventory, &top, "", &mut text);
    text
}

/// Converts the Ansible inventory at `file`, checks the result as an opsgate inventory, and
/// prints it; nothing is printed when the result would not load, since the output is usually
/// redirected into `inventory/hosts.yaml`.
fn import(file: &Path, out: &mut dyn Write) -> Result<Vec<Diagnostic>, InventoryCliError> {
    let text = std::fs::read_to_string(file).map_err(|source| InventoryCliError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let converted = import_ansible(&text).map_err(|source| InventoryCliError::Import {
        path: file.to_path_buf(),
        source,
    })?;
    // Named after the source so that a diagnostic about the conversion says where it came from;
    // relative paths in the output resolve against the directory the file will be saved in.
    let checked = SourceFile::new(format!("{} (converted)", file.display()), converted);
    let (_, warnings) = Inventory::parse(checked.clone())?;
    out.write_all(checked.text.as_bytes())?;
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{InventoryCliError, run};
    use crate::cli::args::{Command, parse_command};
    use crate::diagnostic::Style;

    const INVENTORY: &str = "defaults: { user: ops, port: 22 }
groups:
  web:        { hosts: [web1, web2] }
  db:         { hosts: [db1] }
  production: { children: [web, db], environment: production }
hosts:
  web1: { address: 10.0.0.11 }
  web2: { address: 10.0.0.12, port: 2222, jump: bastion }
  db1:  { address: db1.internal, user: postgres }
  bastion: { address: \"fd00::1\" }
";

    fn run_in(directory: &Path, arguments: &[&str]) -> Result<String, InventoryCliError> {
        let json = arguments.contains(&"--json");
        let arguments = arguments
            .iter()
            .copied()
            .filter(|argument| *argument != "--json");
        let Ok(Command::Inventory(command)) =
            parse_command(std::iter::once("inventory").chain(arguments))
        else {
            panic!("the arguments do not parse");
        };
        let mut out = Vec::new();
        run(&command, &directory.join("hosts.yaml"), json, &mut out)?;
        Ok(String::from_utf8(out).expect("utf-8"))
    }

    #[test]
    fn list_graph_and_json_print_the_inventory() {
        let directory = tempfile::tempdir().expect("temp dir");
        std::fs::write(directory.path().join("hosts.yaml"), INVENTORY).expect("write");
        let table = "\
HOST     ADDRESS          USER      GROUPS          ENVIRONMENT
web1     10.0.0.11:22     ops       web,production  production
web2     10.0.0.12:2222   ops       web,production  production
db1      db1.internal:22  postgres  db,production   production
bastion  [fd00::1]:22     ops       -               -
";
        let cases: &[(&[&str], &str)] = &[
            (&[], table),
            (&["list"], table),
            (
                &["list", "production:!db1"],
                "\
HOST  ADDRESS         USER  GROUPS          ENVIRONMENT
web1  10.0.0.11:22    ops   web,production  production
web2  10.0.0.12:2222  ops   web,production  production
",
            ),
            (
                &["graph"],
                "\
@all
├── @production  (environment: production)
│   ├── @web
│   │   ├── web1
│   │   └── web2
│   └── @db
│       └── db1
└── bastion
",
            ),
        ];
        for (arguments, expected) in cases {
            assert_eq!(
                run_in(directory.path(), arguments).expect("runs"),
                *expected,
                "{arguments:?}"
            );
        }

        let json = run_in(directory.path(), &["list", "web2", "--json"]).expect("runs");
        let hosts: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(hosts[0]["name"], "web2");
        assert_eq!(hosts[0]["port"], 2222);
        assert_eq!(hosts[0]["jump"], "bastion");
        assert_eq!(hosts[0]["groups"], serde_json::json!(["web", "production"]));
    }

    #[test]
    fn errors_carry_hints() {
        let directory = tempfile::tempdir().expect("temp dir");
        std::fs::write(directory.path().join("hosts.yaml"), INVENTORY).expect("write");
        let error = run_in(directory.path(), &["list", "webx"]).expect_err("unknown name");
        assert!(matches!(error, InventoryCliError::Pattern(_)));
        assert!(
            error.hints()[0].starts_with("did you mean"),
            "{:?}",
            error.hints()
        );

        std::fs::write(
            directory.path().join("hosts.yaml"),
            "hosts:\n  a: { port: 0 }\n",
        )
        .expect("write");
        let Err(InventoryCliError::Inventory(diagnostics)) = run_in(directory.path(), &["graph"])
        else {
            panic!("an invalid inventory is an error");
        };
        let rendered = diagnostics.sorted()[0].render(Style::Plain);
        assert!(rendered.contains("hosts.yaml:2:14"), "{rendered}");

        let error =
            run_in(directory.path(), &["import", "/nonexistent.yaml"]).expect_err("missing");
        assert_eq!(error.to_string(), "cannot read `/nonexistent.yaml`");
    }

    #[test]
    fn import_prints_a_checked_opsgate_inventory() {
        let directory = tempfile::tempdir().expect("temp dir");
        let ansible = directory.path().join("ansible.yaml");
        std::fs::write(
            &ansible,
            "all:\n  children:\n    web:\n      hosts:\n        web1: { ansible_host: 10.0.0.1 }\n",
        )
        .expect("write");
        let path = ansible.to_str().expect("utf-8 path");
        let output = run_in(directory.path(), &["import", path]).expect("imports");
        assert!(
            output.ends_with(
                "groups:\n  web:\n    hosts: [web1]\nhosts:\n  web1:\n    address: 10.0.0.1\n"
            ),
            "{output}"
        );

        std::fs::write(&ansible, "all:\n  hostz: {}\n").expect("write");
        let error = run_in(directory.path(), &["import", path]).expect_err("unexpected key");
        assert!(matches!(error, InventoryCliError::Import { .. }));
        assert!(!error.hints().is_empty());

        std::fs::write(&ansible, "all:\n  hosts:\n    web1: { ansible_port: 0 }\n").expect("write");
        let Err(InventoryCliError::Inventory(diagnostics)) =
            run_in(directory.path(), &["import", path])
        else {
            panic!("a conversion that does not load is an error");
        };
        assert_eq!(
            diagnostics.sorted()[0].message,
            "host `web1` has invalid port `0`"
        );
    }
}
