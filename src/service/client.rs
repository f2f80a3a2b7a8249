//! The command line's side of a connection to the service: connect, exchange `hello`s, send a
//! request, hand each response to the caller until the request ends.
//!
//! It sends nothing about who the caller is: the service reads that from the socket itself.
//! Rendering (stdout, stderr, exit codes) stays with the command line.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::ServiceError;
use super::protocol::{self, CancelDepth, ProtocolError, Request, RequestKind, Response};

/// An open connection that has exchanged `hello`s.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// The account the service takes this client for.
    pub account: String,
    /// The socket.
    pub socket: PathBuf,
}

impl Client {
    /// Connects to the service at `socket` and exchanges `hello`s.
    pub async fn connect(socket: &Path) -> Result<Client, ServiceError> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|source| ServiceError::Connect {
                socket: socket.to_path_buf(),
                source,
            })?;
        let (reader, writer) = stream.into_split();
        let mut client = Client {
            reader: BufReader::new(reader),
            writer,
            account: String::new(),
            socket: socket.to_path_buf(),
        };
        client.send(&Request::hello()).await?;
        match client.receive().await? {
            Response::Hello {
                protocol, account, ..
            } => {
                if protocol != protocol::VERSION {
                    return Err(ProtocolError::Version {
                        peer: protocol,
                        ours: protocol::VERSION,
                    }
                    .into());
                }
                client.account = account;
                Ok(client)
            }
            Response::Error(error) => Err(ServiceError::Remote(error)),
            _ => Err(ProtocolError::NoHello {
                found: "response".to_owned(),
            }
            .into()),
        }
    }

    /// Sends `request` and calls `each` with every `warning` and `output` response; returns
    /// the exit code of `done`, or the service's error.
    pub async fn request(
        &mut self,
        request: &Request,
        mut each: impl FnMut(&Response),
    ) -> Result<u8, ServiceError> {
        self.send(request).await?;
        loop {
            match self.receive().await? {
                Response::Done { exit } => return Ok(exit),
                Response::Error(error) => return Err(ServiceError::Remote(error)),
                response => each(&response),
            }
        }
    }

    /// Sends a `run` request and follows the run: calls `each` with every `warning`, `event` and
    /// `output`, and sends a `cancel` for every depth that arrives on `cancels` (Ctrl-C);
    /// returns the exit code of `done`, or the service's error.
    pub async fn follow(
        &mut self,
        request: &Request,
        cancels: &mut tokio::sync::mpsc::UnboundedReceiver<CancelDepth>,
        mut each: impl FnMut(&Response),
    ) -> Result<u8, ServiceError> {
        self.send(request).await?;
        let mut line = Vec::new();
        let mut cancels_open = true;
        loop {
            tokio::select! {
                read = protocol::read_line(&mut self.reader, &mut line) => {
                    if !read? {
                        return Err(ServiceError::Closed);
                    }
                    let response = protocol::decode_response(&line)?;
                    line.clear();
                    match response {
                        Response::Done { exit } => return Ok(exit),
                        Response::Error(error) => return Err(ServiceError::Remote(error)),
                        response => each(&response),
                    }
                }
                depth = cancels.recv(), if cancels_open => match depth {
                    Some(depth) => {
                        let cancel = Request {
                            kind: RequestKind::Cancel { depth },
                            format: request.format,
                        };
                        Self::write(&mut self.writer, &cancel).await?;
                    }
                    None => cancels_open = false,
                },
            }
        }
    }

    async fn send(&mut self, request: &Request) -> Result<(), ServiceError> {
        Self::write(&mut self.writer, request).await
    }

    async fn write(writer: &mut OwnedWriteHalf, request: &Request) -> Result<(), ServiceError> {
        writer
            .write_all(&protocol::encode(request))
            .await
            .map_err(|error| ServiceError::Protocol(ProtocolError::Io(error)))
    }

    async fn receive(&mut self) -> Result<Response, ServiceError> {
        let mut line = Vec::new();
        if !protocol::read_line(&mut self.reader, &mut line).await? {
            return Err(ServiceError::Closed);
        }
        Ok(protocol::decode_response(&line)?)
    }
}
