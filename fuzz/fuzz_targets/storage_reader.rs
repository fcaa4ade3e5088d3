//! Fuzzes what the server reads back from its data directory: arbitrary bytes go through the
//! segment scanner (as the last segment and as an earlier one, bare and behind a valid
//! header), the snapshot decoder, the epoch parser, and recovery over a small directory cut
//! from the input. Nothing may panic; whatever is accepted must re-encode to the exact bytes
//! it was read from.

#![no_main]

use bytes::Bytes;
use ensemble::core::ids::Zxid;
use ensemble::storage::epoch::{decode_epoch, encode_epoch};
use ensemble::storage::log::{encode_header, encode_record, scan_segment, SegmentTail};
use ensemble::storage::names::{ACCEPTED_EPOCH_FILE, CURRENT_EPOCH_FILE};
use ensemble::storage::recovery::recover_files;
use ensemble::storage::snapshot::{decode_snapshot, encode_snapshot};
use libfuzzer_sys::fuzz_target;

/// The files a fuzzed data directory may hold.
const NAMES: [&str; 5] = [
    "log.0000000000000001",
    "log.0000000100000001",
    "snapshot.0000000000000005",
    ACCEPTED_EPOCH_FILE,
    CURRENT_EPOCH_FILE,
];

fuzz_target!(|data: &[u8]| {
    check_segment(data);
    let mut with_header = encode_header(Zxid(1)).to_vec();
    with_header.extend_from_slice(data);
    check_segment(&with_header);

    let bytes = Bytes::copy_from_slice(data);
    if let Ok((zxid, body)) = decode_snapshot(&bytes) {
        assert_eq!(encode_snapshot(zxid, &body), data);
    }
    if let Ok(epoch) = decode_epoch(data) {
        assert_eq!(decode_epoch(&encode_epoch(epoch)), Ok(epoch));
    }
    check_recovery(data);
});

fn check_segment(bytes: &[u8]) {
    for is_last in [false, true] {
        let Ok(scan) = scan_segment(bytes, is_last) else { continue };
        assert!(scan.valid_len as usize <= bytes.len());
        assert_eq!(scan.txns.len(), scan.offsets.len());
        assert!(scan.txns.windows(2).all(|pair| pair[0].zxid < pair[1].zxid));
        assert!(is_last || scan.tail != SegmentTail::Torn);
        let Some(base) = scan.base else {
            assert_eq!((scan.valid_len, scan.tail), (0, SegmentTail::Torn));
            continue;
        };
        let mut again = encode_header(base).to_vec();
        for txn in &scan.txns {
            again.extend_from_slice(&encode_record(txn).expect("a decoded txn re-encodes"));
        }
        assert_eq!(&again[..], &bytes[..scan.valid_len as usize]);
    }
}

/// The first byte picks which files exist; the next bytes give their lengths.
fn check_recovery(data: &[u8]) {
    let Some((&present, mut rest)) = data.split_first() else { return };
    let mut files = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        if present & (1 << i) == 0 {
            continue;
        }
        let Some((&len, tail)) = rest.split_first() else { break };
        let (contents, tail) = tail.split_at((len as usize).min(tail.len()));
        files.push((name.to_string(), Bytes::copy_from_slice(contents)));
        rest = tail;
    }
    if let Ok(recovered) = recover_files(&files) {
        assert!(recovered.txns.windows(2).all(|pair| pair[0].zxid < pair[1].zxid));
        let floor = recovered.snapshot.as_ref().map_or(Zxid::ZERO, |(zxid, _)| *zxid);
        assert!(recovered.txns.iter().all(|txn| txn.zxid > floor));
    }
}
