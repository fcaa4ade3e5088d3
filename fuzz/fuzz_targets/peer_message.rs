//! Fuzzes what a peer can put on a quorum link, through the runtime's own link codec
//! (`runtime::peer::decode_frame`: length prefix, version byte, varint bincode `LinkFrame`).
//! Nothing may panic (or overflow the stack); the decoder consumes either nothing (an
//! incomplete frame) or exactly one frame; whatever decodes re-encodes to a frame that decodes
//! to the same value (varint bincode accepts some non-minimal integers, so bytes may differ).
//! A SNAP's body also goes through the snapshot body decoder.

#![no_main]

use bytes::BytesMut;
use ensemble::core::snapshot;
use ensemble::core::zab::PeerMsg;
use ensemble::runtime::peer::{decode_frame, encode_frame, LinkFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buffer = BytesMut::from(data);
    let before = buffer.len();
    let Ok(decoded) = decode_frame(&mut buffer) else {
        return;
    };
    let Some(frame) = decoded else {
        assert_eq!(buffer.len(), before, "an incomplete frame consumes nothing");
        return;
    };
    let mut encoded = BytesMut::new();
    encode_frame(&frame, &mut encoded).expect("a decoded frame fits the frame limit again");
    let again = decode_frame(&mut encoded).expect("an encoded frame decodes");
    assert_eq!(again.as_ref(), Some(&frame));
    assert!(encoded.is_empty(), "one frame, all consumed");
    if let LinkFrame::Message(message @ PeerMsg::Snap { body, .. }) = &frame {
        let _ = message.name();
        let _ = snapshot::decode(&body.to_bytes());
    }
});
