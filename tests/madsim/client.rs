//! A tiny ZooKeeper client for the simulation, over `tokio::net::TcpStream` (madsim's socket
//! under `--cfg madsim`) and Ensemble's own wire codec. The `zookeeper-client` crate runs on
//! real tokio and cannot live inside madsim, so this speaks just enough of `ClientCnxn`: the
//! session handshake, one request at a time (notifications and ping replies skipped), and the
//! four-letter words.
//!
//! Every operation has a deadline; a timeout, a closed socket or an undecodable frame is a
//! [`ClientError`], after which the connection must be dropped. A request whose reply never
//! came has an unknown outcome: the caller must not count it as failed.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ensemble::wire::codec::{
    decode_connect_response, decode_reply_header, decode_response, encode_connect_request,
    encode_request, XID_NOTIFICATION, XID_PING,
};
use ensemble::wire::frame::{FrameDecoder, FRAME_LEN_MAX_DEFAULT};
use ensemble::wire::proto::{ConnectRequest, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why an operation did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A socket operation failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// No answer before the deadline.
    #[error("timed out")]
    Timeout,
    /// The server closed the connection (a member that is not serving does that).
    #[error("the server closed the connection")]
    Closed,
    /// A frame that does not parse.
    #[error("undecodable frame: {0}")]
    Decode(String),
    /// The server answered the handshake with an invalid session.
    #[error("session refused")]
    Refused,
}

/// A reply: the header's zxid and error code, and the body when `err` is 0.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The server's zxid (the write's own zxid for a write).
    pub zxid: i64,
    /// 0 on success, else a ZooKeeper error code.
    pub err: i32,
    /// The decoded body of a successful reply.
    pub response: Option<Response>,
}

/// One client connection with an established session.
pub struct Client {
    stream: TcpStream,
    buffer: BytesMut,
    decoder: FrameDecoder,
    next_xid: i32,
    /// The session the server gave us.
    pub session_id: i64,
}

impl Client {
    /// Connects and opens a new session (`last_zxid_seen` lets the server refuse us if it is
    /// behind what we have seen, as ZooKeeper does).
    pub async fn connect(
        addr: SocketAddr,
        last_zxid_seen: i64,
        session_timeout_ms: i32,
        deadline: Duration,
    ) -> Result<Client, ClientError> {
        let handshake = async {
            let stream = TcpStream::connect(addr).await?;
            let mut client = Client {
                stream,
                buffer: BytesMut::with_capacity(4096),
                decoder: FrameDecoder::new(FRAME_LEN_MAX_DEFAULT),
                next_xid: 1,
                session_id: 0,
            };
            let request = ConnectRequest {
                protocol_version: 0,
                last_zxid_seen,
                timeout_ms: session_timeout_ms,
                session_id: 0,
                password: Bytes::from_static(&[0; 16]),
                read_only: Some(false),
            };
            client.send(&encode_connect_request(&request)).await?;
            let frame = client.read_frame().await?;
            let response =
                decode_connect_response(&frame).map_err(|e| ClientError::Decode(e.to_string()))?;
            if response.timeout_ms <= 0 || response.session_id == 0 {
                return Err(ClientError::Refused);
            }
            client.session_id = response.session_id;
            Ok(client)
        };
        tokio::time::timeout(deadline, handshake).await.map_err(|_| ClientError::Timeout)?
    }

    /// Sends one request and waits for its reply.
    pub async fn call(
        &mut self,
        request: &Request,
        deadline: Duration,
    ) -> Result<Reply, ClientError> {
        let xid = self.next_xid;
        self.next_xid += 1;
        let opcode = request.opcode().code();
        let exchange = async {
            self.send(&encode_request(xid, request)).await?;
            loop {
                let frame = self.read_frame().await?;
                let (header, body) =
                    decode_reply_header(&frame).map_err(|e| ClientError::Decode(e.to_string()))?;
                if header.xid == XID_NOTIFICATION || header.xid == XID_PING {
                    continue;
                }
                if header.xid != xid {
                    return Err(ClientError::Decode(format!(
                        "reply to xid {} while waiting for {xid}",
                        header.xid
                    )));
                }
                let response = if header.err == 0 {
                    let response = decode_response(opcode, body)
                        .map_err(|e| ClientError::Decode(e.to_string()))?;
                    Some(response)
                } else {
                    None
                };
                return Ok(Reply { zxid: header.zxid, err: header.err, response });
            }
        };
        tokio::time::timeout(deadline, exchange).await.map_err(|_| ClientError::Timeout)?
    }

    /// Writes a whole frame. madsim's socket delivers on `flush`, real TCP on `write`.
    async fn send(&mut self, frame: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(frame).await?;
        self.stream.flush().await?;
        Ok(())
    }

    async fn read_frame(&mut self) -> Result<Bytes, ClientError> {
        loop {
            match self.decoder.decode(&mut self.buffer) {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(error) => return Err(ClientError::Decode(error.to_string())),
            }
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                return Err(ClientError::Closed);
            }
        }
    }
}

/// Sends a four-letter word and returns the whole answer (the server closes after it).
pub async fn four_letter(
    addr: SocketAddr,
    word: &str,
    deadline: Duration,
) -> Result<String, ClientError> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(word.as_bytes()).await?;
        stream.flush().await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    tokio::time::timeout(deadline, exchange).await.map_err(|_| ClientError::Timeout)?
}
