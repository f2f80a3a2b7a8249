//! The service protocol (SPEC §7, `docs/protocol.md`): newline-delimited JSON over the Unix
//! socket, version [`VERSION`].
//!
//! This module owns the wire format and nothing else: the message types, their encoding and
//! decoding, and the bounded line reader both sides use. It never decides who the caller is
//! (that is the peer uid, read by `server`) and never opens a file.
//!
//! A connection starts with one `hello` line each way, client first, each stating the protocol
//! version. Then the client sends a request line and reads response lines until `done` or
//! `error`; it may send another request after that. Decoding rules:
//! - unknown fields are ignored (a newer client or service may add fields);
//! - an unknown request `type` is an error ([`ProtocolError::UnknownType`]), never ignored;
//! - a line longer than [`MAX_LINE`] bytes is an error and ends the connection, so a client
//!   cannot make the service buffer without bound.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use crate::error::Exit;
use crate::secret::Secret;

/// The protocol version this build speaks. Bumped on any incompatible change; a peer stating
/// another version is refused with an error naming both.
pub const VERSION: u32 = 1;

/// The longest line, newline included, either side accepts: 1 MiB. Requests are small today;
/// the limit leaves room for submitted runbooks (issue 10) while bounding memory per connection.
pub const MAX_LINE: usize = 1 << 20;

/// The request types this version knows, as they appear in `type`.
pub const REQUEST_TYPES: [&str; 19] = [
    "hello",
    "whoami",
    "catalog",
    "history",
    "history_show",
    "pending",
    "run",
    "cancel",
    "approve_run",
    "approve_plan",
    "approve_runbook",
    "approve_signed",
    "plan",
    "plan_show",
    "backups",
    "audit_verify",
    "audit_checkpoint",
    "audit_export",
    "prompt_answer",
];

/// How the client wants a listing's output: what the local command prints without and with
/// `--json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The human table or report.
    #[default]
    Human,
    /// The JSON document `--json` prints.
    Json,
}

/// The filters of `history` as they travel: plain strings and numbers, parsed by the service
/// exactly as the command line parses them. Times are absolute (RFC 3339): the client resolves
/// an age like `2h` against its own clock before sending.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryQuery {
    /// `--operator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// `--runbook`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// `--host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `--status`, as `history` prints it (`ok`, `denied`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `--since`, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// `--until`, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `--limit`; 0 lists all.
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    50
}

/// Where a param value came from, as the client read it (with its own rights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamOrigin {
    /// `-p NAME=VALUE`.
    CommandLine,
    /// `-p NAME=@FILE`, read by the client.
    FileReference,
    /// `--params-file FILE`, read by the client.
    ParamsFile,
    /// Typed at the client's prompt.
    Prompt,
}

/// One param value of a `run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// The param's name.
    pub name: String,
    /// Its value as text; every param travels as a secret, since only the service's plan knows
    /// which ones are (so a `Debug` of a request never shows a value).
    #[serde(with = "secret_text")]
    pub value: Secret<String>,
    /// Where the client got it.
    pub origin: ParamOrigin,
}

/// The wire form of a param value: the text itself, on the socket only.
mod secret_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::secret::Secret;

    pub(super) fn serialize<S: Serializer>(
        value: &Secret<String>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value.expose())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Secret<String>, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// The wire form of an optional secret: the text or `null`, on the socket only.
mod optional_secret_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::secret::Secret;

    #[expect(
        clippy::ref_option,
        reason = "serde's `with` hands the field by reference"
    )]
    pub(super) fn serialize<S: Serializer>(
        value: &Option<Secret<String>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.serialize_some(value.expose()),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Secret<String>>, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?.map(Secret::new))
    }
}

/// `opsgate run` of a catalog runbook (or of a saved plan): the flags of the command line,
/// values not paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each is one switch of `run` as the wire carries it (JSON booleans, \
              docs/protocol.md); `runs.rs` turns them into enums"
)]
pub struct RunRequest {
    /// The catalog id (a path is refused: the service runs only what it holds); empty with
    /// `plan`.
    #[serde(default)]
    pub runbook: String,
    /// `--plan PLAN`: run exactly this saved, approved plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// `-l PATTERN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// `--widen PATTERN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widen: Option<String>,
    /// `-p` and `--params-file` values, in order (later wins).
    #[serde(default)]
    pub params: Vec<Param>,
    /// `--check`.
    #[serde(default)]
    pub check: bool,
    /// `--diff`.
    #[serde(default)]
    pub diff: bool,
    /// `--forks`.
    #[serde(default = "default_forks")]
    pub forks: u16,
    /// `--approval-timeout`, in milliseconds.
    #[serde(default = "default_approval_timeout")]
    pub approval_timeout_ms: u64,
    /// `--reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `--break-glass`.
    #[serde(default)]
    pub break_glass: bool,
    /// `--verbose`: each step's output excerpt as it finishes. Added within version 1: a client
    /// that does not send it gets the default, the output of failed steps only.
    #[serde(default)]
    pub verbose: bool,
}

fn default_forks() -> u16 {
    50
}

fn default_approval_timeout() -> u64 {
    30 * 60 * 1000
}

/// `opsgate plan RUNBOOK [--save]` of a catalog runbook: what to plan, values not paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// The catalog id (a path is refused).
    pub runbook: String,
    /// `-l PATTERN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// `--widen PATTERN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widen: Option<String>,
    /// `-p` and `--params-file` values, in order (later wins).
    #[serde(default)]
    pub params: Vec<Param>,
    /// `--save`.
    #[serde(default)]
    pub save: bool,
}

/// The filters of `backups`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupsQuery {
    /// `--host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `--runbook`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// `--limit`; 0 lists all.
    #[serde(default = "default_limit")]
    pub limit: usize,
}

/// How far a `cancel` goes: what the first and the second Ctrl-C do locally.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelDepth {
    /// Start no new step; running steps finish.
    #[default]
    StopScheduling,
    /// Kill running remote commands too.
    Kill,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RequestKind {
    /// The first line of a connection: the client's protocol version.
    Hello {
        /// The version the client speaks.
        protocol: u32,
    },
    /// `opsgate whoami`.
    Whoami,
    /// `opsgate catalog`.
    Catalog,
    /// `opsgate history [filters]`.
    History {
        /// The filters.
        #[serde(default)]
        query: HistoryQuery,
    },
    /// `opsgate history show RUN`.
    HistoryShow {
        /// The run id.
        run: i64,
    },
    /// `opsgate pending`.
    Pending,
    /// `opsgate run RUNBOOK …`: answered by the run's events as they happen.
    Run(RunRequest),
    /// Cancels the run this connection is following (only while it streams).
    Cancel {
        /// How far.
        #[serde(default)]
        depth: CancelDepth,
    },
    /// `opsgate approve run RUN [--reject --reason TEXT] [--gate-step N]`.
    ApproveRun {
        /// The run id.
        run: i64,
        /// `--reject`.
        #[serde(default)]
        reject: bool,
        /// `--reason`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// `--gate-step`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gate_step: Option<u32>,
    },
    /// `opsgate approve plan PLAN`.
    ApprovePlan {
        /// The plan id.
        plan: String,
    },
    /// `opsgate approve runbook ID`: a catalog runbook the service holds, by id (a path is
    /// refused).
    ApproveRunbook {
        /// The catalog id.
        runbook: String,
    },
    /// `opsgate approve --signed FILE`: the signed document, read by the client.
    ApproveSigned {
        /// The document's text.
        document: String,
    },
    /// `opsgate plan RUNBOOK [--save]` of a catalog runbook.
    Plan(PlanRequest),
    /// `opsgate plan show PLAN`.
    PlanShow {
        /// The plan id.
        plan: String,
    },
    /// `opsgate backups [filters]`.
    Backups {
        /// The filters.
        #[serde(default)]
        query: BackupsQuery,
    },
    /// `opsgate audit verify [--checkpoint FILE]`: the checkpoint file's text, read by the
    /// client.
    AuditVerify {
        /// The checkpoints, as `audit checkpoint` prints them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checkpoints: Option<String>,
    },
    /// `opsgate audit checkpoint`; the client appends it to its own file (`--append`).
    AuditCheckpoint,
    /// `opsgate audit export --jsonl [--since TIME]`.
    AuditExport {
        /// `--since`, RFC 3339 (the client resolves ages against its own clock).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
    },
    /// The answer to a `prompt` response: the value the operator typed.
    PromptAnswer {
        /// The value; `null` when the client cannot ask (no terminal), so the param stays
        /// missing.
        #[serde(default, with = "optional_secret_text")]
        value: Option<Secret<String>>,
    },
}

/// One request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// What is asked (its `type` and fields).
    #[serde(flatten)]
    pub kind: RequestKind,
    /// The output wanted; `human` when absent.
    #[serde(default)]
    pub format: Format,
}

impl Request {
    /// The `hello` line of a client speaking [`VERSION`].
    #[must_use]
    pub fn hello() -> Request {
        Request {
            kind: RequestKind::Hello { protocol: VERSION },
            format: Format::Human,
        }
    }
}

/// One response line. A request is answered by any number of `warning` and `output` lines,
/// then exactly one `done` or `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// The service's first line: its version and who it takes the caller for (the peer uid).
    Hello {
        /// The version the service speaks.
        protocol: u32,
        /// The caller's account, from the socket's peer credentials.
        account: String,
        /// The caller's uid, from the socket's peer credentials.
        uid: u32,
    },
    /// A notice for stderr (a warning, a gate note), rendered as the command line prints it.
    Warning {
        /// The text, ending in a newline.
        text: String,
    },
    /// One event of a run: the object `run --json` prints, and what the local command prints
    /// for it on stdout in the format asked (nothing, for some events in human format).
    Event {
        /// The event, as `run --json` prints it.
        event: serde_json::Value,
        /// Its text on stdout.
        stdout: String,
    },
    /// Output for stdout: exactly what the local command prints, in the format asked.
    Output {
        /// The text.
        stdout: String,
    },
    /// A required secret param is missing: the client asks its operator (no echo) and answers
    /// with a `prompt_answer` request.
    Prompt {
        /// The runbook.
        runbook: String,
        /// The secret param.
        param: String,
    },
    /// The request failed or was refused; the connection stays usable unless the error is
    /// about the protocol itself.
    Error(ErrorResponse),
    /// The request is complete.
    Done {
        /// The exit code the command line ends with (SPEC §6).
        exit: u8,
    },
}

/// A failed request, with what the command line needs to end exactly as a local run would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The exit code (SPEC §6): 2 for protocol and input errors, 3 for denials, …
    pub exit: u8,
    /// The gate rule that refused, for a denial (`not-an-operator`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The one-line message.
    pub message: String,
    /// The hints.
    #[serde(default)]
    pub hints: Vec<String>,
    /// The whole error as the command line prints it on stderr (message, causes, hints).
    pub rendered: String,
}

impl ErrorResponse {
    /// A protocol error (exit 2), rendered like any command-line error.
    #[must_use]
    pub fn protocol(error: &ProtocolError) -> ErrorResponse {
        ErrorResponse {
            exit: Exit::Invalid.code(),
            rule: None,
            message: error.to_string(),
            hints: Vec::new(),
            rendered: format!("error: {error}\n"),
        }
    }
}

/// A line that is not a valid message of this protocol.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// A line longer than [`MAX_LINE`].
    #[error("protocol error: a line is longer than the limit of {limit} bytes")]
    LineTooLong {
        /// The limit.
        limit: usize,
    },
    /// Not a JSON object.
    #[error("protocol error: a line is not a JSON object: {source}")]
    NotJson {
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// No `type` field, or not a string.
    #[error("protocol error: a message has no `type`")]
    MissingType,
    /// A request type this version does not know.
    #[error("protocol error: unknown request type `{found}`")]
    UnknownType {
        /// The type sent.
        found: String,
    },
    /// A known type with missing or ill-typed fields.
    #[error("protocol error: bad `{kind}` message: {source}")]
    BadMessage {
        /// The type.
        kind: String,
        /// What the decoder said.
        #[source]
        source: serde_json::Error,
    },
    /// The first line was not a `hello`.
    #[error("protocol error: the first line must be a `hello`, not `{found}`")]
    NoHello {
        /// The type sent instead.
        found: String,
    },
    /// The peer speaks another version.
    #[error("protocol error: the peer speaks protocol version {peer}, this opsgate speaks {ours}")]
    Version {
        /// The peer's version.
        peer: u32,
        /// Ours ([`VERSION`]).
        ours: u32,
    },
    /// A request other than `cancel` while a run streams on the connection.
    #[error("protocol error: a run is streaming on this connection; only `cancel` may be sent")]
    Busy,
    /// The connection closed mid-line (no newline before end of stream).
    #[error("protocol error: the connection closed in the middle of a line")]
    Truncated,
    /// Reading or writing the socket failed.
    #[error("protocol error: the connection failed")]
    Io(#[source] std::io::Error),
}

/// Encodes one message as a line (compact JSON and `\n`).
#[must_use]
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut line =
        serde_json::to_vec(message).expect("protocol messages hold only strings and numbers");
    line.push(b'\n');
    line
}

/// The `type` of a line: the first step of decoding either side's messages.
fn parse_typed(line: &[u8]) -> Result<(serde_json::Value, String), ProtocolError> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|source| ProtocolError::NotJson { source })?;
    if !value.is_object() {
        return Err(ProtocolError::NotJson {
            source: serde::de::Error::custom("expected an object"),
        });
    }
    let kind = value
        .get("type")
        .and_then(serde_json::Value::as_str)
        .ok_or(ProtocolError::MissingType)?
        .to_owned();
    Ok((value, kind))
}

/// Decodes a request line (without or with its newline).
pub fn decode_request(line: &[u8]) -> Result<Request, ProtocolError> {
    let (value, kind) = parse_typed(line)?;
    if !REQUEST_TYPES.contains(&kind.as_str()) {
        return Err(ProtocolError::UnknownType { found: kind });
    }
    serde_json::from_value(value).map_err(|source| ProtocolError::BadMessage { kind, source })
}

/// Decodes a response line. A response type this version does not know is an error too: the
/// client cannot tell whether it ends the request.
pub fn decode_response(line: &[u8]) -> Result<Response, ProtocolError> {
    let (value, kind) = parse_typed(line)?;
    serde_json::from_value(value).map_err(|source| match source.classify() {
        serde_json::error::Category::Data if source.to_string().contains("unknown variant") => {
            ProtocolError::UnknownType {
                found: kind.clone(),
            }
        }
        _ => ProtocolError::BadMessage {
            kind: kind.clone(),
            source,
        },
    })
}

/// Reads one line of at most [`MAX_LINE`] bytes into `line`, without its newline. `Ok(false)`
/// at a clean end of stream.
///
/// Cancel-safe: what was read of a line stays in `line` and a new call continues it, so it may
/// be a branch of `select!`. Clear `line` before reading the next line.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> Result<bool, ProtocolError> {
    let room = MAX_LINE.saturating_sub(line.len()) as u64;
    let read = (&mut *reader)
        .take(room)
        .read_until(b'\n', line)
        .await
        .map_err(ProtocolError::Io)?;
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(true);
    }
    if line.len() >= MAX_LINE {
        return Err(ProtocolError::LineTooLong { limit: MAX_LINE });
    }
    if read == 0 && line.is_empty() {
        return Ok(false);
    }
    Err(ProtocolError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::{
        ErrorResponse, Format, HistoryQuery, MAX_LINE, ProtocolError, Request, RequestKind,
        Response, decode_request, decode_response, encode, read_line,
    };

    #[test]
    fn requests_encode_as_one_typed_line() {
        let request = Request {
            kind: RequestKind::HistoryShow { run: 7 },
            format: Format::Json,
        };
        assert_eq!(
            String::from_utf8(encode(&request)).expect("utf-8"),
            "{\"type\":\"history_show\",\"run\":7,\"format\":\"json\"}\n"
        );
        assert_eq!(
            String::from_utf8(encode(&Request::hello())).expect("utf-8"),
            "{\"type\":\"hello\",\"protocol\":1,\"format\":\"human\"}\n"
        );
    }

    #[test]
    fn requests_round_trip() {
        let requests = [
            Request::hello(),
            Request {
                kind: RequestKind::Whoami,
                format: Format::Human,
            },
            Request {
                kind: RequestKind::Catalog,
                format: Format::Json,
            },
            Request {
                kind: RequestKind::History {
                    query: HistoryQuery {
                        operator: Some("og-bob".to_owned()),
                        since: Some("2026-01-01T00:00:00Z".to_owned()),
                        limit: 0,
                        ..HistoryQuery::default()
                    },
                },
                format: Format::Human,
            },
            Request {
                kind: RequestKind::Pending,
                format: Format::Human,
            },
        ];
        for request in requests {
            let line = encode(&request);
            assert_eq!(decode_request(&line).expect("decodes"), request);
        }
    }

    #[test]
    fn unknown_fields_are_ignored_and_defaults_apply() {
        let request = decode_request(br#"{"type":"history","colour":"blue","query":{"x":1}}"#)
            .expect("decodes");
        assert_eq!(
            request,
            Request {
                kind: RequestKind::History {
                    query: HistoryQuery {
                        limit: 50,
                        ..HistoryQuery::default()
                    }
                },
                format: Format::Human,
            }
        );
    }

    #[test]
    fn a_run_without_verbose_from_an_older_client_is_not_verbose() {
        let request = decode_request(br#"{"type":"run","runbook":"hello"}"#).expect("decodes");
        let RequestKind::Run(run) = request.kind else {
            panic!("a run request: {request:?}");
        };
        assert!(!run.verbose);
        let request =
            decode_request(br#"{"type":"run","runbook":"hello","verbose":true}"#).expect("decodes");
        let RequestKind::Run(run) = request.kind else {
            panic!("a run request: {request:?}");
        };
        assert!(run.verbose);
    }

    #[test]
    fn bad_requests_are_typed_errors() {
        let cases: [(&[u8], &str); 6] = [
            (
                br#"{"type":"format-disk"}"#,
                "unknown request type `format-disk`",
            ),
            (br#"{"run":1}"#, "has no `type`"),
            (br#"{"type":7}"#, "has no `type`"),
            (b"[1,2]", "not a JSON object"),
            (b"hello", "not a JSON object"),
            (
                br#"{"type":"history_show","run":"x"}"#,
                "bad `history_show` message",
            ),
        ];
        for (line, expected) in cases {
            let error = decode_request(line).expect_err("refused");
            assert!(
                error.to_string().contains(expected),
                "{}: {error}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn responses_round_trip() {
        let responses = [
            Response::Hello {
                protocol: 1,
                account: "og-bob".to_owned(),
                uid: 1001,
            },
            Response::Warning {
                text: "warning: x\n".to_owned(),
            },
            Response::Output {
                stdout: "RUN …\n".to_owned(),
            },
            Response::Error(ErrorResponse {
                exit: 3,
                rule: Some("not-an-operator".to_owned()),
                message: "no".to_owned(),
                hints: vec!["ask".to_owned()],
                rendered: "error: no\n\nhint: ask\n".to_owned(),
            }),
            Response::Done { exit: 0 },
        ];
        for response in responses {
            let line = encode(&response);
            assert_eq!(line.last(), Some(&b'\n'));
            assert!(!line[..line.len() - 1].contains(&b'\n'));
            assert_eq!(decode_response(&line).expect("decodes"), response);
        }
        assert_eq!(
            String::from_utf8(encode(&Response::Done { exit: 3 })).expect("utf-8"),
            "{\"type\":\"done\",\"exit\":3}\n"
        );
        assert!(matches!(
            decode_response(br#"{"type":"teleport"}"#),
            Err(ProtocolError::UnknownType { .. })
        ));
    }

    #[tokio::test]
    async fn lines_are_bounded() {
        let mut input: &[u8] = b"{\"type\":\"pending\"}\nsecond\n";
        let mut line = Vec::new();
        assert!(read_line(&mut input, &mut line).await.expect("a line"));
        assert_eq!(line, b"{\"type\":\"pending\"}");
        line.clear();
        assert!(read_line(&mut input, &mut line).await.expect("a line"));
        assert_eq!(line, b"second");
        line.clear();
        assert!(!read_line(&mut input, &mut line).await.expect("end"));
        line.clear();

        let long = vec![b'x'; MAX_LINE + 10];
        let mut input: &[u8] = &long;
        assert!(matches!(
            read_line(&mut input, &mut line).await,
            Err(ProtocolError::LineTooLong { .. })
        ));
        assert!(line.len() <= MAX_LINE);

        let mut input: &[u8] = b"{\"type\":";
        line.clear();
        assert!(matches!(
            read_line(&mut input, &mut line).await,
            Err(ProtocolError::Truncated)
        ));
    }
}
