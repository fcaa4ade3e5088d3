//! The txn-log segment format: encoding records and scanning a segment back.
//!
//! A segment is one file, `log.<zxid of its first txn>`. All integers are little-endian.
//!
//! ```text
//! header  (24 bytes)  magic "ENSLOG\0\0" (8) | version u32 = 1 | base zxid u64
//!                     | crc32c u32 over the 20 bytes before it
//! record  (16 + len)  len u32 (> 0) | crc32c u32 over len, zxid and payload | zxid u64
//!                     | payload: the `Txn`, bincode 1.3 (fixint, trailing bytes rejected)
//! ```
//!
//! Records follow each other with no gap. The first record's zxid equals the header's base and
//! zxids strictly increase. The bytes after the last record are either nothing, or zeros (a
//! zero `len` cannot start a record, so a writer may preallocate), or the remains of a write
//! that a crash interrupted.
//!
//! Scanning sorts what follows the last good record into three cases:
//! - zeros only, or nothing: the segment ends cleanly;
//! - damage (an incomplete record, a checksum mismatch, garbage) with no valid record anywhere
//!   after it: a torn tail, the remains of an unsynced write. Allowed only in the last segment;
//!   the runtime truncates the file to the valid prefix;
//! - damage followed somewhere by a valid record: corruption of synced data, an error naming
//!   the offset. So is any damage in a segment that is not the last, and a record whose
//!   checksum holds but whose payload does not decode.
//!
//! The search for a valid record after damage costs one checksum per plausible candidate
//! offset; torn tails are short or zero-filled, so this is cheap where it matters.
//!
//! ZK compat: `FileTxnLog` (checksummed records, zero-padded preallocation, a torn last
//! record ignored). ZooKeeper checks Adler32 after the length and stops at the first bad
//! record; we use crc32c and tell torn tails from corruption.

use bincode::Options;
use bytes::Bytes;
use thiserror::Error;

use crate::core::ids::Zxid;
use crate::core::txn::Txn;

/// The first 8 bytes of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"ENSLOG\0\0";

/// The segment format version this code writes and reads.
pub const SEGMENT_VERSION: u32 = 1;

/// Length of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 24;

/// Length of a record's fixed part (len, crc, zxid) before the payload.
pub const RECORD_HEADER_LEN: usize = 16;

/// What one segment holds, as far as it could be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentScan {
    /// The header's base zxid; `None` when the header itself is torn (then `txns` is empty
    /// and `valid_len` is 0: the file holds nothing and should be removed).
    pub base: Option<Zxid>,
    /// The decoded txns, in zxid order.
    pub txns: Vec<Txn>,
    /// The byte offset of each record in `txns` (parallel to it).
    pub offsets: Vec<u64>,
    /// The length of the valid prefix: header plus every good record.
    pub valid_len: u64,
    /// What follows the valid prefix.
    pub tail: SegmentTail,
}

/// What follows the last good record of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentTail {
    /// Nothing: the file ends with the last record.
    End,
    /// Zero bytes only (preallocation). Nothing to repair.
    ZeroPadding,
    /// The remains of an interrupted write, with nothing valid after them (last segment
    /// only). The runtime must truncate the file to `valid_len`.
    Torn,
}

/// A segment that cannot be read. Offsets are byte offsets into the segment file.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum LogError {
    /// The file is shorter than a segment header and is not the last segment.
    #[error("segment header truncated: {len} bytes")]
    HeaderTruncated {
        /// The file's length.
        len: usize,
    },
    /// The file does not start with `SEGMENT_MAGIC`.
    #[error("not a segment: bad magic at offset 0")]
    BadMagic,
    /// A segment written by a newer (or unknown) format.
    #[error("unsupported segment version {version}")]
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// The header's checksum does not match, and the file is not a torn last segment.
    #[error("segment header checksum mismatch at offset 0")]
    HeaderChecksum,
    /// A damaged record followed by a valid one: synced data was corrupted.
    #[error("corrupt record at offset {offset} (a valid record follows at offset {next_valid})")]
    CorruptRecord {
        /// Where the damaged record starts.
        offset: u64,
        /// Where the next valid record starts.
        next_valid: u64,
    },
    /// A damaged record at the end of a segment that is not the last one.
    #[error("damaged record at offset {offset} in a segment that is not the last")]
    DamagedTail {
        /// Where the damaged record starts.
        offset: u64,
    },
    /// A record whose checksum holds but whose payload is not a txn.
    #[error("record at offset {offset} has a valid checksum but does not decode: {reason}")]
    BadPayload {
        /// Where the record starts.
        offset: u64,
        /// The decoder's complaint.
        reason: String,
    },
    /// The zxid in the record header differs from the one in its payload.
    #[error("record at offset {offset} says zxid {record} but its txn says {payload}")]
    ZxidMismatch {
        /// Where the record starts.
        offset: u64,
        /// The zxid in the record header.
        record: Zxid,
        /// The zxid inside the txn.
        payload: Zxid,
    },
    /// The first record's zxid is not the segment's base.
    #[error("first record at offset {offset} has zxid {zxid}, the segment's base is {base}")]
    FirstZxidNotBase {
        /// Where the record starts.
        offset: u64,
        /// The header's base zxid.
        base: Zxid,
        /// The record's zxid.
        zxid: Zxid,
    },
    /// A record's zxid is not greater than the one before it.
    #[error("record at offset {offset} has zxid {zxid}, not after the previous {prev}")]
    ZxidNotIncreasing {
        /// Where the record starts.
        offset: u64,
        /// The previous record's zxid.
        prev: Zxid,
        /// This record's zxid.
        zxid: Zxid,
    },
    /// A txn too large for a record (its length must fit in a u32).
    #[error("txn {zxid} encodes to {len} bytes, more than a record can hold")]
    RecordTooLarge {
        /// The txn's zxid.
        zxid: Zxid,
        /// Its encoded length.
        len: usize,
    },
}

impl LogError {
    /// The byte offset the error is about, if it is about one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            LogError::HeaderTruncated { .. }
            | LogError::BadMagic
            | LogError::UnsupportedVersion { .. }
            | LogError::HeaderChecksum => Some(0),
            LogError::CorruptRecord { offset, .. }
            | LogError::DamagedTail { offset }
            | LogError::BadPayload { offset, .. }
            | LogError::ZxidMismatch { offset, .. }
            | LogError::FirstZxidNotBase { offset, .. }
            | LogError::ZxidNotIncreasing { offset, .. } => Some(*offset),
            LogError::RecordTooLarge { .. } => None,
        }
    }
}

impl SegmentScan {
    /// The offset at which to cut the segment so that it keeps exactly the txns `<= after`.
    pub fn offset_after(&self, after: Zxid) -> u64 {
        let kept = self.txns.partition_point(|txn| txn.zxid <= after);
        self.offsets.get(kept).copied().unwrap_or(self.valid_len)
    }
}

/// The header of a new segment whose first txn will be `base`.
pub fn encode_header(base: Zxid) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&base.0.to_le_bytes());
    let crc = crc32c::crc32c(&header[0..20]);
    header[20..24].copy_from_slice(&crc.to_le_bytes());
    header
}

/// One record holding `txn`, ready to append to a segment.
pub fn encode_record(txn: &Txn) -> Result<Bytes, LogError> {
    let payload = payload_options()
        .serialize(txn)
        .expect("a Txn serializes: every field has a known length and there is no size limit");
    let len = u32::try_from(payload.len())
        .map_err(|_| LogError::RecordTooLarge { zxid: txn.zxid, len: payload.len() })?;
    assert!(len > 0, "a Txn never encodes to nothing");
    let mut record = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    record.extend_from_slice(&len.to_le_bytes());
    record.extend_from_slice(&record_crc(len, txn.zxid.0, &payload).to_le_bytes());
    record.extend_from_slice(&txn.zxid.0.to_le_bytes());
    record.extend_from_slice(&payload);
    Ok(Bytes::from(record))
}

/// Reads a whole segment. `is_last_segment` allows a torn tail (see the module docs).
pub fn scan_segment(bytes: &[u8], is_last_segment: bool) -> Result<SegmentScan, LogError> {
    let base = match read_header(bytes) {
        Ok(base) => base,
        Err(error) => return torn_header(bytes, error, is_last_segment),
    };
    let mut scan = SegmentScan {
        base: Some(base),
        txns: Vec::new(),
        offsets: Vec::new(),
        valid_len: SEGMENT_HEADER_LEN as u64,
        tail: SegmentTail::End,
    };
    let mut offset = SEGMENT_HEADER_LEN;
    while offset < bytes.len() {
        let Some(record) = record_at(bytes, offset) else {
            scan.tail = classify_tail(bytes, offset, is_last_segment)?;
            return Ok(scan);
        };
        let at = offset as u64;
        let txn: Txn = payload_options()
            .with_limit(record.payload.len() as u64)
            .deserialize(record.payload)
            .map_err(|error| LogError::BadPayload { offset: at, reason: error.to_string() })?;
        if txn.zxid != record.zxid {
            return Err(LogError::ZxidMismatch {
                offset: at,
                record: record.zxid,
                payload: txn.zxid,
            });
        }
        match scan.txns.last() {
            None if record.zxid != base => {
                return Err(LogError::FirstZxidNotBase { offset: at, base, zxid: record.zxid });
            }
            Some(prev) if record.zxid <= prev.zxid => {
                return Err(LogError::ZxidNotIncreasing {
                    offset: at,
                    prev: prev.zxid,
                    zxid: record.zxid,
                });
            }
            _ => {}
        }
        scan.txns.push(txn);
        scan.offsets.push(at);
        offset = record.end;
        scan.valid_len = offset as u64;
    }
    Ok(scan)
}

/// A record whose length fits the file and whose checksum holds (payload not yet decoded).
struct RawRecord<'a> {
    zxid: Zxid,
    payload: &'a [u8],
    end: usize,
}

/// The checksummed record starting at `offset`, if there is one.
fn record_at(bytes: &[u8], offset: usize) -> Option<RawRecord<'_>> {
    let fixed = bytes.get(offset..offset.checked_add(RECORD_HEADER_LEN)?)?;
    let len = u32::from_le_bytes(fixed[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(fixed[4..8].try_into().expect("4 bytes"));
    let zxid = u64::from_le_bytes(fixed[8..16].try_into().expect("8 bytes"));
    if len == 0 {
        return None;
    }
    let start = offset + RECORD_HEADER_LEN;
    let end = start.checked_add(len as usize)?;
    let payload = bytes.get(start..end)?;
    (record_crc(len, zxid, payload) == crc).then_some(RawRecord { zxid: Zxid(zxid), payload, end })
}

/// Sorts the bytes from `offset` (where no valid record starts) into padding, a torn tail or
/// corruption.
fn classify_tail(bytes: &[u8], offset: usize, is_last: bool) -> Result<SegmentTail, LogError> {
    if bytes[offset..].iter().all(|&b| b == 0) {
        return Ok(SegmentTail::ZeroPadding);
    }
    if let Some(next_valid) = first_record_from(bytes, offset + 1) {
        return Err(LogError::CorruptRecord {
            offset: offset as u64,
            next_valid: next_valid as u64,
        });
    }
    if !is_last {
        return Err(LogError::DamagedTail { offset: offset as u64 });
    }
    Ok(SegmentTail::Torn)
}

/// The first offset `>= from` at which a checksummed record starts.
fn first_record_from(bytes: &[u8], from: usize) -> Option<usize> {
    let last_start = bytes.len().checked_sub(RECORD_HEADER_LEN + 1)?;
    (from..=last_start).find(|&offset| record_at(bytes, offset).is_some())
}

/// The base zxid of a well-formed header, or what is wrong with it.
fn read_header(bytes: &[u8]) -> Result<Zxid, LogError> {
    let Some(header) = bytes.get(..SEGMENT_HEADER_LEN) else {
        return Err(LogError::HeaderTruncated { len: bytes.len() });
    };
    if header[0..8] != SEGMENT_MAGIC {
        return Err(LogError::BadMagic);
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[20..24].try_into().expect("4 bytes"));
    if crc32c::crc32c(&header[0..20]) != crc {
        return Err(LogError::HeaderChecksum);
    }
    if version != SEGMENT_VERSION {
        return Err(LogError::UnsupportedVersion { version });
    }
    Ok(Zxid(u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"))))
}

/// A header that did not read. In the last segment, a header that was never completely
/// written (a prefix of our magic, possibly followed by zeros; or our magic with a bad
/// checksum), with no valid record anywhere after it, is a torn creation: the segment holds
/// nothing.
fn torn_header(bytes: &[u8], error: LogError, is_last: bool) -> Result<SegmentScan, LogError> {
    let head = &bytes[..bytes.len().min(SEGMENT_HEADER_LEN)];
    let magic_len = head.iter().zip(SEGMENT_MAGIC).take_while(|(a, b)| **a == *b).count();
    let zeros_after_magic = head[magic_len..].iter().all(|&b| b == 0);
    let torn = match error {
        LogError::HeaderTruncated { .. } => {
            magic_len == head.len().min(SEGMENT_MAGIC.len()) || zeros_after_magic
        }
        LogError::BadMagic => zeros_after_magic,
        LogError::HeaderChecksum => true,
        _ => false,
    };
    if !(is_last && torn && first_record_from(bytes, 0).is_none()) {
        return Err(error);
    }
    Ok(SegmentScan {
        base: None,
        txns: Vec::new(),
        offsets: Vec::new(),
        valid_len: 0,
        tail: SegmentTail::Torn,
    })
}

/// The checksum of a record: over its length, zxid and payload.
fn record_crc(len: u32, zxid: u64, payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, &zxid.to_le_bytes());
    crc32c::crc32c_append(crc, payload)
}

/// bincode 1.3 as `bincode::serialize` encodes (fixed-width integers), but strict on decode.
fn payload_options() -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().reject_trailing_bytes()
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::core::ids::SessionId;
    use crate::core::txn::TxnOp;
    use crate::wire::types::{Acl, Id};

    /// A txn with an arbitrary op at `zxid`.
    pub(crate) fn arb_txn(zxid: Zxid) -> impl Strategy<Value = Txn> {
        let path = "(/[a-z]{1,6}){1,3}";
        let data = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40));
        let acl = (any::<i32>(), "[a-z]{1,5}", "[a-z:]{1,8}")
            .prop_map(|(perms, scheme, id)| vec![Acl { perms, id: Id { scheme, id } }].into());
        let leaf = prop_oneof![
            (any::<i32>(), any::<[u8; 16]>()).prop_map(|(timeout_ms, password)| {
                TxnOp::CreateSession { timeout_ms, password }
            }),
            Just(TxnOp::CloseSession),
            (path, data.clone(), acl.clone(), any::<i64>()).prop_map(
                |(path, data, acl, ephemeral_owner)| TxnOp::Create {
                    path,
                    data: data.map(Bytes::from),
                    acl,
                    ephemeral_owner
                }
            ),
            path.prop_map(|path| TxnOp::Delete { path }),
            (path, data, any::<i32>()).prop_map(|(path, data, version)| TxnOp::SetData {
                path,
                data: data.map(Bytes::from),
                version
            }),
            (path, acl, any::<i32>()).prop_map(|(path, acl, version)| TxnOp::SetAcl {
                path,
                acl,
                version
            }),
            any::<i32>().prop_map(|code| TxnOp::Error { code }),
        ];
        let op = prop_oneof![
            4 => leaf.clone(),
            1 => proptest::collection::vec(leaf, 1..4).prop_map(TxnOp::Multi),
        ];
        (any::<i64>(), any::<i32>(), any::<i64>(), op).prop_map(
            move |(session, cxid, time_ms, op)| Txn {
                zxid,
                session: SessionId(session),
                cxid,
                time_ms,
                op,
            },
        )
    }

    /// Txns with strictly increasing zxids, starting anywhere.
    pub(crate) fn arb_txns(count: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Txn>> {
        (1u64..1 << 40, proptest::collection::vec(1u64..1 << 33, count))
            .prop_map(|(start, steps)| {
                let mut zxid = start;
                steps
                    .into_iter()
                    .map(|step| {
                        zxid += step;
                        Zxid(zxid)
                    })
                    .collect::<Vec<_>>()
            })
            .prop_flat_map(|zxids| zxids.into_iter().map(arb_txn).collect::<Vec<_>>())
    }

    /// A segment holding `txns` (the first one's zxid is the base), and each record's offset.
    pub(crate) fn segment(txns: &[Txn]) -> (Vec<u8>, Vec<u64>) {
        let mut bytes = encode_header(txns[0].zxid).to_vec();
        let mut offsets = Vec::new();
        for txn in txns {
            offsets.push(bytes.len() as u64);
            bytes.extend_from_slice(&encode_record(txn).expect("small txn"));
        }
        (bytes, offsets)
    }

    fn simple_txn(zxid: u64) -> Txn {
        Txn {
            zxid: Zxid(zxid),
            session: SessionId(7),
            cxid: 1,
            time_ms: 1000,
            op: TxnOp::Delete { path: format!("/n{zxid}") },
        }
    }

    #[test]
    fn header_only_segment_is_empty_and_clean() {
        let scan = scan_segment(&encode_header(Zxid(5)), false).expect("valid");
        assert_eq!(scan.base, Some(Zxid(5)));
        assert!(scan.txns.is_empty());
        assert_eq!(scan.valid_len, SEGMENT_HEADER_LEN as u64);
        assert_eq!(scan.tail, SegmentTail::End);
    }

    #[test]
    fn zero_padding_ends_a_segment_even_if_not_last() {
        let txns: Vec<Txn> = (1..=3).map(simple_txn).collect();
        let (mut bytes, _) = segment(&txns);
        let len = bytes.len() as u64;
        bytes.resize(bytes.len() + 4096, 0);
        let scan = scan_segment(&bytes, false).expect("padding is fine");
        assert_eq!(scan.txns, txns);
        assert_eq!(scan.valid_len, len);
        assert_eq!(scan.tail, SegmentTail::ZeroPadding);
    }

    #[test]
    fn torn_last_record_is_a_torn_tail_only_in_the_last_segment() {
        let txns: Vec<Txn> = (1..=3).map(simple_txn).collect();
        let (bytes, offsets) = segment(&txns);
        let cut = &bytes[..bytes.len() - 3];
        let scan = scan_segment(cut, true).expect("torn tail");
        assert_eq!(scan.txns, txns[..2]);
        assert_eq!(scan.valid_len, offsets[2]);
        assert_eq!(scan.tail, SegmentTail::Torn);
        assert_eq!(scan_segment(cut, false), Err(LogError::DamagedTail { offset: offsets[2] }));
    }

    #[test]
    fn torn_record_in_preallocated_space_is_a_torn_tail() {
        // The length made it to disk, the rest of the record did not.
        let txns: Vec<Txn> = (1..=2).map(simple_txn).collect();
        let (mut bytes, offsets) = segment(&txns);
        bytes.truncate(offsets[1] as usize + 4);
        bytes.resize(bytes.len() + 1000, 0);
        let scan = scan_segment(&bytes, true).expect("torn tail");
        assert_eq!(scan.txns, txns[..1]);
        assert_eq!(scan.valid_len, offsets[1]);
        assert_eq!(scan.tail, SegmentTail::Torn);
    }

    #[test]
    fn damage_followed_by_a_valid_record_is_corruption() {
        let txns: Vec<Txn> = (1..=3).map(simple_txn).collect();
        let (mut bytes, offsets) = segment(&txns);
        // Zero a whole record: a zero length looks like padding, but a record follows.
        let (start, end) = (offsets[1] as usize, offsets[2] as usize);
        bytes[start..end].fill(0);
        let expected = LogError::CorruptRecord { offset: offsets[1], next_valid: offsets[2] };
        assert_eq!(scan_segment(&bytes, true), Err(expected));
    }

    #[test]
    fn checksummed_garbage_payload_is_corruption() {
        let payload = b"not a txn".to_vec();
        let mut bytes = encode_header(Zxid(1)).to_vec();
        let len = payload.len() as u32;
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&record_crc(len, 1, &payload).to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&payload);
        let error = scan_segment(&bytes, true).expect_err("bad payload");
        assert!(matches!(error, LogError::BadPayload { offset: 24, .. }), "{error}");
    }

    #[test]
    fn record_zxid_must_match_its_txn_and_the_base() {
        let mut bytes = encode_header(Zxid(1)).to_vec();
        bytes.extend_from_slice(&encode_record(&simple_txn(2)).expect("small"));
        let expected = LogError::FirstZxidNotBase { offset: 24, base: Zxid(1), zxid: Zxid(2) };
        assert_eq!(scan_segment(&bytes, true), Err(expected));

        let (mut bytes, offsets) = segment(&[simple_txn(1), simple_txn(3)]);
        bytes.extend_from_slice(&encode_record(&simple_txn(2)).expect("small"));
        let expected = LogError::ZxidNotIncreasing {
            offset: offsets[1] + (offsets[1] - offsets[0]),
            prev: Zxid(3),
            zxid: Zxid(2),
        };
        assert_eq!(scan_segment(&bytes, true), Err(expected));
    }

    #[test]
    fn torn_or_foreign_headers() {
        let header = encode_header(Zxid(9));
        for len in 0..SEGMENT_HEADER_LEN {
            let scan = scan_segment(&header[..len], true).expect("torn creation");
            assert_eq!((scan.base, scan.valid_len, scan.tail), (None, 0, SegmentTail::Torn));
            assert_eq!(scan_segment(&header[..len], false), Err(LogError::HeaderTruncated { len }));
        }
        let zeros = [0u8; 100];
        assert_eq!(scan_segment(&zeros, true).expect("torn").tail, SegmentTail::Torn);
        assert_eq!(scan_segment(&zeros, false), Err(LogError::BadMagic));
        assert_eq!(scan_segment(b"ZKLG\0\0\0\x02 a zookeeper log", true), Err(LogError::BadMagic));

        let mut future = header;
        future[8] = 2;
        let crc = crc32c::crc32c(&future[0..20]);
        future[20..24].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(scan_segment(&future, true), Err(LogError::UnsupportedVersion { version: 2 }));

        // A header whose checksum fails but that is followed by records is corruption.
        let (mut bytes, _) = segment(&[simple_txn(9)]);
        bytes[15] ^= 1;
        assert_eq!(scan_segment(&bytes, true), Err(LogError::HeaderChecksum));
    }

    #[test]
    fn offset_after_cuts_between_records() {
        let txns: Vec<Txn> = [2, 4, 6].into_iter().map(simple_txn).collect();
        let (bytes, offsets) = segment(&txns);
        let scan = scan_segment(&bytes, true).expect("valid");
        assert_eq!(scan.offset_after(Zxid(1)), offsets[0]);
        assert_eq!(scan.offset_after(Zxid(4)), offsets[2]);
        assert_eq!(scan.offset_after(Zxid(5)), offsets[2]);
        assert_eq!(scan.offset_after(Zxid(6)), bytes.len() as u64);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn segments_round_trip(txns in arb_txns(1..30), splits in proptest::collection::vec(any::<proptest::sample::Index>(), 0..4)) {
            // Cut the history into several segments and read them all back.
            let mut cuts: Vec<usize> = splits.iter().map(|i| i.index(txns.len())).collect();
            cuts.extend([0, txns.len()]);
            cuts.sort_unstable();
            cuts.dedup();
            let mut read = Vec::new();
            for (i, pair) in cuts.windows(2).enumerate() {
                let (bytes, offsets) = segment(&txns[pair[0]..pair[1]]);
                let scan = scan_segment(&bytes, i + 2 == cuts.len()).expect("valid segment");
                prop_assert_eq!(scan.base, Some(txns[pair[0]].zxid));
                prop_assert_eq!(scan.valid_len, bytes.len() as u64);
                prop_assert_eq!(scan.tail, SegmentTail::End);
                prop_assert_eq!(scan.offsets, offsets);
                read.extend(scan.txns);
            }
            prop_assert_eq!(read, txns);
        }

        #[test]
        fn any_cut_of_the_last_segment_is_a_prefix(txns in arb_txns(1..12), cut in any::<proptest::sample::Index>(), padding in 0usize..64) {
            let (bytes, offsets) = segment(&txns);
            let cut = cut.index(bytes.len() + 1);
            let mut damaged = bytes[..cut].to_vec();
            damaged.resize(cut + padding, 0);
            let scan = scan_segment(&damaged, true).expect("a cut is never corruption");
            // What survives is what the damaged bytes hold intact. Zero padding can restore
            // cut-off trailing zeros, so compare bytes rather than offsets with the cut.
            let intact = |end: usize| end <= damaged.len() && damaged[..end] == bytes[..end];
            let mut ends: Vec<usize> = offsets[1..].iter().map(|&o| o as usize).collect();
            ends.push(bytes.len());
            let whole = ends.iter().take_while(|&&end| intact(end)).count();
            prop_assert_eq!(&scan.txns[..], &txns[..whole]);
            if !intact(SEGMENT_HEADER_LEN) {
                prop_assert_eq!((scan.valid_len, scan.tail), (0, SegmentTail::Torn));
            } else {
                let valid_len = if whole == 0 { SEGMENT_HEADER_LEN } else { ends[whole - 1] };
                prop_assert_eq!(scan.valid_len, valid_len as u64);
                // A partial record whose bytes so far are zeros reads as padding.
                let rest_zero = damaged[valid_len..].iter().all(|&b| b == 0);
                let tail = match (valid_len == damaged.len(), rest_zero) {
                    (true, _) => SegmentTail::End,
                    (false, true) => SegmentTail::ZeroPadding,
                    (false, false) => SegmentTail::Torn,
                };
                prop_assert_eq!(scan.tail, tail);
            }
        }

        #[test]
        fn a_flipped_byte_in_a_middle_record_is_corruption_at_its_offset(txns in arb_txns(2..10), which in any::<proptest::sample::Index>(), at in any::<proptest::sample::Index>(), bit in 0u8..8, is_last: bool) {
            let (mut bytes, offsets) = segment(&txns);
            let record = which.index(txns.len() - 1);
            let start = offsets[record] as usize;
            let end = offsets[record + 1] as usize;
            bytes[start + at.index(end - start)] ^= 1 << bit;
            let expected = LogError::CorruptRecord { offset: start as u64, next_valid: end as u64 };
            prop_assert_eq!(scan_segment(&bytes, is_last), Err(expected));
        }

        #[test]
        fn a_flipped_byte_in_the_last_record(txns in arb_txns(1..10), at in any::<proptest::sample::Index>(), bit in 0u8..8) {
            let (mut bytes, offsets) = segment(&txns);
            let start = *offsets.last().expect("non-empty") as usize;
            let flipped = start + at.index(bytes.len() - start);
            bytes[flipped] ^= 1 << bit;
            let scan = scan_segment(&bytes, true).expect("torn tail in the last segment");
            prop_assert_eq!(&scan.txns[..], &txns[..txns.len() - 1]);
            prop_assert_eq!(scan.valid_len, start as u64);
            prop_assert_eq!(scan.tail, SegmentTail::Torn);
            prop_assert_eq!(scan_segment(&bytes, false), Err(LogError::DamagedTail { offset: start as u64 }));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), is_last: bool) {
            let _ = scan_segment(&bytes, is_last);
            let mut with_header = encode_header(Zxid(1)).to_vec();
            with_header.extend_from_slice(&bytes);
            if let Ok(scan) = scan_segment(&with_header, is_last) {
                prop_assert!(scan.valid_len <= with_header.len() as u64);
            }
        }
    }
}
