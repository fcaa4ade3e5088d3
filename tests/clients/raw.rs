//! A small hand-written ZooKeeper wire client over tokio TCP, for what `zookeeper-client`
//! cannot express: exact frames, invalid requests, exact multi results, notification order
//! relative to replies, session reattachment with a chosen id and password, and silence.
//!
//! Jute encoding: big-endian ints/longs, `ustring`/`buffer` as a 4-byte length then bytes
//! (`-1` = null), vectors as a 4-byte count then elements; every frame is a 4-byte length and
//! a payload (protocol doc §1).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A byte stream the raw client can speak over: TCP, or TLS over TCP.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// Opcodes used by the tests (protocol doc §4.1).
pub mod op {
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const CREATE_TTL: i32 = 21;
    pub const MULTI_READ: i32 = 22;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const GET_EPHEMERALS: i32 = 103;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const ADD_WATCH: i32 = 106;
    pub const WHO_AM_I: i32 = 107;
    pub const CLOSE_SESSION: i32 = -11;
}

/// Error codes used by the tests (protocol doc §6.1).
pub mod err {
    pub const OK: i32 = 0;
    pub const RUNTIME_INCONSISTENCY: i32 = -2;
    pub const MARSHALLING_ERROR: i32 = -5;
    pub const UNIMPLEMENTED: i32 = -6;
    pub const BAD_ARGUMENTS: i32 = -8;
    pub const NO_NODE: i32 = -101;
    pub const NO_AUTH: i32 = -102;
    pub const BAD_VERSION: i32 = -103;
    pub const NO_CHILDREN_FOR_EPHEMERALS: i32 = -108;
    pub const NODE_EXISTS: i32 = -110;
    pub const NOT_EMPTY: i32 = -111;
    pub const INVALID_ACL: i32 = -114;
    pub const AUTH_FAILED: i32 = -115;
    pub const NO_WATCHER: i32 = -121;
    pub const RECONFIG_DISABLED: i32 = -123;
}

/// Watch event types (protocol doc §7.1).
pub mod event {
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
}

/// How long a raw read may block before the test fails.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Jute writer.
#[derive(Default, Clone, Debug)]
pub struct Jute(pub Vec<u8>);

impl Jute {
    pub fn new() -> Jute {
        Jute(Vec::new())
    }
    pub fn int(mut self, v: i32) -> Jute {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn long(mut self, v: i64) -> Jute {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn boolean(mut self, v: bool) -> Jute {
        self.0.push(u8::from(v));
        self
    }
    pub fn buffer(mut self, v: Option<&[u8]>) -> Jute {
        match v {
            None => self.int(-1),
            Some(bytes) => {
                self = self.int(bytes.len() as i32);
                self.0.extend_from_slice(bytes);
                self
            }
        }
    }
    pub fn ustring(self, v: &str) -> Jute {
        self.buffer(Some(v.as_bytes()))
    }
    pub fn strings(mut self, v: &[&str]) -> Jute {
        self = self.int(v.len() as i32);
        for s in v {
            self = self.ustring(s);
        }
        self
    }
    /// `vector<ACL>`: (perms, scheme, id) triples.
    pub fn acls(mut self, acls: &[(i32, &str, &str)]) -> Jute {
        self = self.int(acls.len() as i32);
        for (perms, scheme, id) in acls {
            self = self.int(*perms).ustring(scheme).ustring(id);
        }
        self
    }
    pub fn raw(mut self, bytes: &[u8]) -> Jute {
        self.0.extend_from_slice(bytes);
        self
    }
    pub fn bytes(self) -> Vec<u8> {
        self.0
    }
}

/// `world:anyone` with all permissions.
pub const OPEN_ACL: &[(i32, &str, &str)] = &[(31, "world", "anyone")];

/// Body of a CreateRequest.
pub fn create_body(path: &str, data: Option<&[u8]>, flags: i32) -> Vec<u8> {
    Jute::new().ustring(path).buffer(data).acls(OPEN_ACL).int(flags).bytes()
}

/// Body of a `{ustring path, boolean watch}` request (exists, getData, getChildren(2)).
pub fn path_watch_body(path: &str, watch: bool) -> Vec<u8> {
    Jute::new().ustring(path).boolean(watch).bytes()
}

/// Body of a `{ustring path}` request.
pub fn path_body(path: &str) -> Vec<u8> {
    Jute::new().ustring(path).bytes()
}

/// Jute reader that fails the test on malformed input.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(
            self.pos + n <= self.buf.len(),
            "short record: need {n} at {} of {:?}",
            self.pos,
            self.buf
        );
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    pub fn int(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().expect("4 bytes"))
    }
    pub fn long(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().expect("8 bytes"))
    }
    pub fn boolean(&mut self) -> bool {
        self.take(1)[0] != 0
    }
    pub fn buffer(&mut self) -> Option<Vec<u8>> {
        let len = self.int();
        if len < 0 {
            return None;
        }
        Some(self.take(len as usize).to_vec())
    }
    pub fn ustring(&mut self) -> String {
        String::from_utf8(self.buffer().expect("non-null string")).expect("utf-8")
    }
    pub fn strings(&mut self) -> Vec<String> {
        let n = self.int();
        (0..n).map(|_| self.ustring()).collect()
    }
    pub fn acls(&mut self) -> Vec<(i32, String, String)> {
        let n = self.int();
        (0..n).map(|_| (self.int(), self.ustring(), self.ustring())).collect()
    }
    pub fn stat(&mut self) -> Stat {
        Stat {
            czxid: self.long(),
            mzxid: self.long(),
            ctime: self.long(),
            mtime: self.long(),
            version: self.int(),
            cversion: self.int(),
            aversion: self.int(),
            ephemeral_owner: self.long(),
            data_length: self.int(),
            num_children: self.int(),
            pzxid: self.long(),
        }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
}

/// The 68-byte Stat record in wire order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

/// ConnectRequest fields; `read_only: None` omits the trailing byte (pre-3.4 clients).
#[derive(Clone, Debug)]
pub struct ConnectRequest {
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    /// A request for a new session with the given timeout.
    pub fn new_session(timeout_ms: i32) -> ConnectRequest {
        ConnectRequest {
            last_zxid_seen: 0,
            timeout_ms,
            session_id: 0,
            password: vec![0; 16],
            read_only: Some(false),
        }
    }

    /// A request to reattach `session`.
    pub fn reattach(session: &ConnectResponse, last_zxid_seen: i64) -> ConnectRequest {
        ConnectRequest {
            last_zxid_seen,
            timeout_ms: session.timeout_ms,
            session_id: session.session_id,
            password: session.password.clone(),
            read_only: Some(false),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut body = Jute::new()
            .int(0)
            .long(self.last_zxid_seen)
            .int(self.timeout_ms)
            .long(self.session_id)
            .buffer(Some(&self.password));
        if let Some(read_only) = self.read_only {
            body = body.boolean(read_only);
        }
        body.bytes()
    }
}

/// The server's ConnectResponse, with the payload length it came in.
#[derive(Clone, Debug)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub read_only: Option<bool>,
    pub payload_len: usize,
}

/// A reply to a request: header fields and the body after the 16-byte ReplyHeader.
#[derive(Clone, Debug)]
pub struct Reply {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    pub body: Vec<u8>,
}

impl Reply {
    /// Panics unless `err == 0`.
    pub fn ok(self, what: &str) -> Reply {
        assert_eq!(self.err, err::OK, "{what}: unexpected error code");
        self
    }
    pub fn reader(&self) -> Reader<'_> {
        Reader::new(&self.body)
    }
}

/// A watch notification (xid -1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub event_type: i32,
    pub state: i32,
    pub path: String,
    pub zxid: i64,
}

/// Something read from the server.
#[derive(Clone, Debug)]
pub enum Incoming {
    Reply(Reply),
    Notification(Notification),
}

/// One TCP connection speaking the client protocol.
pub struct Conn {
    stream: Box<dyn Stream>,
    next_xid: i32,
    /// Notifications received so far and not yet taken, in arrival order.
    pub events: Vec<Notification>,
    /// Highest zxid seen in reply headers.
    pub last_zxid: i64,
}

impl Conn {
    /// Opens a TCP connection without any handshake.
    pub async fn open(addr: &str) -> Conn {
        let stream =
            TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        Conn::over(stream)
    }

    /// A connection over an already open stream (e.g. TLS), without any handshake.
    pub fn over(stream: impl Stream + 'static) -> Conn {
        Conn { stream: Box::new(stream), next_xid: 1, events: Vec::new(), last_zxid: 0 }
    }

    /// Opens a connection and creates a new session with `timeout_ms`.
    pub async fn session(addr: &str, timeout_ms: i32) -> (Conn, ConnectResponse) {
        let mut conn = Conn::open(addr).await;
        let response = conn.handshake(&ConnectRequest::new_session(timeout_ms)).await;
        assert!(response.timeout_ms > 0, "new session refused: {response:?}");
        assert_ne!(response.session_id, 0, "new session refused: {response:?}");
        (conn, response)
    }

    /// Sends a ConnectRequest and reads the ConnectResponse.
    pub async fn handshake(&mut self, request: &ConnectRequest) -> ConnectResponse {
        self.send_frame(&request.encode()).await;
        let payload = self.read_frame().await.expect("ConnectResponse frame");
        let mut r = Reader::new(&payload);
        let protocol_version = r.int();
        let timeout_ms = r.int();
        let session_id = r.long();
        let password = r.buffer().unwrap_or_default();
        let read_only = if r.remaining() > 0 { Some(r.boolean()) } else { None };
        ConnectResponse {
            protocol_version,
            timeout_ms,
            session_id,
            password,
            read_only,
            payload_len: payload.len(),
        }
    }

    /// Writes one length-prefixed frame.
    pub async fn send_frame(&mut self, payload: &[u8]) {
        let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(payload);
        self.send_bytes(&frame).await;
    }

    /// Writes raw bytes, no framing.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write to server");
    }

    /// Writes raw bytes, ignoring errors (the server may already have closed).
    pub async fn try_send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads one frame's payload; `None` on EOF or connection reset.
    pub async fn read_frame(&mut self) -> Option<Vec<u8>> {
        let reading = async {
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).await.ok()?;
            let len = i32::from_be_bytes(len);
            assert!((0..16 << 20).contains(&len), "server sent frame length {len}");
            let mut payload = vec![0u8; len as usize];
            self.stream.read_exact(&mut payload).await.ok()?;
            Some(payload)
        };
        match tokio::time::timeout(READ_TIMEOUT, reading).await {
            Ok(frame) => frame,
            Err(_) => panic!("no frame from server within {READ_TIMEOUT:?}"),
        }
    }

    /// Reads the next reply or notification; `None` when the connection is closed.
    pub async fn read_incoming(&mut self) -> Option<Incoming> {
        let payload = self.read_frame().await?;
        let mut r = Reader::new(&payload);
        let xid = r.int();
        let zxid = r.long();
        let err = r.int();
        if xid == -1 {
            let event_type = r.int();
            let state = r.int();
            let path = r.ustring();
            return Some(Incoming::Notification(Notification { event_type, state, path, zxid }));
        }
        if zxid > self.last_zxid {
            self.last_zxid = zxid;
        }
        let body = payload[16..].to_vec();
        Some(Incoming::Reply(Reply { xid, zxid, err, body }))
    }

    /// Sends a request with the next xid and returns it.
    pub async fn send_request(&mut self, op: i32, body: &[u8]) -> i32 {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.send_with_xid(xid, op, body).await;
        xid
    }

    /// Sends a request with an explicit xid.
    pub async fn send_with_xid(&mut self, xid: i32, op: i32, body: &[u8]) {
        let payload = Jute::new().int(xid).int(op).raw(body).bytes();
        self.send_frame(&payload).await;
    }

    /// Reads until the reply with `xid`, collecting notifications into `events`.
    /// Panics if another reply arrives first or the connection closes.
    pub async fn reply_for(&mut self, xid: i32) -> Reply {
        match self.try_reply_for(xid).await {
            Some(reply) => reply,
            None => panic!("connection closed while waiting for reply xid {xid}"),
        }
    }

    /// Like [`Conn::reply_for`] but `None` if the connection closes first.
    pub async fn try_reply_for(&mut self, xid: i32) -> Option<Reply> {
        loop {
            match self.read_incoming().await? {
                Incoming::Notification(n) => self.events.push(n),
                Incoming::Reply(reply) => {
                    assert_eq!(reply.xid, xid, "reply out of order: {reply:?}");
                    return Some(reply);
                }
            }
        }
    }

    /// Sends a request and waits for its reply.
    pub async fn call(&mut self, op: i32, body: &[u8]) -> Reply {
        let xid = self.send_request(op, body).await;
        self.reply_for(xid).await
    }

    /// Sends a ping (xid -2) and waits for its reply.
    pub async fn ping(&mut self) -> Reply {
        self.send_with_xid(-2, op::PING, &[]).await;
        self.reply_for(-2).await
    }

    /// Sends a ping; `None` if the connection turns out to be closed.
    pub async fn try_ping(&mut self) -> Option<Reply> {
        let payload = Jute::new().int(-2).int(op::PING).bytes();
        let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        self.try_send_bytes(&frame).await.ok()?;
        self.try_reply_for(-2).await
    }

    /// Takes the notifications received so far.
    pub fn take_events(&mut self) -> Vec<Notification> {
        std::mem::take(&mut self.events)
    }

    /// Reads until a notification arrives (or returns one already buffered).
    pub async fn next_event(&mut self) -> Notification {
        if !self.events.is_empty() {
            return self.events.remove(0);
        }
        match self.read_incoming().await {
            Some(Incoming::Notification(n)) => n,
            Some(Incoming::Reply(reply)) => panic!("expected a notification, got {reply:?}"),
            None => panic!("connection closed while waiting for a notification"),
        }
    }

    /// Asserts that the server closes the connection (EOF or reset) without sending a frame.
    pub async fn expect_closed(&mut self) {
        let mut buf = [0u8; 64];
        let reading = self.stream.read(&mut buf);
        match tokio::time::timeout(READ_TIMEOUT, reading).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!("expected the server to close, got {n} bytes: {:?}", &buf[..n]),
            Err(_) => panic!("server did not close the connection within {READ_TIMEOUT:?}"),
        }
    }

    /// Reads and discards whatever the server still sends until it closes the connection.
    pub async fn expect_closed_after_draining(&mut self) {
        let mut buf = vec![0u8; 1 << 16];
        let draining = async {
            loop {
                match self.stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        if tokio::time::timeout(READ_TIMEOUT, draining).await.is_err() {
            panic!("server did not close the connection within {READ_TIMEOUT:?}");
        }
    }

    /// Creates `path` (persistent unless `flags` says otherwise) and returns the created path.
    pub async fn create(&mut self, path: &str, data: &[u8], flags: i32) -> String {
        let reply = self.call(op::CREATE, &create_body(path, Some(data), flags)).await;
        reply.ok(&format!("create {path}")).reader().ustring()
    }

    /// `exists` returning the error code and the stat if any.
    pub async fn exists(&mut self, path: &str, watch: bool) -> (i32, Option<Stat>) {
        let reply = self.call(op::EXISTS, &path_watch_body(path, watch)).await;
        let stat = (reply.err == 0).then(|| reply.reader().stat());
        (reply.err, stat)
    }
}

/// A multi sub-op: (opcode, request record body).
pub fn multi_body(ops: &[(i32, Vec<u8>)]) -> Vec<u8> {
    let mut body = Jute::new();
    for (op, record) in ops {
        body = body.int(*op).boolean(false).int(-1).raw(record);
    }
    body.int(-1).boolean(true).int(-1).bytes()
}

/// One parsed multi result: (type, err). For error entries `err` is the ErrorResponse code;
/// the rest of the record is skipped according to the type.
pub fn parse_multi_results(body: &[u8]) -> Vec<(i32, i32)> {
    let mut r = Reader::new(body);
    let mut results = Vec::new();
    loop {
        let kind = r.int();
        let done = r.boolean();
        let header_err = r.int();
        if done {
            assert_eq!(kind, -1, "multi terminator type");
            break;
        }
        match kind {
            -1 => {
                let code = r.int();
                assert_eq!(code, header_err, "ErrorResponse repeats the header err");
                results.push((kind, code));
            }
            op::CREATE => {
                r.ustring();
                results.push((kind, header_err));
            }
            op::CREATE2 => {
                r.ustring();
                r.stat();
                results.push((kind, header_err));
            }
            op::SET_DATA => {
                r.stat();
                results.push((kind, header_err));
            }
            op::DELETE | op::CHECK => results.push((kind, header_err)),
            op::GET_DATA => {
                r.buffer();
                r.stat();
                results.push((kind, header_err));
            }
            op::GET_CHILDREN => {
                r.strings();
                results.push((kind, header_err));
            }
            other => panic!("unexpected multi result type {other}"),
        }
    }
    assert_eq!(r.remaining(), 0, "bytes after the multi terminator");
    results
}
