//! zoo.cfg and myid. OWNER: config helper. Stub.
