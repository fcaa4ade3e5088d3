//! zoo.cfg and myid. OWNER: config helper. Stub.
#![allow(missing_docs)]
use crate::core::config::NodeConfig;
use crate::core::ids::ServerId;
use crate::runtime::disk::DiskConfig;
use std::net::SocketAddr;
#[derive(Debug, thiserror::Error)]
#[error("config: {0}")]
pub struct ConfigError(pub String);
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub server_id: Option<u64>,
    pub warnings: Vec<String>,
    pub four_letter_whitelist: Vec<String>,
    pub jute_max_buffer: usize,
    pub max_client_cnxns: usize,
}
impl ServerConfig {
    pub fn standalone_default() -> Self {
        todo!()
    }
    pub fn parse(_t: &str) -> Result<Self, ConfigError> {
        todo!()
    }
    pub fn load_myid(&mut self) -> Result<(), ConfigError> {
        todo!()
    }
    pub fn disk_config(&self) -> DiskConfig {
        todo!()
    }
    pub fn node_config(&self, _id: ServerId, _seed: u64) -> NodeConfig {
        todo!()
    }
    pub fn client_addr(&self) -> SocketAddr {
        todo!()
    }
}
