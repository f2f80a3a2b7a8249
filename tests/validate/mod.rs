//! `opsgate validate`: every error at once, each at `file:line:col` with a caret and a hint.

use crate::common::{Opsgate, repository};
use crate::snapshot;

#[test]
fn validate_reports_every_error_with_its_location() {
    let done = Opsgate::new()
        .current_dir(repository())
        .args(["validate", "tests/fixtures/runbooks/broken.yaml"])
        .status(2)
        .run();
    snapshot!("validate_broken", done.stderr());
}

#[test]
fn validate_accepts_the_shipped_runbooks_and_inventory() {
    let done = Opsgate::new()
        .current_dir(repository())
        .args([
            "validate",
            "runbooks/health-check.yaml",
            "runbooks/provision-app.yaml",
            "runbooks/backup-files.yaml",
            "runbooks/restore-files.yaml",
            "runbooks/patch-debian.yaml",
            "runbooks/backup-postgres.yaml",
            "runbooks/restore-postgres.yaml",
            "inventory/hosts.yaml",
        ])
        .run();
    snapshot!(done.stdout(), @r"
        ok  runbooks/health-check.yaml  runbook `health-check` (check, 6 steps, 1 param)
        ok  runbooks/provision-app.yaml  runbook `provision-app` (provision, 7 steps, 2 params)
        ok  runbooks/backup-files.yaml  runbook `backup-files` (backup, 2 steps, 1 param)
        ok  runbooks/restore-files.yaml  runbook `restore-files` (restore, 2 steps, 1 param)
        ok  runbooks/patch-debian.yaml  runbook `patch-debian` (patch, 7 steps, 3 params)
        ok  runbooks/backup-postgres.yaml  runbook `backup-postgres` (backup, 4 steps, 7 params)
        ok  runbooks/restore-postgres.yaml  runbook `restore-postgres` (restore, 3 steps, 7 params)
        ok  inventory/hosts.yaml  inventory (4 hosts, 3 groups)
    ");
}

#[test]
fn unknown_keys_get_a_did_you_mean_hint() {
    let done = Opsgate::new()
        .runbook(
            "runbook: typo\nkind: check\ntargets: all\nsteps:\n  - name: x\n    comand: uptime\n",
        )
        .args(["validate", "runbook.yaml"])
        .status(2)
        .run();
    snapshot!(done.stderr(), @r"
        error: unknown key `comand`
         --> runbook.yaml:6:5
          |
        6 |     comand: uptime
          |     ^^^^^^

        hint: did you mean `command`?
        hint: allowed here: `name`, `when`, `register`, `secret`, `become`, `become_user`, `env`, `timeout`, `retries`, `retry_delay`, `changed_when`, `failed_when`, `ignore_errors`, `check_mode`, `creates`, `removes`, `unless`, `only_if`, `expect_rc`, `executable`, `command`, `shell`, `script`, `copy`, `template`, `fetch`, `file`, `assert`, `wait_for`, `backup`, `restore`, `gate`, `user`, `package`, `service`, `reboot`
    ");
}

#[test]
fn raw_triple_stash_in_a_command_is_a_warning() {
    let done = Opsgate::new()
        .runbook("runbook: raw\nkind: maintenance\ntargets: all\nparams:\n  x: { type: string, default: a }\nsteps:\n  - command: echo {{{params.x}}}\n")
        .args(["validate", "runbook.yaml"])
        .run();
    snapshot!(done.stderr(), @r"
        warning: `{{{params.x}}}` inserts raw, unquoted text into a command
         --> runbook.yaml:7:22
          |
        7 |   - command: echo {{{params.x}}}
          |                      ^^^^^^^^

        hint: use `{{…}}` so the value is shell-quoted, unless the value is trusted shell syntax
    ");
}

#[test]
fn a_check_runbook_may_not_change_hosts() {
    let done = Opsgate::new()
        .runbook("runbook: c\nkind: check\ntargets: all\nsteps:\n  - file: { path: /tmp/x, state: absent }\n")
        .args(["validate", "runbook.yaml"])
        .status(2)
        .run();
    snapshot!(done.stderr(), @r"
        error: step uses `file`, which a `check` runbook may not use
         --> runbook.yaml:5:5
          |
        5 |   - file: { path: /tmp/x, state: absent }
          |     ^^^^

        hint: check runbooks are read-only: use `command`, `assert`, `wait_for`, `fetch`, or change `kind`
    ");
}

#[test]
fn the_example_policy_loads() {
    // Whoever runs the suite is not one of the example's operators (exit 3), but the file must
    // load: an invalid policy would exit 2.
    Opsgate::new()
        .current_dir(repository())
        .args([
            "--policy",
            "policy/operators.example.yaml",
            "--json",
            "whoami",
        ])
        .status(3)
        .run();
}
