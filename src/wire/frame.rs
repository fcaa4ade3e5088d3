//! Length-prefixed framing of the client stream, and recognition of four-letter words.
//!
//! Every message in both directions is a 4-byte signed big-endian length followed by that many
//! payload bytes (the length does not count itself). ZK compat: `NIOServerCnxn.readLength`
//! closes the connection, without a reply, when `len < 0` or `len > jute.maxbuffer`;
//! [`FrameDecoder`] reports that as [`FrameError::Length`] and the runtime closes.
//!
//! Before the handshake the first four bytes may instead be a four-letter word
//! (`NIOServerCnxn.checkFourLetterWord`); [`four_letter_word`] tells the two apart. Every
//! command word, read as a length, is above 1.6 GB, so it can never be a valid frame length
//! under any sane `jute.maxbuffer`.

use bytes::{Buf, Bytes, BytesMut};

use crate::wire::jute::Writer;

/// ZooKeeper's default `jute.maxbuffer`: 0xFFFFF bytes.
pub const FRAME_LEN_MAX_DEFAULT: usize = 0xF_FFFF;

/// Size of the length prefix.
pub const FRAME_PREFIX_LEN: usize = 4;

/// The four-letter words a server recognises on a new connection. ZK compat:
/// `FourLetterCommands` (the telnet close sequence `FF F4 FF FD` is not a word: it is a
/// negative frame length, and the server just closes).
pub const FOUR_LETTER_WORDS: [[u8; 4]; 18] = [
    *b"ruok", *b"srvr", *b"stat", *b"mntr", *b"conf", *b"cons", *b"envi", *b"wchs", *b"wchc",
    *b"wchp", *b"dump", *b"isro", *b"crst", *b"srst", *b"dirs", *b"gtmk", *b"stmk", *b"hash",
];

/// Why the inbound stream cannot be framed. The connection must be closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The declared length is negative or above the configured maximum.
    #[error("frame length {len} is negative or above the maximum")]
    Length {
        /// The declared length.
        len: i32,
    },
}

/// Splits an inbound byte stream into frame payloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameDecoder {
    /// Largest accepted payload, in bytes (ZooKeeper's `jute.maxbuffer`).
    pub max_len: usize,
}

impl FrameDecoder {
    /// A decoder accepting payloads of up to `max_len` bytes.
    pub fn new(max_len: usize) -> FrameDecoder {
        FrameDecoder { max_len }
    }

    /// Takes the next complete frame off the front of `buf` and returns its payload (without
    /// the length prefix), sharing `buf`'s storage. Returns `Ok(None)` when `buf` does not yet
    /// hold a whole frame; it then reserves room for the rest of it, so the caller's next read
    /// fills one allocation. A bad length is reported as soon as its 4 bytes arrive.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = buf.first_chunk::<FRAME_PREFIX_LEN>() else {
            return Ok(None);
        };
        let len = i32::from_be_bytes(*prefix);
        let payload_len = match usize::try_from(len) {
            Ok(payload_len) if payload_len <= self.max_len => payload_len,
            _ => return Err(FrameError::Length { len }),
        };
        let frame_len = FRAME_PREFIX_LEN + payload_len;
        if buf.len() < frame_len {
            buf.reserve(frame_len - buf.len());
            return Ok(None);
        }
        buf.advance(FRAME_PREFIX_LEN);
        Ok(Some(buf.split_to(payload_len).freeze()))
    }
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new(FRAME_LEN_MAX_DEFAULT)
    }
}

/// The four-letter word that `first4` starts with, if it is one (case-sensitive, like
/// ZooKeeper). `None` when fewer than 4 bytes are given or they are not a known command.
pub fn four_letter_word(first4: &[u8]) -> Option<[u8; 4]> {
    let word = *first4.first_chunk::<4>()?;
    FOUR_LETTER_WORDS.contains(&word).then_some(word)
}

/// Appends one frame to `out`: a length prefix, then whatever `write_payload` writes. The
/// caller reserves capacity beforehand when it knows the size.
pub fn write_frame(out: &mut BytesMut, write_payload: impl FnOnce(&mut Writer)) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_PREFIX_LEN]);
    write_payload(&mut Writer::new(out));
    let payload_len = out.len() - start - FRAME_PREFIX_LEN;
    let len = i32::try_from(payload_len).expect("an encoded frame is below 2 GiB");
    out[start..start + FRAME_PREFIX_LEN].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn frames_split_across_reads_are_reassembled() {
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        buf.put_slice(&[0, 0, 0]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.put_slice(&[8, 0xff, 0xff, 0xff, 0xfe, 0]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.capacity() >= 12, "room reserved for the rest of the frame");
        buf.put_slice(&[0, 0, 0x0b, 0, 0, 0, 0]);
        let frame = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&frame[..], &[0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0x0b]);
        assert_eq!(&buf[..], &[0, 0, 0, 0], "the next frame's prefix stays buffered");
        assert_eq!(decoder.decode(&mut buf).unwrap().unwrap(), Bytes::new());
        assert!(buf.is_empty());
    }

    #[test]
    fn bad_lengths_are_rejected_before_the_payload_arrives() {
        let mut decoder = FrameDecoder::new(16);
        let mut buf = BytesMut::from(&[0, 0, 0, 17][..]);
        assert_eq!(decoder.decode(&mut buf), Err(FrameError::Length { len: 17 }));
        let mut buf = BytesMut::from(&[0xff, 0xf4, 0xff, 0xfd][..]);
        assert_eq!(decoder.decode(&mut buf), Err(FrameError::Length { len: -720_899 }));
        let mut buf = BytesMut::from(&[0, 0, 0, 16][..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
    }

    #[test]
    fn four_letter_words_are_recognised() {
        assert_eq!(four_letter_word(b"ruok"), Some(*b"ruok"));
        assert_eq!(four_letter_word(b"stmk\0\0\0\0\0\0\0\x01"), Some(*b"stmk"));
        assert_eq!(four_letter_word(b"RUOK"), None);
        assert_eq!(four_letter_word(b"kill"), None);
        assert_eq!(four_letter_word(b"ruo"), None);
        assert_eq!(four_letter_word(&[0, 0, 0, 45]), None);
        for word in FOUR_LETTER_WORDS {
            let as_len = i32::from_be_bytes(word);
            assert!(as_len > 0x6000_0000, "{word:?} could pass for a frame length");
        }
    }

    #[test]
    fn write_frame_prefixes_the_payload_length() {
        let mut out = BytesMut::from(&b"xy"[..]);
        write_frame(&mut out, |w| w.put_ustring("/a"));
        assert_eq!(&out[..], b"xy\0\0\0\x06\0\0\0\x02/a");
    }

    proptest! {
        #[test]
        fn framing_round_trips(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6),
            cuts in proptest::collection::vec(0usize..300, 0..6),
        ) {
            let mut stream = BytesMut::new();
            for payload in &payloads {
                stream.put_i32(i32::try_from(payload.len()).unwrap());
                stream.put_slice(payload);
            }
            // Feed the stream in arbitrary pieces.
            let mut decoder = FrameDecoder::new(64);
            let mut buf = BytesMut::new();
            let mut decoded = Vec::new();
            let mut rest = stream.freeze();
            let mut cuts = cuts.into_iter();
            while !rest.is_empty() {
                let cut = cuts.next().unwrap_or(rest.len()).min(rest.len());
                buf.extend_from_slice(&rest.split_to(cut));
                while let Some(frame) = decoder.decode(&mut buf)? {
                    decoded.push(frame.to_vec());
                }
            }
            prop_assert_eq!(decoded, payloads);
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn arbitrary_streams_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            max_len in 0usize..64,
        ) {
            let mut decoder = FrameDecoder::new(max_len);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(frame)) = decoder.decode(&mut buf) {
                prop_assert!(frame.len() <= max_len);
            }
        }
    }
}
