//! Closing the holes of issue #10 item 7 end to end: inventory `ssh_options` are an allowlist,
//! `--diff` masks secrets on both sides, `plan show` never prints salts or HMACs, `fetch` never
//! writes through a symlink.

use crate::common::Opsgate;

const RUNBOOK: &str =
    "runbook: hello\nkind: check\ntargets: all\nsteps:\n  - name: hi\n    command: echo hi\n";

#[test]
fn ssh_options_that_run_commands_or_change_host_key_checking_are_refused() {
    const ALLOWED: &str = "allowed options: `AddressFamily`, `Ciphers`, `Compression`";
    for (option, error, hint) in [
        (
            "ProxyCommand=sh -c 'touch /tmp/pwned'",
            "`ProxyCommand`, which is not allowed",
            "use `jump:`",
        ),
        (
            "KnownHostsCommand=/bin/echo",
            "`KnownHostsCommand`, which is not allowed",
            ALLOWED,
        ),
        (
            "LocalCommand=id",
            "`LocalCommand`, which is not allowed",
            ALLOWED,
        ),
        (
            "UserKnownHostsFile=/dev/null",
            "`UserKnownHostsFile`, which is not allowed",
            ALLOWED,
        ),
        (
            "StrictHostKeyChecking=no",
            "`StrictHostKeyChecking`, which is not allowed",
            ALLOWED,
        ),
        (
            "ProxyJump=bastion",
            "`ProxyJump`, which is not allowed",
            ALLOWED,
        ),
        (
            "Ciphers=+3des-cbc",
            "`Ciphers` with `+3des-cbc`",
            "without `+`, `-` or `^`",
        ),
    ] {
        Opsgate::new()
            .runbook(RUNBOOK)
            .inventory(&format!(
                "hosts:\n  web1: {{ ssh_options: [ConnectTimeout=5, \"{option}\"] }}\n"
            ))
            .args(["plan", "runbook.yaml"])
            .status(2)
            .stderr_contains(format!("error: host `web1` has ssh option {error}"))
            .stderr_contains("inventory.yaml:2:43")
            .stderr_contains(hint)
            .output_lacks("echo hi")
            .run();
    }
}

#[test]
fn ssh_options_that_tune_the_connection_are_accepted() {
    Opsgate::new()
        .runbook(RUNBOOK)
        .inventory(
            "hosts:\n  web1: { ssh_options: [ConnectTimeout=5, ServerAliveCountMax=2, \
             Compression=yes, \"Ciphers=aes256-gcm@openssh.com\"] }\n",
        )
        .args(["plan", "runbook.yaml"])
        .run();
}
