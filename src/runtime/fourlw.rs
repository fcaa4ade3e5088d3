//! Four-letter words. OWNER: config helper. Stub.
