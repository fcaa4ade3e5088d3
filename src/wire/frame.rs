//! Length-prefixed framing of the client stream.
//! OWNER: wire helper. Stub.
#![allow(missing_docs)]
use bytes::{Bytes, BytesMut};
#[derive(Debug, thiserror::Error)]
#[error("bad frame length {0}")]
pub struct FrameError(pub i64);
pub struct FrameDecoder;
impl FrameDecoder {
    pub fn new(_max: usize) -> Self {
        FrameDecoder
    }
    pub fn decode(&mut self, _buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        todo!()
    }
}
pub fn four_letter_word(_b: &[u8; 4]) -> Option<[u8; 4]> {
    todo!()
}
