//! Fuzzes the snapshot body decoder (`core::snapshot::decode`, which decodes the session table
//! and then the tree image with `DataTree::decode_snapshot`). Nothing may panic; a body that
//! decodes gives a tree that passes `check_invariants`, and re-encodes to a body that decodes
//! to the same state and re-encodes to itself.
//!
//! The tree image ends with a digest and a CRC, which random bytes almost never match, so the
//! first byte picks how the rest is used:
//! - even: the whole rest is a body, as read from a file or a SNAP message;
//! - odd: the rest is a tree image without its CRC. The harness appends the CRC (and, when the
//!   only complaint is the digest, puts the computed digest in), then wraps it in a body with a
//!   few sessions. This reaches every check past the checksum.

#![no_main]

use ensemble::core::ids::{SessionId, Zxid};
use ensemble::core::snapshot;
use ensemble::core::tree::{DataTree, SnapshotError};
use libfuzzer_sys::fuzz_target;

/// Version of the body layout (`core::snapshot`).
const BODY_VERSION: u32 = 1;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        check_body(rest);
    } else {
        let image = fix_up_image(rest);
        check_body(&wrap_in_body(Zxid(u64::from(mode)), &image, mode >> 1));
    }
});

fn check_body(bytes: &[u8]) {
    let Ok(restored) = snapshot::decode(bytes) else { return };
    restored.tree.check_invariants();
    let encoded = snapshot::encode(restored.zxid, &restored.tree, &restored.sessions);
    let again = snapshot::decode(&encoded).expect("an encoded snapshot body decodes");
    again.tree.check_invariants();
    assert_eq!(again.zxid, restored.zxid);
    assert_eq!(again.sessions, restored.sessions);
    assert_eq!(again.tree, restored.tree);
    let twice = snapshot::encode(again.zxid, &again.tree, &again.sessions);
    assert_eq!(twice, encoded, "encoding a decoded snapshot is a fixed point");
}

/// Appends the CRC-32C to `body`; if the tree then fails only on its digest, writes the
/// computed digest into the image's last eight bytes and recomputes the CRC.
fn fix_up_image(body: &[u8]) -> Vec<u8> {
    let mut image = with_crc(body.to_vec());
    let decoded = DataTree::decode_snapshot(&image);
    if let (Err(SnapshotError::DigestMismatch { computed, .. }), Some(digest_at)) =
        (decoded, body.len().checked_sub(8))
    {
        image.truncate(body.len());
        image[digest_at..].copy_from_slice(&computed.to_le_bytes());
        image = with_crc(image);
    }
    image
}

fn with_crc(mut image: Vec<u8>) -> Vec<u8> {
    let crc = crc32c::crc32c(&image);
    image.extend_from_slice(&crc.to_le_bytes());
    image
}

/// The bincode layout of `core::snapshot`'s body (fixed-width, little-endian): version, zxid,
/// the session table, then the tree image as a byte vector.
fn wrap_in_body(zxid: Zxid, image: &[u8], sessions: u8) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&BODY_VERSION.to_le_bytes());
    body.extend_from_slice(&zxid.0.to_le_bytes());
    body.extend_from_slice(&u64::from(sessions).to_le_bytes());
    for i in 0..sessions {
        let session = SessionId(i64::from(i) << 56 | 1);
        body.extend_from_slice(&session.0.to_le_bytes());
        body.extend_from_slice(&(i32::from(i) * 1000).to_le_bytes());
        body.extend_from_slice(&[i; 16]);
    }
    body.extend_from_slice(&(image.len() as u64).to_le_bytes());
    body.extend_from_slice(image);
    body
}
