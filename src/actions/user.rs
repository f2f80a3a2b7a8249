//! `user`: ensure an OS account exists with the given shell, home and supplementary groups, or
//! that it does not exist.
//!
//! Query with `getent passwd` and `id -Gn` (so accounts from any NSS source count), change with
//! the shadow tools every Linux distribution ships: `useradd`, `usermod`, `userdel`. What the
//! action deliberately leaves alone, because the safe default for an account is to touch less:
//!
//! - **Groups not named** stay: `groups` adds the account to missing groups
//!   (`usermod -a -G`) and never removes it from others, which other runbooks or packages may
//!   have added on purpose.
//! - **Groups are not created**: a named group that does not exist fails the step. A typo in a
//!   group name would otherwise silently create a new, empty group; create groups explicitly.
//! - **A changed `home` moves nothing**: `usermod --home` without `--move-home`, so the old
//!   directory and its data stay where they are; moving data is a migration, not a setting.
//! - **`state: absent` keeps the home** (`userdel` without `--remove`), so removing an account
//!   never deletes data; delete the directory with a `file: state: absent` step if you mean it.
//! - **`system`** only matters when the account is created (`useradd --system`, no home is
//!   created); an existing account is never converted.
//!
//! A new ordinary account gets its home created (`--create-home`); a new system account does
//! not, as `useradd` and `adduser --system` agree. The shell defaults to `useradd`'s (on Debian
//! `/bin/sh`): a system account that nobody logs in to should say `shell: /usr/sbin/nologin`.

use std::fmt::Write as _;

use thiserror::Error;

use super::{Context, Outcome, RunMode, quote};
use crate::runbook::model::{Presence, User};
use crate::transport::{Transport, TransportError};

/// The account as the host has it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    home: String,
    shell: String,
    /// Every group the account is in, its primary group included.
    groups: Vec<String>,
}

/// What the query found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    account: Option<Account>,
    /// Named groups that do not exist on the host.
    missing_groups: Vec<String>,
}

/// What the step asks for, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted<'a> {
    name: &'a str,
    state: Presence,
    groups: Vec<&'a str>,
    shell: Option<&'a str>,
    home: Option<&'a str>,
    system: bool,
}

/// Why the step cannot be carried out as written, before or after looking at the host.
#[derive(Debug, Error, PartialEq, Eq)]
enum Invalid {
    #[error("the {0} is empty")]
    EmptyWord(&'static str),
    #[error("`{word}` is not a valid {what} (no `:`, `,`, `/`, whitespace or leading `-`)")]
    BadWord { word: String, what: &'static str },
    #[error("{field} `{value}` is not an absolute path without `:` or newlines")]
    BadPath { field: &'static str, value: String },
    #[error(
        "account `{name}`: {} {} {} not exist on the host; `user` does not create \
         groups — create them in an earlier step (e.g. `command: groupadd --system NAME`) \
         or fix the name",
        if groups.len() == 1 { "group" } else { "groups" },
        crate::runbook::model::backticked(groups),
        if groups.len() == 1 { "does" } else { "do" }
    )]
    MissingGroups { name: String, groups: Vec<String> },
}

/// What to do: nothing, or one command and what it changes in words.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    Nothing,
    Change {
        kind: ChangeKind,
        command: String,
        summary: String,
    },
}

/// Which shadow tool the change uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangeKind {
    Create,
    Modify,
    Remove,
}

impl ChangeKind {
    /// For `--check`: "would create account …".
    fn verb(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Modify => "change",
            ChangeKind::Remove => "remove",
        }
    }

    /// After the fact: "created account …".
    fn done(self) -> &'static str {
        match self {
            ChangeKind::Create => "created",
            ChangeKind::Modify => "changed",
            ChangeKind::Remove => "removed",
        }
    }
}

/// Queries the account, decides, then changes it (unless `--check`).
pub(super) async fn run<T: Transport>(
    context: &Context<'_, T>,
    user: &User<String>,
    system: bool,
) -> Result<Outcome, TransportError> {
    let wanted = match parse(user, system) {
        Ok(wanted) => wanted,
        Err(invalid) => return Ok(Outcome::failed(invalid.to_string())),
    };
    let name = wanted.name;
    // Groups only matter for an account that must exist.
    let groups: &[&str] = match wanted.state {
        Presence::Present => &wanted.groups,
        Presence::Absent => &[],
    };
    let output = context.shell(query_script(name, groups)).await?;
    if !output.success() {
        return Ok(Outcome::failed_with(
            format!("cannot look up account `{name}`: {}", output.failure()),
            &output,
        ));
    }
    let Some(observed) = parse_query(name, &output.stdout_text()) else {
        return Ok(Outcome::failed_with(
            format!("unexpected answer looking up account `{name}`"),
            &output,
        ));
    };
    let (kind, command, summary) = match decide(&wanted, &observed) {
        Ok(Plan::Nothing) => return Ok(Outcome::ok(None)),
        Ok(Plan::Change {
            kind,
            command,
            summary,
        }) => (kind, command, summary),
        // Under --check, the earlier step that would create the group did not run.
        Err(reason) if context.mode == RunMode::Check => {
            return Ok(Outcome::skipped(format!(
                "check mode: {reason} (an earlier step that --check did not run may create it)"
            )));
        }
        Err(reason) => return Ok(Outcome::failed(reason.to_string())),
    };
    if context.mode == RunMode::Check {
        return Ok(Outcome::changed(format!(
            "would {} account {summary}",
            kind.verb()
        )));
    }
    let output = context.shell(command).await?;
    if !output.success() {
        return Ok(Outcome::failed_with(
            format!("cannot change account `{name}`: {}", output.failure()),
            &output,
        ));
    }
    Ok(Outcome::changed(format!(
        "{} account {summary}",
        kind.done()
    )))
}

/// Parses the rendered fields and refuses names the shadow tools would misread.
fn parse(user: &User<String>, system: bool) -> Result<Wanted<'_>, Invalid> {
    let name = user.name.trim();
    check_word(name, "account name")?;
    let groups = user
        .groups
        .iter()
        .map(|group| {
            let group = group.trim();
            check_word(group, "group name").map(|()| group)
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (field, value) in [("shell", &user.shell), ("home", &user.home)] {
        if let Some(value) = value
            && (!value.starts_with('/') || value.contains([':', '\n']))
        {
            return Err(Invalid::BadPath {
                field,
                value: value.clone(),
            });
        }
    }
    Ok(Wanted {
        name,
        state: user.state,
        groups,
        shell: user.shell.as_deref(),
        home: user.home.as_deref(),
        system,
    })
}

/// Account and group names end up in `/etc/passwd` and `/etc/group` (`:`- and `,`-separated)
/// and on command lines after options: refuse what would break either.
fn check_word(word: &str, what: &'static str) -> Result<(), Invalid> {
    if word.is_empty() {
        return Err(Invalid::EmptyWord(what));
    }
    if word.starts_with('-')
        || word
            .chars()
            .any(|c| matches!(c, ':' | ',' | '/') || c.is_whitespace() || c.is_control())
    {
        return Err(Invalid::BadWord {
            word: word.to_owned(),
            what,
        });
    }
    Ok(())
}

/// One command that prints the passwd entry and groups of `name` (or `absent`), then one
/// `missing-group` line per named group the host does not have.
fn query_script(name: &str, groups: &[&str]) -> String {
    let mut script = format!(
        "n={}; entry=$(getent passwd -- \"$n\"); rc=$?; \
         case $rc in \
           0) printf 'passwd %s\\n' \"$entry\"; printf 'groups %s\\n' \"$(id -Gn -- \"$n\")\";; \
           2) echo absent;; \
           *) echo \"getent passwd exited with $rc\" >&2; exit 1;; \
         esac",
        quote(name)
    );
    if !groups.is_empty() {
        let words: Vec<String> = groups.iter().map(|group| quote(group)).collect();
        let _ = write!(
            script,
            "; for g in {}; do getent group -- \"$g\" >/dev/null || printf 'missing-group %s\\n' \"$g\"; done",
            words.join(" ")
        );
    }
    script
}

/// Reads [`query_script`]'s answer; `None` when it is not one.
fn parse_query(name: &str, answer: &str) -> Option<Observed> {
    let mut entry = None;
    let mut groups = None;
    let mut absent = false;
    let mut missing_groups = Vec::new();
    for line in answer.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "passwd" => entry = Some(value),
            "groups" => groups = Some(value.split_whitespace().map(str::to_owned).collect()),
            "absent" => absent = true,
            "missing-group" => missing_groups.push(value.to_owned()),
            _ => return None,
        }
    }
    let account = match (entry, absent) {
        (None, true) => None,
        (Some(entry), false) => {
            // name:password:uid:gid:gecos:home:shell
            let fields: Vec<&str> = entry.split(':').collect();
            let [login, _, _, _, _, home, shell] = fields.as_slice() else {
                return None;
            };
            // `getent passwd 1000` answers for uid 1000: that is not an account named `1000`.
            if *login == name {
                Some(Account {
                    home: (*home).to_owned(),
                    shell: (*shell).to_owned(),
                    groups: groups?,
                })
            } else {
                None
            }
        }
        _ => return None,
    };
    Some(Observed {
        account,
        missing_groups,
    })
}

/// Compares the wanted account with the observed one.
fn decide(wanted: &Wanted<'_>, observed: &Observed) -> Result<Plan, Invalid> {
    let name = wanted.name;
    let quoted = quote(name);
    if wanted.state == Presence::Absent {
        return Ok(match &observed.account {
            None => Plan::Nothing,
            Some(account) => Plan::Change {
                kind: ChangeKind::Remove,
                command: format!("userdel -- {quoted}"),
                summary: format!("`{name}` (home {} left in place)", account.home),
            },
        });
    }
    if !observed.missing_groups.is_empty() {
        return Err(Invalid::MissingGroups {
            name: name.to_owned(),
            groups: observed.missing_groups.clone(),
        });
    }
    let Some(account) = &observed.account else {
        let mut options = Vec::new();
        let mut described = Vec::new();
        if wanted.system {
            options.push("--system".to_owned());
            described.push("system".to_owned());
        }
        if let Some(shell) = wanted.shell {
            options.push(format!("--shell {}", quote(shell)));
            described.push(format!("shell {shell}"));
        }
        if let Some(home) = wanted.home {
            options.push(format!("--home-dir {}", quote(home)));
            described.push(format!("home {home}"));
        }
        if !wanted.system {
            options.push("--create-home".to_owned());
        }
        if !wanted.groups.is_empty() {
            let groups = wanted.groups.join(",");
            options.push(format!("--groups {}", quote(&groups)));
            described.push(format!("groups {}", wanted.groups.join(", ")));
        }
        options.push(format!("-- {quoted}"));
        let details = if described.is_empty() {
            String::new()
        } else {
            format!(" ({})", described.join(", "))
        };
        return Ok(Plan::Change {
            kind: ChangeKind::Create,
            command: format!("useradd {}", options.join(" ")),
            summary: format!("`{name}`{details}"),
        });
    };
    let mut options = Vec::new();
    let mut described = Vec::new();
    if let Some(shell) = wanted.shell.filter(|shell| *shell != account.shell) {
        options.push(format!("--shell {}", quote(shell)));
        described.push(format!("shell {} → {shell}", account.shell));
    }
    if let Some(home) = wanted.home.filter(|home| !same_path(home, &account.home)) {
        options.push(format!("--home {}", quote(home)));
        described.push(format!("home {} → {home} (files not moved)", account.home));
    }
    let mut missing: Vec<&str> = wanted
        .groups
        .iter()
        .copied()
        .filter(|group| !account.groups.iter().any(|have| have == group))
        .collect();
    missing.dedup();
    if !missing.is_empty() {
        options.push(format!("--append --groups {}", quote(&missing.join(","))));
        described.push(format!("added to groups {}", missing.join(", ")));
    }
    if options.is_empty() {
        return Ok(Plan::Nothing);
    }
    options.push(format!("-- {quoted}"));
    Ok(Plan::Change {
        kind: ChangeKind::Modify,
        command: format!("usermod {}", options.join(" ")),
        summary: format!("`{name}`: {}", described.join(", ")),
    })
}

/// `/srv/web/` and `/srv/web` name the same home.
fn same_path(left: &str, right: &str) -> bool {
    let trim = |path: &str| {
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() { "/" } else { trimmed }.to_owned()
    };
    trim(left) == trim(right)
}

#[cfg(test)]
mod tests {
    use super::{
        Account, ChangeKind, Observed, Plan, Wanted, check_word, decide, parse_query, query_script,
    };
    use crate::runbook::model::Presence;

    fn wanted<'a>(groups: &[&'a str]) -> Wanted<'a> {
        Wanted {
            name: "web",
            state: Presence::Present,
            groups: groups.to_vec(),
            shell: None,
            home: None,
            system: false,
        }
    }

    fn existing(shell: &str, home: &str, groups: &[&str]) -> Observed {
        Observed {
            account: Some(Account {
                home: home.into(),
                shell: shell.into(),
                groups: groups.iter().map(ToString::to_string).collect(),
            }),
            missing_groups: vec![],
        }
    }

    const ABSENT: Observed = Observed {
        account: None,
        missing_groups: vec![],
    };

    #[test]
    fn query_answers_parse() {
        assert_eq!(
            parse_query(
                "web",
                "passwd web:x:999:999::/srv/web:/usr/sbin/nologin\ngroups web www-data"
            ),
            Some(existing(
                "/usr/sbin/nologin",
                "/srv/web",
                &["web", "www-data"]
            ))
        );
        assert_eq!(
            parse_query("web", "absent\nmissing-group nope"),
            Some(Observed {
                account: None,
                missing_groups: vec!["nope".into()]
            })
        );
        assert_eq!(
            parse_query(
                "1000",
                "passwd alice:x:1000:1000::/home/alice:/bin/bash\ngroups alice"
            ),
            Some(ABSENT),
            "a uid match is not an account of that name"
        );
        for garbled in ["", "passwd web:x:1", "passwd web:x:1:1::/h:/s", "what"] {
            assert_eq!(parse_query("web", garbled), None, "{garbled:?}");
        }
    }

    /// The query only reads (`getent`, `id`), so it may run on the machine running the tests.
    #[test]
    fn the_query_script_runs_in_a_posix_shell() {
        let run = |script: String| {
            let output = std::process::Command::new("/bin/sh")
                .args(["-c", &script])
                .output()
                .expect("running /bin/sh");
            assert!(output.status.success(), "{output:?}");
            String::from_utf8(output.stdout).expect("utf-8")
        };
        let root = parse_query(
            "root",
            &run(query_script("root", &["root", "no-such-group-x"])),
        )
        .expect("an answer");
        let account = root.account.expect("root exists");
        assert!(account.groups.contains(&"root".to_owned()), "{account:?}");
        assert_eq!(root.missing_groups, ["no-such-group-x"]);
        let missing = parse_query("no-such-user-x", &run(query_script("no-such-user-x", &[])));
        assert_eq!(missing, Some(ABSENT));
    }

    #[test]
    fn a_missing_account_is_created_with_the_named_options() {
        let mut web = wanted(&["www-data", "adm"]);
        web.system = true;
        web.shell = Some("/usr/sbin/nologin");
        web.home = Some("/srv/web");
        assert_eq!(
            decide(&web, &ABSENT),
            Ok(Plan::Change {
                kind: ChangeKind::Create,
                command: "useradd --system --shell /usr/sbin/nologin --home-dir /srv/web \
                          --groups www-data,adm -- web"
                    .into(),
                summary: "`web` (system, shell /usr/sbin/nologin, home /srv/web, groups \
                          www-data, adm)"
                    .into(),
            })
        );
        assert_eq!(
            decide(&wanted(&[]), &ABSENT),
            Ok(Plan::Change {
                kind: ChangeKind::Create,
                command: "useradd --create-home -- web".into(),
                summary: "`web`".into(),
            }),
            "an ordinary account gets its home created"
        );
    }

    #[test]
    fn an_existing_account_changes_only_what_differs() {
        let mut web = wanted(&["www-data", "adm"]);
        web.shell = Some("/bin/bash");
        web.home = Some("/srv/web/");
        assert_eq!(
            decide(
                &web,
                &existing("/bin/bash", "/srv/web", &["web", "www-data", "adm"])
            ),
            Ok(Plan::Nothing)
        );
        assert_eq!(
            decide(
                &web,
                &existing("/bin/sh", "/home/web", &["web", "www-data", "staff"])
            ),
            Ok(Plan::Change {
                kind: ChangeKind::Modify,
                command: "usermod --shell /bin/bash --home /srv/web/ --append --groups adm -- web"
                    .into(),
                summary: "`web`: shell /bin/sh → /bin/bash, home /home/web → /srv/web/ (files \
                          not moved), added to groups adm"
                    .into(),
            })
        );
        assert_eq!(
            decide(
                &wanted(&[]),
                &existing("/bin/sh", "/home/web", &["web", "staff"])
            ),
            Ok(Plan::Nothing),
            "unnamed fields and groups are left alone"
        );
    }

    #[test]
    fn absent_removes_the_account_but_not_its_home() {
        let mut web = wanted(&[]);
        web.state = Presence::Absent;
        assert_eq!(decide(&web, &ABSENT), Ok(Plan::Nothing));
        assert_eq!(
            decide(&web, &existing("/bin/sh", "/srv/web", &["web"])),
            Ok(Plan::Change {
                kind: ChangeKind::Remove,
                command: "userdel -- web".into(),
                summary: "`web` (home /srv/web left in place)".into(),
            })
        );
    }

    #[test]
    fn a_missing_group_fails_and_names_it() {
        let observed = Observed {
            account: None,
            missing_groups: vec!["no-such-group".into()],
        };
        let error = decide(&wanted(&["no-such-group"]), &observed)
            .expect_err("missing group")
            .to_string();
        assert!(error.contains("`no-such-group` does not exist"), "{error}");
        assert!(error.contains("does not create groups"), "{error}");
    }

    #[test]
    fn names_that_break_passwd_or_options_are_refused() {
        for word in ["", "-r", "a:b", "a,b", "a b", "a/b", "a\nb"] {
            assert!(check_word(word, "account name").is_err(), "{word:?}");
        }
        for word in ["web", "www-data", "_apt", "user.name"] {
            assert!(check_word(word, "account name").is_ok(), "{word:?}");
        }
    }
}
