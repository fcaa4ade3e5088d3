//! Four-letter words: the shape of each answer (first-line prefixes, `Mode: standalone`,
//! `zk_version` first in mntr, key=value lines) and the whitelist. Values that vary between
//! implementations (versions, latencies, counters) are not compared.

use crate::harness::{Options, Server};
use crate::raw::Conn;

fn line_with<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ruok_isro_and_srvr() {
    let server = Server::start();
    assert_eq!(server.four_letter("ruok"), "imok");
    assert_eq!(server.four_letter("isro"), "rw");

    let srvr = server.four_letter("srvr");
    assert!(srvr.starts_with("Zookeeper version: "), "{srvr}");
    assert!(line_with(&srvr, "Latency min/avg/max: ").matches('/').count() >= 3, "{srvr}");
    for prefix in ["Received: ", "Sent: ", "Connections: ", "Outstanding: ", "Node count: "] {
        let value = line_with(&srvr, prefix).trim_start_matches(prefix);
        assert!(value.parse::<u64>().is_ok(), "{prefix}{value}");
    }
    let zxid = line_with(&srvr, "Zxid: 0x").trim_start_matches("Zxid: 0x");
    assert!(u64::from_str_radix(zxid, 16).is_ok(), "Zxid in hex: {zxid}");
    assert_eq!(line_with(&srvr, "Mode: "), "Mode: standalone");
    assert!(srvr.ends_with('\n'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stat_and_cons_list_connections() {
    let server = Server::start();
    let (mut conn, session) = Conn::session(&server.addr(), 30_000).await;
    conn.ping().await.ok("ping");

    let stat = server.four_letter("stat");
    assert!(stat.starts_with("Zookeeper version: "), "{stat}");
    let mut lines = stat.lines().skip_while(|line| *line != "Clients:");
    assert_eq!(lines.next(), Some("Clients:"), "{stat}");
    let clients: Vec<&str> = lines.by_ref().take_while(|line| !line.is_empty()).collect();
    assert!(!clients.is_empty(), "{stat}");
    assert!(clients.iter().all(|c| c.starts_with(" /127.0.0.1:")), "{clients:?}");
    assert_eq!(line_with(&stat, "Mode: "), "Mode: standalone");

    let cons = server.four_letter("cons");
    let sid = format!("sid=0x{:x}", session.session_id);
    let ours = cons.lines().find(|line| line.contains(&sid));
    let ours = ours.unwrap_or_else(|| panic!("no {sid} in cons:\n{cons}"));
    assert!(ours.starts_with(" /127.0.0.1:"), "{ours}");
    assert!(ours.contains("to=30000"), "{ours}");
    assert!(cons.ends_with("\n\n"), "cons ends with an empty line: {cons:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mntr_starts_with_version_and_state() {
    let server = Server::start();
    let mntr = server.four_letter("mntr");
    let lines: Vec<&str> = mntr.lines().collect();
    assert!(lines[0].starts_with("zk_version\t"), "{mntr}");
    assert_eq!(lines[1], "zk_server_state\tstandalone");
    for line in &lines {
        let (key, value) = line.split_once('\t').unwrap_or_else(|| panic!("no tab: {line:?}"));
        assert!(key.starts_with("zk_") && !value.is_empty(), "{line:?}");
    }
    for key in [
        "zk_avg_latency",
        "zk_max_latency",
        "zk_min_latency",
        "zk_packets_received",
        "zk_packets_sent",
        "zk_num_alive_connections",
        "zk_outstanding_requests",
        "zk_znode_count",
        "zk_watch_count",
        "zk_ephemerals_count",
        "zk_approximate_data_size",
    ] {
        line_with(&mntr, &format!("{key}\t"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conf_and_envi_are_key_value_lines() {
    let server = Server::start();
    let conf = server.four_letter("conf");
    assert_eq!(line_with(&conf, "clientPort="), format!("clientPort={}", server.port()));
    assert_eq!(line_with(&conf, "tickTime="), format!("tickTime={}", crate::harness::TICK_MS));
    assert_eq!(line_with(&conf, "maxSessionTimeout="), "maxSessionTimeout=60000");
    line_with(&conf, "dataDir=");
    line_with(&conf, "minSessionTimeout=");
    line_with(&conf, "maxClientCnxns=");

    let envi = server.four_letter("envi");
    assert_eq!(envi.lines().next(), Some("Environment:"), "{envi}");
    line_with(&envi, "zookeeper.version=");
    line_with(&envi, "host.name=");
    line_with(&envi, "os.name=");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_summaries_and_dump() {
    let server = Server::start();
    let (mut conn, session) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/w", b"", 1).await;
    conn.exists("/w", true).await;
    conn.exists("/missing", true).await;

    let wchs = server.four_letter("wchs");
    let lines: Vec<&str> = wchs.lines().collect();
    assert_eq!(lines[0], "1 connections watching 2 paths", "{wchs}");
    assert_eq!(lines[1], "Total watches:2", "{wchs}");

    let dump = server.four_letter("dump");
    assert!(dump.contains(&format!("0x{:x}", session.session_id)), "{dump}");
    assert!(dump.contains("\t/w"), "ephemerals are listed: {dump}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_by_session_and_by_path() {
    let server = Server::start();
    let (mut conn, session) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/w", b"", 0).await;
    conn.exists("/w", true).await;
    conn.exists("/missing", true).await;
    let sid = format!("0x{:x}", session.session_id);

    // wchc: the session id, then its watched paths indented by a tab.
    let wchc = server.four_letter("wchc");
    let lines: Vec<&str> = wchc.lines().collect();
    let at = lines.iter().position(|line| *line == sid);
    let at = at.unwrap_or_else(|| panic!("no {sid} line in wchc:\n{wchc}"));
    let mut paths: Vec<&str> =
        lines[at + 1..].iter().take_while(|l| l.starts_with('\t')).copied().collect();
    paths.sort();
    assert_eq!(paths, ["\t/missing", "\t/w"], "{wchc}");

    // wchp: each path, then the watching session ids indented by a tab.
    let wchp = server.four_letter("wchp");
    let lines: Vec<&str> = wchp.lines().collect();
    for path in ["/w", "/missing"] {
        let at = lines.iter().position(|line| *line == path);
        let at = at.unwrap_or_else(|| panic!("no {path} line in wchp:\n{wchp}"));
        assert_eq!(lines.get(at + 1).copied(), Some(format!("\t{sid}").as_str()), "{wchp}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_whitelist_allows_only_srvr() {
    let server = Server::start_with(Options { whitelist: None, ..Options::default() });
    let srvr = server.four_letter("srvr");
    assert!(srvr.starts_with("Zookeeper version: "), "{srvr}");
    for word in ["stat", "mntr", "conf", "cons", "envi", "wchs", "dump"] {
        let answer = server.four_letter(word);
        assert_eq!(answer, format!("{word} is not executed because it is not in the whitelist.\n"));
    }

    let listed =
        Server::start_with(Options { whitelist: Some("mntr".into()), ..Options::default() });
    assert!(listed.four_letter("mntr").starts_with("zk_version\t"));
    assert!(listed.four_letter("srvr").starts_with("Zookeeper version: "), "srvr always allowed");
    assert!(listed.four_letter("conf").contains("not in the whitelist"));
}

/// Every word ZooKeeper 3.8 knows is answered under `*`, none as "not in the whitelist".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_word_is_known() {
    let server = Server::start();
    for word in [
        "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "srvr", "srst", "stat",
        "wchc", "wchp", "wchs", "mntr", "isro", "hash",
    ] {
        let answer = server.four_letter(word);
        assert!(!answer.contains("whitelist"), "{word}: {answer}");
        assert!(!answer.contains("not supported"), "{word}: {answer}");
    }
}

/// `crst` resets every connection's counters and `srst` the server's: the next `cons` and
/// `srvr` show them reset, byte for byte as ZooKeeper (only the address, session id and
/// establishment time masked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crst_and_srst_reset_the_counters() {
    let server = Server::start();
    let (mut conn, session) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/c", b"x", 0).await;
    conn.exists("/c", false).await;
    conn.ping().await.ok("ping");
    let sid = format!("sid=0x{:x}", session.session_id);
    let ours = |cons: &str| -> String {
        let line = cons.lines().find(|line| line.contains(&sid));
        let line = line.unwrap_or_else(|| panic!("no {sid} in cons:\n{cons}")).to_string();
        // Mask the address and the establishment time, which differ from run to run.
        let (_, rest) = line.split_once('[').unwrap_or_else(|| panic!("{line}"));
        let (head, tail) = rest.split_once(",est=").unwrap_or_else(|| panic!("{line}"));
        let tail = tail.split_once(',').map_or("", |(_, tail)| tail);
        format!("[{head},est=*,{tail}")
    };

    let before = ours(&server.four_letter("cons"));
    assert!(before.contains("lop=PING"), "{before}");
    assert!(!before.contains("recved=0,"), "{before}");
    assert_eq!(server.four_letter("crst"), "Connection stats reset.\n");
    let after = ours(&server.four_letter("cons"));
    assert_eq!(
        after,
        format!(
            "[1](queued=0,recved=0,sent=0,{sid},lop=NA,est=*,to=30000,\
             lzxid=0xffffffffffffffff,lresp=0,llat=0,minlat=0,avglat=0,maxlat=0)"
        )
    );

    let srvr = server.four_letter("srvr");
    let received = |srvr: &str| -> u64 {
        line_with(srvr, "Received: ").trim_start_matches("Received: ").parse().expect("count")
    };
    assert!(received(&srvr) >= 3, "{srvr}");
    assert_eq!(server.four_letter("srst"), "Server stats reset.\n");
    let srvr = server.four_letter("srvr");
    assert_eq!(line_with(&srvr, "Latency min/avg/max: "), "Latency min/avg/max: 0/0.0/0");
    // Four-letter words count as packets: `srvr` itself received, `srst`'s answer sent.
    assert_eq!(line_with(&srvr, "Received: "), "Received: 1", "{srvr}");
    assert_eq!(line_with(&srvr, "Sent: "), "Sent: 1", "{srvr}");
    // The session is untouched by the resets.
    conn.ping().await.ok("ping after the resets");
}

/// `wchc` and `wchp` byte for byte as ZooKeeper, including `WatchCommand`'s last empty line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wchc_and_wchp_bytes() {
    let server = Server::start();
    assert_eq!(server.four_letter("wchc"), "\n");
    assert_eq!(server.four_letter("wchp"), "\n");
    let (mut conn, session) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/w", b"", 0).await;
    conn.exists("/w", true).await;
    let sid = format!("0x{:x}", session.session_id);
    assert_eq!(server.four_letter("wchc"), format!("{sid}\n\t/w\n\n"));
    assert_eq!(server.four_letter("wchp"), format!("/w\n\t{sid}\n\n"));
}

/// `dirs`: two lines of byte counts, the same numbers `conf` prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dirs_prints_sizes_in_bytes() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/d", &[7; 100], 0).await;
    let dirs = server.four_letter("dirs");
    let lines: Vec<&str> = dirs.lines().collect();
    assert_eq!(lines.len(), 2, "{dirs:?}");
    assert!(dirs.ends_with('\n'), "{dirs:?}");
    let data = lines[0].strip_prefix("datadir_size: ").expect("datadir_size first");
    let log = lines[1].strip_prefix("logdir_size: ").expect("logdir_size second");
    let (data, log): (u64, u64) = (data.parse().expect("bytes"), log.parse().expect("bytes"));
    assert!(data > 100 && log > 0, "{dirs}");
    let conf = server.four_letter("conf");
    assert_eq!(line_with(&conf, "dataDirSize="), format!("dataDirSize={data}"));
    assert_eq!(line_with(&conf, "dataLogSize="), format!("dataLogSize={log}"));
}

/// `hash` with ZooKeeper's digest off prints the empty history; Ensemble always does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_without_digest_is_empty() {
    let server = Server::start_with(Options::with_lines(&["digest.enabled=false"]));
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/h", b"", 0).await;
    assert_eq!(server.four_letter("hash"), "");
}

/// `gtmk` prints ZooKeeper's initial trace mask; `stmk` sets it from the 8 bytes after it and
/// echoes it; both without a newline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gtmk_and_stmk() {
    let server = Server::start();
    assert_eq!(server.four_letter("gtmk"), "306");
    let mut request = b"stmk".to_vec();
    request.extend_from_slice(&511_i64.to_be_bytes());
    assert_eq!(server.four_letter_bytes(&request), "511");
    assert_eq!(server.four_letter("gtmk"), "511");
}
