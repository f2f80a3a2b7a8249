//! Loading `policy/operators.yaml`: the model it builds, and every diagnostic at its place.

use std::collections::BTreeSet;

use super::{Policy, PolicyRule, Selector};
use crate::diagnostic::{Diagnostic, SourceFile, Style};
use crate::gate::level::Level;
use crate::runbook::model::Kind;

const ALICE_KEY: &str = "ssh-ed25519 \
     AAAAC3NzaC1lZDI1NTE5AAAAIAR/+fNmPZC0cX9IvBaPC/G3FN1O2lGndhxHE6IcaLJJ alice@laptop";
const BOB_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdyKZyi/HsAjlpkGxbmoCmzNBWDdgqmNNVoz4zuwOI7 bob";

fn parse(text: &str) -> Result<(Policy, Vec<Diagnostic>), Vec<Diagnostic>> {
    Policy::parse(SourceFile::new("policy/operators.yaml", text))
        .map_err(crate::diagnostic::Diagnostics::sorted)
}

/// `(line, column, message)` of each diagnostic, in order.
fn places(diagnostics: &[Diagnostic]) -> Vec<(u32, u32, String)> {
    diagnostics
        .iter()
        .map(|diagnostic| {
            let span = diagnostic
                .location
                .as_ref()
                .map(|(_, span)| *span)
                .unwrap_or_default();
            (span.line, span.column, diagnostic.message.clone())
        })
        .collect()
}

fn errors_of(text: &str) -> Vec<Diagnostic> {
    match parse(text) {
        Ok((policy, _)) => panic!("expected errors, got {policy:?}"),
        Err(errors) => errors,
    }
}

#[test]
fn the_spec_example_loads() {
    let text = format!(
        "# policy/operators.yaml\nservice_account: opsgate\nsigned_approvals: false\noperators:\n  \
         alice: {{ level: 5, name: Alice Lead, key: \"{ALICE_KEY}\" }}\n  bob:   {{ level: 2, \
         name: Bob }}\nrules:\n  - {{ runbook: restore-postgres, min_level: 4 }}\n  - {{ \
         environment: production, require_approval_below: 4 }}\n  - {{ kind: restore, \
         require_approval_below: 3, min_level: 2 }}\n"
    );
    let (policy, warnings) = parse(&text).expect("the spec example is valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(policy.service_account(), Some("opsgate"));
    assert!(!policy.signed_approvals());
    let alice = policy.operator("alice").expect("alice is listed");
    assert_eq!(alice.level, Some(Level::L5));
    assert_eq!(alice.display_name.as_deref(), Some("Alice Lead"));
    let key = alice.key.as_ref().expect("alice has a key");
    assert_eq!(key.comment(), "alice@laptop");
    let bob = policy.operator("bob").expect("bob is listed");
    assert_eq!((bob.level, bob.key.is_none()), (Some(Level::L2), true));
    assert!(policy.operator("carol").is_none());
    assert_eq!(policy.operators().count(), 2);
    assert_eq!(
        policy.rules(),
        [
            PolicyRule {
                selector: Selector::Runbook("restore-postgres".to_owned()),
                min_level: Some(Level::L4),
                require_approval_below: None,
                origin: "policy/operators.yaml:8".to_owned(),
            },
            PolicyRule {
                selector: Selector::Environment("production".to_owned()),
                min_level: None,
                require_approval_below: Some(Level::L4),
                origin: "policy/operators.yaml:9".to_owned(),
            },
            PolicyRule {
                selector: Selector::Kind(Kind::Restore),
                min_level: Some(Level::L2),
                require_approval_below: Some(Level::L3),
                origin: "policy/operators.yaml:10".to_owned(),
            },
        ]
    );
    assert_eq!(
        policy.rules()[2].to_string(),
        "{ kind: restore, min_level: 2, require_approval_below: 3 }"
    );
    let environments = BTreeSet::from(["production".to_owned()]);
    assert!(policy.rules()[1].selects("anything", Kind::Patch, &environments));
    assert!(!policy.rules()[1].selects("anything", Kind::Patch, &BTreeSet::new()));
    assert_eq!(policy.path().to_str(), Some("policy/operators.yaml"));
}

#[test]
fn an_unknown_key_points_at_itself_with_the_allowed_keys() {
    let errors = errors_of("operators:\n  alice: { level: 5, nmae: Alice }\n");
    assert_eq!(errors.len(), 1);
    let rendered = errors[0].render(Style::Plain);
    assert!(
        rendered.starts_with(
            "error: unknown key `nmae`\n --> policy/operators.yaml:2:22\n  |\n2 |   alice: { \
             level: 5, nmae: Alice }\n  |                      ^^^^\n"
        ),
        "{rendered}"
    );
    assert!(
        rendered.contains("hint: did you mean `name`?"),
        "{rendered}"
    );
    let errors = errors_of("operator:\n  alice: { level: 5 }\n");
    assert_eq!(places(&errors)[0].2, "unknown key `operator`");
    assert!(
        errors[0]
            .hints
            .iter()
            .any(|hint| hint.contains("`operators`")),
        "{:?}",
        errors[0].hints
    );
}

#[test]
fn every_problem_is_reported_at_once_at_its_place() {
    let text = format!(
        "service_account: \"ops gate\"\n\
         operators:\n\
         \x20 alice: {{ level: 7 }}\n\
         \x20 bob: {{ name: Bob }}\n\
         \x20 carol:\n\
         \x20 dave: {{ level: 3, key: \"ssh-ed25519 AAAAnotakey\" }}\n\
         \x20 -eve: {{ level: 2, name: \"  \" }}\n\
         \x20 frank: {{ level: 4, key: \"{ALICE_KEY}\" }}\n\
         \x20 gina: {{ level: 4, key: \"{ALICE_KEY}\" }}\n\
         rules:\n\
         \x20 - {{ runbook: restore-db, kind: restore, min_level: 4 }}\n\
         \x20 - {{ environment: production }}\n\
         \x20 - {{ min_level: 3 }}\n\
         \x20 - {{ kind: restor, require_approval_below: 3 }}\n\
         \x20 - {{ runbook: Restore_DB, min_level: 0 }}\n\
         \x20 - {{ environment: staging, require_approval_below: 9 }}\n"
    );
    let errors = errors_of(&text);
    assert_eq!(
        places(&errors),
        [
            (
                1,
                18,
                "`service_account` `ops gate` is not an account name".to_owned()
            ),
            (
                3,
                19,
                "operator `alice` has level `7`, which is not an SFIA level".to_owned()
            ),
            (4, 8, "operator `bob` has no `level`".to_owned()),
            (5, 3, "operator `carol` has no `level`".to_owned()),
            (6, 26, "operator `dave` has an invalid `key`".to_owned()),
            (7, 3, "operator `-eve` is not an account name".to_owned()),
            (7, 27, "operator `-eve` has an empty `name`".to_owned()),
            (
                9,
                26,
                "operator `gina` has the same `key` as operator `frank`".to_owned()
            ),
            (11, 34, "rule names both `runbook` and `kind`".to_owned()),
            (12, 5, "rule has no effect".to_owned()),
            (13, 5, "rule does not say what it applies to".to_owned()),
            (14, 13, "rule names unknown kind `restor`".to_owned()),
            (
                15,
                16,
                "rule names runbook `Restore_DB`, which is not a runbook id".to_owned()
            ),
            (
                15,
                39,
                "rule has `min_level: 0`, which is not an SFIA level".to_owned()
            ),
            (
                16,
                53,
                "rule has `require_approval_below: 9`, which is not an SFIA level".to_owned()
            ),
        ]
    );
    let kind = &errors[11];
    assert_eq!(kind.hints[0], "did you mean `restore`?");
    assert!(
        kind.hints[1].starts_with("kinds: `check`, `provision`"),
        "{:?}",
        kind.hints
    );
    let rendered = errors[1].render(Style::Plain);
    assert!(
        rendered.ends_with(
            " --> policy/operators.yaml:3:19\n  |\n3 |   alice: { level: 7 }\n  |                   \
             ^\n\nhint: opsgate uses SFIA levels 1 (follow) to 5 (ensure, advise)\n"
        ),
        "{rendered}"
    );
}

#[test]
fn a_private_key_is_refused_as_a_key() {
    let text = "operators:\n  alice: { level: 5, key: \"-----BEGIN OPENSSH PRIVATE KEY-----\" }\n";
    let errors = errors_of(text);
    assert_eq!(
        places(&errors),
        [(
            2,
            27,
            "operator `alice` has a private key as `key`".to_owned()
        )]
    );
}

#[test]
fn warnings_for_rules_and_settings_that_cannot_do_anything() {
    let text = format!(
        "service_account: alice\nsigned_approvals: true\noperators:\n  alice: {{ level: 5, key: \
         \"{ALICE_KEY}\" }}\n  bob: {{ level: 2 }}\n  carol: {{ level: 3 }}\n  dave: {{ level: \
         4, key: \"{BOB_KEY}\" }}\nrules:\n  - {{ runbook: patch-web, min_level: 1 }}\n  - {{ \
         kind: patch, require_approval_below: 1 }}\n"
    );
    let (policy, warnings) = parse(&text).expect("warnings do not stop the load");
    assert!(policy.signed_approvals());
    assert_eq!(
        places(&warnings),
        [
            (
                0,
                0,
                "operator `carol` (L3) has no `key`, so with `signed_approvals: true` they cannot \
                 approve anything"
                    .to_owned()
            ),
            (
                1,
                18,
                "service account `alice` is also listed as an operator".to_owned()
            ),
            (
                9,
                38,
                "rule `min_level: 1` never changes anything".to_owned()
            ),
            (
                10,
                44,
                "rule `require_approval_below: 1` never applies".to_owned()
            ),
        ]
    );
    assert!(warnings.iter().all(|warning| !warning.is_error()));
    // Such rules load, and change nothing (decide's tests show the outcomes are unchanged).
    assert_eq!(policy.rules().len(), 2);
}

#[test]
fn an_empty_policy_lists_nobody() {
    for text in ["", "# nobody yet\n", "---\n", "operators: {}\n"] {
        let (policy, warnings) = parse(text).expect("an empty policy is valid");
        assert_eq!(policy.operators().count(), 0);
        assert_eq!(
            places(&warnings),
            [(
                0,
                0,
                "the policy lists no operators: every gated command will be denied".to_owned()
            )],
            "{text:?}"
        );
    }
}

#[test]
fn a_type_error_points_at_the_value() {
    let errors = errors_of("signed_approvals: maybe\n");
    assert_eq!(errors.len(), 1);
    let (line, column, _) = places(&errors)[0].clone();
    assert_eq!((line, column), (1, 19), "{:?}", errors[0]);
}

#[test]
fn load_reads_files_and_only_a_missing_file_is_no_policy() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("operators.yaml");
    assert!(
        Policy::load_optional(&path)
            .expect("a missing file is not an error")
            .is_none()
    );
    std::fs::write(&path, "operators:\n  alice: { level: 5 }\n").expect("write policy");
    let (policy, _) = Policy::load_optional(&path)
        .expect("valid")
        .expect("the file exists");
    assert_eq!(
        policy.operator("alice").and_then(|alice| alice.level),
        Some(Level::L5)
    );
    let first = policy.digest();
    assert_eq!(first.len(), 64);
    std::fs::write(&path, "operators:\n  alice: { level: 4 }\n").expect("rewrite policy");
    let (changed, _) = Policy::load(&path).expect("valid");
    assert_ne!(changed.digest(), first);
    // A directory where the file should be is an error, never "no policy".
    let errors = Policy::load_optional(directory.path()).expect_err("a directory is not a policy");
    assert!(errors.has_errors());
}

#[test]
fn carets_underline_whole_tokens_in_flow_mappings() {
    let text = "operators:\n  alice: { level: 5, key: \"ssh-ed25519 AAAAnotakey\" }\n  \
                bob:\nrules:\n  - { environment: production }\n  - { kind: restor, min_level: 2 }\n";
    let rendered: Vec<String> = errors_of(text)
        .iter()
        .map(|error| error.render(Style::Plain))
        .collect();
    let carets: Vec<&str> = rendered
        .iter()
        .map(|text| {
            text.lines()
                .nth(4)
                .map_or("", |line| line.trim_start_matches([' ', '|']))
        })
        .collect();
    assert_eq!(
        carets,
        [
            "^^^^^^^^^^^^^^^^^^^^^^^^^",
            "^^^",
            "^^^^^^^^^^^^^^^^^^^^^^^^^^^",
            "^^^^^^"
        ],
        "{}",
        rendered.join("\n")
    );
}

#[test]
fn plan_ttl_defaults_to_a_day_and_must_be_a_positive_duration() {
    let (policy, _) = parse("operators:\n  alice: { level: 5 }\n").expect("valid");
    assert_eq!(policy.plan_ttl(), std::time::Duration::from_secs(24 * 3600));
    let (policy, _) = parse("plan_ttl: 30m\noperators:\n  alice: { level: 5 }\n").expect("valid");
    assert_eq!(policy.plan_ttl(), std::time::Duration::from_secs(30 * 60));
    let errors = errors_of("plan_ttl: soon\noperators:\n  alice: { level: 5 }\n");
    assert_eq!(places(&errors)[0].0, 1, "{errors:?}");
    assert_eq!(
        errors_of("plan_ttl: 0s\noperators:\n  alice: { level: 5 }\n").len(),
        1
    );
}
