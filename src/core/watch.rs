//! Watch tables. OWNER: watch helper. Stub.
