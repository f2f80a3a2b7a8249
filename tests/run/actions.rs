//! Every action of this release, its idempotence, `--check` and `--diff`, over real SSH.

use super::{count_status, write_runbook};
use crate::common::TestLab;

const ALL_ACTIONS: &str = r#"
runbook: all-actions
kind: provision
targets: lab
params:
  motto: { type: string, default: "it's; a $(test) `x`" }
steps:
  - name: tree
    file: { path: "{{vars.lab_root}}/app/conf", state: directory, mode: "0750" }
  - name: copied file
    copy: { src: files/payload.bin, dest: "{{vars.lab_root}}/app/payload.bin", mode: "0600" }
  - name: inline content
    copy: { content: "motto={{params.motto}}\n", dest: "{{vars.lab_root}}/app/conf/motto" }
  - name: templated config
    template: { src: files/app.conf.hbs, dest: "{{vars.lab_root}}/app/conf/app.conf", mode: "0640" }
  - name: link
    file: { path: "{{vars.lab_root}}/app/current", state: link, src: "{{vars.lab_root}}/app/conf" }
  - name: nothing stale
    file: { path: "{{vars.lab_root}}/app/stale", state: absent }
  - name: initialise once
    command: echo initialised > {{vars.lab_root}}/app/init
    creates: "{{vars.lab_root}}/app/init"
  - name: read it back
    command: cat {{vars.lab_root}}/app/init
    register: init
    changed_when: false
  - name: it says so
    assert:
      that: ["{{eq init.stdout 'initialised'}}", true]
      message: init file is wrong
  - name: config is there
    wait_for: { path: "{{vars.lab_root}}/app/conf/app.conf", timeout: 5s }
  - name: fetch the config
    fetch: { src: "{{vars.lab_root}}/app/conf/app.conf", dest: fetched }
  - name: a script with arguments
    script: { src: files/hello.sh, args: ["{{host.name}}", "two words"] }
    register: hello
    changed_when: false
  - name: keep what the script said
    copy: { content: "{{hello.stdout}}", dest: "{{vars.lab_root}}/app/hello" }
"#;

fn write_fixture(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("files")).expect("files dir");
    std::fs::write(
        dir.join("files/payload.bin"),
        (0..100_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .expect("payload");
    std::fs::write(
        dir.join("files/app.conf.hbs"),
        "name = {{host.name}}\nroot = {{vars.lab_root}}\n",
    )
    .expect("template");
    std::fs::write(
        dir.join("files/hello.sh"),
        "#!/bin/sh\necho \"hello $1 [$2] $#\"\n",
    )
    .expect("script");
    write_runbook(dir, "all-actions", ALL_ACTIONS)
}

#[test]
fn every_action_runs_then_a_second_run_changes_nothing() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    let runbook = write_fixture(work.path());
    let runbook = runbook.to_str().expect("utf-8");

    let first = lab.cli(&["run", runbook]).run();
    assert!(count_status(&first, "changed") >= 3 * 7, "{}", first.text());
    for host in lab.hosts() {
        let root = &host.lab_root;
        let conf = std::fs::read_to_string(root.join("app/conf/app.conf")).expect("config written");
        assert_eq!(
            conf,
            format!("name = {}\nroot = {}\n", host.name, root.display())
        );
        assert_eq!(
            std::fs::read(root.join("app/payload.bin"))
                .expect("payload")
                .len(),
            100_000
        );
        let motto = std::fs::read_to_string(root.join("app/conf/motto")).expect("motto");
        assert_eq!(
            motto, "motto=it's; a $(test) `x`\n",
            "data fields are verbatim"
        );
        assert_eq!(
            std::fs::read_link(root.join("app/current")).expect("link"),
            root.join("app/conf")
        );
        let fetched = lab
            .workspace()
            .join("fetched")
            .join(&host.name)
            .join("app.conf");
        assert_eq!(std::fs::read_to_string(fetched).expect("fetched"), conf);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(root.join("app/conf/app.conf"))
                .expect("stat")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o640);
    }
    let hello = std::fs::read_to_string(lab.hosts()[0].lab_root.join("app/hello"))
        .expect("script output kept");
    assert_eq!(
        hello, "hello lab1 [two words] 2",
        "script arguments arrive as words"
    );

    let second = lab.cli(&["run", runbook]).run();
    assert_eq!(
        count_status(&second, "changed"),
        0,
        "second run must be idempotent:\n{}",
        second.text()
    );
}

#[test]
fn check_mode_changes_nothing_and_diff_shows_the_change() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    let runbook = write_fixture(work.path());
    let runbook = runbook.to_str().expect("utf-8");

    let check = lab.cli(&["run", runbook, "--check"]).run();
    for host in lab.hosts() {
        assert!(
            !host.lab_root.join("app").exists(),
            "--check created files on {}",
            host.name
        );
    }
    assert!(check.text().contains("would change"), "{}", check.text());

    lab.cli(&["run", runbook]).run();
    std::fs::write(
        work.path().join("files/app.conf.hbs"),
        "name = {{host.name}}\nroot = {{vars.lab_root}}\nextra = 1\n",
    )
    .expect("edit template");
    lab.cli(&["run", runbook, "--check", "--diff", "-l", "lab2"])
        .output_contains("+extra = 1")
        .run();
    let conf =
        std::fs::read_to_string(lab.hosts()[1].lab_root.join("app/conf/app.conf")).expect("config");
    assert!(!conf.contains("extra"), "--check --diff must not write");
}

#[test]
fn template_values_reach_the_shell_as_one_literal_argument() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    let runbook = write_runbook(
        work.path(),
        "quoting",
        "runbook: quoting\nkind: maintenance\ntargets: lab\nparams:\n  name: { type: string, required: true }\nsteps:\n  - command: printf '%s\\n' {{params.name}} > {{vars.lab_root}}/argument; echo $# >> {{vars.lab_root}}/argument\n",
    );
    let hostile = "x; rm -rf / $(touch pwned) `id` 'q' \"d\"";
    lab.cli(&[
        "run",
        runbook.to_str().expect("utf-8"),
        "-p",
        &format!("name={hostile}"),
    ])
    .run();
    for host in lab.hosts() {
        let written =
            std::fs::read_to_string(host.lab_root.join("argument")).expect("argument file");
        assert_eq!(written.lines().next(), Some(hostile), "on {}", host.name);
        assert!(!host.lab_root.join("pwned").exists());
    }
}

/// A secret in command text or `env` never reaches the host's command line, which every user
/// of the host can read with `ps` while the command runs: the program travels on stdin.
#[test]
fn a_secret_never_shows_in_the_hosts_process_list() {
    const TOKEN: &str = "tok-5d0c8e1a-never-in-ps";
    let lab = TestLab::start(1);
    let work = lab.workspace().to_path_buf();
    let token_file = work.join("token");
    std::fs::write(&token_file, TOKEN).expect("token file");
    let runbook = write_runbook(
        &work,
        "secret",
        r#"
runbook: secret
kind: maintenance
targets: lab
params:
  token: { type: string, secret: true, required: true }
steps:
  - name: in the command text
    command: ps -eo args > {{vars.lab_root}}/ps-command.txt; printf %s {{params.token}} > {{vars.lab_root}}/from-text
  - name: in the environment
    command: ps -eo args > {{vars.lab_root}}/ps-env.txt; printf %s "$TOKEN" > {{vars.lab_root}}/from-env
    env: { TOKEN: "{{params.token}}" }
"#,
    );
    let token = format!("token=@{}", token_file.display());
    lab.cli(&["run", runbook.to_str().expect("utf-8"), "-p", &token])
        .run();
    let root = &lab.hosts()[0].lab_root;
    for (list, got) in [("ps-command.txt", "from-text"), ("ps-env.txt", "from-env")] {
        let processes = std::fs::read_to_string(root.join(list)).expect("ps output");
        assert!(
            processes.contains("ps -eo args") || processes.contains("opsgate-run"),
            "the listing was taken while the step ran:\n{processes}"
        );
        assert!(!processes.contains(TOKEN), "{list}:\n{processes}");
        assert_eq!(
            std::fs::read_to_string(root.join(got)).expect("the program's output"),
            TOKEN,
            "the program still got the secret"
        );
    }
}
