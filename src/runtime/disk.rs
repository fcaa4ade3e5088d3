//! Disk writer (group commit) and recovery from files. OWNER: storage helper. Stub.
#![allow(missing_docs)]
use crate::core::ids::{WriteId, Zxid};
use crate::core::io::DurableWrite;
use crate::core::txn::Txn;
use bytes::Bytes;
use std::path::PathBuf;
use tokio::sync::mpsc;
#[derive(Debug, thiserror::Error)]
#[error("disk: {0}")]
pub struct DiskError(pub String);
#[derive(Clone)]
pub struct DiskConfig {
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
}
pub fn disk_config(c: &crate::runtime::config::ServerConfig) -> DiskConfig {
    DiskConfig { data_dir: c.data_dir.clone(), data_log_dir: c.data_log_dir.clone() }
}
pub struct Recovered {
    pub snapshot: Option<(Zxid, Bytes)>,
    pub txns: Vec<Txn>,
    pub accepted_epoch: u32,
    pub current_epoch: u32,
}
pub fn recover(_c: &DiskConfig) -> Result<Recovered, DiskError> {
    todo!()
}
pub struct DiskWriter;
impl DiskWriter {
    pub fn submit(&self, _id: WriteId, _w: DurableWrite) {
        todo!()
    }
}
pub fn spawn_writer(_c: DiskConfig) -> (DiskWriter, mpsc::UnboundedReceiver<WriteId>) {
    todo!()
}
