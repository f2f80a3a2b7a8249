//! Host patterns: which hosts a runbook's `targets`, `-l` and `--widen` select.
//!
//! A pattern is a list of terms separated by `,` (or `:`, as Ansible also accepts):
//!
//! | term | selects |
//! |---|---|
//! | `web1` | the host `web1` |
//! | `web` | every host of the group `web`, directly or through its children |
//! | `web*`, `db?` | every host or group whose name matches the glob (`*` any run, `?` one character) |
//! | `all`, `*` | every host |
//! | `&production` | keeps only the hosts also selected by `production` (intersection) |
//! | `!db1` | removes the hosts selected by `db1` (exclusion) |
//!
//! Terms are evaluated as Ansible does, whatever order they are written in: first the union of
//! the plain terms (every host when there is none, so `!db1` alone means "all but `db1`"), then
//! each `&` term, then each `!` term. The result is in inventory order without duplicates.
//!
//! A plain name that is neither a host nor a group is an error with a "did you mean" hint, since
//! a typo would otherwise quietly select nothing. A glob matching nothing is not an error: an
//! empty selection is for the caller to judge (`run` refuses it, SPEC §3).

use super::model::{ALL, GroupName, Host, Inventory};
use crate::suggest::{close_names, did_you_mean, quoted_list};

/// Why a host pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The pattern is empty or only whitespace.
    #[error("host pattern is empty")]
    Empty,
    /// Two separators in a row, a trailing separator, or an operator with no name after it.
    #[error("host pattern `{pattern}` has an empty term at column {column}")]
    EmptyTerm {
        /// The whole pattern.
        pattern: String,
        /// 1-based column (in characters) of the empty term.
        column: usize,
    },
    /// A character that is neither part of a name nor an operator.
    #[error("host pattern `{pattern}` has unexpected `{character}` at column {column}")]
    InvalidCharacter {
        /// The whole pattern.
        pattern: String,
        /// The offending character.
        character: char,
        /// 1-based column (in characters) of the character.
        column: usize,
    },
    /// A term that names neither a host nor a group.
    #[error("host pattern names `{name}`, which is neither a host nor a group")]
    UnknownName {
        /// The unknown name.
        name: String,
        /// Close host and group names, closest first.
        suggestions: Vec<String>,
        /// Every group of the inventory, for the hint when nothing is close.
        groups: Vec<String>,
    },
}

impl PatternError {
    /// Ways to fix the pattern.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            PatternError::Empty => vec!["use `all` to select every host".to_owned()],
            PatternError::EmptyTerm { .. } | PatternError::InvalidCharacter { .. } => vec![
                "a pattern is names, groups or globs (`web*`) separated by `,`; prefix a term \
                 with `!` to exclude it or `&` to intersect with it"
                    .to_owned(),
            ],
            PatternError::UnknownName {
                suggestions,
                groups,
                ..
            } => match did_you_mean(suggestions) {
                Some(hint) => vec![hint],
                None if groups.is_empty() => {
                    vec!["the inventory defines no groups; name hosts or use `all`".to_owned()]
                }
                None => vec![format!(
                    "the inventory defines groups {}",
                    quoted_list(groups.iter().map(String::as_str))
                )],
            },
        }
    }
}

/// How a term combines with the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// A plain term: added to the selection.
    Union,
    /// `&term`: the selection keeps only the hosts this term selects.
    Intersection,
    /// `!term`: the hosts this term selects are removed.
    Exclusion,
}

/// What a term matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// `all` or `*`.
    All,
    /// A host or group name.
    Name(String),
    /// A glob over host and group names.
    Glob(String),
}

/// One term of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// How the term combines with the others.
    pub operator: Operator,
    /// What the term matches.
    pub matcher: Matcher,
}

/// A parsed host pattern, checked for syntax but not yet against an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    terms: Vec<Term>,
}

impl Pattern {
    /// Parses `text`; the syntax alone, so a runbook's `targets` can be checked without an
    /// inventory.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        if text.trim().is_empty() {
            return Err(PatternError::Empty);
        }
        let mut terms = Vec::new();
        let mut column = 1;
        for raw in text.split([',', ':']) {
            let leading = raw
                .chars()
                .take_while(|character| character.is_whitespace())
                .count();
            let trimmed = raw.trim();
            let term_column = column + leading;
            column += raw.chars().count() + 1;
            let (operator, body, body_column) = match trimmed.chars().next() {
                Some('!') => (Operator::Exclusion, &trimmed[1..], term_column + 1),
                Some('&') => (Operator::Intersection, &trimmed[1..], term_column + 1),
                _ => (Operator::Union, trimmed, term_column),
            };
            if body.is_empty() {
                return Err(PatternError::EmptyTerm {
                    pattern: text.to_owned(),
                    column: body_column,
                });
            }
            if let Some((offset, character)) = body.chars().enumerate().find(|&(_, character)| {
                !(character.is_ascii_alphanumeric()
                    || matches!(character, '_' | '.' | '-' | '*' | '?'))
            }) {
                return Err(PatternError::InvalidCharacter {
                    pattern: text.to_owned(),
                    character,
                    column: body_column + offset,
                });
            }
            let matcher = if body == ALL || body == "*" {
                Matcher::All
            } else if body.contains(['*', '?']) {
                Matcher::Glob(body.to_owned())
            } else {
                Matcher::Name(body.to_owned())
            };
            terms.push(Term { operator, matcher });
        }
        Ok(Self { terms })
    }

    /// The terms in the order written.
    #[must_use]
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }
}

impl Inventory {
    /// The hosts `pattern` selects, in inventory order and without duplicates.
    pub fn select(&self, pattern: &str) -> Result<Vec<&Host>, PatternError> {
        self.select_pattern(&Pattern::parse(pattern)?)
    }

    /// The hosts a parsed pattern selects, in inventory order and without duplicates.
    pub fn select_pattern(&self, pattern: &Pattern) -> Result<Vec<&Host>, PatternError> {
        let mut selected = vec![false; self.hosts().len()];
        let unions: Vec<&Term> = pattern
            .terms
            .iter()
            .filter(|term| term.operator == Operator::Union)
            .collect();
        if unions.is_empty() {
            selected.fill(true);
        }
        for term in unions {
            for (slot, matched) in selected.iter_mut().zip(self.matches(&term.matcher)?) {
                *slot |= matched;
            }
        }
        for term in pattern
            .terms
            .iter()
            .filter(|term| term.operator == Operator::Intersection)
        {
            for (slot, matched) in selected.iter_mut().zip(self.matches(&term.matcher)?) {
                *slot &= matched;
            }
        }
        for term in pattern
            .terms
            .iter()
            .filter(|term| term.operator == Operator::Exclusion)
        {
            for (slot, matched) in selected.iter_mut().zip(self.matches(&term.matcher)?) {
                *slot &= !matched;
            }
        }
        Ok(self
            .hosts()
            .iter()
            .zip(selected)
            .filter_map(|(host, keep)| keep.then_some(host))
            .collect())
    }

    /// One flag per host (in inventory order): whether `matcher` selects it.
    fn matches(&self, matcher: &Matcher) -> Result<Vec<bool>, PatternError> {
        let hosts = self.hosts();
        match matcher {
            Matcher::All => Ok(vec![true; hosts.len()]),
            Matcher::Name(name) => {
                if let Some(position) = self.host_position(name) {
                    let mut flags = vec![false; hosts.len()];
                    flags[position] = true;
                    Ok(flags)
                } else if self.group(name).is_some() {
                    Ok(hosts.iter().map(|host| host.in_group(name)).collect())
                } else {
                    let names = hosts
                        .iter()
                        .map(|host| host.name.as_str())
                        .chain(self.group_names().map(GroupName::as_str));
                    Err(PatternError::UnknownName {
                        name: name.clone(),
                        suggestions: close_names(name, names),
                        groups: self
                            .group_names()
                            .map(|group| group.as_str().to_owned())
                            .collect(),
                    })
                }
            }
            Matcher::Glob(glob) => {
                let groups: Vec<&str> = self
                    .group_names()
                    .map(GroupName::as_str)
                    .filter(|group| glob_matches(glob, group))
                    .collect();
                Ok(hosts
                    .iter()
                    .map(|host| {
                        glob_matches(glob, host.name.as_str())
                            || groups.iter().any(|group| host.in_group(group))
                    })
                    .collect())
            }
        }
    }
}

/// Whether `text` matches `glob`, where `*` matches any run of characters and `?` exactly one.
/// Greedy with backtracking to the last `*`: linear in practice, never exponential.
fn glob_matches(glob: &str, text: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut glob_index, mut text_index) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while text_index < text.len() {
        match glob.get(glob_index) {
            Some('*') => {
                backtrack = Some((glob_index, text_index));
                glob_index += 1;
            }
            Some(&character) if character == '?' || character == text[text_index] => {
                glob_index += 1;
                text_index += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    glob_index = star + 1;
                    text_index = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    glob[glob_index..].iter().all(|&character| character == '*')
}

#[cfg(test)]
mod tests {
    use super::{Matcher, Operator, Pattern, PatternError, glob_matches};
    use crate::diagnostic::SourceFile;
    use crate::inventory::Inventory;

    const INVENTORY: &str = "groups:
  web:        { hosts: [web1, web2] }
  db:         { hosts: [db1, db2] }
  production: { children: [web, db], hosts: [bastion], environment: production }
  staging:    { hosts: [stage-web1] }
hosts:
  bastion:
  web1:
  db1:
  web2:
  stage-web1:
  db2:
";

    fn inventory() -> Inventory {
        Inventory::parse(SourceFile::new("i.yaml", INVENTORY))
            .expect("valid")
            .0
    }

    #[test]
    fn every_pattern_form_selects_in_inventory_order() {
        let inventory = inventory();
        let cases: &[(&str, &[&str])] = &[
            ("web1", &["web1"]),
            ("web", &["web1", "web2"]),
            ("production", &["bastion", "web1", "db1", "web2", "db2"]),
            (
                "all",
                &["bastion", "web1", "db1", "web2", "stage-web1", "db2"],
            ),
            (
                "*",
                &["bastion", "web1", "db1", "web2", "stage-web1", "db2"],
            ),
            ("web*", &["web1", "web2"]),
            ("*web*", &["web1", "web2", "stage-web1"]),
            ("db?", &["db1", "db2"]),
            ("?b", &["db1", "db2"]),
            ("nothing*", &[]),
            ("db2,web1", &["web1", "db2"]),
            ("db2:web1", &["web1", "db2"]),
            ("web1, web1 ,web", &["web1", "web2"]),
            ("production,!db1", &["bastion", "web1", "web2", "db2"]),
            ("!db1,production", &["bastion", "web1", "web2", "db2"]),
            ("!db1", &["bastion", "web1", "web2", "stage-web1", "db2"]),
            ("all:!production", &["stage-web1"]),
            ("*web*:&production", &["web1", "web2"]),
            ("&production,web1,stage-web1", &["web1"]),
            ("&production", &["bastion", "web1", "db1", "web2", "db2"]),
            ("web,db,&production,!web2", &["web1", "db1", "db2"]),
            ("web:&db", &[]),
            ("all,!*", &[]),
        ];
        for (pattern, expected) in cases {
            let selected: Vec<&str> = inventory
                .select(pattern)
                .unwrap_or_else(|error| panic!("{pattern}: {error}"))
                .iter()
                .map(|host| host.name.as_str())
                .collect();
            assert_eq!(selected, *expected, "pattern `{pattern}`");
        }
    }

    #[test]
    fn bad_patterns_are_errors_with_hints() {
        let inventory = inventory();
        let cases: &[(&str, PatternError, &str)] = &[
            ("", PatternError::Empty, "use `all` to select every host"),
            ("  ", PatternError::Empty, "use `all` to select every host"),
            (
                "web,,db",
                PatternError::EmptyTerm {
                    pattern: "web,,db".into(),
                    column: 5,
                },
                "a pattern is names",
            ),
            (
                "web,",
                PatternError::EmptyTerm {
                    pattern: "web,".into(),
                    column: 5,
                },
                "a pattern",
            ),
            (
                "web,!",
                PatternError::EmptyTerm {
                    pattern: "web,!".into(),
                    column: 6,
                },
                "a pattern",
            ),
            (
                "web, &db[1]",
                PatternError::InvalidCharacter {
                    pattern: "web, &db[1]".into(),
                    character: '[',
                    column: 9,
                },
                "a pattern",
            ),
            (
                "!!web",
                PatternError::InvalidCharacter {
                    pattern: "!!web".into(),
                    character: '!',
                    column: 2,
                },
                "a pattern",
            ),
            (
                "webx",
                PatternError::UnknownName {
                    name: "webx".into(),
                    suggestions: vec!["web".into(), "web1".into(), "web2".into()],
                    groups: vec![
                        "web".into(),
                        "db".into(),
                        "production".into(),
                        "staging".into(),
                    ],
                },
                "did you mean `web`, `web1` or `web2`?",
            ),
            (
                "all,!prod",
                PatternError::UnknownName {
                    name: "prod".into(),
                    suggestions: vec!["production".into()],
                    groups: vec![
                        "web".into(),
                        "db".into(),
                        "production".into(),
                        "staging".into(),
                    ],
                },
                "did you mean `production`?",
            ),
            (
                "zzz",
                PatternError::UnknownName {
                    name: "zzz".into(),
                    suggestions: vec![],
                    groups: vec![
                        "web".into(),
                        "db".into(),
                        "production".into(),
                        "staging".into(),
                    ],
                },
                "the inventory defines groups `web`, `db`, `production`, `staging`",
            ),
        ];
        for (pattern, expected, hint) in cases {
            let error = inventory.select(pattern).expect_err(pattern);
            assert_eq!(&error, expected, "pattern `{pattern}`");
            let hints = error.hints();
            assert!(
                hints.iter().any(|text| text.starts_with(hint)),
                "{pattern}: {hints:?}"
            );
        }
        assert_eq!(
            inventory.select("webx").expect_err("unknown").to_string(),
            "host pattern names `webx`, which is neither a host nor a group"
        );
    }

    #[test]
    fn patterns_parse_without_an_inventory() {
        let pattern = Pattern::parse("web*, &production:!db1").expect("valid");
        let terms: Vec<(Operator, &Matcher)> = pattern
            .terms()
            .iter()
            .map(|term| (term.operator, &term.matcher))
            .collect();
        assert_eq!(
            terms,
            [
                (Operator::Union, &Matcher::Glob("web*".into())),
                (Operator::Intersection, &Matcher::Name("production".into())),
                (Operator::Exclusion, &Matcher::Name("db1".into())),
            ]
        );
    }

    #[test]
    fn globs_match_any_run_and_single_characters() {
        let cases = [
            ("web*", "web", true),
            ("web*", "web12", true),
            ("web*", "we", false),
            ("*1", "web1", true),
            ("*1", "web12", false),
            ("w?b*", "wab-x", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("??", "ab", true),
            ("??", "abc", false),
            ("**", "", true),
        ];
        for (glob, text, expected) in cases {
            assert_eq!(glob_matches(glob, text), expected, "`{glob}` on `{text}`");
        }
    }
}
