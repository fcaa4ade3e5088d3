//! Storage formats: txn-log segments with CRC, snapshot envelopes, epoch files, and the
//! recovery scan over a data directory. Everything here is a pure function over bytes and
//! file names; `runtime::disk` is the only code that reads or writes the files.
//!
//! ZK compat: this plays the part of `FileTxnLog`, `FileSnap`, `FileTxnSnapLog` and
//! `PurgeTxnLog` (behaviour, not format: our on-disk format is our own and documented in
//! each module).
//!
//! Files of a data directory:
//! - `log.<zxid>`: a txn-log segment whose first txn is `zxid` ([`log`]), in `dataLogDir`;
//! - `snapshot.<zxid>`: a snapshot covering every txn `<= zxid` ([`snapshot`]), in `dataDir`;
//! - `acceptedEpoch`, `currentEpoch`: the Zab epochs ([`epoch`]), in `dataDir`;
//! - `<one of the above>.tmp`: a file being written atomically; removed on recovery.
//!
//! `<zxid>` is 16 lower-case hex digits, so names sort like the zxids they carry.

#![warn(missing_docs)]

pub mod epoch;
pub mod log;
pub mod names;
pub mod recovery;
pub mod snapshot;
