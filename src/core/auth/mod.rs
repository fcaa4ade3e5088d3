//! Authentication mechanisms, sans-IO: state machines fed tokens, with nonces drawn from a
//! caller-supplied RNG (the node's seeded one in the core) and no clock.

pub mod digest_md5;
pub mod sasl;

pub use digest_md5::{DigestError, DigestMd5Client, DigestMd5Server, ServerStep};
pub use sasl::{AuthConfig, Providers, SaslServerConfig};
