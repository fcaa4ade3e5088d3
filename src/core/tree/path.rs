//! Path validation and helpers. OWNER: tree helper. Stub.
