//! Fuzzes what a peer can put on a quorum link: arbitrary bytes are bincode-decoded as a
//! `PeerMsg` under a size limit. Nothing may panic (or overflow the stack), and whatever decodes
//! must re-encode to exactly the bytes it came from (bincode's fixed-width encoding is canonical:
//! tags, bools and options only accept their own values), which must decode to the same message.
//! A SNAP's body also goes through the snapshot body decoder.

#![no_main]

use bincode::Options;
use ensemble::core::snapshot;
use ensemble::core::zab::PeerMsg;
use libfuzzer_sys::fuzz_target;

/// The largest message the harness accepts; longer inputs are cut by the limit, not by length.
const PEER_MESSAGE_MAX: u64 = 1 << 20;

/// The encoding of `PeerMsg` on a link: bincode 1.3 with fixed-width integers, as the storage
/// layer encodes txns, strict about trailing bytes, bounded in size.
fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .reject_trailing_bytes()
        .with_limit(PEER_MESSAGE_MAX)
}

fuzz_target!(|data: &[u8]| {
    let Ok(message) = options().deserialize::<PeerMsg>(data) else {
        return;
    };
    let _ = message.name();
    let encoded = options().serialize(&message).expect("a decoded message re-encodes");
    assert_eq!(encoded, data, "bincode encoding of {} is canonical", message.name());
    let again: PeerMsg = options().deserialize(&encoded).expect("an encoded message decodes");
    assert_eq!(again, message);
    if let PeerMsg::Snap { body, .. } = &message {
        let _ = snapshot::decode(body);
    }
});
