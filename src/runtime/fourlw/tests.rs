//! Exact-output tests of the four-letter words. The fixed report reproduces a state observed on
//! ZooKeeper 3.8.0 (one session that created two ephemerals and set two watches, plus the
//! connection asking); the expected strings are that server's output with our version line,
//! except where the module docs list a deviation.

use proptest::prelude::*;

use super::*;
use crate::core::ids::{ConnId, SessionId, Zxid};
use crate::core::report::{LearnerReport, SessionReport, StatsReset};
use crate::runtime::config::ServerConfig;

const SID: i64 = 0x0100_0006_5735_0000;

fn report() -> ServerReport {
    ServerReport {
        mode: Mode::Standalone,
        serving: true,
        zxid: Zxid(3),
        epoch: 0,
        node_count: 7,
        approximate_data_size: 57,
        ephemerals_count: 2,
        session_count: 1,
        outstanding_requests: 0,
        packets_received: 17,
        packets_sent: 17,
        latency_min_ms: 1,
        latency_avg_ms: 6.0,
        latency_max_ms: 15,
        watch_connections: 1,
        watch_paths: 2,
        watch_total: 2,
        connections: vec![ConnectionReport {
            conn: ConnId(1),
            addr: "127.0.0.1:57438".parse().expect("literal"),
            queued: 0,
            received: 5,
            sent: 5,
            session: Some(SessionId(SID)),
            timeout_ms: 30000,
            last_op: "EXIS",
            last_cxid: 4,
            last_zxid: 3,
            established_mono_ms: 1_000,
            latency_last_ms: 1,
            latency_min_ms: 0,
            latency_avg_ms: 6.8,
            latency_max_ms: 15,
        }],
        sessions: vec![SessionReport {
            session: SessionId(SID),
            timeout_ms: 30000,
            ephemerals: vec!["/eph1".to_string(), "/eph2".to_string()],
        }],
        proposal_sizes: None,
        learners: Vec::new(),
        watches_by_session: Vec::new(),
        watches_by_path: Vec::new(),
    }
}

fn host() -> HostEnvironment {
    HostEnvironment {
        host_name: Some("localhost".into()),
        os_name: Some("Linux".into()),
        os_arch: Some("amd64".into()),
        os_version: Some("6.1.0".into()),
        user_name: Some("zk".into()),
        user_home: Some("/home/zk".into()),
        user_dir: Some("/srv".into()),
        tmp_dir: Some("/tmp".into()),
    }
}

fn standalone_config() -> ServerConfig {
    ServerConfig::parse("tickTime=2000\ndataDir=/tmp/zkref/data\nclientPort=21981\n")
        .expect("valid")
}

fn info<'a>(config: &'a ServerConfig, host: &'a HostEnvironment) -> RuntimeInfo<'a> {
    RuntimeInfo {
        config,
        server_id: ServerId(0),
        now: Now { mono_ms: 61_000, wall_ms: 1_795_305_999_967 },
        uptime_ms: 39141,
        client_port: Some(21981),
        snap_dir: "/tmp/zkref/data/version-2".into(),
        log_dir: "/tmp/zkref/data/version-2".into(),
        snap_dir_bytes: 457,
        log_dir_bytes: 457,
        open_fds: Some(40),
        max_fds: Some(20000),
        requester: Some("127.0.0.1:57456".parse().expect("literal")),
        host,
        trace_mask: TRACE_MASK_DEFAULT,
        argument: None,
    }
}

fn ask(word: &str, report: Option<&ServerReport>, info: &RuntimeInfo<'_>) -> String {
    let bytes: [u8; 4] = word.as_bytes().try_into().expect("four letters");
    respond(bytes, &FourLetterWhitelist::all(), report, info)
}

#[test]
fn ruok_and_isro() {
    let (config, host) = (standalone_config(), host());
    let info = info(&config, &host);
    assert_eq!(ask("ruok", Some(&report()), &info), "imok");
    assert_eq!(ask("ruok", None, &info), "imok");
    assert_eq!(ask("isro", Some(&report()), &info), "rw");
    assert_eq!(ask("isro", None, &info), "null");
}

#[test]
fn srvr() {
    let (config, host) = (standalone_config(), host());
    let expected = format!(
        "Zookeeper version: {VERSION}\nLatency min/avg/max: 1/6.0/15\nReceived: 17\nSent: 17\n\
         Connections: 2\nOutstanding: 0\nZxid: 0x3\nMode: standalone\nNode count: 7\n"
    );
    assert_eq!(ask("srvr", Some(&report()), &info(&config, &host)), expected);
}

#[test]
fn stat() {
    let (config, host) = (standalone_config(), host());
    let expected = format!(
        "Zookeeper version: {VERSION}\nClients:\n /127.0.0.1:57438[1](queued=0,recved=5,sent=5)\n \
         /127.0.0.1:57456[0](queued=0,recved=1,sent=0)\n\nLatency min/avg/max: 1/6.0/15\n\
         Received: 17\nSent: 17\nConnections: 2\nOutstanding: 0\nZxid: 0x3\nMode: standalone\n\
         Node count: 7\n"
    );
    assert_eq!(ask("stat", Some(&report()), &info(&config, &host)), expected);
}

#[test]
fn srvr_of_a_leader_has_proposal_sizes() {
    let (config, host) = (standalone_config(), host());
    let mut leader = report();
    leader.mode = Mode::Leader;
    leader.zxid = Zxid::new(1, 0x2a);
    let out = ask("srvr", Some(&leader), &info(&config, &host));
    assert!(out.ends_with("Zxid: 0x10000002a\nMode: leader\nNode count: 7\nProposal sizes last/min/max: -1/-1/-1\n"), "{out}");
    leader.proposal_sizes = Some((120, 48, 300));
    let out = ask("srvr", Some(&leader), &info(&config, &host));
    assert!(out.ends_with("Proposal sizes last/min/max: 120/48/300\n"), "{out}");
}

#[test]
fn cons() {
    let (config, host) = (standalone_config(), host());
    // est: established at mono 1_000, asked at mono 61_000, so one minute before wall time.
    let expected = " /127.0.0.1:57438[1](queued=0,recved=5,sent=5,sid=0x100000657350000,lop=EXIS,\
                    est=1795305939967,to=30000,lcxid=0x4,lzxid=0x3,lresp=0,llat=1,minlat=0,\
                    avglat=6,maxlat=15)\n /127.0.0.1:57456[0](queued=0,recved=1,sent=0)\n\n";
    assert_eq!(ask("cons", Some(&report()), &info(&config, &host)), expected);
}

#[test]
fn cons_without_session_and_without_cxid() {
    let (config, host) = (standalone_config(), host());
    let mut report = report();
    let mut info = info(&config, &host);
    info.requester = None;
    report.connections[0].session = None;
    assert_eq!(
        ask("cons", Some(&report), &info),
        " /127.0.0.1:57438[1](queued=0,recved=5,sent=5)\n\n"
    );
    report.connections[0].session = Some(SessionId(SID));
    report.connections[0].last_cxid = -1;
    report.connections[0].addr = "[::1]:40000".parse().expect("literal");
    let out = ask("cons", Some(&report), &info);
    assert!(out.starts_with(" /[0:0:0:0:0:0:0:1]:40000[1]("), "{out}");
    assert!(out.contains(",to=30000,lzxid=0x3,"), "{out}");
    assert!(ask("cons", Some(&ServerReport { connections: vec![], ..report }), &info) == "\n");
}

#[test]
fn conf_standalone() {
    let (config, host) = (standalone_config(), host());
    let expected = "clientPort=21981\nsecureClientPort=-1\ndataDir=/tmp/zkref/data/version-2\n\
                    dataDirSize=457\ndataLogDir=/tmp/zkref/data/version-2\ndataLogSize=457\n\
                    tickTime=2000\nmaxClientCnxns=60\nminSessionTimeout=4000\n\
                    maxSessionTimeout=40000\nclientPortListenBacklog=-1\nserverId=0\n";
    assert_eq!(ask("conf", Some(&report()), &info(&config, &host)), expected);
}

#[test]
fn conf_quorum() {
    let config = ServerConfig::parse(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/d\nclientPort=2181\n\
         server.1=zk1:2888:3888\nserver.2=[::1]:2889:3889;2182\n\
         server.3=10.0.0.3:2890:3890:observer;10.0.0.3:2181\nserver.4=zk4:2891:3891\n",
    )
    .expect("valid");
    let host = host();
    let mut info = info(&config, &host);
    info.server_id = ServerId(4);
    info.client_port = Some(2181);
    let mut follower = report();
    follower.mode = Mode::Follower;
    let out = ask("conf", Some(&follower), &info);
    let expected_tail = "serverId=4\ninitLimit=10\nsyncLimit=5\nelectionAlg=3\nelectionPort=3891\n\
                         quorumPort=2891\npeerType=0\nmembership: \n\
                         server.1=zk1:2888:3888:participant\n\
                         server.2=[0:0:0:0:0:0:0:1]:2889:3889:participant;0.0.0.0:2182\n\
                         server.3=10.0.0.3:2890:3890:observer;10.0.0.3:2181\n\
                         server.4=zk4:2891:3891:participant\nversion=0";
    assert!(out.ends_with(expected_tail), "{out}");
}

#[test]
fn mntr_standalone() {
    let (config, host) = (standalone_config(), host());
    let expected = format!(
        "zk_version\t{VERSION}\nzk_server_state\tstandalone\nzk_ephemerals_count\t2\n\
         zk_num_alive_connections\t2\nzk_avg_latency\t6.0\nzk_outstanding_requests\t0\n\
         zk_znode_count\t7\nzk_global_sessions\t1\nzk_packets_sent\t17\n\
         zk_packets_received\t17\nzk_watch_count\t2\nzk_min_latency\t1\n\
         zk_max_file_descriptor_count\t20000\nzk_approximate_data_size\t57\n\
         zk_open_file_descriptor_count\t40\nzk_local_sessions\t0\nzk_uptime\t39141\n\
         zk_max_latency\t15\n"
    );
    assert_eq!(ask("mntr", Some(&report()), &info(&config, &host)), expected);
}

#[test]
fn mntr_quorum_adds_peer_state_and_leader_sizes() {
    let config = ServerConfig::parse(
        "initLimit=10\nsyncLimit=5\ndataDir=/d\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2",
    )
    .expect("valid");
    let host = host();
    let mut info = info(&config, &host);
    info.open_fds = None;
    info.max_fds = None;
    let mut leader = report();
    leader.mode = Mode::Leader;
    leader.proposal_sizes = Some((10, 5, 20));
    let out = ask("mntr", Some(&leader), &info);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1], "zk_server_state\tleader");
    assert_eq!(lines[2], "zk_peer_state\tleading - broadcast");
    assert!(lines.contains(&"zk_open_file_descriptor_count\t-1"), "{out}");
    let sizes = lines.iter().position(|l| l.starts_with("zk_last_proposal_size")).expect("sizes");
    assert_eq!(
        &lines[sizes..sizes + 3],
        ["zk_last_proposal_size\t10", "zk_max_proposal_size\t20", "zk_min_proposal_size\t5"]
    );
    let mut follower = report();
    follower.mode = Mode::Follower;
    let out = ask("mntr", Some(&follower), &info);
    assert!(out.contains("\nzk_peer_state\tfollowing - broadcast\n"), "{out}");
    assert!(!out.contains("proposal_size"), "{out}");
    assert!(!out.contains("zk_learners"), "only the leader has learners: {out}");
    assert!(out.ends_with("zk_quorum_size\t3\nzk_epoch\t0\nzk_last_zxid\t0x3\n"), "{out}");
    // Every line is `zk_<key>\t<value>`.
    assert!(out.lines().all(|line| line.starts_with("zk_") && line.matches('\t').count() == 1));
}

#[test]
fn wchs() {
    let (config, host) = (standalone_config(), host());
    assert_eq!(
        ask("wchs", Some(&report()), &info(&config, &host)),
        "1 connections watching 2 paths\nTotal watches:2\n"
    );
}

#[test]
fn dump() {
    let (config, host) = (standalone_config(), host());
    let expected = "SessionTracker dump:\nSession Sets (1)/(1):\n1 expire within 30000ms:\n\
                    \t0x100000657350000\nephemeral nodes dump:\nSessions with Ephemerals (1):\n\
                    0x100000657350000:\n\t/eph1\n\t/eph2\nConnections dump:\n\
                    Connections Sets (2)/(2):\n1 expire within 10000ms:\n\
                    \tip: /127.0.0.1:57456 sessionId: 0x0\n1 expire within 30000ms:\n\
                    \tip: /127.0.0.1:57438 sessionId: 0x100000657350000\n";
    assert_eq!(ask("dump", Some(&report()), &info(&config, &host)), expected);
}

#[test]
fn envi_and_dirs() {
    let (config, host) = (standalone_config(), host());
    let expected = format!(
        "Environment:\nzookeeper.version={VERSION}\nhost.name=localhost\njava.version=<NA>\n\
         java.vendor=<NA>\njava.home=<NA>\njava.class.path=<NA>\njava.library.path=<NA>\n\
         java.io.tmpdir=/tmp\njava.compiler=<NA>\nos.name=Linux\nos.arch=amd64\nos.version=6.1.0\n\
         user.name=zk\nuser.home=/home/zk\nuser.dir=/srv\nos.memory.free=<NA>\n\
         os.memory.max=<NA>\nos.memory.total=<NA>\n"
    );
    let info = info(&config, &host);
    assert_eq!(ask("envi", Some(&report()), &info), expected);
    // envi does not need a running server.
    assert_eq!(ask("envi", None, &info), expected);
    assert_eq!(ask("dirs", Some(&report()), &info), "datadir_size: 457\nlogdir_size: 457\n");
}

#[test]
fn not_serving() {
    let (config, host) = (standalone_config(), host());
    let info = info(&config, &host);
    let mut looking = report();
    looking.mode = Mode::Looking;
    looking.serving = false;
    for word in ["srvr", "stat", "cons", "conf", "mntr", "wchs", "dump", "dirs"] {
        assert_eq!(ask(word, None, &info), NOT_SERVING, "{word}");
        assert_eq!(ask(word, Some(&looking), &info), NOT_SERVING, "{word}");
    }
    assert_eq!(NOT_SERVING, "This ZooKeeper instance is not currently serving requests\n");
}

#[test]
fn whitelist_refusal_is_exact() {
    let (config, host) = (standalone_config(), host());
    let info = info(&config, &host);
    let default = FourLetterWhitelist::default();
    assert_eq!(
        respond(*b"stat", &default, Some(&report()), &info),
        "stat is not executed because it is not in the whitelist.\n"
    );
    assert_eq!(
        respond(*b"ruok", &default, Some(&report()), &info),
        "ruok is not executed because it is not in the whitelist.\n"
    );
    assert!(respond(*b"srvr", &default, Some(&report()), &info).starts_with("Zookeeper version: "));
    // A word Ensemble does not implement is still refused exactly like ZooKeeper when off the list.
    assert_eq!(
        respond(*b"gtmk", &default, Some(&report()), &info),
        "gtmk is not executed because it is not in the whitelist.\n"
    );
    assert_eq!(ask("gtmk", Some(&report()), &info), "306");
}

/// The control words, byte for byte as ZooKeeper 3.8 answers them.
#[test]
fn control_words() {
    let (config, host) = (standalone_config(), host());
    let mut info = info(&config, &host);
    let all = FourLetterWhitelist::all();
    let serving = report();
    let reset = |word: &[u8; 4], info: &RuntimeInfo<'_>| answer(*word, &all, Some(&serving), info);

    let crst = reset(b"crst", &info);
    assert_eq!(crst.text, "Connection stats reset.\n");
    assert_eq!(crst.reset, Some(StatsReset::Connections));
    let srst = reset(b"srst", &info);
    assert_eq!(srst.text, "Server stats reset.\n");
    assert_eq!(srst.reset, Some(StatsReset::Server));
    // Off the whitelist or not serving: nothing is reset.
    let refused = answer(*b"crst", &FourLetterWhitelist::default(), Some(&serving), &info);
    assert_eq!(refused.reset, None);
    for word in [b"crst", b"srst"] {
        let idle = answer(*word, &all, None, &info);
        assert_eq!((idle.text.as_str(), idle.reset), (NOT_SERVING, None));
    }

    // `hash`: the empty history of ZooKeeper with the digest disabled; not serving, the
    // message without a newline.
    assert_eq!(ask("hash", Some(&serving), &info), "");
    assert_eq!(ask("hash", None, &info), NOT_SERVING.trim_end());

    // gtmk/stmk: the mask as a Java long, no newline, serving or not.
    assert_eq!(ask("gtmk", None, &info), "306");
    info.argument = Some(-2);
    let stmk = answer(*b"stmk", &all, None, &info);
    assert_eq!((stmk.text.as_str(), stmk.trace_mask), ("-2", Some(-2)));
    info.argument = None;
    assert_eq!(answer(*b"stmk", &all, None, &info), FourLetterAnswer::text(String::new()));
    assert_eq!(answer(*b"ruok", &all, None, &info).trace_mask, None);
}

/// `wchc` and `wchp` end with the empty line of `WatchCommand`; `dirs` prints ZooKeeper's
/// swapped sizes (txn-log directory first).
#[test]
fn watches_and_dirs_as_zookeeper() {
    let (config, host) = (standalone_config(), host());
    let mut info = info(&config, &host);
    let mut report = report();
    report.watches_by_session = vec![(SessionId(0x1000), vec!["/a".into(), "/b".into()])];
    report.watches_by_path = vec![("/a".into(), vec![SessionId(0x1000), SessionId(0x2000)])];
    assert_eq!(ask("wchc", Some(&report), &info), "0x1000\n\t/a\n\t/b\n\n");
    assert_eq!(ask("wchp", Some(&report), &info), "/a\n\t0x1000\n\t0x2000\n\n");
    report.watches_by_session.clear();
    report.watches_by_path.clear();
    assert_eq!(ask("wchc", Some(&report), &info), "\n");
    assert_eq!(ask("wchp", Some(&report), &info), "\n");

    info.snap_dir_bytes = 100;
    info.log_dir_bytes = 7;
    assert_eq!(ask("dirs", Some(&report), &info), "datadir_size: 7\nlogdir_size: 100\n");
    let conf = ask("conf", Some(&report), &info);
    assert!(conf.contains("dataDirSize=7\n") && conf.contains("dataLogSize=100\n"), "{conf}");
}

#[test]
fn unknown_bytes_are_not_a_word() {
    let (config, host) = (standalone_config(), host());
    let info = info(&config, &host);
    assert_eq!(FourLetterWord::from_bytes([0, 0, 0, 45]), None);
    assert_eq!(FourLetterWord::from_bytes(*b"RUOK"), None);
    assert_eq!(FourLetterWord::from_bytes(TELNET_CLOSE), None);
    assert_eq!(respond(*b"xxxx", &FourLetterWhitelist::all(), Some(&report()), &info), "");
    for word in FourLetterWord::ALL {
        let bytes: [u8; 4] = word.as_str().as_bytes().try_into().expect("four letters");
        assert_eq!(FourLetterWord::from_bytes(bytes), Some(word));
    }
}

#[test]
fn whitelist_parsing() {
    let (list, unknown) = FourLetterWhitelist::parse(" ruok , ,mntr,nope");
    let words: Vec<_> = list.words().map(FourLetterWord::as_str).collect();
    assert_eq!(words, vec!["ruok", "srvr", "mntr"]);
    assert_eq!(unknown, vec!["nope"]);
    assert_eq!(FourLetterWhitelist::parse("").0, FourLetterWhitelist::default());
    assert_eq!(FourLetterWhitelist::parse("conf,*").0, FourLetterWhitelist::all());
}

#[test]
fn java_doubles() {
    for (value, expected) in [
        (0.0, "0.0"),
        (6.0, "6.0"),
        (0.6667, "0.6667"),
        (7.3333, "7.3333"),
        (1234567.5, "1234567.5"),
        (1e7, "1.0E7"),
        (12345678.9, "1.23456789E7"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (-2.5, "-2.5"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "Infinity"),
    ] {
        assert_eq!(java_double(value), expected, "{value}");
    }
}

#[test]
fn averages_round_half_up_to_four_decimals() {
    assert_eq!(round_half_up_4(2.0 / 3.0), 0.6667);
    assert_eq!(round_half_up_4(22.0 / 3.0), 7.3333);
    // 33/32 = 1.03125 exactly: half up, not half even.
    assert_eq!(round_half_up_4(33.0 / 32.0), 1.0313);
    assert_eq!(java_double(round_half_up_4(1.0 / 3.0)), "0.3333");
}

#[test]
fn java_socket_addresses() {
    let cases = [
        ("127.0.0.1:2181", "/127.0.0.1:2181"),
        ("[::1]:2181", "/[0:0:0:0:0:0:0:1]:2181"),
        ("[2001:db8::ff00:42:8329]:1", "/[2001:db8:0:0:0:ff00:42:8329]:1"),
        ("[::ffff:10.0.0.1]:5", "/10.0.0.1:5"),
        ("[fe80::1%3]:7", "/[fe80:0:0:0:0:0:0:1%3]:7"),
    ];
    for (addr, expected) in cases {
        assert_eq!(java_socket_addr(addr.parse().expect("literal")), expected);
    }
}

#[test]
fn version_line_keeps_the_prefix_tools_parse() {
    assert!(VERSION.starts_with("3.9.3-ensemble-"));
    assert!(VERSION.contains(", built on "));
    assert!(!VERSION.chars().any(|c| c == '\n'));
}

#[test]
fn process_probes_do_not_fail() {
    let host = HostEnvironment::detect();
    assert!(host.os_name.is_some() && host.os_arch.is_some());
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("version-2")).expect("mkdir");
    std::fs::write(dir.path().join("version-2/log.1"), [0u8; 100]).expect("write");
    std::fs::write(dir.path().join("a"), [0u8; 7]).expect("write");
    assert_eq!(dir_size(dir.path()), 107);
    assert_eq!(dir_size(&dir.path().join("missing")), 0);
    if cfg!(target_os = "linux") {
        assert!(open_fd_count().is_some_and(|n| n > 0));
        assert!(max_fd_count().is_some_and(|n| n > 0));
    }
}

proptest! {
    #[test]
    fn any_four_bytes_get_an_answer_without_panicking(
        bytes in any::<[u8; 4]>(),
        serving in any::<bool>(),
        mode in 0u8..5,
    ) {
        let (config, host) = (standalone_config(), host());
        let info = info(&config, &host);
        let mut report = report();
        report.serving = serving;
        report.mode = [Mode::Standalone, Mode::Leader, Mode::Follower, Mode::Observer, Mode::Looking][mode as usize];
        let out = respond(bytes, &FourLetterWhitelist::all(), Some(&report), &info);
        prop_assert_eq!(out.is_empty(), FourLetterWord::from_bytes(bytes).is_none());
    }

    #[test]
    fn java_double_parses_back(value in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
        let text = java_double(value);
        prop_assert!(text.contains('.'), "{}", text);
        prop_assert_eq!(text.parse::<f64>().ok(), Some(value));
    }
}

fn quorum_config() -> ServerConfig {
    ServerConfig::parse(
        "initLimit=10\nsyncLimit=5\ndataDir=/d\nserver.1=a:1:2\nserver.2=b:1:2\n\
         server.3=c:1:2\nserver.4=d:1:2:observer",
    )
    .expect("valid")
}

fn leader_with_learners() -> ServerReport {
    let mut leader = report();
    leader.mode = Mode::Leader;
    leader.epoch = 2;
    leader.zxid = Zxid::new(2, 5);
    leader.learners = vec![
        LearnerReport {
            id: ServerId(1),
            observer: false,
            state: "broadcast",
            sync: "DIFF",
            zxid: Zxid::new(2, 5),
        },
        LearnerReport {
            id: ServerId(2),
            observer: false,
            state: "syncing",
            sync: "SNAP",
            zxid: Zxid::new(1, 9),
        },
        LearnerReport {
            id: ServerId(4),
            observer: true,
            state: "broadcast",
            sync: "TRUNC",
            zxid: Zxid::new(2, 5),
        },
    ];
    leader
}

#[test]
fn srvr_of_a_quorum_leader_lists_its_learners_after_zookeepers_lines() {
    let (config, host) = (quorum_config(), host());
    let out = ask("srvr", Some(&leader_with_learners()), &info(&config, &host));
    let expected_tail = "Zxid: 0x200000005\nMode: leader\nNode count: 7\n\
        Proposal sizes last/min/max: -1/-1/-1\nEpoch: 2\nLearners: 3\n\
        Learner 1: follower, state broadcast, sync DIFF, zxid 0x200000005\n\
        Learner 2: follower, state syncing, sync SNAP, zxid 0x100000009\n\
        Learner 4: observer, state broadcast, sync TRUNC, zxid 0x200000005\n";
    assert!(out.ends_with(expected_tail), "{out}");
    let stat = ask("stat", Some(&leader_with_learners()), &info(&config, &host));
    assert!(stat.ends_with(expected_tail), "{stat}");
}

#[test]
fn srvr_of_a_quorum_follower_adds_only_the_epoch() {
    let (config, host) = (quorum_config(), host());
    let mut follower = report();
    follower.mode = Mode::Follower;
    follower.epoch = 7;
    let out = ask("srvr", Some(&follower), &info(&config, &host));
    assert!(out.ends_with("Mode: follower\nNode count: 7\nEpoch: 7\n"), "{out}");
}

#[test]
fn mntr_of_a_quorum_leader_counts_synced_learners_and_lists_each() {
    let (config, host) = (quorum_config(), host());
    let out = ask("mntr", Some(&leader_with_learners()), &info(&config, &host));
    let expected_tail = "zk_quorum_size\t3\nzk_epoch\t2\nzk_last_zxid\t0x200000005\n\
        zk_learners\t3\nzk_synced_followers\t1\nzk_synced_non_voting_followers\t0\n\
        zk_synced_observers\t1\n\
        zk_learner_1_state\tbroadcast\nzk_learner_1_sync\tDIFF\nzk_learner_1_zxid\t0x200000005\n\
        zk_learner_2_state\tsyncing\nzk_learner_2_sync\tSNAP\nzk_learner_2_zxid\t0x100000009\n\
        zk_learner_4_state\tbroadcast\nzk_learner_4_sync\tTRUNC\nzk_learner_4_zxid\t0x200000005\n";
    assert!(out.ends_with(expected_tail), "{out}");
    assert!(out.lines().all(|line| line.starts_with("zk_") && line.matches('\t').count() == 1));
}
