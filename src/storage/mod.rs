//! Storage formats: txn-log segments with CRC, snapshots, recovery scan. Pure functions over bytes.
//! OWNER: storage helper.
