//! Behaviour of the template module as callers see it: rendering, conditions, references.

use serde_json::{Value, json};

use super::{Mode, Reference, Renderer, TemplateError, is_template, references};

/// A context shaped like the one `plan` builds.
fn context() -> Value {
    json!({
        "params": {
            "keep": 7,
            "reboot": false,
            "env": "production",
            "evil": "x; rm -rf /",
            "subst": "$(id)",
            "tick": "`id`",
            "quote": "it's",
            "newline": "a\nb",
            "empty": "",
            "word": "abc-1.2/x",
            "packages": ["nginx", "it's here"],
            "none": [],
            "ratio": 2.5,
            "map": {"a": 1},
            "nul": "a\u{0}b",
        },
        "host": {"name": "web1", "address": "10.0.0.11", "groups": ["web", "production"], "environment": "production"},
        "vars": {"backup_root": "/var/backups", "http_port": 8080},
        "facts": {"os_family": "debian"},
        "pending": {"rc": 0, "stdout": "3", "stderr": "", "stdout_lines": ["3"], "changed": false, "status": "ok"},
        "timed_out": {"rc": null, "stdout": "", "status": "failed"},
        "run": {"id": "r-1", "operator": "alice"},
    })
}

fn render(mode: Mode, template: &str) -> Result<String, TemplateError> {
    Renderer::new().render(mode, template, &context())
}

/// Each template renders to its expected text in `mode`.
fn assert_renders(mode: Mode, cases: &[(&str, &str)]) {
    for &(template, expected) in cases {
        assert_eq!(
            render(mode, template).as_deref(),
            Ok(expected),
            "template {template:?}"
        );
    }
}

#[test]
fn command_mode_quotes_every_value() {
    let cases = [
        ("echo {{params.evil}}", "echo 'x; rm -rf /'"),
        ("echo {{params.subst}}", "echo '$(id)'"),
        ("echo {{params.tick}}", "echo '`id`'"),
        ("echo {{params.quote}}", "echo 'it'\\''s'"),
        ("echo {{params.newline}}", "echo 'a\nb'"),
        ("echo {{params.empty}}", "echo ''"),
        ("echo {{params.word}}", "echo abc-1.2/x"),
        ("find . -mtime +{{params.keep}}", "find . -mtime +7"),
        ("echo {{params.reboot}} {{params.ratio}}", "echo false 2.5"),
        (
            "apt-get install {{params.packages}}",
            "apt-get install nginx 'it'\\''s here'",
        ),
        ("rm -f {{params.none}}", "rm -f "),
        ("echo {{params.map}}", "echo '{\"a\":1}'"),
        ("echo {{timed_out.rc}}", "echo ''"),
        ("echo {{host.name}}:{{vars.http_port}}", "echo web1:8080"),
        (
            "{{#each host.groups}}[{{this}}]{{/each}}",
            "[web][production]",
        ),
        (
            "{{#each params.packages as |package|}}{{package}};{{/each}}",
            "nginx;'it'\\''s here';",
        ),
        ("echo {{eq params.env 'production'}}", "echo true"),
        ("echo {{lookup vars 'backup_root'}}", "echo /var/backups"),
        ("echo {{len params.packages}}", "echo 2"),
        ("echo {{ (eq params.keep 7) }}", "echo true"),
        ("grep -c ^Inst || true", "grep -c ^Inst || true"),
        ("echo \\{{literal}}", "echo {{literal}}"),
    ];
    assert_renders(Mode::Command, &cases);
}

#[test]
fn command_mode_quoting_survives_a_real_shell() {
    let context = context();
    let renderer = Renderer::new();
    for name in ["evil", "subst", "tick", "quote", "newline", "empty"] {
        let command = renderer
            .render(
                Mode::Command,
                &format!("printf '%s' {{{{params.{name}}}}}"),
                &context,
            )
            .expect("renders");
        let output = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&command)
            .output()
            .expect("sh runs");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            context["params"][name].as_str().unwrap_or_default()
        );
    }
}

#[test]
fn triple_stash_inserts_raw_text() {
    let cases = [
        ("{{{params.evil}}}", "x; rm -rf /"),
        ("{{&params.subst}}", "$(id)"),
        ("ls {{{params.packages}}}", "ls nginx it's here"),
        ("{{{timed_out.rc}}}", ""),
        ("{{~{params.word}~}}", "abc-1.2/x"),
        ("{{{eq params.keep 7}}}", "true"),
    ];
    assert_renders(Mode::Command, &cases);
}

#[test]
fn data_mode_is_verbatim() {
    let cases = [
        ("{{params.evil}}", "x; rm -rf /"),
        (
            "<{{params.quote}}> & \"{{params.subst}}\"",
            "<it's> & \"$(id)\"",
        ),
        ("{{params.keep}}", "7"),
        ("{{params.empty}}", ""),
        ("[{{timed_out.rc}}]", "[]"),
        ("{{host.groups}}", "[\"web\",\"production\"]"),
        ("{{params.map}}", "{\"a\":1}"),
        (
            "{{pending.stdout}} packages on {{host.name}}",
            "3 packages on web1",
        ),
        ("{{{params.evil}}}", "x; rm -rf /"),
        ("{{params.nul}}", "a\u{0}b"),
        ("no template at all", "no template at all"),
        (
            "{{#each host.groups}}{{@index}}={{this}}{{#unless @last}},{{/unless}}{{/each}}",
            "0=web,1=production",
        ),
        (
            "{{#with host}}{{name}}@{{address}}{{/with}}",
            "web1@10.0.0.11",
        ),
        (
            "{{#each host.groups}}{{../host.name}}/{{@root.run.id}} {{/each}}",
            "web1/r-1 web1/r-1 ",
        ),
        ("{{#if params.reboot}}yes{{else}}no{{/if}}", "no"),
        ("{{#if timed_out.rc}}rc{{else}}no rc{{/if}}", "no rc"),
        (
            "{{#if pending.rc includeZero=true}}zero counts{{/if}}",
            "zero counts",
        ),
        (
            "{{#eq params.env \"production\"}}prod{{else}}other{{/eq}}",
            "prod",
        ),
        (
            "{{#if (gt pending.stdout 2)}}many{{else if (eq pending.stdout 0)}}none{{else}}few{{/if}}",
            "many",
        ),
    ];
    assert_renders(Mode::Data, &cases);
}

#[test]
fn command_mode_refuses_values_inside_the_commands_own_quotes() {
    let cases = [
        ("echo '{{params.evil}}'", "single quotes", 6),
        ("echo \"Deploying {{params.word}}\"", "double quotes", 16),
        (
            "cat <<EOF > /etc/motd\n{{params.subst}}\nEOF",
            "a here-document",
            22,
        ),
    ];
    for (template, context, offset) in cases {
        assert_eq!(
            render(Mode::Command, template),
            Err(TemplateError::QuotedExpression {
                context: context.to_owned(),
                offset: Some(offset)
            }),
            "template {template:?}"
        );
        assert!(super::command_references(template).is_err());
        // Data fields are never shell text, so the same template is fine there.
        assert!(render(Mode::Data, template).is_ok());
    }
    assert_eq!(
        render(Mode::Command, "echo '{{{params.word}}}'").as_deref(),
        Ok("echo 'abc-1.2/x'")
    );
}

#[test]
fn command_mode_refuses_a_nul_byte() {
    let error = render(Mode::Command, "echo {{params.nul}}").expect_err("NUL cannot be quoted");
    assert!(
        matches!(&error, TemplateError::Render { message, offset: Some(5) } if message.contains("`params.nul`")),
        "{error:?}"
    );
}

#[test]
fn conditions_must_be_true_or_false() {
    let renderer = Renderer::new();
    let context = context();
    let cases: &[(&str, Result<bool, &str>)] = &[
        ("true", Ok(true)),
        (" false\n", Ok(false)),
        ("{{params.reboot}}", Ok(false)),
        ("{{eq params.env 'production'}}", Ok(true)),
        ("{{eq params.env \"production\"}}", Ok(true)),
        ("{{ne params.env 'staging'}}", Ok(true)),
        ("{{eq host.environment 'staging'}}", Ok(false)),
        ("{{and (eq params.keep 7) (not params.reboot)}}", Ok(true)),
        ("{{or params.reboot (eq timed_out.rc null)}}", Ok(true)),
        ("{{#if params.reboot}}true{{else}}false{{/if}}", Ok(false)),
        ("  {{gt params.keep 3}}  ", Ok(true)),
        ("yes", Err("yes")),
        ("{{params.keep}}", Err("7")),
        ("", Err("")),
        ("{{params.env}}", Err("production")),
    ];
    for (template, expected) in cases {
        let result = renderer.condition(template, &context);
        match expected {
            Ok(value) => assert_eq!(result, Ok(*value), "condition {template:?}"),
            Err(text) => assert_eq!(
                result,
                Err(TemplateError::NotABoolean {
                    rendered: (*text).to_owned()
                }),
                "condition {template:?}"
            ),
        }
    }
}

#[test]
fn comparisons_are_numeric_for_numbers() {
    let renderer = Renderer::new();
    let context = json!({"int": 7, "float": 7.0, "big": 10, "text": "10", "nine": "9", "word": "abc", "none": null, "flag": true, "negative": -3});
    let cases = [
        ("{{eq int float}}", true),
        ("{{eq int 7}}", true),
        ("{{eq int 7.0}}", true),
        ("{{eq big text}}", true),
        ("{{eq text 10}}", true),
        ("{{lt nine text}}", true),
        ("{{gt big 9}}", true),
        ("{{gt text nine}}", true),
        ("{{le int 7}}", true),
        ("{{ge int 8}}", false),
        ("{{lt negative 0}}", true),
        ("{{lt 'abc' 'abd'}}", true),
        ("{{eq word 'abc'}}", true),
        ("{{eq word 10}}", false),
        ("{{ne word 10}}", true),
        ("{{eq none null}}", true),
        ("{{eq none 0}}", false),
        ("{{eq flag true}}", true),
        ("{{eq flag 'true'}}", false),
        ("{{eq 'it\\'s' 1}}", false),
    ];
    for (template, expected) in cases {
        assert_eq!(
            renderer.condition(template, &context),
            Ok(expected),
            "condition {template:?}"
        );
    }
    for template in ["{{lt none 1}}", "{{gt flag 0}}", "{{lt word 3}}"] {
        let error = renderer
            .condition(template, &context)
            .expect_err("cannot order");
        assert!(
            matches!(&error, TemplateError::Render { message, .. } if message.contains("cannot order")),
            "{error:?}"
        );
    }
}

#[test]
fn undefined_variables_are_errors() {
    let renderer = Renderer::new();
    let context = context();
    let cases: &[(Mode, &str, &str, usize)] = &[
        (
            Mode::Command,
            "echo {{params.missing}}",
            "params.missing",
            7,
        ),
        (Mode::Data, "{{nothing}}", "nothing", 2),
        (
            Mode::Data,
            "ok {{#if params.missing}}x{{/if}}",
            "params.missing",
            9,
        ),
        (Mode::Data, "{{#unless missing}}x{{/unless}}", "missing", 10),
        (
            Mode::Data,
            "{{eq params.env params.typo}}",
            "params.typo",
            16,
        ),
        (
            Mode::Data,
            "{{#if (eq missing.value 1)}}x{{/if}}",
            "missing",
            10,
        ),
        (
            Mode::Data,
            "{{#if true}}{{else}}{{params.x}}{{/if}}",
            "params.x",
            22,
        ),
        (Mode::Data, "{{#each missing}}x{{/each}}", "missing", 8),
        (
            Mode::Data,
            "{{#with params.nope}}x{{/with}}",
            "params.nope",
            8,
        ),
        (Mode::Data, "{{not params.nope}}", "params.nope", 6),
        (Mode::Data, "{{and true params.nope}}", "params.nope", 11),
        (
            Mode::Data,
            "{{lookup vars 'x' }}{{len vars.nope}}",
            "vars.nope",
            26,
        ),
        (
            Mode::Data,
            "{{pending.stdout.deeper}}",
            "pending.stdout.deeper",
            2,
        ),
        (Mode::Data, "{{host.groups.[5]}}", "host.groups.5", 2),
        (Mode::Data, "{{timed_out.rc.x}}", "timed_out.rc.x", 2),
    ];
    for &(mode, template, path, offset) in cases {
        assert_undefined(
            renderer.render(mode, template, &context),
            template,
            path,
            offset,
        );
    }
}

/// `result` is an [`TemplateError::Undefined`] naming `path` at `offset`.
fn assert_undefined(
    result: Result<String, TemplateError>,
    template: &str,
    path: &str,
    offset: usize,
) {
    match result {
        Err(TemplateError::Undefined {
            path: found,
            offset: found_offset,
            ..
        }) => assert_eq!(
            (found.as_str(), found_offset),
            (path, Some(offset)),
            "template {template:?}"
        ),
        other => panic!("template {template:?}: expected Undefined, got {other:?}"),
    }
}

#[test]
fn undefined_inside_blocks_is_caught_at_render_time() {
    let renderer = Renderer::new();
    let context = context();
    let cases: &[(&str, &str, usize)] = &[
        (
            "{{#each host.groups}}{{this.name}}{{/each}}",
            "this.name",
            23,
        ),
        (
            "{{#each host.groups}}{{#if nope}}x{{/if}}{{/each}}",
            "nope",
            27,
        ),
        ("{{#with host}}{{name}} {{port}}{{/with}}", "port", 25),
        ("{{lookup vars 'nope'}}", "vars.nope", 0),
    ];
    for &(template, path, offset) in cases {
        assert_undefined(
            renderer.render(Mode::Data, template, &context),
            template,
            path,
            offset,
        );
    }
}

#[test]
fn undefined_names_what_is_defined() {
    let error = render(Mode::Data, "{{params.kep}}").expect_err("typo");
    let TemplateError::Undefined { available, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(
        available.contains(&"keep".to_owned())
            && available.windows(2).all(|pair| pair[0] <= pair[1])
    );
    assert!(error.hints()[0].contains("`keep`"));
}

#[test]
fn syntax_errors_carry_offsets() {
    let cases: &[(&str, usize, &str)] = &[
        ("echo {{x", 8, "ends inside"),
        (
            "{{#if x}}a{{/each}}",
            10,
            "`{{#if}}` is closed by `{{/each}}`",
        ),
        ("abc\n  {{foo bar=}}", 16, "expected a value"),
        ("{{'x'}}", 2, "expected"),
        ("{{#if x}}open", 13, "ends inside"),
        ("run {{> partial}}", 4, "partials"),
        ("{{if x}}", 2, "needs a block"),
        ("{{#lookup vars 'x'}}{{/lookup}}", 3, "cannot open a block"),
    ];
    for (template, offset, message) in cases {
        match references(template) {
            Err(TemplateError::Syntax {
                message: found,
                offset: found_offset,
            }) => {
                assert_eq!(
                    found_offset,
                    Some(*offset),
                    "template {template:?}: {found}"
                );
                assert!(found.contains(message), "template {template:?}: {found}");
            }
            other => panic!("template {template:?}: expected Syntax, got {other:?}"),
        }
    }
}

#[test]
fn unknown_helpers_are_rejected_with_their_offset() {
    let cases: &[(&str, &str, usize)] = &[
        ("{{upper params.env}}", "upper", 2),
        ("x {{#unless (shout a)}}y{{/unless}}", "shout", 13),
        ("{{gte params.keep 1}}", "gte", 2),
        ("{{log 'x'}}", "log", 2),
        ("{{{{raw}}}} {{x}} {{{{/raw}}}}", "raw", 4),
        ("{{#custom}}x{{/custom}}", "custom", 3),
    ];
    for (template, name, offset) in cases {
        assert_eq!(
            references(template),
            Err(TemplateError::UnknownHelper {
                name: (*name).to_owned(),
                offset: Some(*offset)
            }),
            "template {template:?}"
        );
        assert!(
            Renderer::new()
                .render(Mode::Data, template, &context())
                .is_err()
        );
    }
}

/// `(path, raw, offset, length)` of every reference, for compact expectations.
fn found(template: &str) -> Vec<(String, bool, usize, usize)> {
    references(template)
        .unwrap_or_else(|error| panic!("template {template:?}: {error:?}"))
        .into_iter()
        .map(
            |Reference {
                 path,
                 raw,
                 offset,
                 length,
             }| (path.join("."), raw, offset, length),
        )
        .collect()
}

#[test]
fn references_report_every_root_path() {
    type Expected = &'static [(&'static str, bool, usize, usize)];
    let cases: &[(&str, Expected)] = &[
        ("no template", &[]),
        ("{{params.keep}}", &[("params.keep", false, 2, 11)]),
        (
            "{{{params.raw}}} {{&x}}",
            &[("params.raw", true, 3, 10), ("x", true, 20, 1)],
        ),
        (
            "{{pending.stdout}} on {{host.name}}",
            &[
                ("pending.stdout", false, 2, 14),
                ("host.name", false, 24, 9),
            ],
        ),
        (
            "{{#if (eq params.env 'production')}}{{facts.os_family}}{{/if}}",
            &[
                ("params.env", false, 10, 10),
                ("facts.os_family", false, 38, 15),
            ],
        ),
        ("{{eq a a}}", &[("a", false, 5, 1), ("a", false, 7, 1)]),
        (
            "{{#each host.groups as |group|}}{{group}}{{this}}{{@index}}{{name}}{{../params.x}}{{@root.run.id}}{{/each}}",
            &[
                ("host.groups", false, 8, 11),
                ("params.x", false, 69, 11),
                ("run.id", false, 84, 12),
            ],
        ),
        (
            "{{#each xs}}{{x}}{{else}}{{x}}{{/each}}",
            &[("xs", false, 8, 2), ("x", false, 27, 1)],
        ),
        (
            "{{#with host}}{{name}}{{/with}}{{name}}",
            &[("host", false, 8, 4), ("name", false, 33, 4)],
        ),
        (
            "{{#if a}}{{else if b}}{{else}}{{c}}{{/if}}",
            &[("a", false, 6, 1), ("b", false, 19, 1), ("c", false, 32, 1)],
        ),
        (
            "{{lookup vars key=z 'x'}}",
            &[("vars", false, 9, 4), ("z", false, 18, 1)],
        ),
        (
            "{{this.params.x}}{{./y}}",
            &[("params.x", false, 2, 13), ("y", false, 19, 3)],
        ),
        ("{{params.[my key]}}", &[("params.my key", false, 2, 15)]),
        ("{{host.groups.[0]}}", &[("host.groups.0", false, 2, 15)]),
        (
            "{{#if x}}\n  {{y}}\n{{/if}}",
            &[("x", false, 6, 1), ("y", false, 14, 1)],
        ),
        ("{{!-- {{hidden}} --}}\\{{escaped}}", &[]),
        (
            "{{#each a}}{{#each b}}{{../../c}}{{../d}}{{/each}}{{/each}}",
            &[("a", false, 8, 1), ("c", false, 24, 7)],
        ),
        ("{{len}}", &[("len", false, 2, 3)]),
    ];
    for (template, expected) in cases {
        let expected: Vec<_> = expected
            .iter()
            .map(|(path, raw, offset, length)| ((*path).to_owned(), *raw, *offset, *length))
            .collect();
        assert_eq!(found(template), expected, "template {template:?}");
        for reference in references(template).unwrap_or_default() {
            let written = &template[reference.offset..reference.offset + reference.length];
            assert!(
                written.ends_with(
                    reference
                        .path
                        .last()
                        .map_or("", |last| last.trim_matches(['[', ']']))
                ) || written.ends_with(']'),
                "{written:?}"
            );
        }
    }
}

#[test]
fn is_template_looks_for_an_opening_brace_pair() {
    assert!(is_template("echo {{x}}"));
    assert!(is_template("{{"));
    assert!(!is_template("echo }} {x}"));
}

#[test]
fn blocks_iterate_lists_and_maps() {
    let renderer = Renderer::new();
    let context = json!({"ports": {"http": 80, "https": 443}, "empty": [], "hosts": [{"name": "a b"}, {"name": "c"}]});
    let cases = [
        (
            Mode::Data,
            "{{#each ports}}{{@key}}={{this}} {{/each}}",
            "http=80 https=443 ",
        ),
        (
            Mode::Data,
            "{{#each empty}}item{{else}}nothing{{/each}}",
            "nothing",
        ),
        (
            Mode::Command,
            "ping {{#each hosts}}{{name}} {{/each}}",
            "ping 'a b' c ",
        ),
        (
            Mode::Command,
            "{{#each hosts as |host|}}{{#if @first}}{{host.name}}{{/if}}{{/each}}",
            "'a b'",
        ),
    ];
    for (mode, template, expected) in cases {
        assert_eq!(
            renderer.render(mode, template, &context).as_deref(),
            Ok(expected),
            "template {template:?}"
        );
    }
}

#[test]
fn a_renderer_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Renderer>();
}
