//! File names of a data directory and what they denote.
//!
//! ZK compat: ZooKeeper names files `log.<hex zxid>` and `snapshot.<hex zxid>` too (`Util`,
//! `FileTxnLog`, `FileSnap`) but without padding; we pad to 16 digits so that the names sort
//! like the zxids. Names that do not parse are not ours and are left alone.

use crate::core::ids::Zxid;

/// Name of the file holding the accepted epoch. ZK compat: `QuorumPeer.ACCEPTED_EPOCH_FILENAME`.
pub const ACCEPTED_EPOCH_FILE: &str = "acceptedEpoch";

/// Name of the file holding the current epoch. ZK compat: `QuorumPeer.CURRENT_EPOCH_FILENAME`.
pub const CURRENT_EPOCH_FILE: &str = "currentEpoch";

/// Suffix of a file being written atomically (write, fsync, then rename over the real name).
pub const TEMP_SUFFIX: &str = ".tmp";

/// What a data-directory file name denotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    /// A txn-log segment whose first txn has this zxid.
    Segment(Zxid),
    /// A snapshot covering every txn up to this zxid.
    Snapshot(Zxid),
    /// The accepted-epoch file.
    AcceptedEpoch,
    /// The current-epoch file.
    CurrentEpoch,
    /// A leftover of an interrupted atomic write of one of our files.
    Temp,
}

/// The name of the segment whose first txn is `zxid`.
pub fn segment_file_name(zxid: Zxid) -> String {
    format!("log.{:016x}", zxid.0)
}

/// The name of the snapshot covering every txn `<= zxid`.
pub fn snapshot_file_name(zxid: Zxid) -> String {
    format!("snapshot.{:016x}", zxid.0)
}

/// Parses a file name; `None` for files that are not ours (e.g. `myid`).
pub fn parse_file_name(name: &str) -> Option<FileKind> {
    if let Some(stem) = name.strip_suffix(TEMP_SUFFIX) {
        // Only leftovers of files we write atomically count as ours.
        return match parse_file_name(stem)? {
            FileKind::Snapshot(_) | FileKind::AcceptedEpoch | FileKind::CurrentEpoch => {
                Some(FileKind::Temp)
            }
            FileKind::Segment(_) | FileKind::Temp => None,
        };
    }
    if name == ACCEPTED_EPOCH_FILE {
        return Some(FileKind::AcceptedEpoch);
    }
    if name == CURRENT_EPOCH_FILE {
        return Some(FileKind::CurrentEpoch);
    }
    if let Some(hex) = name.strip_prefix("log.") {
        return parse_zxid_hex(hex).map(FileKind::Segment);
    }
    if let Some(hex) = name.strip_prefix("snapshot.") {
        return parse_zxid_hex(hex).map(FileKind::Snapshot);
    }
    None
}

/// Exactly 16 lower-case hex digits, as `segment_file_name` and `snapshot_file_name` write.
fn parse_zxid_hex(hex: &str) -> Option<Zxid> {
    let canonical = hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !canonical {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(Zxid)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn names_round_trip() {
        let zxid = Zxid::new(3, 0x1f);
        assert_eq!(segment_file_name(zxid), "log.000000030000001f");
        assert_eq!(parse_file_name(&segment_file_name(zxid)), Some(FileKind::Segment(zxid)));
        assert_eq!(parse_file_name(&snapshot_file_name(zxid)), Some(FileKind::Snapshot(zxid)));
        assert_eq!(parse_file_name("acceptedEpoch"), Some(FileKind::AcceptedEpoch));
        assert_eq!(parse_file_name("currentEpoch"), Some(FileKind::CurrentEpoch));
    }

    #[test]
    fn temp_files_are_only_leftovers_of_atomic_writes() {
        assert_eq!(parse_file_name("snapshot.0000000100000002.tmp"), Some(FileKind::Temp));
        assert_eq!(parse_file_name("currentEpoch.tmp"), Some(FileKind::Temp));
        assert_eq!(parse_file_name("log.0000000100000002.tmp"), None);
        assert_eq!(parse_file_name("myid.tmp"), None);
    }

    #[test]
    fn foreign_names_are_not_ours() {
        for name in [
            "myid",
            "log.1",                      // ZooKeeper's unpadded name
            "log.000000010000000G",       // not hex
            "log.000000010000000A",       // upper case is not what we write
            "snapshot.00000001000000020", // 17 digits
            "log.",
            "",
        ] {
            assert_eq!(parse_file_name(name), None, "{name}");
        }
    }

    proptest! {
        #[test]
        fn names_sort_like_zxids(a: u64, b: u64) {
            let (na, nb) = (segment_file_name(Zxid(a)), segment_file_name(Zxid(b)));
            prop_assert_eq!(na.cmp(&nb), a.cmp(&b));
        }

        #[test]
        fn any_name_parses_without_panic(name in "\\PC{0,40}") {
            let _ = parse_file_name(&name);
        }
    }
}
