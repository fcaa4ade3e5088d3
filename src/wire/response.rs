//! The response records of `zookeeper.jute`, both ways: encoding a [`Response`] into a reply
//! body (server side) and decoding a reply body for a given request opcode (client side).
//!
//! ZK compat: multi results follow `MultiResponse`: each result is a
//! `MultiHeader{type, done=false, err}` plus its record, with `err` 0 except for error results
//! (type -1, `err` = the code, and an `ErrorResponse` repeating it), and the list ends with
//! `MultiHeader{-1, true, -1}`. Which record answers which opcode follows
//! `FinalRequestProcessor`; trailing bytes after a record are ignored.

use crate::wire::jute::{
    acl_vec_len, buffer_len, string_vec_len, ustring_len, DecodeError, Reader, Writer, STAT_LEN,
};
use crate::wire::proto::{OpResult, Response};
use crate::wire::request::{put_multi_end, read_multi_header, MULTI_HEADER_LEN};
use crate::wire::types::OpCode;

/// Encodes `response` as a reply body.
pub(crate) fn put_response(w: &mut Writer, response: &Response) {
    match response {
        Response::Empty => {}
        Response::Create { path } | Response::Sync { path } => w.put_ustring(path),
        Response::Create2 { path, stat } => {
            w.put_ustring(path);
            w.put_stat(stat);
        }
        Response::Stat(stat) => w.put_stat(stat),
        Response::GetData { data, stat } => {
            w.put_buffer(data.as_deref());
            w.put_stat(stat);
        }
        Response::GetAcl { acl, stat } => {
            w.put_acl_vec(acl);
            w.put_stat(stat);
        }
        Response::GetChildren { children } | Response::Ephemerals(children) => {
            w.put_string_vec(children);
        }
        Response::GetChildren2 { children, stat } => {
            w.put_string_vec(children);
            w.put_stat(stat);
        }
        Response::Multi(results) => {
            for result in results {
                put_op_result(w, result);
            }
            put_multi_end(w);
        }
        Response::ErrorBody { err: value } | Response::AllChildrenNumber(value) => {
            w.put_i32(*value)
        }
        Response::WhoAmI(infos) => w.put_vec(infos, |w, (scheme, user)| {
            w.put_ustring(scheme);
            w.put_ustring(user);
        }),
        Response::Sasl { token } => w.put_buffer(token.as_deref()),
    }
}

/// Exact size of the body `put_response` writes.
pub(crate) fn response_len(response: &Response) -> usize {
    match response {
        Response::Empty => 0,
        Response::Create { path } | Response::Sync { path } => ustring_len(path),
        Response::Create2 { path, .. } => ustring_len(path) + STAT_LEN,
        Response::Stat(_) => STAT_LEN,
        Response::GetData { data, .. } => buffer_len(data.as_deref()) + STAT_LEN,
        Response::GetAcl { acl, .. } => acl_vec_len(acl) + STAT_LEN,
        Response::GetChildren { children } | Response::Ephemerals(children) => {
            string_vec_len(children)
        }
        Response::GetChildren2 { children, .. } => string_vec_len(children) + STAT_LEN,
        Response::Multi(results) => {
            let results_len: usize = results.iter().map(op_result_len).sum();
            results_len + MULTI_HEADER_LEN
        }
        Response::ErrorBody { .. } | Response::AllChildrenNumber(_) => 4,
        Response::WhoAmI(infos) => {
            4 + infos
                .iter()
                .map(|(scheme, user)| ustring_len(scheme) + ustring_len(user))
                .sum::<usize>()
        }
        Response::Sasl { token } => buffer_len(token.as_deref()),
    }
}

/// Decodes the success body of a reply to a request with opcode `opcode`.
pub(crate) fn read_response(opcode: i32, r: &mut Reader) -> Result<Response, DecodeError> {
    let no_record = DecodeError::Invalid { offset: 0, what: "opcode without a response record" };
    let Some(op) = OpCode::from_code(opcode) else {
        return Err(no_record);
    };
    let response = match op {
        OpCode::Create => Response::Create { path: r.read_string()? },
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            Response::Create2 { path: r.read_string()?, stat: r.read_stat()? }
        }
        OpCode::Delete
        | OpCode::Ping
        | OpCode::Check
        | OpCode::Auth
        | OpCode::SetWatches
        | OpCode::SetWatches2
        | OpCode::CheckWatches
        | OpCode::RemoveWatches
        | OpCode::CloseSession => Response::Empty,
        OpCode::Exists | OpCode::SetData | OpCode::SetAcl => Response::Stat(r.read_stat()?),
        OpCode::GetData => Response::GetData { data: r.read_buffer()?, stat: r.read_stat()? },
        OpCode::GetAcl => Response::GetAcl { acl: r.read_acl_vec()?, stat: r.read_stat()? },
        OpCode::GetChildren => Response::GetChildren { children: r.read_string_vec()? },
        OpCode::GetChildren2 => {
            Response::GetChildren2 { children: r.read_string_vec()?, stat: r.read_stat()? }
        }
        OpCode::Sync => Response::Sync { path: r.read_string()? },
        OpCode::Multi | OpCode::MultiRead => Response::Multi(read_op_results(r)?),
        OpCode::AddWatch => Response::ErrorBody { err: r.read_i32()? },
        OpCode::GetEphemerals => Response::Ephemerals(r.read_string_vec()?),
        OpCode::GetAllChildrenNumber => Response::AllChildrenNumber(r.read_i32()?),
        // ZK compat: `AuthUtil.getUser` yields null for a scheme without a provider.
        OpCode::WhoAmI => Response::WhoAmI(
            r.read_vec(8, |r| Ok((r.read_string()?, r.read_ustring()?.unwrap_or_default())))?,
        ),
        OpCode::Sasl => Response::Sasl { token: r.read_buffer()? },
        OpCode::Notification
        | OpCode::Reconfig
        | OpCode::DeleteContainer
        | OpCode::CreateSession
        | OpCode::Error => return Err(no_record),
    };
    Ok(response)
}

impl OpResult {
    /// The type this result carries in its `MultiHeader`. ZK compat: create2, createTTL and
    /// createContainer all report 15.
    pub fn opcode(&self) -> OpCode {
        match self {
            OpResult::Create { .. } => OpCode::Create,
            OpResult::Create2 { .. } => OpCode::Create2,
            OpResult::Delete => OpCode::Delete,
            OpResult::SetData { .. } => OpCode::SetData,
            OpResult::Check => OpCode::Check,
            OpResult::GetData { .. } => OpCode::GetData,
            OpResult::GetChildren { .. } => OpCode::GetChildren,
            OpResult::Error { .. } => OpCode::Error,
        }
    }
}

fn put_op_result(w: &mut Writer, result: &OpResult) {
    let err = match result {
        OpResult::Error { err } => *err,
        _ => 0,
    };
    w.put_i32(result.opcode().code());
    w.put_bool(false);
    w.put_i32(err);
    match result {
        OpResult::Create { path } => w.put_ustring(path),
        OpResult::Create2 { path, stat } => {
            w.put_ustring(path);
            w.put_stat(stat);
        }
        OpResult::Delete | OpResult::Check => {}
        OpResult::SetData { stat } => w.put_stat(stat),
        OpResult::GetData { data, stat } => {
            w.put_buffer(data.as_deref());
            w.put_stat(stat);
        }
        OpResult::GetChildren { children } => w.put_string_vec(children),
        OpResult::Error { err } => w.put_i32(*err),
    }
}

fn op_result_len(result: &OpResult) -> usize {
    MULTI_HEADER_LEN
        + match result {
            OpResult::Create { path } => ustring_len(path),
            OpResult::Create2 { path, .. } => ustring_len(path) + STAT_LEN,
            OpResult::Delete | OpResult::Check => 0,
            OpResult::SetData { .. } => STAT_LEN,
            OpResult::GetData { data, .. } => buffer_len(data.as_deref()) + STAT_LEN,
            OpResult::GetChildren { children } => string_vec_len(children),
            OpResult::Error { .. } => 4,
        }
}

/// ZK compat: `MultiResponse.deserialize`; an error result's code is taken from its
/// `ErrorResponse`, not from the header.
fn read_op_results(r: &mut Reader) -> Result<Vec<OpResult>, DecodeError> {
    let mut results = Vec::new();
    loop {
        let offset = r.offset();
        let Some(result_type) = read_multi_header(r)? else {
            return Ok(results);
        };
        let result = match OpCode::from_code(result_type) {
            Some(OpCode::Create) => OpResult::Create { path: r.read_string()? },
            Some(OpCode::Create2) => {
                OpResult::Create2 { path: r.read_string()?, stat: r.read_stat()? }
            }
            Some(OpCode::Delete) => OpResult::Delete,
            Some(OpCode::SetData) => OpResult::SetData { stat: r.read_stat()? },
            Some(OpCode::Check) => OpResult::Check,
            Some(OpCode::GetData) => {
                OpResult::GetData { data: r.read_buffer()?, stat: r.read_stat()? }
            }
            Some(OpCode::GetChildren) => OpResult::GetChildren { children: r.read_string_vec()? },
            Some(OpCode::Error) => OpResult::Error { err: r.read_i32()? },
            _ => {
                return Err(DecodeError::Invalid { offset, what: "unknown result type in a multi" })
            }
        };
        results.push(result);
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use proptest::prelude::*;

    use super::*;
    use crate::wire::codec::{decode_reply_header, decode_response, encode_reply};
    use crate::wire::frame::FrameDecoder;
    use crate::wire::jute::tests::arb_stat;
    use crate::wire::proto::ReplyHeader;
    use crate::wire::types::{Acl, Id, Stat};

    fn text() -> impl Strategy<Value = String> {
        ".{0,12}"
    }

    fn data() -> impl Strategy<Value = Option<Bytes>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from))
    }

    fn names() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(text(), 0..4)
    }

    fn op_result() -> impl Strategy<Value = OpResult> {
        prop_oneof![
            text().prop_map(|path| OpResult::Create { path }),
            (text(), arb_stat()).prop_map(|(path, stat)| OpResult::Create2 { path, stat }),
            Just(OpResult::Delete),
            arb_stat().prop_map(|stat| OpResult::SetData { stat }),
            Just(OpResult::Check),
            (data(), arb_stat()).prop_map(|(data, stat)| OpResult::GetData { data, stat }),
            names().prop_map(|children| OpResult::GetChildren { children }),
            any::<i32>().prop_map(|err| OpResult::Error { err }),
        ]
    }

    /// A response with an opcode whose reply it can be.
    fn arb_response() -> impl Strategy<Value = (i32, Response)> {
        let acl = proptest::collection::vec(
            (any::<i32>(), text(), text())
                .prop_map(|(perms, scheme, id)| Acl { perms, id: Id { scheme, id } }),
            0..3,
        );
        prop_oneof![
            prop_oneof![Just(2), Just(11), Just(17), Just(18), Just(100), Just(101), Just(-11)]
                .prop_map(|opcode| (opcode, Response::Empty)),
            text().prop_map(|path| (1, Response::Create { path })),
            (prop_oneof![Just(15), Just(19), Just(21)], text(), arb_stat())
                .prop_map(|(opcode, path, stat)| (opcode, Response::Create2 { path, stat })),
            (prop_oneof![Just(3), Just(5), Just(7)], arb_stat())
                .prop_map(|(opcode, stat)| (opcode, Response::Stat(stat))),
            (data(), arb_stat()).prop_map(|(data, stat)| (4, Response::GetData { data, stat })),
            (acl, arb_stat()).prop_map(|(acl, stat)| (6, Response::GetAcl { acl, stat })),
            names().prop_map(|children| (8, Response::GetChildren { children })),
            (names(), arb_stat())
                .prop_map(|(children, stat)| (12, Response::GetChildren2 { children, stat })),
            text().prop_map(|path| (9, Response::Sync { path })),
            (prop_oneof![Just(14), Just(22)], proptest::collection::vec(op_result(), 0..5))
                .prop_map(|(opcode, results)| (opcode, Response::Multi(results))),
            any::<i32>().prop_map(|err| (106, Response::ErrorBody { err })),
            names().prop_map(|names| (103, Response::Ephemerals(names))),
            any::<i32>().prop_map(|total| (104, Response::AllChildrenNumber(total))),
            proptest::collection::vec((text(), text()), 0..3)
                .prop_map(|infos| (107, Response::WhoAmI(infos))),
            data().prop_map(|token| (102, Response::Sasl { token })),
        ]
    }

    fn stat(seed: i64) -> Stat {
        Stat { czxid: seed, pzxid: seed, ..Stat::default() }
    }

    #[test]
    fn multi_results_use_zookeepers_header_types() {
        let results = vec![
            OpResult::Create2 { path: "/c".to_string(), stat: stat(1) },
            OpResult::Delete,
            OpResult::Error { err: -101 },
        ];
        let frame =
            encode_reply(ReplyHeader { xid: 3, zxid: 7, err: 0 }, Some(&Response::Multi(results)));
        let mut expected = vec![0, 0, 0, 0x82, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0];
        // {15, false, 0} "/c" Stat
        expected.extend([0, 0, 0, 15, 0, 0, 0, 0, 0, 0, 0, 0, 2, b'/', b'c']);
        expected.extend([0, 0, 0, 0, 0, 0, 0, 1]);
        expected.extend([0; 52]);
        expected.extend([0, 0, 0, 0, 0, 0, 0, 1]);
        // {2, false, 0}
        expected.extend([0, 0, 0, 2, 0, 0, 0, 0, 0]);
        // {-1, false, -101} ErrorResponse{-101}
        expected
            .extend([0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0x9b, 0xff, 0xff, 0xff, 0x9b]);
        // {-1, true, -1}
        expected.extend([0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(&frame[..], &expected[..]);
    }

    #[test]
    fn add_watch_success_carries_a_four_byte_body() {
        let frame = encode_reply(
            ReplyHeader { xid: 5, zxid: 9, err: 0 },
            Some(&Response::ErrorBody { err: 0 }),
        );
        assert_eq!(frame.len(), 4 + 16 + 4);
        assert_eq!(&frame[20..], &[0, 0, 0, 0]);
    }

    #[test]
    fn an_error_result_takes_its_code_from_the_error_response() {
        let mut out = BytesMut::new();
        let mut w = Writer::new(&mut out);
        w.put_i32(-1);
        w.put_bool(false);
        w.put_i32(0);
        w.put_i32(-110);
        put_multi_end(&mut w);
        let response = decode_response(14, out.freeze());
        assert_eq!(response, Ok(Response::Multi(vec![OpResult::Error { err: -110 }])));
    }

    #[test]
    fn opcodes_without_a_response_record_are_rejected() {
        for opcode in [0, 10, 16, 20, -10, -1, 1000] {
            assert!(decode_response(opcode, Bytes::new()).is_err(), "opcode {opcode}");
        }
    }

    proptest! {
        #[test]
        fn responses_round_trip(
            xid in any::<i32>(),
            zxid in any::<i64>(),
            (opcode, response) in arb_response(),
        ) {
            let header = ReplyHeader { xid, zxid, err: 0 };
            let mut stream = BytesMut::from(&encode_reply(header, Some(&response))[..]);
            let frame = FrameDecoder::new(usize::MAX).decode(&mut stream)?.expect("a whole frame");
            prop_assert!(stream.is_empty());
            let (decoded_header, body) = decode_reply_header(&frame)?;
            prop_assert_eq!(decoded_header, header);
            prop_assert_eq!(decode_response(opcode, body)?, response);
        }

        #[test]
        fn error_replies_are_a_bare_header(
            err in (i32::MIN..0i32),
            (_, response) in arb_response(),
        ) {
            let header = ReplyHeader { xid: 1, zxid: 2, err };
            let frame = encode_reply(header, Some(&response));
            prop_assert_eq!(frame.len(), 20);
            prop_assert_eq!(decode_reply_header(&frame.slice(4..))?, (header, Bytes::new()));
        }

        #[test]
        fn arbitrary_bodies_never_panic(
            opcode in prop_oneof![-12..110i32, any::<i32>()],
            body in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            if let Ok(response) = decode_response(opcode, Bytes::from(body)) {
                let frame = encode_reply(ReplyHeader { xid: 1, zxid: 1, err: 0 }, Some(&response));
                let (_, body) = decode_reply_header(&frame.slice(4..))?;
                prop_assert_eq!(decode_response(opcode, body)?, response);
            }
        }
    }
}
