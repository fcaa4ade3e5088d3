//! The snapshot envelope: a checksummed frame around the body the core encodes.
//!
//! ```text
//! magic "ENSSNAP\0" (8) | version u32 = 1 | zxid u64 | body length u64 | body
//! | crc32c u32 over everything before it
//! ```
//!
//! All integers are little-endian. The body (data tree and session table) is opaque here.
//! Decoding rejects any damage (truncation, trailing bytes, a flipped bit) with a typed
//! error; recovery then falls back to an older snapshot.
//!
//! ZK compat: `FileSnap` (a checksummed snapshot named by the last zxid it covers). ZooKeeper
//! ends a snapshot with an Adler32 and a "/" marker; we checksum the whole file.

use std::io::{self, Write};

use bytes::Bytes;
use thiserror::Error;

use crate::core::ids::Zxid;
use crate::core::snapshot::BodyEncoder;

/// The first 8 bytes of every snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"ENSSNAP\0";

/// The snapshot format version this code writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Bytes before the body.
pub const HEADER_LEN: usize = 28;

/// Bytes after the body.
pub const TRAILER_LEN: usize = 4;

/// A snapshot file that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SnapshotError {
    /// Too short to hold the header and trailer.
    #[error("snapshot truncated: {len} bytes")]
    Truncated {
        /// The file's length.
        len: usize,
    },
    /// The file does not start with `SNAPSHOT_MAGIC`.
    #[error("not a snapshot: bad magic")]
    BadMagic,
    /// A snapshot written by a newer (or unknown) format.
    #[error("unsupported snapshot version {version}")]
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// The body length in the header disagrees with the file's length.
    #[error("snapshot body is {actual} bytes, the header says {declared}")]
    LengthMismatch {
        /// The length the header declares.
        declared: u64,
        /// The length the file holds.
        actual: u64,
    },
    /// The checksum does not match.
    #[error("snapshot checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
}

/// The file contents of a snapshot covering every txn `<= zxid`, in one buffer.
pub fn encode_snapshot(zxid: Zxid, body: &[u8]) -> Vec<u8> {
    let (header, trailer) = snapshot_envelope(zxid, body);
    let mut bytes = Vec::with_capacity(HEADER_LEN + body.len() + TRAILER_LEN);
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(&trailer);
    bytes
}

/// Streams a snapshot file covering every txn `<= zxid` to `out`: header, the body as `body`
/// encodes it, trailer. Byte for byte [`encode_snapshot`] of the encoded body, without ever
/// holding the body in memory.
pub fn write_snapshot(zxid: Zxid, body: &BodyEncoder<'_>, out: &mut dyn Write) -> io::Result<()> {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&zxid.0.to_le_bytes());
    header[20..28].copy_from_slice(&(body.len() as u64).to_le_bytes());
    out.write_all(&header)?;
    let mut framed = Checksummed { out, crc: crc32c::crc32c(&header) };
    body.write_to(&mut framed)?;
    let crc = framed.crc;
    out.write_all(&crc.to_le_bytes())
}

/// Passes bytes through, keeping a CRC-32C of them.
struct Checksummed<'a> {
    out: &'a mut dyn Write,
    crc: u32,
}

impl Write for Checksummed<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.out.write(bytes)?;
        self.crc = crc32c::crc32c_append(self.crc, &bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The bytes a snapshot file holds before and after `body`, so a writer can stream header,
/// body and trailer without copying the body (a snapshot of 100k znodes is tens of MiB).
pub fn snapshot_envelope(zxid: Zxid, body: &[u8]) -> ([u8; HEADER_LEN], [u8; TRAILER_LEN]) {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&zxid.0.to_le_bytes());
    header[20..28].copy_from_slice(&(body.len() as u64).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header), body);
    (header, crc.to_le_bytes())
}

/// The zxid and body of a snapshot file; the body shares `bytes`' buffer.
pub fn decode_snapshot(bytes: &Bytes) -> Result<(Zxid, Bytes), SnapshotError> {
    let len = bytes.len();
    if len < HEADER_LEN + TRAILER_LEN {
        return Err(SnapshotError::Truncated { len });
    }
    if bytes[0..8] != SNAPSHOT_MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let (framed, trailer) = bytes.split_at(len - TRAILER_LEN);
    let stored = u32::from_le_bytes(trailer.try_into().expect("4 trailer bytes"));
    let computed = crc32c::crc32c(framed);
    if stored != computed {
        return Err(SnapshotError::Checksum { stored, computed });
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotError::UnsupportedVersion { version });
    }
    let zxid = Zxid(u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")));
    let declared = u64::from_le_bytes(bytes[20..28].try_into().expect("8 bytes"));
    let actual = (len - HEADER_LEN - TRAILER_LEN) as u64;
    if declared != actual {
        return Err(SnapshotError::LengthMismatch { declared, actual });
    }
    Ok((zxid, bytes.slice(HEADER_LEN..len - TRAILER_LEN)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn empty_body_round_trips() {
        let bytes = Bytes::from(encode_snapshot(Zxid(0), b""));
        assert_eq!(decode_snapshot(&bytes), Ok((Zxid(0), Bytes::new())));
    }

    #[test]
    fn rejects_other_versions_and_files() {
        let mut bytes = encode_snapshot(Zxid(1), b"body");
        bytes[8] = 9;
        let len = bytes.len();
        let crc = crc32c::crc32c(&bytes[..len - 4]);
        bytes[len - 4..].copy_from_slice(&crc.to_le_bytes());
        let error = decode_snapshot(&Bytes::from(bytes));
        assert_eq!(error, Err(SnapshotError::UnsupportedVersion { version: 9 }));
        let zk = Bytes::from_static(b"ZKSN\0\0\0\x02 a zookeeper snapshot......");
        assert_eq!(decode_snapshot(&zk), Err(SnapshotError::BadMagic));
    }

    #[test]
    fn rejects_a_consistent_but_lying_length() {
        let mut bytes = encode_snapshot(Zxid(1), b"body");
        bytes[20] = 3;
        let len = bytes.len();
        let crc = crc32c::crc32c(&bytes[..len - 4]);
        bytes[len - 4..].copy_from_slice(&crc.to_le_bytes());
        let error = decode_snapshot(&Bytes::from(bytes));
        assert_eq!(error, Err(SnapshotError::LengthMismatch { declared: 3, actual: 4 }));
    }

    proptest! {
        #[test]
        fn round_trips(zxid: u64, body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let bytes = Bytes::from(encode_snapshot(Zxid(zxid), &body));
            prop_assert_eq!(decode_snapshot(&bytes), Ok((Zxid(zxid), Bytes::from(body))));
        }

        #[test]
        fn any_flipped_bit_is_rejected(body in proptest::collection::vec(any::<u8>(), 0..300), at in any::<proptest::sample::Index>(), bit in 0u8..8) {
            let mut bytes = encode_snapshot(Zxid(77), &body);
            let at = at.index(bytes.len());
            bytes[at] ^= 1 << bit;
            prop_assert!(decode_snapshot(&Bytes::from(bytes)).is_err());
        }

        #[test]
        fn any_truncation_or_extension_is_rejected(body in proptest::collection::vec(any::<u8>(), 0..300), cut in any::<proptest::sample::Index>(), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
            let bytes = encode_snapshot(Zxid(77), &body);
            let cut = cut.index(bytes.len());
            prop_assert!(decode_snapshot(&Bytes::copy_from_slice(&bytes[..cut])).is_err());
            let mut longer = bytes.clone();
            longer.extend_from_slice(&extra);
            prop_assert!(decode_snapshot(&Bytes::from(longer)).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_snapshot(&Bytes::from(bytes));
        }
    }
}
