//! `opsgate audit verify | checkpoint | export`: check, pin and export the audit history.
//!
//! `verify` recomputes the hash chain (and compares checkpoints, and checks their signatures
//! with `--allowed-signers`); a broken history is not an error of the command but its answer, so
//! it is returned as [`Verdict::Broken`], which the caller turns into exit code 4.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::args::{AuditArgs, AuditCommand};
use crate::audit::{AuditError, Checkpoint};
use crate::error::Error;
use crate::ops::{self, Context};
use crate::render;
use crate::render::audit::Verdict;
use crate::render::history::write_json;

/// Runs `audit`. Store and I/O failures are errors; a broken history is [`Verdict::Broken`].
pub(crate) fn run(
    args: &AuditArgs,
    context: Context<'_>,
    json: bool,
    out: &mut dyn Write,
) -> Result<Verdict, Error> {
    match &args.command {
        AuditCommand::Verify {
            checkpoint,
            allowed_signers,
        } => {
            // The checkpoint file is the operator's: read here, handed down as data.
            let checkpoints = match checkpoint {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|source| {
                        Error::Unverifiable(AuditError::Read {
                            path: path.clone(),
                            source,
                        })
                    })?;
                    Checkpoint::parse_all(path, &text).map_err(Error::Unverifiable)?
                }
                None => Vec::new(),
            };
            let verification =
                ops::audit::verify(context, &checkpoints, allowed_signers.as_deref())?;
            let verdict = if verification.is_intact() {
                Verdict::Success
            } else {
                Verdict::Broken
            };
            if json {
                write_json(out, &render::audit::verify_json(&verification, verdict))?;
            } else {
                render::audit::render_verify(&verification, verdict, out)
                    .map_err(AuditError::Output)?;
            }
            Ok(verdict)
        }
        AuditCommand::Checkpoint { key, append } => {
            let checkpoint = ops::audit::checkpoint(context, key.as_deref())?;
            if let Some(path) = append {
                append_checkpoint(path, &checkpoint)?;
            }
            if json {
                write_json(out, &checkpoint)?;
            } else {
                out.write_all(checkpoint.render().as_bytes())
                    .map_err(AuditError::Output)?;
            }
            Ok(Verdict::Success)
        }
        AuditCommand::Export { jsonl: _, since } => {
            ops::audit::export(context, *since, out)?;
            Ok(Verdict::Success)
        }
    }
}

/// Appends `checkpoint` to the operator's checkpoint file, durably.
pub(super) fn append_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<(), AuditError> {
    let write_error = |source| AuditError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(path)
        .map_err(write_error)?;
    file.write_all(checkpoint.render().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_error)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;
    use rusqlite::Connection;

    use super::{AuditArgs, Verdict, run};
    use crate::audit::{Actor, AuditStore, Record, RunStatus};

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        audit: AuditArgs,
    }

    fn invoke(args: &[&str], state_dir: &Path, json: bool) -> (Verdict, String) {
        let args = Cli::try_parse_from(std::iter::once("audit").chain(args.iter().copied()))
            .expect("arguments parse")
            .audit;
        let mut out = Vec::new();
        let mut verdict = None;
        crate::cli::testing::with_context(state_dir, |context| {
            verdict = Some(run(&args, context, json, &mut out).expect("audit runs"));
        });
        (
            verdict.expect("audit ran"),
            String::from_utf8(out).expect("utf-8"),
        )
    }

    fn history(state_dir: &Path, runs: usize) {
        let mut store = AuditStore::open(state_dir).expect("open");
        let actor = Actor {
            uid: 0,
            user: "root".into(),
            sudo_user: None,
            login_uid: None,
        };
        for _ in 0..runs {
            let requested = Record::RunRequested {
                operator: "root".into(),
                runbook: "check-disk".into(),
                runbook_sha256: "ab".repeat(32),
                params: Vec::new(),
                pattern: "all".into(),
                hosts: vec!["web1".into()],
                check: true,
            };
            let (run, _lock) = store.begin_run(&actor, requested).expect("begin");
            store
                .append(run, &actor, &Record::RunStarted)
                .expect("start");
            store
                .append(
                    run,
                    &actor,
                    &Record::RunFinished {
                        status: RunStatus::Ok,
                        message: None,
                    },
                )
                .expect("finish");
        }
    }

    #[test]
    fn verify_prints_the_head_and_count_or_names_the_broken_event() {
        let directory = tempfile::tempdir().expect("temp dir");
        let state = directory.path().join("state");
        history(&state, 3);
        let (verdict, text) = invoke(&["verify"], &state, false);
        assert_eq!(verdict, Verdict::Success);
        assert!(
            text.starts_with("audit history intact\n  events  9\n  head    "),
            "{text}"
        );

        let connection = Connection::open(state.join("audit.db")).expect("raw");
        connection
            .execute_batch(
                "DROP TRIGGER entry_is_append_only_update; UPDATE entry SET at = at + 1 WHERE seq = 5;",
            )
            .expect("tamper");
        let (verdict, text) = invoke(&["verify"], &state, false);
        assert_eq!((verdict, verdict.exit().code()), (Verdict::Broken, 4));
        assert!(text.contains("broken  event 5 was altered"), "{text}");
        assert!(text.contains("\n  store   "), "the store id: {text}");
        let (_, json) = invoke(&["verify"], &state, true);
        let json: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(json["intact"], false);
        assert_eq!(json["store_id"].as_str().map(str::len), Some(32), "{json}");
        assert_eq!(
            json["chain_break"],
            serde_json::json!({"problem": "altered", "seq": 5})
        );
    }

    #[test]
    fn a_signed_checkpoint_file_catches_truncation_and_forged_signatures() {
        let directory = tempfile::tempdir().expect("temp dir");
        let state = directory.path().join("state");
        history(&state, 2);
        let key = directory.path().join("auditor");
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen");
        assert!(status.success());
        let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
        let allowed = directory.path().join("allowed_signers");
        std::fs::write(&allowed, format!("auditor {public}")).expect("allowed signers");
        let file = directory.path().join("checkpoints");
        let file_arg = file.to_str().expect("utf-8 path");
        let key_arg = key.to_str().expect("utf-8 path");
        let allowed_arg = allowed.to_str().expect("utf-8 path");

        let (_, printed) = invoke(
            &["checkpoint", "--key", key_arg, "--append", file_arg],
            &state,
            false,
        );
        assert!(
            printed.starts_with("opsgate audit checkpoint v1\nevents 6\n"),
            "{printed}"
        );
        assert!(printed.contains("-----BEGIN SSH SIGNATURE-----"));
        history(&state, 1);
        invoke(
            &["checkpoint", "--key", key_arg, "--append", file_arg],
            &state,
            false,
        );

        let verify = [
            "verify",
            "--checkpoint",
            file_arg,
            "--allowed-signers",
            allowed_arg,
        ];
        let (verdict, text) = invoke(&verify, &state, false);
        assert_eq!(verdict, Verdict::Success, "{text}");
        assert!(
            text.contains("(6 events): matches, signed by auditor"),
            "{text}"
        );
        assert!(
            text.contains("(9 events): matches, signed by auditor"),
            "{text}"
        );

        // Cut the last run off: the chain is still valid, the second checkpoint is not.
        let connection = Connection::open(state.join("audit.db")).expect("raw");
        connection
            .execute_batch(
                "DROP TRIGGER entry_is_append_only_delete; DELETE FROM entry WHERE seq > 6;",
            )
            .expect("truncate");
        let (verdict, text) = invoke(&verify, &state, false);
        assert_eq!(verdict, Verdict::Broken, "{text}");
        assert!(
            text.contains("(9 events): the store holds 6 events: events 7 to 9 were cut off"),
            "{text}"
        );

        // A forger who edits the checkpoint to match cannot re-sign it.
        let forged = std::fs::read_to_string(&file)
            .expect("read")
            .replace("events 9", "events 6");
        std::fs::write(&file, forged).expect("write");
        let (verdict, text) = invoke(&verify, &state, false);
        assert_eq!(verdict, Verdict::Broken, "{text}");
        assert!(text.contains("SIGNATURE INVALID"), "{text}");
    }

    #[test]
    fn export_writes_one_event_per_line_with_chain_fields() {
        let directory = tempfile::tempdir().expect("temp dir");
        history(directory.path(), 2);
        let (verdict, text) = invoke(&["export", "--jsonl"], directory.path(), false);
        assert_eq!(verdict, Verdict::Success);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[0]["seq"], 1);
        assert_eq!(lines[0]["kind"], "run_requested");
        assert_eq!(lines[0]["record"]["runbook"], "check-disk");
        assert_eq!(lines[0]["prev_hash"], "0".repeat(64));
        for pair in lines.windows(2) {
            assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
        }
        let (_, later) = invoke(
            &["export", "--jsonl", "--since", "2999-01-01"],
            directory.path(),
            false,
        );
        assert_eq!(later, "");
        assert!(
            Cli::try_parse_from(["audit", "export"]).is_err(),
            "--jsonl is required"
        );
    }
}
