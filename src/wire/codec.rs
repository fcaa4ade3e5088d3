//! Encoding and decoding of client records. OWNER: wire helper. Stub signatures only.

use bytes::Bytes;

use crate::wire::proto::*;

/// Why a frame could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame ended inside a field.
    #[error("frame ended early at byte {offset}")]
    Truncated {
        /// Where it ended.
        offset: usize,
    },
    /// Some other violation.
    #[error("{0}")]
    Invalid(&'static str),
}

/// Why a request body could not be turned into a `Request`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Unknown or unsupported opcode: ZooKeeper answers -6 and closes the connection.
    #[error("unimplemented opcode {0}")]
    Unimplemented(i32),
    /// Undecodable body: ZooKeeper answers -5.
    #[error("marshalling error: {0}")]
    Marshalling(DecodeError),
}

/// Decodes a `ConnectRequest` frame payload (the optional read-only byte may be absent).
pub fn decode_connect_request(_frame: &[u8]) -> Result<ConnectRequest, DecodeError> {
    todo!()
}

/// Encodes a `ConnectResponse` as a length-prefixed frame.
pub fn encode_connect_response(_response: &ConnectResponse) -> Bytes {
    todo!()
}

/// Splits a request frame payload into its header and body.
pub fn decode_request_header(_frame: &Bytes) -> Result<(RequestHeader, Bytes), DecodeError> {
    todo!()
}

/// Decodes the body of a request with the given opcode.
pub fn decode_request(_opcode: i32, _body: Bytes) -> Result<Request, RequestError> {
    todo!()
}

/// Encodes a reply (header plus optional body) as a length-prefixed frame.
pub fn encode_reply(_header: ReplyHeader, _body: Option<&Response>) -> Bytes {
    todo!()
}

/// Encodes a watch notification (xid -1) as a length-prefixed frame.
pub fn encode_notification(_zxid: i64, _event: &WatcherEvent) -> Bytes {
    todo!()
}

/// (stub) client side.
pub fn encode_connect_request(_r: &ConnectRequest) -> Bytes {
    todo!()
}
/// (stub)
pub fn decode_connect_response(_f: &[u8]) -> Result<ConnectResponse, DecodeError> {
    todo!()
}
/// (stub)
pub fn encode_request(_xid: i32, _r: &Request) -> Bytes {
    todo!()
}
/// (stub)
pub fn decode_reply_header(_f: &Bytes) -> Result<(ReplyHeader, Bytes), DecodeError> {
    todo!()
}
/// (stub)
pub fn decode_response(_opcode: i32, _body: Bytes) -> Result<Response, DecodeError> {
    todo!()
}
/// (stub)
pub fn decode_notification(_body: Bytes) -> Result<WatcherEvent, DecodeError> {
    todo!()
}
