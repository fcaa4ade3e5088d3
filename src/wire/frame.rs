//! Length-prefixed framing of the client stream.
//! OWNER: wire helper. Stub.
