//! Disk writer (group commit) and recovery from files. OWNER: storage helper. Stub.
