//! The peer frame codec: `u32` big-endian length, one version byte
//! ([`PEER_PROTOCOL_VERSION`]), then the bincode of a [`LinkFrame`]. Frames over
//! [`PEER_FRAME_MAX_BYTES`] are refused; decoding never panics on bytes from the network.

use bincode::Options as _;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::AuthStatus;
use crate::core::ids::ServerId;
use crate::core::zab::PeerMsg;

/// The version byte of every frame. A peer speaking another version is dropped.
pub const PEER_PROTOCOL_VERSION: u8 = 2;

/// The largest frame accepted or sent (length prefix excluded). A SNAP carries the whole tree
/// in one frame, so this bounds the size of a tree a learner can be synced with.
pub const PEER_FRAME_MAX_BYTES: usize = 128 << 20;

/// The frame length prefix.
const LENGTH_BYTES: usize = 4;

/// Buffer space reserved ahead for a frame still arriving; the rest grows as bytes come.
const RESERVE_AHEAD_BYTES: usize = 1 << 20;

/// A frame that breaks the protocol. Never a panic: these bytes come from the network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is zero (no version byte).
    #[error("empty frame")]
    Empty,
    /// The length prefix exceeds [`PEER_FRAME_MAX_BYTES`].
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The announced (or encoded) length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The version byte is not [`PEER_PROTOCOL_VERSION`].
    #[error("peer protocol version {0} (this server speaks {PEER_PROTOCOL_VERSION})")]
    Version(u8),
    /// The payload is not a valid bincode `LinkFrame`.
    #[error("undecodable frame: {0}")]
    Decode(String),
}

/// What travels in a frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkFrame {
    /// The first frame each way: who speaks, and to whom it believes it speaks.
    Hello {
        /// The sender's id.
        from: ServerId,
        /// The id the sender expects at the other end.
        to: ServerId,
    },
    /// Sent when a link has been quiet for a heartbeat interval, so the other side can tell a
    /// quiet link from a dead one.
    Heartbeat,
    /// A message for the node.
    Message(PeerMsg),
    /// A piece of the encoded snapshot of the SNAP that follows: a SNAP's body is sent as
    /// chunks of at most [`SNAP_CHUNK_BYTES`] ahead of a `Snap` message whose own body is
    /// empty, so no frame grows with the tree (a million znodes make a 190 MB body).
    SnapChunk(Bytes),
    /// A quorum SASL token, between the `Hello`s and the link going up (see [`super::auth`]); after
    /// that only an `Error` may come, saying why the other side drops the link.
    Auth {
        /// Where the exchange stands.
        status: AuthStatus,
        /// The mechanism's token (the reason, for `Error`).
        token: Bytes,
    },
}

/// The largest piece of a SNAP body in one frame.
pub const SNAP_CHUNK_BYTES: usize = 8 << 20;

/// The largest SNAP body a link puts back together.
pub const SNAP_MAX_BYTES: usize = 16 << 30;

/// Appends one frame to `out`. Fails (appending nothing) if it would exceed
/// [`PEER_FRAME_MAX_BYTES`].
pub fn encode_frame(frame: &LinkFrame, out: &mut BytesMut) -> Result<(), FrameError> {
    let options = encode_options();
    let size = options.serialized_size(frame).map_err(|e| FrameError::Decode(e.to_string()))?;
    let len = usize::try_from(size).unwrap_or(usize::MAX).saturating_add(1);
    if len > PEER_FRAME_MAX_BYTES {
        return Err(FrameError::TooLarge { len, max: PEER_FRAME_MAX_BYTES });
    }
    out.reserve(LENGTH_BYTES + len);
    out.put_u32(u32::try_from(len).expect("len <= PEER_FRAME_MAX_BYTES fits in u32"));
    out.put_u8(PEER_PROTOCOL_VERSION);
    let mut writer = out.writer();
    options.serialize_into(&mut writer, frame).map_err(|e| FrameError::Decode(e.to_string()))?;
    Ok(())
}

/// Takes one complete frame off the front of `buffer`, if there is one. On an error the
/// buffer's content is unspecified and the link must be closed.
pub fn decode_frame(buffer: &mut BytesMut) -> Result<Option<LinkFrame>, FrameError> {
    decode_frame_within(buffer, PEER_FRAME_MAX_BYTES)
}

pub(super) fn decode_frame_within(
    buffer: &mut BytesMut,
    max: usize,
) -> Result<Option<LinkFrame>, FrameError> {
    if buffer.len() < LENGTH_BYTES {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as usize;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    if buffer.len() < LENGTH_BYTES + len {
        buffer.reserve((LENGTH_BYTES + len - buffer.len()).min(RESERVE_AHEAD_BYTES));
        return Ok(None);
    }
    buffer.advance(LENGTH_BYTES);
    let body = buffer.split_to(len);
    if body[0] != PEER_PROTOCOL_VERSION {
        return Err(FrameError::Version(body[0]));
    }
    decode_options()
        .deserialize(&body[1..])
        .map(Some)
        .map_err(|e| FrameError::Decode(e.to_string()))
}

/// Varint bincode. Encoding is unbounded (the frame size is checked first); decoding never
/// reads past the frame, and the whole frame must be one `LinkFrame`.
fn encode_options() -> impl bincode::Options + Copy {
    bincode::DefaultOptions::new().with_varint_encoding()
}

fn decode_options() -> impl bincode::Options + Copy {
    encode_options().with_limit(PEER_FRAME_MAX_BYTES as u64).reject_trailing_bytes()
}
