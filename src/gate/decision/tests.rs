//! The SPEC §4.3 matrix, cell by cell: each row is one situation, judged for an operator of each
//! level L1..L5.

use std::collections::BTreeSet;

use super::{
    CatalogState, Decision, Rule, RunRequest, approver_level, ask_for_approval, decide,
    may_approve, may_approve_runbook,
};
use crate::diagnostic::SourceFile;
use crate::gate::level::Level;
use crate::gate::operator::{Identity, IdentitySource, Operator, ProcessIdentity, identify};
use crate::gate::policy::Policy;
use crate::runbook::model::Kind;

/// Operators `l1`..`l5` at their levels, plus `rules` appended to the file.
fn policy_with(rules: &str) -> Policy {
    let text = format!(
        "service_account: opsgate\noperators:\n  l1: {{ level: 1 }}\n  l2: {{ level: 2 }}\n  \
         l3: {{ level: 3 }}\n  l4: {{ level: 4 }}\n  l5: {{ level: 5 }}\n  l5b: {{ level: 5 }}\n\
         {rules}"
    );
    let (policy, _) = Policy::parse(SourceFile::new("policy/operators.yaml", text))
        .unwrap_or_else(|errors| panic!("test policy is invalid: {:?}", errors.sorted()));
    policy
}

fn process(account: &str, uid: u32, sudo_user: Option<&str>) -> ProcessIdentity {
    ProcessIdentity {
        uid,
        account: account.to_owned(),
        sudo_user: sudo_user.map(str::to_owned),
        login_uid: None,
    }
}

fn identity(policy: &Policy, level: Level) -> Identity {
    identify(
        &process(&format!("l{}", level.get()), 1000, None),
        Some(policy),
    )
}

/// An approved `patch` runbook with `min_level: 1`, on staging hosts, run for real.
fn request() -> RunRequest {
    RunRequest {
        runbook: "patch-web".to_owned(),
        kind: Kind::Patch,
        min_level: Level::L1,
        catalog: CatalogState::Approved,
        environments: BTreeSet::from(["staging".to_owned()]),
        widened: false,
        check: false,
        break_glass: false,
        reason: None,
    }
}

fn production(mut request: RunRequest) -> RunRequest {
    request.environments.insert("production".to_owned());
    request
}

/// The shape of a decision, for tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allow,
    Approval(u8),
    Deny(Rule),
}

use Expect::{Allow, Approval, Deny};

fn shape(decision: &Decision) -> Expect {
    match decision {
        Decision::Allow { .. } => Allow,
        Decision::NeedsApproval { by, .. } => Approval(by.get()),
        Decision::Deny(denial) => Deny(denial.rule),
    }
}

/// Judges `request` for L1..L5 under `policy` and compares with `expected`.
fn assert_row(policy: &Policy, row: &str, request: &RunRequest, expected: [Expect; 5]) {
    for (level, expected) in Level::ALL.into_iter().zip(expected) {
        let decision = decide(Some(policy), &identity(policy, level), request);
        assert_eq!(shape(&decision), expected, "{row}, {level}: {decision:?}");
    }
}

#[test]
fn matrix_default_cells() {
    let policy = policy_with("");
    let with = |change: fn(&mut RunRequest)| {
        let mut request = request();
        change(&mut request);
        request
    };
    let rows: Vec<(&str, RunRequest, [Expect; 5])> = vec![
        (
            "approved check runbook",
            with(|request| request.kind = Kind::Check),
            [Allow, Allow, Allow, Allow, Allow],
        ),
        (
            "approved check runbook in production",
            production(with(|request| request.kind = Kind::Check)),
            [Allow, Allow, Allow, Allow, Allow],
        ),
        (
            "approved runbook, min_level <= own level",
            request(),
            [Approval(3), Allow, Allow, Allow, Allow],
        ),
        (
            "approved patch runbook in production",
            production(request()),
            [Approval(3), Allow, Allow, Allow, Allow],
        ),
        (
            "approved restore runbook in production",
            production(with(|request| request.kind = Kind::Restore)),
            [Approval(3), Approval(3), Allow, Allow, Allow],
        ),
        (
            "approved provision runbook in production",
            production(with(|request| request.kind = Kind::Provision)),
            [Approval(3), Approval(3), Allow, Allow, Allow],
        ),
        (
            "approved backup runbook in production",
            production(with(|request| request.kind = Kind::Backup)),
            [Approval(3), Allow, Allow, Allow, Allow],
        ),
        (
            "approved maintenance runbook in production",
            production(with(|request| request.kind = Kind::Maintenance)),
            [Approval(3), Allow, Allow, Allow, Allow],
        ),
        (
            "approved restore runbook outside production",
            with(|request| request.kind = Kind::Restore),
            [Approval(3), Allow, Allow, Allow, Allow],
        ),
        (
            "draft runbook outside production",
            with(|request| request.catalog = CatalogState::Draft),
            [
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Allow,
                Allow,
            ],
        ),
        (
            "changed runbook outside production",
            with(|request| request.catalog = CatalogState::Changed),
            [
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Allow,
                Allow,
            ],
        ),
        (
            "draft runbook in production without --reason",
            production(with(|request| request.catalog = CatalogState::Draft)),
            [
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedInProduction),
                Deny(Rule::UnapprovedInProduction),
            ],
        ),
        (
            "changed runbook in production with --reason",
            production(with(|request| {
                request.catalog = CatalogState::Changed;
                request.reason = Some("hotfix for INC-42".to_owned());
            })),
            [
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedInProduction),
                Allow,
            ],
        ),
        (
            "draft runbook in production with a blank --reason",
            production(with(|request| {
                request.catalog = CatalogState::Draft;
                request.reason = Some("  ".to_owned());
            })),
            [
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedInProduction),
                Deny(Rule::UnapprovedInProduction),
            ],
        ),
        (
            "draft check runbook outside production",
            with(|request| {
                request.kind = Kind::Check;
                request.catalog = CatalogState::Draft;
            }),
            [
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Allow,
                Allow,
            ],
        ),
        (
            "widen targets",
            with(|request| request.widened = true),
            [Deny(Rule::Widen), Deny(Rule::Widen), Allow, Allow, Allow],
        ),
        (
            "widen a check runbook",
            with(|request| {
                request.kind = Kind::Check;
                request.widened = true;
            }),
            [Deny(Rule::Widen), Deny(Rule::Widen), Allow, Allow, Allow],
        ),
        (
            "break-glass with --reason",
            with(|request| {
                request.break_glass = true;
                request.reason = Some("outage".to_owned());
            }),
            [
                Deny(Rule::BreakGlass),
                Deny(Rule::BreakGlass),
                Deny(Rule::BreakGlass),
                Deny(Rule::BreakGlass),
                Allow,
            ],
        ),
        (
            "break-glass without --reason",
            with(|request| request.break_glass = true),
            [
                Deny(Rule::BreakGlass),
                Deny(Rule::BreakGlass),
                Deny(Rule::BreakGlass),
                Deny(Rule::BreakGlass),
                Deny(Rule::BreakGlass),
            ],
        ),
    ];
    for (row, request, expected) in &rows {
        assert_row(&policy, row, request, *expected);
    }
}

#[test]
fn matrix_min_level_above_own_level_is_never_lifted() {
    let policy = policy_with("");
    for min_level in Level::ALL {
        for kind in [Kind::Check, Kind::Patch] {
            for check in [false, true] {
                for environment in ["staging", "production"] {
                    let mut request = request();
                    request.min_level = min_level;
                    request.kind = kind;
                    request.check = check;
                    request.environments = BTreeSet::from([environment.to_owned()]);
                    let expected = Level::ALL.map(|level| {
                        if level < min_level {
                            Deny(Rule::MinLevel)
                        } else {
                            shape(&decide(Some(&policy), &identity(&policy, level), &{
                                let mut within = request.clone();
                                within.min_level = Level::L1;
                                within
                            }))
                        }
                    });
                    let row = format!(
                        "min_level {min_level}, {} {environment}, check {check}",
                        kind.as_str()
                    );
                    assert_row(&policy, &row, &request, expected);
                }
            }
        }
    }
    // Break-glass does not lift it either.
    let mut request = request();
    request.min_level = Level::L5;
    request.break_glass = true;
    request.reason = Some("outage".to_owned());
    let decision = decide(Some(&policy), &identity(&policy, Level::L4), &request);
    assert_eq!(shape(&decision), Deny(Rule::BreakGlass));
}

#[test]
fn check_flag_lifts_default_approvals_of_approved_runbooks_only() {
    let policy = policy_with("");
    let check = |mut request: RunRequest| {
        request.check = true;
        request
    };
    let mut restore = production(request());
    restore.kind = Kind::Restore;
    let mut draft = request();
    draft.catalog = CatalogState::Draft;
    let mut widened = request();
    widened.widened = true;
    let mut draft_production = production(request());
    draft_production.catalog = CatalogState::Changed;
    let rows: Vec<(&str, RunRequest, [Expect; 5])> = vec![
        (
            "--check approved runbook",
            check(request()),
            [Allow, Allow, Allow, Allow, Allow],
        ),
        (
            "--check approved restore in production",
            check(restore),
            [Allow, Allow, Allow, Allow, Allow],
        ),
        (
            "--check draft runbook",
            check(draft),
            [
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Allow,
                Allow,
            ],
        ),
        (
            "--check changed runbook in production",
            check(draft_production),
            [
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedRunbook),
                Deny(Rule::UnapprovedInProduction),
                Deny(Rule::UnapprovedInProduction),
            ],
        ),
        (
            "--check widened",
            check(widened),
            [Deny(Rule::Widen), Deny(Rule::Widen), Allow, Allow, Allow],
        ),
    ];
    for (row, request, expected) in &rows {
        assert_row(&policy, row, request, *expected);
    }
    let decision = decide(
        Some(&policy),
        &identity(&policy, Level::L1),
        &check(request()),
    );
    let Decision::Allow { notes } = decision else {
        panic!("an L1 --check of an approved runbook is allowed: {decision:?}");
    };
    assert!(
        notes.iter().any(|note| note.contains("`--check`")),
        "{notes:?}"
    );
}

#[test]
fn approver_level_is_the_highest_of_gate_and_requester() {
    // (requester, gate approver_level, expected)
    let cases = [
        (1, None, 3),
        (2, None, 3),
        (3, None, 4),
        (4, None, 5),
        (5, None, 5),
        (1, Some(2), 3),
        (1, Some(4), 4),
        (2, Some(5), 5),
        (3, Some(3), 4),
        (3, Some(5), 5),
        (4, Some(1), 5),
    ];
    for (requester, gate, expected) in cases {
        let level = |number: u8| Level::new(number).expect("test levels are 1..=5");
        assert_eq!(
            approver_level(level(requester), gate.map(level)).get(),
            expected,
            "requester L{requester}, gate {gate:?}"
        );
    }
}

#[test]
fn matrix_approve_a_gate_step_or_pending_run() {
    // Row "approve a `gate` step or a pending run": rows are approvers, columns requesters.
    // L3 approves for L1-L2 requesters, L4 for L1-L3, L5 any.
    let expected: [[bool; 5]; 5] = [
        [false, false, false, false, false],
        [false, false, false, false, false],
        [true, true, false, false, false],
        [true, true, true, false, false],
        [true, true, true, true, true],
    ];
    for (approver_level_index, row) in expected.iter().enumerate() {
        let approver = Operator {
            level: Some(Level::ALL[approver_level_index]),
            ..Operator::unlisted("approver")
        };
        for (requester, allowed) in Level::ALL.into_iter().zip(row) {
            let required = approver_level(requester, None);
            let verdict = may_approve(&approver, "requester", required);
            assert_eq!(
                verdict.is_ok(),
                *allowed,
                "{} approving for {requester}: {verdict:?}",
                approver.label()
            );
            if let Err(denial) = verdict {
                assert_eq!(denial.rule, Rule::ApproverLevel);
            }
        }
    }
}

#[test]
fn two_person_rule_nobody_approves_their_own_run() {
    let alice = Operator {
        level: Some(Level::L5),
        ..Operator::unlisted("alice")
    };
    let denial = may_approve(&alice, "alice", Level::L3).expect_err("self-approval is refused");
    assert_eq!(denial.rule, Rule::TwoPerson);
    assert!(denial.reason.contains("`alice` (L5)"), "{}", denial.reason);
    assert!(denial.would_allow.contains("another operator of level 3+"));
    assert!(may_approve(&alice, "bob", Level::L5).is_ok());
    let stranger = Operator::unlisted("mallory");
    let denial = may_approve(&stranger, "bob", Level::L3).expect_err("unlisted");
    assert_eq!(denial.rule, Rule::NotAnOperator);
}

#[test]
fn matrix_approve_a_runbook_into_the_catalog() {
    // Rows are approver levels, columns the runbook's min_level.
    let expected: [[bool; 5]; 5] = [
        [false; 5],
        [false; 5],
        [false; 5],
        [true, true, true, false, false],
        [true; 5],
    ];
    for (level, row) in Level::ALL.into_iter().zip(expected) {
        for (min_level, allowed) in Level::ALL.into_iter().zip(row) {
            assert_eq!(
                may_approve_runbook(level, min_level),
                allowed,
                "{level} approving a runbook with min_level {min_level}"
            );
        }
    }
    // A policy-raised min_level counts: restore-postgres (own 3) raised to 4 is L5-only.
    let policy = policy_with("rules:\n  - { runbook: restore-postgres, min_level: 4 }\n");
    let raised = policy.catalog_min_level("restore-postgres", Kind::Restore, Level::L3);
    assert_eq!(raised, Level::L4);
    assert!(!may_approve_runbook(Level::L4, raised));
    assert_eq!(
        policy.catalog_min_level("other", Kind::Restore, Level::L3),
        Level::L3
    );
}

#[test]
fn policy_rules_tighten_cells() {
    let policy = policy_with(
        "rules:\n  - { runbook: restore-postgres, min_level: 4 }\n  - { environment: \
         production, require_approval_below: 4 }\n  - { kind: backup, require_approval_below: 3 \
         }\n  - { kind: check, require_approval_below: 2 }\n",
    );
    let mut restore = request();
    restore.runbook = "restore-postgres".to_owned();
    restore.kind = Kind::Restore;
    restore.min_level = Level::L2;
    let mut backup = request();
    backup.kind = Kind::Backup;
    let mut check_production = production(request());
    check_production.kind = Kind::Check;
    let rows: Vec<(&str, RunRequest, [Expect; 5])> = vec![
        (
            "runbook min_level raised to 4",
            restore,
            [
                Deny(Rule::PolicyMinLevel),
                Deny(Rule::PolicyMinLevel),
                Deny(Rule::PolicyMinLevel),
                Allow,
                Allow,
            ],
        ),
        (
            "production below 4 needs an approval by 4+",
            production(request()),
            [Approval(4), Approval(4), Approval(4), Allow, Allow],
        ),
        (
            "backup kind below 3 needs an approval",
            backup,
            [Approval(3), Approval(3), Allow, Allow, Allow],
        ),
        (
            "rules apply to check runbooks too",
            check_production,
            [Approval(4), Approval(4), Approval(4), Allow, Allow],
        ),
        (
            "unselected runs keep the default cells",
            request(),
            [Approval(3), Allow, Allow, Allow, Allow],
        ),
    ];
    for (row, request, expected) in &rows {
        assert_row(&policy, row, request, *expected);
    }
    let decision = decide(
        Some(&policy),
        &identity(&policy, Level::L3),
        &production(request()),
    );
    let Decision::NeedsApproval { reason, .. } = decision else {
        panic!("L3 in production needs an approval: {decision:?}");
    };
    assert_eq!(
        reason,
        "policy rule `{ environment: production, require_approval_below: 4 }` \
         (policy/operators.yaml:11) requires an approval below level 4"
    );
}

#[test]
fn a_rule_that_reads_like_a_loosening_changes_nothing() {
    let loose = policy_with(
        "rules:\n  - { runbook: patch-web, min_level: 2 }\n  - { environment: production, \
         require_approval_below: 2 }\n  - { kind: restore, require_approval_below: 2 }\n",
    );
    let strict = policy_with("");
    let mut situations = Vec::new();
    for min_level in [Level::L3, Level::L5] {
        for kind in [Kind::Patch, Kind::Restore, Kind::Check] {
            for in_production in [false, true] {
                let mut request = request();
                request.min_level = min_level;
                request.kind = kind;
                if in_production {
                    request = production(request);
                }
                situations.push(request);
            }
        }
    }
    // Within the rule's level already: its `min_level: 2` raises nothing.
    let mut low = request();
    low.kind = Kind::Restore;
    low.min_level = Level::L2;
    situations.push(production(low));
    for request in &situations {
        for level in Level::ALL {
            let with_rules = decide(Some(&loose), &identity(&loose, level), request);
            let without = decide(Some(&strict), &identity(&strict, level), request);
            assert_eq!(
                shape(&with_rules),
                shape(&without),
                "{level} on {request:?}: {with_rules:?}"
            );
        }
    }
}

#[test]
fn no_policy_is_single_operator_mode_unless_the_identity_comes_from_sudo() {
    let own = identify(&process("alice", 1000, None), None);
    let decision = decide(None, &own, &request());
    let Decision::Allow { notes } = decision else {
        panic!("single-operator mode allows: {decision:?}");
    };
    assert!(notes[0].starts_with("single-operator mode"), "{notes:?}");
    // No gates at all in single-operator mode, even for what the matrix would refuse.
    let mut draft = production(request());
    draft.catalog = CatalogState::Draft;
    draft.widened = true;
    assert_eq!(shape(&decide(None, &own, &draft)), Allow);

    for process in [
        process("root", 0, Some("bob")),
        process("opsgate", 999, Some("bob")),
    ] {
        let sudo = identify(&process, None);
        assert_eq!(sudo.source, IdentitySource::SudoUser);
        let decision = decide(None, &sudo, &request());
        assert_eq!(
            shape(&decision),
            Deny(Rule::NoPolicyUnderSudo),
            "{process:?}"
        );
    }
}

#[test]
fn identity_under_sudo_is_judged_at_the_sudo_users_level() {
    let policy = policy_with("");
    let root_for_l1 = identify(&process("root", 0, Some("l1")), Some(&policy));
    assert_eq!(
        shape(&decide(Some(&policy), &root_for_l1, &request())),
        Approval(3)
    );
    let service_for_l5 = identify(&process("opsgate", 999, Some("l5")), Some(&policy));
    let mut widened = request();
    widened.widened = true;
    assert_eq!(
        shape(&decide(Some(&policy), &service_for_l5, &widened)),
        Allow
    );
    // A plain account's SUDO_USER is ignored: `l2` stays `l2`.
    let plain = identify(&process("l2", 1002, Some("l5")), Some(&policy));
    assert_eq!(
        shape(&decide(Some(&policy), &plain, &widened)),
        Deny(Rule::Widen)
    );
}

#[test]
fn unlisted_accounts_are_denied() {
    let policy = policy_with("");
    for process in [
        process("carol", 1003, None),
        process("root", 0, None),
        process("root", 0, Some("carol")),
    ] {
        let identity = identify(&process, Some(&policy));
        let decision = decide(Some(&policy), &identity, &request());
        let Decision::Deny(denial) = decision else {
            panic!("unlisted account is denied: {decision:?}");
        };
        assert_eq!(denial.rule, Rule::NotAnOperator);
        assert!(denial.would_allow.contains("policy/operators.yaml"));
    }
}

#[test]
fn denials_name_the_rule_the_level_and_what_would_allow_it() {
    let policy = policy_with("");
    let mut restore = request();
    restore.runbook = "restore-postgres".to_owned();
    restore.min_level = Level::L4;
    let decision = decide(Some(&policy), &identity(&policy, Level::L2), &restore);
    let Decision::Deny(denial) = decision else {
        panic!("below min_level is denied: {decision:?}");
    };
    assert_eq!(
        denial.to_string(),
        "runbook `restore-postgres` needs level 4 (its `min_level`), and operator `l2` (L2) is \
         below it (rule `min-level`)"
    );
    assert_eq!(
        denial.hints(),
        ["an operator of level 4+ may run it; no approval lifts a minimum level"]
    );

    let mut draft = production(request());
    draft.catalog = CatalogState::Draft;
    let decision = decide(Some(&policy), &identity(&policy, Level::L5), &draft);
    let Decision::Deny(denial) = decision else {
        panic!("an L5 draft run in production without a reason is denied: {decision:?}");
    };
    assert!(denial.reason.contains("`l5` (L5)"), "{}", denial.reason);
    assert!(
        denial.would_allow.contains("--reason"),
        "{}",
        denial.would_allow
    );

    assert_eq!(
        ask_for_approval(Level::L3, "20250101T000000Z-42"),
        "needs an L3 approval: ask another operator of level 3+ to run `opsgate approve run \
         20250101T000000Z-42`"
    );
}

#[test]
fn allowed_unusual_runs_carry_loud_notes() {
    let policy = policy_with("");
    let mut glass = production(request());
    glass.break_glass = true;
    glass.reason = Some("database down".to_owned());
    let Decision::Allow { notes } = decide(Some(&policy), &identity(&policy, Level::L5), &glass)
    else {
        panic!("L5 break-glass with a reason is allowed");
    };
    assert!(
        notes
            .iter()
            .any(|note| note.starts_with("BREAK-GLASS") && note.ends_with("database down")),
        "{notes:?}"
    );

    let mut draft = request();
    draft.catalog = CatalogState::Changed;
    let Decision::Allow { notes } = decide(Some(&policy), &identity(&policy, Level::L4), &draft)
    else {
        panic!("L4 runs a changed runbook outside production");
    };
    assert_eq!(
        notes,
        [
            "runbook `patch-web` has changed since it was approved: run by `l4` (L4) outside \
          production"
        ]
    );
}

#[test]
fn an_l4_draft_run_that_needs_an_approval_keeps_its_note() {
    let policy = policy_with("rules:\n  - { kind: patch, require_approval_below: 5 }\n");
    let mut draft = request();
    draft.catalog = CatalogState::Draft;
    let decision = decide(Some(&policy), &identity(&policy, Level::L4), &draft);
    let Decision::NeedsApproval { by, notes, .. } = decision else {
        panic!("the rule asks L4 for an approval: {decision:?}");
    };
    assert_eq!(by, Level::L5);
    assert_eq!(notes.len(), 1, "{notes:?}");
}
