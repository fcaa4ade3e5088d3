//! Inputs that fuzzing (`fuzz/`) or review found dangerous for a decoder, replayed forever.
//! Each test feeds the exact bytes to the decoder that owns them and asserts a clean rejection
//! (or the right value), never a panic or a stack overflow.

use bincode::Options;
use ensemble::core::ids::Zxid;
use ensemble::core::txn::{Txn, TxnOp};
use ensemble::core::zab::PeerMsg;
use ensemble::storage::log::{encode_header, encode_record, scan_segment, LogError};

/// Nesting deep enough to overflow any thread's stack if each level costs even 100 bytes of
/// stack (1.2 MB of payload, at 12 bytes a level).
const DEEP: usize = 100_000;

/// bincode of `TxnOp::Multi` (variant 7) nested `depth` times, the innermost one empty.
fn nested_multi_op(depth: usize) -> Vec<u8> {
    let mut op = Vec::with_capacity(depth * 12);
    for level in 0..depth {
        op.extend_from_slice(&7u32.to_le_bytes());
        let len: u64 = if level + 1 == depth { 0 } else { 1 };
        op.extend_from_slice(&len.to_le_bytes());
    }
    op
}

/// bincode of a `Txn` whose op is `nested_multi_op(depth)`.
fn nested_multi_txn(zxid: Zxid, depth: usize) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&zxid.0.to_le_bytes());
    payload.extend_from_slice(&0x100i64.to_le_bytes()); // session
    payload.extend_from_slice(&7i32.to_le_bytes()); // cxid
    payload.extend_from_slice(&1_700_000_000_000i64.to_le_bytes()); // time_ms
    payload.extend_from_slice(&nested_multi_op(depth));
    payload
}

/// A segment record around `payload`, with a valid CRC (layout in `storage::log`'s docs).
fn record(zxid: Zxid, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("test payloads are small");
    let mut crc = crc32c::crc32c(&len.to_le_bytes());
    crc = crc32c::crc32c_append(crc, &zxid.0.to_le_bytes());
    crc = crc32c::crc32c_append(crc, payload);
    let mut record = Vec::new();
    record.extend_from_slice(&len.to_le_bytes());
    record.extend_from_slice(&crc.to_le_bytes());
    record.extend_from_slice(&zxid.0.to_le_bytes());
    record.extend_from_slice(payload);
    record
}

fn peer_options() -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().reject_trailing_bytes()
}

#[test]
fn the_hand_built_record_matches_encode_record() {
    // Depth 1 is a valid (empty) multi, so the builder above is checked against the encoder.
    let zxid = Zxid::new(1, 1);
    let txn = Txn {
        zxid,
        session: ensemble::core::ids::SessionId(0x100),
        cxid: 7,
        time_ms: 1_700_000_000_000,
        op: TxnOp::Multi(Vec::new()),
    };
    let expected = encode_record(&txn).expect("a small txn encodes");
    assert_eq!(record(zxid, &nested_multi_txn(zxid, 1)), expected);
}

#[test]
fn a_log_record_with_deeply_nested_multi_is_rejected() {
    let zxid = Zxid::new(1, 1);
    let mut segment = encode_header(zxid).to_vec();
    segment.extend_from_slice(&record(zxid, &nested_multi_txn(zxid, DEEP)));
    for is_last in [false, true] {
        let result = scan_segment(&segment, is_last);
        assert!(
            matches!(result, Err(LogError::BadPayload { offset: 24, .. })),
            "nested multi must be a bad payload: {result:?}"
        );
    }
}

#[test]
fn a_log_record_with_a_multi_inside_a_multi_is_rejected() {
    let zxid = Zxid::new(1, 1);
    let mut segment = encode_header(zxid).to_vec();
    segment.extend_from_slice(&record(zxid, &nested_multi_txn(zxid, 2)));
    assert!(matches!(scan_segment(&segment, true), Err(LogError::BadPayload { .. })));
}

#[test]
fn a_proposal_with_deeply_nested_multi_is_rejected() {
    let mut message = Vec::new();
    message.extend_from_slice(&10u32.to_le_bytes()); // PeerMsg::Proposal
    message.extend_from_slice(&nested_multi_txn(Zxid::new(1, 1), DEEP));
    let result = peer_options().deserialize::<PeerMsg>(&message);
    assert!(result.is_err(), "nested multi must not decode: {result:?}");
    let mut shallow = Vec::new();
    shallow.extend_from_slice(&10u32.to_le_bytes());
    shallow.extend_from_slice(&nested_multi_txn(Zxid::new(1, 1), 1));
    let decoded = peer_options().deserialize::<PeerMsg>(&shallow).expect("a flat multi decodes");
    assert!(
        matches!(decoded, PeerMsg::Proposal(Txn { op: TxnOp::Multi(ref ops), .. }) if ops.is_empty())
    );
}
