//! Four-letter words. OWNER: config helper. Stub.
#![allow(missing_docs)]
use crate::core::report::ServerReport;
use crate::runtime::config::ServerConfig;
pub struct RuntimeInfo;
impl RuntimeInfo {
    pub fn from_config(_c: &ServerConfig) -> Self {
        RuntimeInfo
    }
    pub fn refreshed(&self) -> Self {
        RuntimeInfo
    }
}
pub fn respond(_w: [u8; 4], _wl: &[String], _r: Option<&ServerReport>, _i: &RuntimeInfo) -> String {
    todo!()
}
