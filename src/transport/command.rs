//! Remote commands: what to run on a host, and the one command line that carries it.
//!
//! sshd hands a command to the login shell of the remote account as a single string, so every
//! word opsgate sends is quoted here, exactly once, with POSIX single quotes ([`crate::quote::shell_quote`]).
//! A [`Program::Argv`] is a list of words, each quoted; a [`Program::Script`] is the only way to
//! send shell text, and it travels as one quoted argument of `/bin/sh -c`.
//!
//! Around the program the line adds, from the outside in:
//! - `sudo -n -u USER --` when the command runs as another account (`become`);
//! - a small `/bin/sh` wrapper that starts the program under coreutils
//!   `timeout -k 5 SECONDS` (`0` means no limit). `timeout` moves itself into a process group
//!   of its own and signals that whole group when the limit passes, so nothing the step started
//!   outlives it. The group id is written to a per-command pid file under `/tmp`, which lets
//!   [`Connection::kill_running`](super::Connection::kill_running) signal the group on demand;
//!   the wrapper removes the file when the program ends;
//! - `env -- NAME=VALUE …` for the step's environment (inside `sudo`, which would reset it).
//!
//! A command line is visible to every user of the host (`ps`) while it runs, and sudo logs it.
//! A command marked [`RemoteCommand::conceal`] (one that carries a secret) therefore keeps its
//! program and environment off the line: the line holds only a fixed loader, and the program
//! travels on standard input, ahead of the command's own input, as a length line and a shell
//! file that exports the environment and runs the program ([`Invocation::stdin_prefix`]). The
//! loader copies exactly that many bytes into a private temp file (mode 0600), opens it, removes
//! it, and runs it from the open descriptor; the rest of standard input is the program's.
//!
//! This module only builds text; it never talks to a host.

use std::fmt::Write as _;
use std::time::Duration;

use crate::quote::shell_quote;

/// What to execute on the remote host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// Shell text run by `/bin/sh -c TEXT`, or by `EXECUTABLE -c TEXT` when `executable` is set.
    /// Pipes, `&&` and redirections work; values spliced into `text` must already be quoted.
    Script {
        /// The shell text, sent as one argument.
        text: String,
        /// The interpreter to use instead of `/bin/sh` (it must accept `-c TEXT`).
        executable: Option<String>,
    },
    /// A program and its arguments; each word reaches the program unchanged.
    Argv(Vec<String>),
}

/// One command to run on one host, fully rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    /// What to execute.
    pub program: Program,
    /// Run through `sudo -n -u USER` as this account; nothing changes when the login account
    /// already is `USER`.
    pub become_user: Option<String>,
    /// Environment variables for the program; names must match `[A-Za-z_][A-Za-z0-9_]*`.
    pub env: Vec<(String, String)>,
    /// Bytes fed to the program's standard input (used to upload files); `None` gives it an
    /// empty standard input.
    pub stdin: Option<Vec<u8>>,
    /// The longest the program may run; its whole process group is killed afterwards.
    pub timeout: Option<Duration>,
    /// Keep the program text and the environment off the host's command line (see the module
    /// docs): for commands that carry a secret.
    pub conceal: bool,
}

impl RemoteCommand {
    /// A command that runs shell `text` with `/bin/sh -c`, with no other settings.
    pub fn script(text: impl Into<String>) -> Self {
        Self::new(Program::Script {
            text: text.into(),
            executable: None,
        })
    }

    /// A command that runs the program and arguments in `words`, with no other settings.
    pub fn argv<I, S>(words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(Program::Argv(words.into_iter().map(Into::into).collect()))
    }

    /// A command that runs `program`, with no other settings.
    #[must_use]
    pub fn new(program: Program) -> Self {
        Self {
            program,
            become_user: None,
            env: Vec::new(),
            stdin: None,
            timeout: None,
            conceal: false,
        }
    }
}

/// A command as it goes over SSH: the command line, and what precedes the command's own
/// standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    /// The command line for the remote login shell.
    pub(crate) line: String,
    /// For a concealed command: the length line and the program file, sent before
    /// [`RemoteCommand::stdin`].
    pub(crate) stdin_prefix: Option<Vec<u8>>,
}

/// Why a [`RemoteCommand`] cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandProblem {
    /// [`Program::Argv`] without a program.
    #[error("the command has no program to run")]
    EmptyArgv,
    /// An environment variable name that a shell would not accept.
    #[error("`{0}` is not a valid environment variable name")]
    InvalidEnvName(String),
    /// A NUL byte, which cannot travel inside an SSH command line.
    #[error("the command contains a NUL byte")]
    NulByte,
    /// An empty `become` user.
    #[error("the `become` user is empty")]
    EmptyBecomeUser,
}

/// Seconds `timeout` waits after its first signal before it sends `KILL`.
pub(crate) const KILL_AFTER_SECONDS: u64 = 5;

/// The wrapper around every program. Arguments: `$1` pid file, `$2` time limit for `timeout`
/// (`0` = none), then the program and its arguments.
///
/// The inner shell runs as `timeout`'s child, so its `$PPID` is `timeout`'s pid, which is also
/// the id of the process group `timeout` created. `set -C` makes `>` refuse an existing file
/// or a planted symlink; when the pid file cannot be written the program still runs, it just
/// cannot be killed early.
const WRAPPER: &str = r#"f=$1 s=$2
shift 2
timeout -k KILL_AFTER "$s" /bin/sh -c '{ set -C; echo "$PPID" > "$0"; } 2>/dev/null; exec "$@"' "$f" "$@"
rc=$?
rm -f "$f"
exit "$rc""#;

/// Runs a concealed program: reads its length line, copies exactly that many bytes of standard
/// input (byte by byte, so nothing of the program's own input is consumed) into a temp file
/// that only this account can read, opens it on descriptor 3, removes it, and runs it from the
/// descriptor — nothing is left behind, even when the program `exec`s.
const LOADER: &str = r#"IFS= read -r n || exit 125
f=$(mktemp) || exit 125
dd bs=1 count="$n" of="$f" 2>/dev/null || { rm -f "$f"; exit 125; }
exec 3<"$f"
rm -f "$f"
. /dev/fd/3"#;

/// Signals the process groups named in the pid files given as arguments: `TERM`, up to three
/// seconds for them to go, then `KILL`. A command that started a moment ago may not have
/// written its pid file yet, so missing files are waited for, two seconds in all. A group id
/// of 0 or 1 would mean "every process" to `kill`, so only larger numbers are accepted.
const KILLER: &str = r#"groups=
tries=0
for f do
  until p=$(cat "$f" 2>/dev/null); do
    [ "$tries" -lt 20 ] || break
    tries=$((tries + 1))
    sleep 0.1 2>/dev/null || sleep 1
  done
  case $p in ''|*[!0-9]*|0|1) continue ;; esac
  kill -s TERM -- "-$p" 2>/dev/null && groups="$groups $p"
done
i=0
while [ -n "$groups" ] && [ "$i" -lt 30 ]; do
  alive=
  for p in $groups; do kill -s 0 -- "-$p" 2>/dev/null && alive="$alive $p"; done
  groups=$alive
  [ -n "$groups" ] || break
  sleep 0.1 2>/dev/null || sleep 1
  i=$((i + 1))
done
for p in $groups; do kill -s KILL -- "-$p" 2>/dev/null; done
exit 0"#;

/// Whether `name` can be an environment variable name in a POSIX shell.
pub(crate) fn is_valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// The argument `timeout` gets for `limit`: seconds with millisecond precision, `0` for none.
///
/// A zero limit would mean "no limit" to `timeout`, so it becomes the smallest real one.
pub(crate) fn timeout_argument(limit: Option<Duration>) -> String {
    match limit {
        None => "0".to_owned(),
        Some(limit) => {
            let millis = limit.as_millis().max(1);
            format!("{}.{:03}", millis / 1000, millis % 1000)
        }
    }
}

/// How `command` goes over SSH: its command line and, when it is concealed, the program file
/// sent ahead of its standard input.
pub(crate) fn invocation(
    command: &RemoteCommand,
    become_user: Option<&str>,
    pid_file: &str,
) -> Result<Invocation, CommandProblem> {
    if !command.conceal {
        return Ok(Invocation {
            line: remote_line(command, become_user, pid_file)?,
            stdin_prefix: None,
        });
    }
    let mut file = String::new();
    for (name, value) in &command.env {
        if !is_valid_env_name(name) {
            return Err(CommandProblem::InvalidEnvName(name.clone()));
        }
        let _ = writeln!(file, "export {name}={}", shell_quote(value));
    }
    match &command.program {
        Program::Script {
            text,
            executable: None,
        } => file.push_str(text),
        Program::Script {
            text,
            executable: Some(executable),
        } => {
            // The interpreter reads the text from a here-document on descriptor 4, under a
            // delimiter the text does not contain.
            let mut delimiter = "OPSGATE_PROGRAM_END".to_owned();
            while text.lines().any(|line| line == delimiter) {
                delimiter.push('_');
            }
            let _ = write!(
                file,
                "{} /dev/fd/4 4<<'{delimiter}'\n{text}\n{delimiter}",
                shell_quote(executable)
            );
        }
        Program::Argv(argv) => {
            if argv.is_empty() {
                return Err(CommandProblem::EmptyArgv);
            }
            let words: Vec<&str> = argv.iter().map(String::as_str).collect();
            file.push_str(&join_quoted(&words));
        }
    }
    file.push('\n');
    let loader = RemoteCommand {
        program: Program::Script {
            text: LOADER.to_owned(),
            executable: None,
        },
        become_user: None,
        env: Vec::new(),
        stdin: None,
        timeout: command.timeout,
        conceal: false,
    };
    let mut prefix = format!("{}\n", file.len()).into_bytes();
    prefix.extend_from_slice(file.as_bytes());
    Ok(Invocation {
        line: remote_line(&loader, become_user, pid_file)?,
        stdin_prefix: Some(prefix),
    })
}

/// The complete command line for `command`, ready for the login shell of the remote account.
///
/// `become_user` is the account to switch to, already `None` when the login account is that
/// account; `pid_file` is where the wrapper records the process group.
pub(crate) fn remote_line(
    command: &RemoteCommand,
    become_user: Option<&str>,
    pid_file: &str,
) -> Result<String, CommandProblem> {
    let mut words: Vec<&str> = Vec::new();
    if let Some(user) = become_user {
        if user.is_empty() {
            return Err(CommandProblem::EmptyBecomeUser);
        }
        words.extend(["sudo", "-n", "-u", user, "--"]);
    }
    let wrapper = WRAPPER.replace("KILL_AFTER", &KILL_AFTER_SECONDS.to_string());
    let timeout = timeout_argument(command.timeout);
    words.extend(["/bin/sh", "-c", &wrapper, "opsgate-run", pid_file, &timeout]);

    let assignments: Vec<String> = command
        .env
        .iter()
        .map(|(name, value)| {
            if is_valid_env_name(name) {
                Ok(format!("{name}={value}"))
            } else {
                Err(CommandProblem::InvalidEnvName(name.clone()))
            }
        })
        .collect::<Result<_, _>>()?;
    if !assignments.is_empty() {
        // `--` ends env's options; the assignments follow, then the program.
        words.extend(["env", "--"]);
        words.extend(assignments.iter().map(String::as_str));
    }

    match &command.program {
        Program::Script { text, executable } => {
            words.push(executable.as_deref().unwrap_or("/bin/sh"));
            words.extend(["-c", text]);
        }
        Program::Argv(argv) => {
            if argv.is_empty() {
                return Err(CommandProblem::EmptyArgv);
            }
            words.extend(argv.iter().map(String::as_str));
        }
    }
    Ok(join_quoted(&words))
}

/// The command line that kills the process groups recorded in `pid_files`, run as
/// `become_user` (the account that owns them) when set.
pub(crate) fn kill_line(become_user: Option<&str>, pid_files: &[String]) -> String {
    let mut words: Vec<&str> = Vec::new();
    if let Some(user) = become_user {
        words.extend(["sudo", "-n", "-u", user, "--"]);
    }
    words.extend(["/bin/sh", "-c", KILLER, "opsgate-kill"]);
    words.extend(pid_files.iter().map(String::as_str));
    join_quoted(&words)
}

/// Quotes every word and joins them with spaces.
fn join_quoted(words: &[&str]) -> String {
    words
        .iter()
        .map(|word| shell_quote(word))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether any text of `command` holds a NUL byte, which no SSH command line can carry.
pub(crate) fn contains_nul(command: &RemoteCommand) -> bool {
    let program_text: Vec<&str> = match &command.program {
        Program::Script { text, executable } => {
            let mut texts = vec![text.as_str()];
            texts.extend(executable.as_deref());
            texts
        }
        Program::Argv(argv) => argv.iter().map(String::as_str).collect(),
    };
    program_text
        .into_iter()
        .chain(command.become_user.as_deref())
        .chain(
            command
                .env
                .iter()
                .flat_map(|(name, value)| [name.as_str(), value.as_str()]),
        )
        .any(|text| text.contains('\0'))
}

#[cfg(test)]
mod tests {
    use super::{
        CommandProblem, Program, RemoteCommand, contains_nul, invocation, is_valid_env_name,
        kill_line, remote_line, timeout_argument,
    };
    use std::time::Duration;

    /// Runs `line` with the local `/bin/sh` and returns its standard output.
    fn local_shell(line: &str) -> String {
        let output = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(line)
            .output()
            .expect("/bin/sh runs");
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    #[test]
    fn env_names_follow_shell_rules() {
        for name in ["A", "_x", "PATH", "a1_B2"] {
            assert!(is_valid_env_name(name), "{name}");
        }
        for name in ["", "1A", "A-B", "A B", "A=B", "é"] {
            assert!(!is_valid_env_name(name), "{name}");
        }
    }

    #[test]
    fn timeout_argument_has_millisecond_precision() {
        assert_eq!(timeout_argument(None), "0");
        assert_eq!(timeout_argument(Some(Duration::from_secs(30))), "30.000");
        assert_eq!(timeout_argument(Some(Duration::from_millis(1500))), "1.500");
        assert_eq!(timeout_argument(Some(Duration::ZERO)), "0.001");
    }

    #[test]
    fn remote_line_rejects_bad_env_names_and_empty_argv() {
        let mut command = RemoteCommand::argv(["true"]);
        command.env.push(("BAD-NAME".to_owned(), "x".to_owned()));
        assert_eq!(
            remote_line(&command, None, "/tmp/p"),
            Err(CommandProblem::InvalidEnvName("BAD-NAME".to_owned()))
        );
        let empty = RemoteCommand::new(Program::Argv(Vec::new()));
        assert_eq!(
            remote_line(&empty, None, "/tmp/p"),
            Err(CommandProblem::EmptyArgv)
        );
        assert_eq!(
            remote_line(&RemoteCommand::argv(["true"]), Some(""), "/tmp/p"),
            Err(CommandProblem::EmptyBecomeUser)
        );
    }

    #[test]
    fn remote_line_runs_locally_with_env_quoting_and_pid_file() {
        let directory = tempfile::tempdir().expect("temp dir");
        let pid_file = directory.path().join("run.pid");
        let pid_file = pid_file.to_str().expect("utf-8 path");
        let mut command = RemoteCommand::script(
            "printf '%s|%s|' \"$GREETING\" \"$1\"; test -s \"$PID_FILE\" && echo recorded",
        );
        command.env = vec![
            ("GREETING".to_owned(), "hello 'world'; $(id)".to_owned()),
            ("PID_FILE".to_owned(), pid_file.to_owned()),
        ];
        command.timeout = Some(Duration::from_secs(10));
        let line = remote_line(&command, None, pid_file).expect("valid command");
        assert_eq!(local_shell(&line), "hello 'world'; $(id)||recorded\n");
        assert!(
            !std::path::Path::new(pid_file).exists(),
            "the wrapper removes the pid file"
        );
    }

    #[test]
    fn remote_line_passes_argv_words_unchanged() {
        let command = RemoteCommand::argv(["printf", "[%s]", "x; rm -rf /", "", "a b"]);
        let line = remote_line(&command, None, "/nonexistent/dir/pid").expect("valid command");
        assert_eq!(local_shell(&line), "[x; rm -rf /][][a b]");
    }

    #[test]
    fn remote_line_wraps_become_in_sudo() {
        let line = remote_line(&RemoteCommand::argv(["id"]), Some("postgres"), "/tmp/p")
            .expect("valid command");
        assert!(
            line.starts_with("sudo -n -u postgres -- /bin/sh -c "),
            "{line}"
        );
    }

    #[test]
    fn kill_line_ignores_missing_and_dangerous_pid_files() {
        let directory = tempfile::tempdir().expect("temp dir");
        let group_one = directory.path().join("one");
        std::fs::write(&group_one, "1\n").expect("write pid file");
        let garbage = directory.path().join("garbage");
        std::fs::write(&garbage, "12 13").expect("write pid file");
        let files = vec![
            group_one.display().to_string(),
            garbage.display().to_string(),
            directory.path().join("missing").display().to_string(),
        ];
        // Reaching `echo` proves the script neither signalled this shell nor failed.
        let line = format!("{} && echo survived", kill_line(None, &files));
        assert_eq!(local_shell(&line), "survived\n");
    }

    #[test]
    fn nul_bytes_are_detected_anywhere() {
        assert!(!contains_nul(&RemoteCommand::script("echo hi")));
        assert!(contains_nul(&RemoteCommand::argv(["echo", "a\0b"])));
        let mut command = RemoteCommand::script("true");
        command.env.push(("A".to_owned(), "x\0".to_owned()));
        assert!(contains_nul(&command));
    }

    /// Runs a concealed command with the local `/bin/sh`, as sshd would: the line as the
    /// command, the prefix and then the command's own input on standard input.
    fn run_concealed(command: &RemoteCommand) -> (String, String) {
        use std::io::Write as _;
        let directory = tempfile::tempdir().expect("temp dir");
        let pid_file = directory.path().join("pid");
        let invocation =
            invocation(command, None, pid_file.to_str().expect("utf-8")).expect("valid command");
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&invocation.line)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("/bin/sh runs");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(
                invocation
                    .stdin_prefix
                    .as_deref()
                    .expect("a concealed program"),
            )
            .expect("write the program");
        stdin
            .write_all(command.stdin.as_deref().unwrap_or_default())
            .expect("write the input");
        drop(stdin);
        let output = child.wait_with_output().expect("wait");
        (
            invocation.line,
            String::from_utf8(output.stdout).expect("utf-8 output"),
        )
    }

    #[test]
    fn a_concealed_command_keeps_program_and_env_off_the_command_line() {
        let command = RemoteCommand {
            env: vec![("TOKEN".into(), "s3cr3t 'quoted'".into())],
            stdin: Some(b"the input\n".to_vec()),
            conceal: true,
            ..RemoteCommand::script(
                "printf '%s|%s|' \"$TOKEN\" hunter2; cat; readlink /proc/$$/fd/3",
            )
        };
        let (line, output) = run_concealed(&command);
        assert!(
            !line.contains("s3cr3t") && !line.contains("hunter2"),
            "{line}"
        );
        let mut lines = output.lines();
        assert_eq!(lines.next(), Some("s3cr3t 'quoted'|hunter2|the input"));
        // The program file was removed before it ran: only the open descriptor is left.
        assert!(
            lines.next().is_some_and(|fd| fd.ends_with("(deleted)")),
            "{output}"
        );
    }

    #[test]
    fn a_concealed_command_keeps_its_interpreter_and_argv() {
        let bash = RemoteCommand {
            conceal: true,
            ..RemoteCommand::new(Program::Script {
                text: "echo \"${BASH_VERSION:+bash}\"\necho OPSGATE_PROGRAM_END".into(),
                executable: Some("/bin/bash".into()),
            })
        };
        assert_eq!(run_concealed(&bash).1, "bash\nOPSGATE_PROGRAM_END\n");
        let argv = RemoteCommand {
            conceal: true,
            ..RemoteCommand::argv(["printf", "%s-%s", "it's", "a b"])
        };
        assert_eq!(run_concealed(&argv).1, "it's-a b");
    }
}
