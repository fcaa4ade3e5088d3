//! Fuzzes what a client can put on the server's socket: arbitrary bytes go through the
//! frame decoder, and every frame through the handshake decoder and the request decoders.
//! Nothing may panic, and whatever decodes must re-encode to bytes that decode to the same
//! value (the client half of the codec is the inverse of the server half).

#![no_main]

use bytes::{Bytes, BytesMut};
use ensemble::wire::frame::{four_letter_word, FrameDecoder};
use ensemble::wire::{
    decode_connect_request, decode_request, decode_request_header, encode_connect_request,
    encode_request,
};
use libfuzzer_sys::fuzz_target;

/// Small enough that length checks are exercised, large enough for multi-op frames.
const FRAME_LEN_MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let _ = four_letter_word(data);
    let mut decoder = FrameDecoder::new(FRAME_LEN_MAX);
    let mut stream = BytesMut::from(data);
    while let Ok(Some(frame)) = decoder.decode(&mut stream) {
        assert!(frame.len() <= FRAME_LEN_MAX);
        check_connect_request(&frame);
        check_request(&frame);
    }
});

fn check_connect_request(frame: &[u8]) {
    let Ok(request) = decode_connect_request(frame) else {
        return;
    };
    let encoded = encode_connect_request(&request);
    let again = decode_connect_request(&encoded[4..]).expect("an encoded ConnectRequest decodes");
    assert_eq!(again, request);
}

fn check_request(frame: &Bytes) {
    let Ok((header, body)) = decode_request_header(frame) else {
        return;
    };
    let Ok(request) = decode_request(header.opcode, body) else {
        return;
    };
    let encoded = encode_request(header.xid, &request);
    let (again_header, again_body) =
        decode_request_header(&encoded.slice(4..)).expect("an encoded request has a header");
    assert_eq!(again_header.xid, header.xid);
    assert_eq!(again_header.opcode, request.opcode().code());
    let again =
        decode_request(again_header.opcode, again_body).expect("an encoded request decodes");
    assert_eq!(again, request);
}
