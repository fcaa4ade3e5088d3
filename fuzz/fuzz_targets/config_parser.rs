//! Fuzzes the `zoo.cfg` and `myid` parsers: any bytes, read as lossy UTF-8, must parse or be
//! rejected with a `ConfigError`, never panic. A parsed config must also survive the checks the
//! runtime runs next (`resolve_server_id`, `client_address`, `node_config`).

#![no_main]

use ensemble::core::ids::ServerId;
use ensemble::runtime::config::{parse_myid, ServerConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let myid = parse_myid(&text).ok();
    if let Ok(mut config) = ServerConfig::parse(&text) {
        // The first byte doubles as a myid so quorum configs get exercised both ways.
        let candidate = myid.or_else(|| data.first().map(|&byte| u64::from(byte)));
        if let Ok(server_id) = config.resolve_server_id(candidate) {
            let _ = config.client_address(server_id);
            let _ = config.node_config(server_id, 0);
        }
        let _ = config.client_address(ServerId(0));
    }
});
