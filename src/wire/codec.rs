//! The client protocol's entry points: the handshake records, request and reply headers, whole
//! requests and replies, and watch notifications, for both the server and a client (the
//! simulator, the CLI and the benchmark drive the server through the client half).
//!
//! Decoders take a frame payload (what `frame::FrameDecoder` returns, without the length
//! prefix) and never panic; encoders return or append whole length-prefixed frames, sized
//! exactly up front. Data buffers in decoded records are zero-copy slices of the frame.
//!
//! ZK compat: the server half mirrors `NIOServerCnxn`/`ZooKeeperServer.processConnectRequest`
//! (the optional trailing read-only byte), `ServerCnxn.sendResponse` (error replies are a bare
//! `ReplyHeader`) and `ServerCnxn.process` (notifications); the client half mirrors
//! `ClientCnxn`. The per-opcode records live in `wire::request` and `wire::response`.

use bytes::{Bytes, BytesMut};

use crate::wire::frame::{write_frame, FRAME_PREFIX_LEN};
pub use crate::wire::jute::DecodeError;
use crate::wire::jute::{buffer_len, ustring_len, Reader, Writer};
use crate::wire::proto::*;
use crate::wire::request::{put_request, read_request, request_len};
use crate::wire::response::{put_response, read_response, response_len};

/// The xid of a watch notification.
pub const XID_NOTIFICATION: i32 = -1;
/// The xid of a ping and its reply.
pub const XID_PING: i32 = -2;
/// The xid clients use for `auth`.
pub const XID_AUTH: i32 = -4;
/// The xid the C client uses for `setWatches`.
pub const XID_SET_WATCHES: i32 = -8;

/// Encoded size of a `RequestHeader`.
const REQUEST_HEADER_LEN: usize = 8;
/// Encoded size of a `ReplyHeader`.
const REPLY_HEADER_LEN: usize = 16;

/// Why a request body could not be turned into a `Request`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Unknown or unsupported opcode: ZooKeeper answers -6 and closes the connection.
    #[error("unimplemented opcode {0}")]
    Unimplemented(i32),
    /// Undecodable body: ZooKeeper answers -5.
    #[error("marshalling error: {0}")]
    Marshalling(#[from] DecodeError),
}

/// Decodes a `ConnectRequest` frame payload. ZK compat: the trailing read-only byte is
/// optional (pre-3.4 clients omit it) and `read_only` records whether it was there, which
/// decides whether the response carries one. A null password reads as empty.
pub fn decode_connect_request(frame: &[u8]) -> Result<ConnectRequest, DecodeError> {
    let mut r = Reader::from_slice(frame);
    Ok(ConnectRequest {
        protocol_version: r.read_i32()?,
        last_zxid_seen: r.read_i64()?,
        timeout_ms: r.read_i32()?,
        session_id: r.read_i64()?,
        password: r.read_buffer()?.unwrap_or_default(),
        read_only: if r.remaining() > 0 { Some(r.read_bool()?) } else { None },
    })
}

/// Encodes a `ConnectResponse` as a length-prefixed frame; the read-only byte is written only
/// when `read_only` is `Some`.
pub fn encode_connect_response(response: &ConnectResponse) -> Bytes {
    let payload_len =
        16 + buffer_len(Some(&response.password)) + response.read_only.map_or(0, |_| 1);
    encode_sized(payload_len, |w| {
        w.put_i32(response.protocol_version);
        w.put_i32(response.timeout_ms);
        w.put_i64(response.session_id);
        w.put_buffer(Some(&response.password));
        if let Some(read_only) = response.read_only {
            w.put_bool(read_only);
        }
    })
}

/// Client side: encodes a `ConnectRequest` as a length-prefixed frame; the read-only byte is
/// written only when `read_only` is `Some`.
pub fn encode_connect_request(request: &ConnectRequest) -> Bytes {
    let payload_len = 24 + buffer_len(Some(&request.password)) + request.read_only.map_or(0, |_| 1);
    encode_sized(payload_len, |w| {
        w.put_i32(request.protocol_version);
        w.put_i64(request.last_zxid_seen);
        w.put_i32(request.timeout_ms);
        w.put_i64(request.session_id);
        w.put_buffer(Some(&request.password));
        if let Some(read_only) = request.read_only {
            w.put_bool(read_only);
        }
    })
}

/// Client side: decodes a `ConnectResponse` frame payload (read-only byte optional).
pub fn decode_connect_response(frame: &[u8]) -> Result<ConnectResponse, DecodeError> {
    let mut r = Reader::from_slice(frame);
    Ok(ConnectResponse {
        protocol_version: r.read_i32()?,
        timeout_ms: r.read_i32()?,
        session_id: r.read_i64()?,
        password: r.read_buffer()?.unwrap_or_default(),
        read_only: if r.remaining() > 0 { Some(r.read_bool()?) } else { None },
    })
}

/// Splits a request frame payload into its header and body (a zero-copy slice of `frame`).
pub fn decode_request_header(frame: &Bytes) -> Result<(RequestHeader, Bytes), DecodeError> {
    let mut r = Reader::new(frame);
    let header = RequestHeader { xid: r.read_i32()?, opcode: r.read_i32()? };
    Ok((header, r.rest()))
}

/// Decodes the body of a request with the given opcode. Opcodes that are not client requests
/// this server serves (0, 10, reconfig 16, deleteContainer 20, ...) are
/// `Unimplemented`; a body that does not parse as the opcode's record, or a multi with an
/// unknown, mixed or invalid sub-op, is `Marshalling`. Trailing bytes are ignored.
pub fn decode_request(opcode: i32, body: Bytes) -> Result<Request, RequestError> {
    read_request(opcode, &mut Reader::new(&body))
}

/// Client side: encodes a request as a length-prefixed frame with the opcode the variant calls
/// for ([`Request::opcode`]). The caller picks the xid (`XID_PING` for pings, ...).
pub fn encode_request(xid: i32, request: &Request) -> Bytes {
    encode_sized(REQUEST_HEADER_LEN + request_len(request), |w| {
        w.put_i32(xid);
        w.put_i32(request.opcode().code());
        put_request(w, request);
    })
}

/// Encodes a reply (header plus optional body) as a length-prefixed frame. The body is
/// written only when `header.err` is 0: ZooKeeper answers errors with a bare header, and
/// multi failures travel inside a `Response::Multi` with err 0.
pub fn encode_reply(header: ReplyHeader, body: Option<&Response>) -> Bytes {
    let mut out = BytesMut::new();
    write_reply(&mut out, header, body);
    out.freeze()
}

/// The payload size of the frame [`encode_reply`] would build, computed without building it.
pub fn reply_payload_len(header: ReplyHeader, body: Option<&Response>) -> usize {
    REPLY_HEADER_LEN + body.filter(|_| header.err == 0).map_or(0, response_len)
}

/// Like [`encode_reply`], appending to `out`, so that a connection can batch the replies it
/// owes into one write buffer.
pub fn write_reply(out: &mut BytesMut, header: ReplyHeader, body: Option<&Response>) {
    let body = body.filter(|_| header.err == 0);
    let payload_len = REPLY_HEADER_LEN + body.map_or(0, response_len);
    write_sized(out, payload_len, |w| {
        put_reply_header(w, header);
        if let Some(body) = body {
            put_response(w, body);
        }
    });
}

/// Encodes an error reply that carries a body all the same (a frame). ZK compat: the one such
/// reply is a multiRead of write ops, answered `MarshallingError` plus an empty
/// `MultiResponse`; every other error reply is the bare header [`encode_reply`] writes.
pub fn encode_error_reply(header: ReplyHeader, body: &Response) -> Bytes {
    let mut out = BytesMut::new();
    write_sized(&mut out, REPLY_HEADER_LEN + response_len(body), |w| {
        put_reply_header(w, header);
        put_response(w, body);
    });
    out.freeze()
}

/// Client side: splits a reply frame payload into its header and body (a zero-copy slice).
pub fn decode_reply_header(frame: &Bytes) -> Result<(ReplyHeader, Bytes), DecodeError> {
    let mut r = Reader::new(frame);
    let header = ReplyHeader { xid: r.read_i32()?, zxid: r.read_i64()?, err: r.read_i32()? };
    Ok((header, r.rest()))
}

/// Client side: decodes the body of a successful reply (`err` 0) to a request sent with
/// `opcode`; the inverse of [`encode_reply`]. Error replies have no body to decode.
pub fn decode_response(opcode: i32, body: Bytes) -> Result<Response, DecodeError> {
    read_response(opcode, &mut Reader::new(&body))
}

/// Encodes a watch notification (`ReplyHeader{xid -1, zxid, err 0}` + `WatcherEvent`) as a
/// length-prefixed frame.
pub fn encode_notification(zxid: i64, event: &WatcherEvent) -> Bytes {
    let mut out = BytesMut::new();
    write_notification(&mut out, zxid, event);
    out.freeze()
}

/// Like [`encode_notification`], appending to `out`.
pub fn write_notification(out: &mut BytesMut, zxid: i64, event: &WatcherEvent) {
    let payload_len = REPLY_HEADER_LEN + 8 + ustring_len(&event.path);
    write_sized(out, payload_len, |w| {
        put_reply_header(w, ReplyHeader { xid: XID_NOTIFICATION, zxid, err: 0 });
        w.put_i32(event.event_type);
        w.put_i32(event.state);
        w.put_ustring(&event.path);
    });
}

/// Client side: decodes the `WatcherEvent` body of a notification (a reply with xid -1).
pub fn decode_notification(body: Bytes) -> Result<WatcherEvent, DecodeError> {
    let mut r = Reader::new(&body);
    Ok(WatcherEvent { event_type: r.read_i32()?, state: r.read_i32()?, path: r.read_string()? })
}

fn put_reply_header(w: &mut Writer, header: ReplyHeader) {
    w.put_i32(header.xid);
    w.put_i64(header.zxid);
    w.put_i32(header.err);
}

/// One frame of `payload_len` bytes in a buffer of exactly that size.
fn encode_sized(payload_len: usize, write_payload: impl FnOnce(&mut Writer)) -> Bytes {
    let mut out = BytesMut::new();
    write_sized(&mut out, payload_len, write_payload);
    out.freeze()
}

/// Appends one frame whose payload is `payload_len` bytes, reserving room for it first.
fn write_sized(out: &mut BytesMut, payload_len: usize, write_payload: impl FnOnce(&mut Writer)) {
    let frame_len = FRAME_PREFIX_LEN + payload_len;
    out.reserve(frame_len);
    let start = out.len();
    write_frame(out, write_payload);
    debug_assert_eq!(out.len() - start, frame_len, "the computed size matches the encoding");
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::wire::frame::FrameDecoder;

    /// Parses hex with optional spaces, as the protocol reference writes it.
    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// Frames `bytes` the way the server's read loop does and splits off the request header.
    fn receive(bytes: &[u8]) -> (RequestHeader, Bytes) {
        let mut stream = BytesMut::from(bytes);
        let frame = FrameDecoder::default().decode(&mut stream).unwrap().unwrap();
        assert!(stream.is_empty());
        decode_request_header(&frame).unwrap()
    }

    #[test]
    fn ping_request_and_reply_match_the_reference_bytes() {
        let wire = hex("00000008 FFFFFFFE 0000000B");
        assert_eq!(&encode_request(XID_PING, &Request::Ping)[..], &wire[..]);
        let (header, body) = receive(&wire);
        assert_eq!(header, RequestHeader { xid: -2, opcode: 11 });
        assert_eq!(decode_request(header.opcode, body), Ok(Request::Ping));

        let reply = ReplyHeader { xid: XID_PING, zxid: 0x1_0000_002a, err: 0 };
        let expected = hex("00000010 FFFFFFFE 000000010000002A 00000000");
        assert_eq!(&encode_reply(reply, None)[..], &expected[..]);
        assert_eq!(&encode_reply(reply, Some(&Response::Empty))[..], &expected[..]);
    }

    #[test]
    fn get_data_request_matches_the_reference_bytes() {
        let wire = hex("0000000F 00000001 00000004 00000002 2F61 01");
        let request = Request::GetData { path: "/a".to_string(), watch: true };
        assert_eq!(&encode_request(1, &request)[..], &wire[..]);
        let (header, body) = receive(&wire);
        assert_eq!(header, RequestHeader { xid: 1, opcode: 4 });
        assert_eq!(decode_request(header.opcode, body), Ok(request));
    }

    #[test]
    fn an_error_reply_is_the_header_alone() {
        let stat = crate::wire::types::Stat::default();
        let body = Response::GetData { data: Some(Bytes::from_static(b"x")), stat };
        let reply = ReplyHeader { xid: 1, zxid: 5, err: -101 };
        let expected = hex("00000010 00000001 0000000000000005 FFFFFF9B");
        assert_eq!(&encode_reply(reply, Some(&body))[..], &expected[..]);
    }

    #[test]
    fn get_data_reply_slices_the_frame() {
        let stat = crate::wire::types::Stat { data_length: 3, ..Default::default() };
        let body = Response::GetData { data: Some(Bytes::from_static(b"abc")), stat };
        let frame = encode_reply(ReplyHeader { xid: 1, zxid: 5, err: 0 }, Some(&body)).slice(4..);
        let (_, reply_body) = decode_reply_header(&frame).unwrap();
        let Ok(Response::GetData { data: Some(data), .. }) = decode_response(4, reply_body) else {
            panic!("not a getData response");
        };
        assert_eq!(&data[..], b"abc");
        assert_eq!(data.as_ptr(), frame[20..].as_ptr(), "data shares the frame's storage");
    }

    #[test]
    fn notifications_carry_xid_minus_one() {
        let event = WatcherEvent { event_type: 3, state: 3, path: "/a".to_string() };
        let frame = encode_notification(0x22, &event);
        let expected =
            hex("0000001E FFFFFFFF 0000000000000022 00000000 00000003 00000003 00000002 2F61");
        assert_eq!(&frame[..], &expected[..]);
        let (header, body) = decode_reply_header(&frame.slice(4..)).unwrap();
        assert_eq!(header, ReplyHeader { xid: XID_NOTIFICATION, zxid: 0x22, err: 0 });
        assert_eq!(decode_notification(body), Ok(event));
    }

    #[test]
    fn replies_batch_into_one_buffer() {
        let mut out = BytesMut::new();
        write_reply(&mut out, ReplyHeader { xid: 1, zxid: 2, err: 0 }, Some(&Response::Empty));
        let event = WatcherEvent { event_type: 2, state: 3, path: "/b".to_string() };
        write_notification(&mut out, 2, &event);
        write_reply(&mut out, ReplyHeader { xid: 2, zxid: 2, err: -110 }, None);
        let mut decoder = FrameDecoder::default();
        let xids: Vec<i32> = std::iter::from_fn(|| decoder.decode(&mut out).unwrap())
            .map(|frame| decode_reply_header(&frame).unwrap().0.xid)
            .collect();
        assert_eq!(xids, vec![1, -1, 2]);
    }

    fn connect_request(read_only: Option<bool>) -> ConnectRequest {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0x0102,
            timeout_ms: 30_000,
            session_id: 0,
            password: Bytes::from_static(&[0; 16]),
            read_only,
        }
    }

    #[test]
    fn the_read_only_byte_is_optional() {
        let with_flag = encode_connect_request(&connect_request(Some(false)));
        assert_eq!(with_flag.len(), 4 + 45);
        assert_eq!(&with_flag[..4], &[0, 0, 0, 45]);
        assert_eq!(decode_connect_request(&with_flag[4..]), Ok(connect_request(Some(false))));

        let without = encode_connect_request(&connect_request(None));
        assert_eq!(&without[4..], &with_flag[4..without.len()]);
        assert_eq!(&without[..4], &[0, 0, 0, 44]);
        assert_eq!(decode_connect_request(&without[4..]), Ok(connect_request(None)));

        let response = ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            password: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
        };
        let frame = encode_connect_response(&response);
        assert_eq!(&frame[..4], &[0, 0, 0, 37]);
        assert_eq!(decode_connect_response(&frame[4..]), Ok(response.clone()));
        let without = ConnectResponse { read_only: None, ..response };
        assert_eq!(encode_connect_response(&without).len(), 4 + 36);
    }

    #[test]
    fn a_connect_request_cut_inside_the_password_is_truncated() {
        let frame = encode_connect_request(&connect_request(None));
        assert_eq!(
            decode_connect_request(&frame[4..frame.len() - 1]),
            Err(DecodeError::Truncated { offset: 24 })
        );
    }

    fn arb_password() -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Bytes::from)
    }

    proptest! {
        #[test]
        fn connect_records_round_trip(
            (protocol_version, timeout_ms) in (any::<i32>(), any::<i32>()),
            (last_zxid_seen, session_id) in (any::<i64>(), any::<i64>()),
            password in arb_password(),
            read_only in proptest::option::of(any::<bool>()),
        ) {
            let request = ConnectRequest {
                protocol_version,
                last_zxid_seen,
                timeout_ms,
                session_id,
                password: password.clone(),
                read_only,
            };
            let frame = encode_connect_request(&request);
            prop_assert_eq!(decode_connect_request(&frame[4..])?, request);

            let response =
                ConnectResponse { protocol_version, timeout_ms, session_id, password, read_only };
            let frame = encode_connect_response(&response);
            prop_assert_eq!(decode_connect_response(&frame[4..])?, response);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let bytes = Bytes::from(bytes);
            let _ = decode_connect_request(&bytes);
            let _ = decode_connect_response(&bytes);
            let _ = decode_notification(bytes.clone());
            if let Ok((header, body)) = decode_request_header(&bytes) {
                let _ = decode_request(header.opcode, body);
            }
            if let Ok((_, body)) = decode_reply_header(&bytes) {
                for opcode in [1, 4, 12, 14, 22, 107] {
                    let _ = decode_response(opcode, body.clone());
                }
            }
        }
    }
}
