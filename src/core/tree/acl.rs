//! ACL checks and schemes. OWNER: tree helper. Stub.
