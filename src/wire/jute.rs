//! Jute primitives (big-endian ints, length-prefixed buffers and strings, vectors).
//! OWNER: wire helper. Stub.
