//! `opsgate plan`: golden plan output from a fixture runbook and inventory; no host contacted.

use crate::common::{Opsgate, repository};
use crate::snapshot;

const INVENTORY: &str = "tests/fixtures/inventories/web.yaml";
const DEPLOY: &str = "tests/fixtures/runbooks/deploy.yaml";

/// `opsgate -i INVENTORY plan DEPLOY ARGS` in the repository.
fn plan_deploy(args: &[&str]) -> Opsgate {
    Opsgate::new()
        .current_dir(repository())
        .args(["-i", INVENTORY, "plan", DEPLOY])
        .args(args)
}

#[test]
fn plan_renders_every_step_for_every_host() {
    let done = plan_deploy(&["-p", "greeting=hello world", "-p", "token=s3cr3t-value"])
        .output_lacks("s3cr3t-value")
        .stderr_contains("secret param `token` was given on the command line")
        .run();
    snapshot!("plan_deploy", done.stdout());
}

#[test]
fn limit_only_narrows_the_targets() {
    plan_deploy(&["-p", "greeting=hi", "-l", "web2"])
        .stdout_contains("hosts: 1 (web2)")
        .run();
    let done = plan_deploy(&["-p", "greeting=hi", "-l", "db1"])
        .status(2)
        .run();
    snapshot!(done.stderr(), @r"
        error: pattern `web & db1` selects no host

        hint: `-l` narrows the runbook's `targets`; list the hosts with `opsgate inventory list`
    ");
}

#[test]
fn params_are_type_checked_before_anything_runs() {
    let done = plan_deploy(&["-p", "nope=1"]).status(2).run();
    snapshot!(done.stderr(), @r"
        error: unknown param `nope`

        hint: runbook `deploy` declares `greeting`, `token`

        error: param `greeting` is required

        hint: give it with `-p greeting=VALUE`

        2 errors; nothing was run
    ");
}

#[test]
fn an_undefined_inventory_variable_is_a_plan_error() {
    let done = Opsgate::new()
        .runbook("runbook: v\nkind: maintenance\ntargets: all\nsteps:\n  - command: echo {{vars.http_port}}\n")
        .arg("-i")
        .arg(repository().join(INVENTORY))
        .args(["plan", "runbook.yaml"])
        .status(2)
        .run();
    snapshot!(done.stderr(), @r"
        error: host `db1`: template variable `vars.http_port` is not defined
         --> runbook.yaml:5:14
          |
        5 |   - command: echo {{vars.http_port}}
          |              ^^^^^^^^^^^^^^^^^^^^^^^
    ");
}
