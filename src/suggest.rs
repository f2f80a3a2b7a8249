//! "Did you mean" suggestions for misspelt host and group names.

use std::fmt::Write as _;

/// Up to three of `candidates` close to `name`, closest first: an edit distance of about a third
/// of the name, or one name being a prefix of the other (`prod` → `production`).
pub(crate) fn close_names<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let limit = (name.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter(|candidate| *candidate != name)
        .filter_map(|candidate| {
            let distance = edit_distance(name, candidate);
            let prefix = name.len() >= 2
                && (candidate.starts_with(name) || name.starts_with(candidate))
                && candidate.len() >= 2;
            (distance <= limit || prefix).then_some((distance, candidate))
        })
        .collect();
    scored.sort_by(|left, right| left.0.cmp(&right.0).then_with(|| left.1.cmp(right.1)));
    scored.dedup_by(|left, right| left.1 == right.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, candidate)| candidate.to_owned())
        .collect()
}

/// `did you mean `a`?` / `did you mean `a` or `b`?` for a non-empty list.
pub(crate) fn did_you_mean(names: &[String]) -> Option<String> {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.as_slice() {
        [] => None,
        [one] => Some(format!("did you mean {one}?")),
        [init @ .., last] => Some(format!("did you mean {} or {last}?", init.join(", "))),
    }
}

/// Names quoted and joined for a hint: `` `a`, `b`, `c` ``; long lists are cut with a count.
pub(crate) fn quoted_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 8;
    let names: Vec<&str> = names.into_iter().collect();
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        let _ = write!(text, " and {} more", names.len() - SHOWN);
    }
    text
}

/// Edit distance counting insertions, deletions, substitutions and swaps of adjacent
/// characters (optimal string alignment), so `prot` is one edit from `port`.
fn edit_distance(left: &str, right: &str) -> usize {
    let left: Vec<char> = left.chars().collect();
    let right: Vec<char> = right.chars().collect();
    let width = right.len() + 1;
    let mut table = vec![0_usize; (left.len() + 1) * width];
    for row in 0..=left.len() {
        table[row * width] = row;
    }
    for (column, cell) in table.iter_mut().enumerate().take(width) {
        *cell = column;
    }
    for row in 1..=left.len() {
        for column in 1..width {
            let cost = usize::from(left[row - 1] != right[column - 1]);
            let mut best = (table[(row - 1) * width + column] + 1)
                .min(table[row * width + column - 1] + 1)
                .min(table[(row - 1) * width + column - 1] + cost);
            if row > 1
                && column > 1
                && left[row - 1] == right[column - 2]
                && left[row - 2] == right[column - 1]
            {
                best = best.min(table[(row - 2) * width + column - 2] + 1);
            }
            table[row * width + column] = best;
        }
    }
    table[left.len() * width + right.len()]
}

#[cfg(test)]
mod tests {
    use super::{close_names, did_you_mean, edit_distance};

    #[test]
    fn close_names_rank_by_distance_and_accept_prefixes() {
        let candidates = ["web1", "web2", "db1", "production", "bastion"];
        let cases: &[(&str, &[&str])] = &[
            ("webx", &["web1", "web2"]),
            ("db", &["db1"]),
            ("prod", &["production"]),
            ("bastoin", &["bastion"]),
            ("zzz", &[]),
        ];
        for (name, expected) in cases {
            assert_eq!(close_names(name, candidates), *expected, "{name}");
        }
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("prot", "port"), 1);
    }

    #[test]
    fn did_you_mean_joins_with_or() {
        assert_eq!(did_you_mean(&[]), None);
        assert_eq!(
            did_you_mean(&["a".into()]).as_deref(),
            Some("did you mean `a`?")
        );
        assert_eq!(
            did_you_mean(&["a".into(), "b".into(), "c".into()]).as_deref(),
            Some("did you mean `a`, `b` or `c`?")
        );
    }
}
