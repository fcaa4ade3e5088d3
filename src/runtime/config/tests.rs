//! Tests of `zoo.cfg` and `myid` parsing.

use proptest::prelude::*;

use super::*;
use crate::runtime::fourlw::FourLetterWord;

/// `/etc/zookeeper/conf/zoo.cfg` as the Debian `zookeeper` 3.8.0 package installs it.
const DEBIAN_ZOO_CFG: &str = "\
# The number of milliseconds of each tick
tickTime=2000
# The number of ticks that the initial 
# synchronization phase can take
initLimit=10
# The number of ticks that can pass between 
# sending a request and getting an acknowledgement
syncLimit=5
# the directory where the snapshot is stored.
# do not use /tmp for storage, /tmp here is just 
# example sakes.
dataDir=/tmp/zookeeper
# the port at which the clients will connect
clientPort=2181
# the maximum number of client connections.
# increase this if you need to handle more clients
#maxClientCnxns=60
#
# Be sure to read the maintenance section of the 
# administrator guide before turning on autopurge.
#
# https://zookeeper.apache.org/doc/current/zookeeperAdmin.html#sc_maintenance
#
# The number of snapshots to retain in dataDir
#autopurge.snapRetainCount=3
# Purge task interval in hours
# Set to \"0\" to disable auto purge feature
#autopurge.purgeInterval=1

## Metrics Providers
#
# https://prometheus.io Metrics Exporter
#metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
#metricsProvider.httpHost=0.0.0.0
#metricsProvider.httpPort=7000
#metricsProvider.exportJvmInfo=true
";

/// The Debian package's placeholder `myid`.
const DEBIAN_MYID: &str =
    "replace this text with the cluster-unique zookeeper's instance id (1-255)\n";

const QUORUM: &str = "\
tickTime=2000
initLimit=10
syncLimit=5
dataDir=/var/lib/zookeeper
clientPort=2181
server.1=zk1.example.com:2888:3888
server.2=zk2.example.com:2888:3888;2182
server.3=zk3.example.com:2888:3888:participant;10.0.0.3:2181
";

fn parse(text: &str) -> ServerConfig {
    match ServerConfig::parse(text) {
        Ok(config) => config,
        Err(error) => panic!("{error}\n---\n{text}"),
    }
}

fn with_data_dir(lines: &str) -> String {
    format!("dataDir=/data\n{lines}\n")
}

fn parse_with(lines: &str) -> ServerConfig {
    parse(&with_data_dir(lines))
}

fn error_with(lines: &str) -> ConfigError {
    match ServerConfig::parse(&with_data_dir(lines)) {
        Ok(config) => panic!("accepted {lines:?}: {config:?}"),
        Err(error) => error,
    }
}

fn bad_value_key(error: &ConfigError) -> &str {
    match error {
        ConfigError::BadValue { key, .. } => key,
        other => panic!("not a BadValue: {other:?}"),
    }
}

#[test]
fn debian_sample() {
    let config = parse(DEBIAN_ZOO_CFG);
    assert_eq!(config.tick_time_ms, 2000);
    assert_eq!(config.init_limit, 10);
    assert_eq!(config.sync_limit, 5);
    assert_eq!(config.data_dir, PathBuf::from("/tmp/zookeeper"));
    assert_eq!(config.data_log_dir, PathBuf::from("/tmp/zookeeper"));
    assert_eq!(config.client_port, Some(2181));
    assert_eq!(config.client_port_address, None);
    assert_eq!(config.max_client_cnxns, 60);
    assert_eq!(config.session_timeout_min_ms, 4000);
    assert_eq!(config.session_timeout_max_ms, 40000);
    assert_eq!(config.snap_retain_count, 3);
    assert_eq!(config.purge_interval_hours, 0);
    assert!(config.servers.is_empty());
    assert!(!config.is_quorum());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.four_letter_words, FourLetterWhitelist::default());
    let mut config = config;
    assert_eq!(config.resolve_server_id(None), Ok(ServerId(0)));
    assert_eq!(
        config.client_address(ServerId(0)),
        Some(HostPort { host: "0.0.0.0".into(), port: 2181 })
    );
}

#[test]
fn debian_placeholder_myid_is_rejected() {
    let error = parse_myid(DEBIAN_MYID).expect_err("placeholder text");
    assert_eq!(
        error.to_string(),
        "myid: expected a server id in 1..=255 on the first line, got 'replace this text with the \
         cluster-unique zookeeper's instance id (1-255)'"
    );
}

#[test]
fn defaults_without_optional_keys() {
    let config = parse("dataDir=/d");
    assert_eq!(config.tick_time_ms, 3000);
    assert_eq!(config.session_timeout_min_ms, 6000);
    assert_eq!(config.session_timeout_max_ms, 60000);
    assert_eq!(config.client_port, None);
    assert_eq!(config.client_address(ServerId(0)), None);
    assert_eq!(config.client_port_listen_backlog, -1);
    assert_eq!(config.snap_count, 100_000);
    assert_eq!(config.pre_alloc_size_bytes, 64 * 1024 * 1024);
    assert_eq!(config.outstanding_max, 1000);
    assert_eq!(config.frame_max_bytes, 0xFFFFF);
    assert_eq!(config.container_check_interval_ms, 60_000);
    assert_eq!(config.container_never_used_ms, 0);
    assert_eq!(config.handshake_timeout_ms, 10_000);
    assert_eq!(config.slow_step_warn_ms, 50);
    assert!(config.standalone_enabled);
    assert!(!config.reconfig_enabled);
    assert!(!config.extended_types && !config.skip_acl && !config.eager_acl_check);
    assert_eq!(config.super_digest, None);
    assert_eq!(config.peer_type, PeerType::Participant);
    assert_eq!(config.membership_version, 0);
}

#[test]
fn error_messages_name_line_key_and_value() {
    let error = ServerConfig::parse("# c\ndataDir=/d\n\ntickTime=abc\n").expect_err("bad tick");
    assert_eq!(error.to_string(), "line 4: tickTime: expected a positive integer, got 'abc'");
    let error = ServerConfig::parse("dataDir=/d\nk=\\u00zz").expect_err("bad escape");
    assert_eq!(error, ConfigError::MalformedEscape { line: 2 });
}

#[test]
fn data_dir_is_required_and_data_log_dir_follows_it() {
    assert_eq!(
        ServerConfig::parse("tickTime=2000").expect_err("no dataDir"),
        ConfigError::Missing { key: "dataDir", context: "" }
    );
    assert_eq!(bad_value_key(&error_with("dataDir=")), "dataDir");
    let config = parse_with("dataLogDir=/fast/log");
    assert_eq!(config.data_dir, PathBuf::from("/data"));
    assert_eq!(config.data_log_dir, PathBuf::from("/fast/log"));
}

#[test]
fn tick_time() {
    assert_eq!(parse_with("tickTime=500").tick_time_ms, 500);
    assert_eq!(parse_with("tickTime=+500").tick_time_ms, 500);
    for bad in ["0", "-1", "abc", "2000ms", "2147483648", ""] {
        let error = error_with(&format!("tickTime={bad}"));
        assert_eq!(bad_value_key(&error), "tickTime", "{bad}");
    }
    // Defaults would overflow a Java int: refused rather than wrapped.
    let error = error_with("tickTime=2000000000");
    assert!(matches!(error, ConfigError::Invalid { ref key, line: 2, .. } if key == "tickTime"));
}

#[test]
fn session_timeouts() {
    let config = parse_with("tickTime=1000\nminSessionTimeout=500\nmaxSessionTimeout=90000");
    assert_eq!((config.session_timeout_min_ms, config.session_timeout_max_ms), (500, 90000));
    let config = parse_with("tickTime=1000\nminSessionTimeout=-1\nmaxSessionTimeout=-1");
    assert_eq!((config.session_timeout_min_ms, config.session_timeout_max_ms), (2000, 20000));
    let error = error_with("minSessionTimeout=9000\nmaxSessionTimeout=8000");
    assert_eq!(
        error.to_string(),
        "line 2: minSessionTimeout: minSessionTimeout (9000) must not be larger than \
         maxSessionTimeout (8000)"
    );
    // An explicit max below the default min is the same error (ZooKeeper agrees).
    assert!(matches!(
        error_with("tickTime=2000\nmaxSessionTimeout=3000"),
        ConfigError::Invalid { .. }
    ));
    assert_eq!(bad_value_key(&error_with("minSessionTimeout=-2")), "minSessionTimeout");
    assert_eq!(bad_value_key(&error_with("maxSessionTimeout=1e4")), "maxSessionTimeout");
}

#[test]
fn client_port_and_address() {
    let config = parse_with("clientPort=2181\nclientPortAddress=127.0.0.1");
    assert_eq!(
        config.client_address(ServerId(0)),
        Some(HostPort { host: "127.0.0.1".into(), port: 2181 })
    );
    let config = parse_with("clientPort=0\nclientPortAddress=[::1]");
    assert_eq!(config.client_port_address.as_deref(), Some("::1"));
    assert_eq!(config.client_port, Some(0));
    for bad in ["65536", "-1", "x"] {
        assert_eq!(bad_value_key(&error_with(&format!("clientPort={bad}"))), "clientPort");
    }
    assert_eq!(
        bad_value_key(&error_with("clientPort=1\nclientPortAddress=a b")),
        "clientPortAddress"
    );
    let error = error_with("clientPortAddress=127.0.0.1");
    assert_eq!(
        error.to_string(),
        "line 2: clientPortAddress: clientPortAddress is set but clientPort is not set"
    );
    assert_eq!(parse_with("clientPortListenBacklog=128").client_port_listen_backlog, 128);
}

#[test]
fn secure_client_port_and_client_tls_keys() {
    let config = parse_with(
        "secureClientPort=2281\nsecureClientPortAddress=127.0.0.1\n\
         ssl.keyStore.location=/k/server.p12\nzookeeper.ssl.clientAuth=want\n\
         ssl.quorum.keyStore.location=/k/quorum.p12\nclient.certReload=true\n\
         serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
         X509AuthenticationProvider.superUser=CN=admin",
    );
    assert_eq!(config.secure_client_port, Some(2281));
    assert_eq!(config.secure_client_port_address.as_deref(), Some("127.0.0.1"));
    // (ssl.quorum.* is the quorum settings' to read.)
    assert!(config.warnings.iter().all(|w| w.contains("ssl.quorum.")), "{:?}", config.warnings);
    assert!(config.notes.iter().any(|n| n.contains("serverCnxnFactory")), "{:?}", config.notes);
    let tls = &config.client_tls;
    assert!(tls.cert_reload && !tls.port_unification);
    assert_eq!(tls.x509_super_user.as_deref(), Some("CN=admin"));
    // ssl.quorum.* belongs to the quorum settings.
    assert_eq!(tls.ssl.keys().collect::<Vec<_>>(), ["ssl.clientAuth", "ssl.keyStore.location"]);
    assert_eq!(tls.settings().unwrap().client_auth, crate::runtime::tls::ClientAuth::Want);
    // ZK compat: configureSSLAuth turns the x509 provider on with a secure port.
    assert!(config.node_config(ServerId(0), 0).auth.providers.x509);
    assert!(!parse_with("clientPort=2181").node_config(ServerId(0), 0).auth.providers.x509);
    assert!(
        parse_with("authProvider.1=org.apache.zookeeper.server.auth.X509AuthenticationProvider")
            .node_config(ServerId(0), 0)
            .auth
            .providers
            .x509
    );

    assert!(matches!(
        error_with("secureClientPortAddress=0.0.0.0"),
        ConfigError::Invalid { ref key, .. } if key == "secureClientPortAddress"
    ));
    assert_eq!(bad_value_key(&error_with("secureClientPort=99999")), "secureClientPort");
    // Serving TLS needs a key store; bad TLS values are refused up front.
    let error = error_with("secureClientPort=2281");
    assert!(error.to_string().contains("ssl.keyStore.location"), "{error}");
    let error = error_with(
        "client.portUnification=true\nssl.keyStore.location=/k/a.jks\nssl.enabledProtocols=TLSv1",
    );
    assert!(error.to_string().contains("TLSv1"), "{error}");
    let error = error_with(
        "secureClientPort=2281\nssl.keyStore.location=/k/a.p12\nssl.ciphersuites=TLS_FOO",
    );
    assert!(error.to_string().contains("TLS_FOO"), "{error}");
    assert!(error_with("ssl.authProvider=custom").to_string().contains("ssl.authProvider"));
}

#[test]
fn connection_limits() {
    assert_eq!(parse_with("maxClientCnxns=0").max_client_cnxns, 0);
    assert_eq!(parse_with("maxClientCnxns=500").max_client_cnxns, 500);
    assert_eq!(bad_value_key(&error_with("maxClientCnxns=-1")), "maxClientCnxns");
    assert_eq!(parse_with("globalOutstandingLimit=5000").outstanding_max, 5000);
    assert_eq!(parse_with("zookeeper.globalOutstandingLimit=0x10").outstanding_max, 16);
    assert_eq!(bad_value_key(&error_with("globalOutstandingLimit=0")), "globalOutstandingLimit");
}

#[test]
fn autopurge() {
    let config = parse_with("autopurge.snapRetainCount=10\nautopurge.purgeInterval=24");
    assert_eq!((config.snap_retain_count, config.purge_interval_hours), (10, 24));
    let config = parse_with("autopurge.snapRetainCount=1");
    assert_eq!(config.snap_retain_count, 3);
    assert_eq!(config.warnings, vec!["line 2: invalid autopurge.snapRetainCount 1; using 3"]);
    assert_eq!(parse_with("autopurge.purgeInterval=-5").purge_interval_hours, 0);
    assert_eq!(bad_value_key(&error_with("autopurge.purgeInterval=1h")), "autopurge.purgeInterval");
    assert_eq!(
        bad_value_key(&error_with("autopurge.snapRetainCount=x")),
        "autopurge.snapRetainCount"
    );
}

#[test]
fn snap_count_and_pre_alloc_size() {
    assert_eq!(parse_with("snapCount=50000").snap_count, 50_000);
    assert_eq!(parse_with("zookeeper.snapCount=50000").snap_count, 50_000);
    let config = parse_with("snapCount=1");
    assert_eq!(config.snap_count, 2);
    assert_eq!(config.warnings, vec!["line 2: snapCount should be 2 or more; using 2"]);
    // Integer.getInteger syntax: a leading 0 is octal.
    assert_eq!(parse_with("snapCount=010").snap_count, 8);
    assert_eq!(bad_value_key(&error_with("snapCount=lots")), "snapCount");
    assert_eq!(parse_with("preAllocSize=1024").pre_alloc_size_bytes, 1024 * 1024);
    assert_eq!(bad_value_key(&error_with("preAllocSize=-1")), "preAllocSize");
    assert_eq!(bad_value_key(&error_with("preAllocSize=64M")), "preAllocSize");
}

/// ZK compat: `FileTxnLog.forceSync` is off only for exactly `no`; Ensemble warns at start-up.
#[test]
fn force_sync() {
    assert!(parse_with("").force_sync);
    let config = parse_with("forceSync=no");
    assert!(!config.force_sync);
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(config.warnings[0].starts_with("line 2: forceSync=no: "), "{:?}", config.warnings);
    assert!(!parse_with("zookeeper.forceSync=no").force_sync);
    for value in ["yes", "true", "false", "No"] {
        let config = parse_with(&format!("forceSync={value}"));
        assert!(config.force_sync, "{value}");
        assert!(config.warnings.is_empty(), "{value}: {:?}", config.warnings);
    }
}

#[test]
fn four_letter_word_whitelist() {
    let config = parse_with("4lw.commands.whitelist=stat, ruok,conf");
    let words: Vec<_> = config.four_letter_words.words().map(FourLetterWord::as_str).collect();
    assert_eq!(words, vec!["conf", "ruok", "srvr", "stat"]);
    assert_eq!(
        parse_with("4lw.commands.whitelist=*").four_letter_words,
        FourLetterWhitelist::all()
    );
    assert_eq!(
        parse_with("zookeeper.4lw.commands.whitelist=ruok,*").four_letter_words,
        FourLetterWhitelist::all()
    );
    let config = parse_with("4lw.commands.whitelist=ruok,bogus");
    assert!(config.four_letter_words.contains(FourLetterWord::Ruok));
    assert!(config.four_letter_words.contains(FourLetterWord::Srvr));
    assert_eq!(config.warnings, vec!["line 2: 4lw.commands.whitelist: unknown command 'bogus'"]);
}

#[test]
fn election_alg_peer_type_and_booleans() {
    parse_with("electionAlg=3");
    assert_eq!(
        error_with("electionAlg=1").to_string(),
        "line 2: electionAlg: expected 3 (the only election algorithm), got '1'"
    );
    assert_eq!(parse_with("peerType=OBSERVER").peer_type, PeerType::Observer);
    assert_eq!(parse_with("peerType=participant").peer_type, PeerType::Participant);
    assert_eq!(bad_value_key(&error_with("peerType=leader")), "peerType");
    assert!(
        !parse_with("standaloneEnabled=FALSE\nserver.1=a:1:2\ninitLimit=5\nsyncLimit=2")
            .standalone_enabled
    );
    assert_eq!(bad_value_key(&error_with("standaloneEnabled=yes")), "standaloneEnabled");
    let config = parse_with("reconfigEnabled=true\nlocalSessionsEnabled=true");
    assert!(config.reconfig_enabled && config.local_sessions_enabled);
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    assert!(parse_with("reconfigEnabled=false").warnings.is_empty());
}

#[test]
fn system_properties_with_or_without_prefix() {
    for prefix in ["", "zookeeper."] {
        let digest = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";
        let text = format!(
            "{prefix}extendedTypesEnabled=true\n\
             {prefix}DigestAuthenticationProvider.superDigest={digest}\n\
             {prefix}skipACL=yes\n\
             {prefix}znode.container.checkIntervalMs=5000\n\
             {prefix}znode.container.maxNeverUsedIntervalMs=120000\n\
             {prefix}enableEagerACLCheck=true\n\
             {prefix}nio.sessionlessCnxnTimeout=3000\n\
             {prefix}jute.maxbuffer=4194304"
        );
        let config = parse_with(&text);
        assert!(config.extended_types);
        assert_eq!(config.super_digest.as_deref(), Some(digest));
        assert!(config.skip_acl);
        assert_eq!(config.container_check_interval_ms, 5000);
        assert_eq!(config.container_never_used_ms, 120_000);
        assert!(config.eager_acl_check);
        assert_eq!(config.handshake_timeout_ms, 3000);
        assert_eq!(config.frame_max_bytes, 4 * 1024 * 1024);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }
}

#[test]
fn system_property_values_are_checked() {
    assert!(!parse_with("skipACL=no").skip_acl);
    // ZooKeeper would silently keep ACLs on for "true"; we refuse the ambiguity.
    assert_eq!(bad_value_key(&error_with("skipACL=true")), "skipACL");
    assert_eq!(bad_value_key(&error_with("extendedTypesEnabled=1")), "extendedTypesEnabled");
    for digest in ["nocolon", ":D/InIHSb7yEEbrWz8b9l71RjZJU=", "super:short", "super:!!!!"] {
        let error = error_with(&format!("DigestAuthenticationProvider.superDigest={digest}"));
        assert_eq!(bad_value_key(&error), "DigestAuthenticationProvider.superDigest");
    }
    assert_eq!(
        bad_value_key(&error_with("znode.container.checkIntervalMs=0")),
        "znode.container.checkIntervalMs"
    );
    assert_eq!(
        bad_value_key(&error_with("znode.container.maxNeverUsedIntervalMs=-1")),
        "znode.container.maxNeverUsedIntervalMs"
    );
    assert_eq!(bad_value_key(&error_with("jute.maxbuffer=-1")), "jute.maxbuffer");
    assert_eq!(
        bad_value_key(&error_with("nio.sessionlessCnxnTimeout=x")),
        "nio.sessionlessCnxnTimeout"
    );
}

#[test]
fn unknown_keys_warn_and_ignored_keys_note() {
    let config = parse_with(
        "fastSync=no\nadmin.serverPort=8080\nadmin.enableServer=false\n\
                             metricsProvider.httpPort=7000\nsyncEnabled=true",
    );
    assert_eq!(config.warnings, vec!["line 2: unknown key 'fastSync'; ignored"]);
    assert_eq!(config.notes.len(), 4, "{:?}", config.notes);
    assert_eq!(config.notes[0], "line 3: admin.serverPort is not used by Ensemble; ignored");
}

#[test]
fn unsupported_features_are_errors_when_enabled() {
    for line in [
        "multiAddress.enabled=true",
        "dynamicConfigFile=/etc/zk/zoo.cfg.dynamic",
        "oraclePath=/x",
        "group.1=1:2:3",
        "weight.1=1",
    ] {
        let error = error_with(line);
        assert!(matches!(error, ConfigError::Unsupported { line: 2, .. }), "{line}: {error:?}");
    }
    let config = parse_with("sslQuorum=false\nquorum.auth.enableSasl=false\nportUnification=false");
    assert!(config.warnings.is_empty());
    assert_eq!(
        error_with("weight.2=1").to_string(),
        "line 2: weight.2: hierarchical quorums (group.*/weight.*) is not supported by Ensemble"
    );
}

#[test]
fn quorum_configuration() {
    let mut config = parse(QUORUM);
    assert!(config.is_quorum());
    assert_eq!(config.servers.len(), 3);
    assert_eq!(
        config.servers[&1],
        ServerSpec {
            id: 1,
            host: "zk1.example.com".into(),
            quorum_port: 2888,
            election_port: 3888,
            peer_type: PeerType::Participant,
            client: None,
        }
    );
    assert_eq!(config.servers[&2].client, Some(HostPort { host: "0.0.0.0".into(), port: 2182 }));
    assert_eq!(config.servers[&3].client, Some(HostPort { host: "10.0.0.3".into(), port: 2181 }));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.resolve_server_id(Some(1)), Ok(ServerId(1)));
    assert_eq!(
        config.client_address(ServerId(1)),
        Some(HostPort { host: "0.0.0.0".into(), port: 2181 })
    );
    // A server line's client address overrides clientPort; the wildcard static port disagrees.
    assert_eq!(
        config.resolve_server_id(Some(2)).map_err(|e| e.to_string()),
        Err("clientPort: client address for server 2 is 0.0.0.0:2181 in \
             clientPort/clientPortAddress but 0.0.0.0:2182 in its server.2 line"
            .to_string())
    );
    assert_eq!(config.resolve_server_id(Some(3)), Ok(ServerId(3)));
    assert_eq!(
        config.client_address(ServerId(3)),
        Some(HostPort { host: "10.0.0.3".into(), port: 2181 })
    );
    assert_eq!(config.resolve_server_id(None), Err(ConfigError::MissingMyid));
    assert_eq!(
        config.resolve_server_id(Some(7)),
        Err(ConfigError::MyidNotAServer { id: 7, servers: vec![1, 2, 3] })
    );
}

#[test]
fn quorum_requires_limits() {
    let servers = "server.1=a:2888:3888\nserver.2=b:2888:3888\nserver.3=c:2888:3888";
    assert_eq!(
        error_with(&format!("syncLimit=5\n{servers}")),
        ConfigError::Missing { key: "initLimit", context: CONTEXT_QUORUM }
    );
    assert_eq!(
        error_with(&format!("initLimit=5\n{servers}")),
        ConfigError::Missing { key: "syncLimit", context: CONTEXT_QUORUM }
    );
    // Standalone ignores them.
    parse_with("initLimit=0\nsyncLimit=0");
}

#[test]
fn quorum_shapes() {
    let limits = "initLimit=5\nsyncLimit=2";
    // One participant with standaloneEnabled: runs standalone, with a warning.
    let mut config = parse_with(&format!("{limits}\nserver.1=a:2888:3888"));
    assert!(!config.is_quorum());
    assert_eq!(config.warnings.len(), 1);
    assert_eq!(config.resolve_server_id(Some(1)), Ok(ServerId(0)));
    // ... but a quorum of one when standaloneEnabled=false.
    let mut config =
        parse_with(&format!("{limits}\nstandaloneEnabled=false\nserver.1=a:2888:3888"));
    assert!(config.is_quorum());
    assert_eq!(config.resolve_server_id(Some(1)), Ok(ServerId(1)));
    // Two participants: no failure tolerated; four: even.
    let two = parse_with(&format!("{limits}\nserver.1=a:1:2\nserver.2=b:1:2"));
    assert_eq!(
        two.warnings,
        vec!["no server failure will be tolerated; you need at least 3 servers"]
    );
    let four = parse_with(&format!(
        "{limits}\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\nserver.4=d:1:2"
    ));
    assert_eq!(four.warnings, vec!["non-optimal configuration, consider an odd number of servers"]);
    // Observers need a quorum of participants.
    for servers in ["server.1=a:1:2:observer", "server.1=a:1:2\nserver.2=b:1:2:observer"] {
        let error = error_with(&format!("{limits}\n{servers}"));
        assert!(
            matches!(error, ConfigError::Invalid { ref key, .. } if key == "server.N"),
            "{error}"
        );
    }
    let error = error_with(&format!("{limits}\nstandaloneEnabled=false\nserver.1=a:1:2:observer"));
    assert!(matches!(error, ConfigError::Invalid { .. }));
}

#[test]
fn observer_peer_type_follows_the_server_line() {
    let text = "initLimit=5\nsyncLimit=2\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n\
                server.4=d:1:2:observer";
    let mut config = parse_with(text);
    assert_eq!(config.participants().count(), 3);
    assert_eq!(config.resolve_server_id(Some(4)), Ok(ServerId(4)));
    assert_eq!(config.peer_type, PeerType::Observer);
    assert_eq!(
        config.warnings,
        vec!["peerType is participant but server.4 says observer; using observer"]
    );
    let mut config = parse_with(&format!("{text}\npeerType=observer"));
    assert_eq!(config.resolve_server_id(Some(4)), Ok(ServerId(4)));
    assert!(config.warnings.is_empty());
}

#[test]
fn server_line_syntax() {
    let limits = "initLimit=5\nsyncLimit=2\nserver.9=z:1:2\nserver.8=y:1:2";
    let spec = |value: &str| {
        let config = parse_with(&format!("{limits}\nserver.1={value}"));
        config.servers[&1].clone()
    };
    let v6 = spec("[2001:db8::1]:2888:3888:observer;[::1]:2181");
    assert_eq!(v6.host, "2001:db8::1");
    assert_eq!(v6.peer_type, PeerType::Observer);
    assert_eq!(v6.client, Some(HostPort { host: "::1".into(), port: 2181 }));
    let spaced = spec(" a : 2888 : 3888 : Participant ; 2181 ");
    assert_eq!((spaced.host.as_str(), spaced.quorum_port, spaced.election_port), ("a", 2888, 3888));
    assert_eq!(spaced.client, Some(HostPort { host: "0.0.0.0".into(), port: 2181 }));
    assert_eq!(spec("a:1:2;").client, None);
    assert_eq!(parse_with(&format!("{limits}\nserver.01=a:1:2")).servers[&1].host, "a");
    // A secure client part is accepted with a warning.
    let config = parse_with(&format!("{limits}\nserver.1=a:1:2;2181;2281"));
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    for bad in [
        "a:1",
        "a:1:2:3:4",
        ":1:2",
        "a:x:2",
        "a:1:0",
        "a:1:70000",
        "a:1:2:leader",
        "a:1:2;b:c:3",
        "a:1:2;99999",
        "a:1:2;1;2;3",
        "[::1:1:2",
        "[::1]",
        "[::1]:",
    ] {
        let error = error_with(&format!("{limits}\nserver.1={bad}"));
        assert_eq!(bad_value_key(&error), "server.1", "{bad}");
    }
    let error = error_with(&format!("{limits}\nserver.1=a:2888:2888"));
    assert_eq!(
        error.to_string(),
        "line 6: server.1: quorum and election port must be different, both are 2888"
    );
    let error = error_with(&format!("{limits}\nserver.1=a:1:2|b:1:2"));
    assert!(matches!(error, ConfigError::Unsupported { .. }));
}

#[test]
fn server_ids() {
    let limits = "initLimit=5\nsyncLimit=2\nserver.2=b:1:2\nserver.3=c:1:2";
    parse_with(&format!("{limits}\nserver.255=a:1:2"));
    for bad in ["0", "256", "-1", "x", ""] {
        let error = error_with(&format!("{limits}\nserver.{bad}=a:1:2"));
        assert!(matches!(error, ConfigError::BadValue { .. }), "{bad}: {error:?}");
    }
    let error = error_with(&format!("{limits}\nserver.1=a:1:2\nserver.01=a:3:4"));
    assert_eq!(error.to_string(), "line 7: server.01: server id 1 is already defined on line 6");
    // Extended types keep the top byte of session ids: ids stop at 254.
    let error = error_with(&format!("{limits}\nextendedTypesEnabled=true\nserver.255=a:1:2"));
    assert!(matches!(error, ConfigError::Invalid { line: 7, .. }), "{error:?}");
}

#[test]
fn membership_version() {
    assert_eq!(parse_with("version=100000000").membership_version, 0x1_0000_0000);
    assert_eq!(bad_value_key(&error_with("version=xyz")), "version");
}

#[test]
fn myid() {
    assert_eq!(parse_myid("1"), Ok(1));
    assert_eq!(parse_myid("255\n"), Ok(255));
    assert_eq!(parse_myid(" 7 \r\nignored"), Ok(7));
    for bad in ["", "0", "256", "-1", "one", "1.0", "\n1", "18446744073709551617"] {
        assert!(matches!(parse_myid(bad), Err(ConfigError::BadMyid { .. })), "{bad:?}");
    }
}

#[test]
fn standalone_default() {
    let config = ServerConfig::standalone_default();
    assert_eq!(config.tick_time_ms, 2000);
    assert_eq!(config.data_dir, PathBuf::from("./ensemble-data"));
    assert_eq!(
        config.client_address(ServerId(0)),
        Some(HostPort { host: "127.0.0.1".into(), port: 2181 })
    );
    assert_eq!((config.session_timeout_min_ms, config.session_timeout_max_ms), (4000, 40000));
    let words: Vec<_> = config.four_letter_words.words().map(FourLetterWord::as_str).collect();
    // Every word, as the README says `ensemble server` answers.
    assert_eq!(config.four_letter_words, FourLetterWhitelist::all());
    assert_eq!(words.len(), FourLetterWord::ALL.len());
    assert!(config.force_sync);
    assert!(config.warnings.is_empty());
    // The core's standalone defaults agree with ours, except the seed.
    assert_eq!(config.node_config(ServerId(0), 0), NodeConfig::standalone());
}

#[test]
fn node_config_carries_every_core_value() {
    let config = parse_with(
        "tickTime=1000\nminSessionTimeout=1500\nmaxSessionTimeout=9000\nsnapCount=1000\n\
         jute.maxbuffer=2048\nextendedTypesEnabled=true\nskipACL=yes\n\
         DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n\
         znode.container.checkIntervalMs=100\nznode.container.maxNeverUsedIntervalMs=200\n\
         nio.sessionlessCnxnTimeout=300\nglobalOutstandingLimit=400",
    );
    assert_eq!(
        config.node_config(ServerId(3), 42),
        NodeConfig {
            server_id: ServerId(3),
            tick_time_ms: 1000,
            session_timeout_min_ms: 1500,
            session_timeout_max_ms: 9000,
            snap_count: 1000,
            frame_max_bytes: 2048,
            extended_types: true,
            super_digest: Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=".into()),
            skip_acl: true,
            container_check_interval_ms: 100,
            container_never_used_ms: 200,
            handshake_timeout_ms: 300,
            outstanding_max: 400,
            rng_seed: 42,
            membership: Default::default(),
            reconfig_enabled: false,
            canaries: Default::default(),
            zxid_counter_start: 0,
            init_limit: 10,
            sync_limit: 5,
            auth: Default::default(),
        }
    );
}

#[test]
fn the_slow_step_threshold_is_an_ensemble_key() {
    assert_eq!(parse("dataDir=/d\nensemble.slowStepWarnMs=20").slow_step_warn_ms, 20);
    assert_eq!(parse("dataDir=/d\nensemble.slowStepWarnMs=0").slow_step_warn_ms, 0);
    assert!(ServerConfig::parse("dataDir=/d\nensemble.slowStepWarnMs=-1").is_err());
    assert!(ServerConfig::parse("dataDir=/d\nensemble.slowStepWarnMs=soon").is_err());
}

#[test]
fn later_duplicates_win() {
    let config = parse("dataDir=/a\ntickTime=1000\ndataDir=/b\ntickTime=4000");
    assert_eq!(config.data_dir, PathBuf::from("/b"));
    assert_eq!(config.tick_time_ms, 4000);
}

#[test]
fn load_reads_zoo_cfg_and_myid() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let cfg = dir.path().join("zoo.cfg");
    let text = format!(
        "dataDir={}\ninitLimit=5\nsyncLimit=2\nclientPort=2181\n\
         server.1=a:2888:3888\nserver.2=b:2888:3888\nserver.3=c:2888:3888\n",
        data.display()
    );
    std::fs::write(&cfg, text).expect("write zoo.cfg");
    assert_eq!(ServerConfig::load(&cfg).map(|(_, id)| id), Err(ConfigError::MissingMyid));
    std::fs::write(data.join("myid"), "2\n").expect("write myid");
    let (config, id) = ServerConfig::load(&cfg).expect("valid");
    assert_eq!(id, ServerId(2));
    assert_eq!(config.servers.len(), 3);
    std::fs::write(data.join("myid"), DEBIAN_MYID).expect("write myid");
    assert!(matches!(ServerConfig::load(&cfg), Err(ConfigError::BadMyid { .. })));
    let missing = dir.path().join("nope.cfg");
    assert!(
        matches!(ServerConfig::load(&missing), Err(ConfigError::Io { ref path, .. }) if *path == missing)
    );
}

/// A valid configuration as values, to render as `zoo.cfg` text in many spellings.
#[derive(Clone, Debug)]
struct Generated {
    tick: u32,
    init_limit: u32,
    sync_limit: u32,
    data_dir: String,
    data_log_dir: Option<String>,
    client_port: u16,
    max_client_cnxns: u32,
    session_timeouts: Option<(i32, i32)>,
    snap_retain_count: u32,
    snap_count: u64,
    words: Vec<FourLetterWord>,
    skip_acl: bool,
    servers: Vec<(u64, String, u16, u16, bool, Option<u16>)>,
}

fn generated() -> impl Strategy<Value = Generated> {
    let server = (
        1u64..=255,
        "[a-z][a-z0-9.-]{0,12}",
        1u16..=65535,
        1u16..=65535,
        any::<bool>(),
        proptest::option::of(any::<u16>()),
    );
    (
        (1u32..=100_000, 1u32..=1000, 1u32..=1000, "/[a-zA-Z0-9_/ .-]{0,30}[a-zA-Z0-9_]"),
        (proptest::option::of("/[a-z0-9/]{1,20}"), any::<u16>(), 0u32..=10_000),
        (proptest::option::of((0i32..100_000, 0i32..100_000)), 3u32..=100, 2u64..=1_000_000),
        (proptest::sample::subsequence(FourLetterWord::ALL.to_vec(), 0..=18), any::<bool>()),
        proptest::collection::vec(server, 0..=7),
    )
        .prop_map(|(a, b, c, d, servers)| {
            let session_timeouts = c.0.map(|(x, y)| (x.min(y), x.max(y)));
            let mut unique = BTreeMap::new();
            for (id, host, quorum, election, observer, client) in servers {
                if quorum != election {
                    unique.insert(id, (id, host, quorum, election, observer, client));
                }
            }
            let mut servers: Vec<_> = unique.into_values().collect();
            // Keep the quorum rules satisfied: at least two participants, or none at all.
            let participants = servers.iter().filter(|s| !s.4).count();
            if participants < 2 {
                servers.clear();
            }
            Generated {
                tick: a.0,
                init_limit: a.1,
                sync_limit: a.2,
                data_dir: a.3,
                data_log_dir: b.0,
                client_port: b.1,
                max_client_cnxns: b.2,
                session_timeouts,
                snap_retain_count: c.1,
                snap_count: c.2,
                words: d.0,
                skip_acl: d.1,
                servers,
            }
        })
}

/// Renders one `key value` line in one of the Java properties spellings, sometimes split by
/// a continuation.
fn render_line(out: &mut String, key: &str, value: &str, style: u8) {
    match style % 5 {
        0 => out.push_str(&format!("{key}={value}\n")),
        1 => out.push_str(&format!("  {key} : {value}\n")),
        2 => out.push_str(&format!("{key} {value}\n")),
        3 => out.push_str(&format!("\t{key}\t=\t{value}\t\r\n")),
        _ => {
            // Split near the middle, never right after a backslash (that would change escapes).
            let middle = (value.len() / 2..=value.len())
                .find(|&i| value.is_char_boundary(i) && !value[..i].ends_with('\\'))
                .unwrap_or(value.len());
            out.push_str(&format!("{key}={}\\\n      {}\n", &value[..middle], &value[middle..]));
        }
    }
}

fn render(g: &Generated, styles: &[u8]) -> String {
    let mut lines: Vec<(String, String)> = vec![
        ("tickTime".into(), g.tick.to_string()),
        ("initLimit".into(), g.init_limit.to_string()),
        ("syncLimit".into(), g.sync_limit.to_string()),
        ("dataDir".into(), g.data_dir.replace(' ', "\\ ")),
        ("clientPort".into(), g.client_port.to_string()),
        ("maxClientCnxns".into(), g.max_client_cnxns.to_string()),
        ("autopurge.snapRetainCount".into(), g.snap_retain_count.to_string()),
        ("snapCount".into(), g.snap_count.to_string()),
        ("skipACL".into(), if g.skip_acl { "yes" } else { "no" }.into()),
    ];
    if let Some(dir) = &g.data_log_dir {
        lines.push(("dataLogDir".into(), dir.clone()));
    }
    if let Some((min, max)) = g.session_timeouts {
        lines.push(("minSessionTimeout".into(), min.to_string()));
        lines.push(("maxSessionTimeout".into(), max.to_string()));
    }
    let names: Vec<&str> = g.words.iter().map(|w| w.as_str()).collect();
    lines.push(("4lw.commands.whitelist".into(), names.join(",")));
    for (id, host, quorum, election, observer, client) in &g.servers {
        let role = if *observer { ":observer" } else { "" };
        let client = client.map_or(String::new(), |port| format!(";{port}"));
        lines.push((format!("server.{id}"), format!("{host}:{quorum}:{election}{role}{client}")));
    }
    let mut out = String::from("# generated\n\n");
    for (index, (key, value)) in lines.iter().enumerate() {
        render_line(&mut out, key, value, styles[index % styles.len()]);
        if index % 3 == 0 {
            out.push_str("! a comment\n   \n");
        }
    }
    out
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>(), myid in any::<String>()) {
        let _ = ServerConfig::parse(&text);
        let _ = parse_myid(&myid);
    }

    #[test]
    fn config_shaped_text_never_panics(
        lines in proptest::collection::vec(
            (
                proptest::sample::select(vec![
                    "tickTime", "initLimit", "syncLimit", "dataDir", "clientPort", "server.1",
                    "server.2", "server.3", "minSessionTimeout", "maxSessionTimeout", "peerType",
                    "standaloneEnabled", "snapCount", "4lw.commands.whitelist", "skipACL",
                    "clientPortAddress", "extendedTypesEnabled", "version", "group.1",
                ]),
                "[ -~]{0,30}",
            ),
            0..12,
        ),
        myid in proptest::option::of(0u64..300),
    ) {
        let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        if let Ok(mut config) = ServerConfig::parse(&text) {
            let _ = config.resolve_server_id(myid);
            let _ = config.client_address(ServerId(myid.unwrap_or(0)));
        }
    }

    #[test]
    fn generated_config_round_trips(g in generated(), styles in proptest::collection::vec(0u8..5, 1..8)) {
        let text = render(&g, &styles);
        let config = ServerConfig::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(config.tick_time_ms, g.tick);
        prop_assert_eq!(config.init_limit, g.init_limit);
        prop_assert_eq!(config.sync_limit, g.sync_limit);
        prop_assert_eq!(&config.data_dir, &PathBuf::from(&g.data_dir));
        let log_dir = g.data_log_dir.clone().unwrap_or_else(|| g.data_dir.clone());
        prop_assert_eq!(&config.data_log_dir, &PathBuf::from(log_dir));
        prop_assert_eq!(config.client_port, Some(g.client_port));
        prop_assert_eq!(config.max_client_cnxns, g.max_client_cnxns);
        let timeouts = g.session_timeouts.unwrap_or((2 * g.tick as i32, 20 * g.tick as i32));
        prop_assert_eq!((config.session_timeout_min_ms, config.session_timeout_max_ms), timeouts);
        prop_assert_eq!(config.snap_retain_count, g.snap_retain_count);
        prop_assert_eq!(config.snap_count, g.snap_count);
        prop_assert_eq!(config.skip_acl, g.skip_acl);
        prop_assert_eq!(&config.four_letter_words, &FourLetterWhitelist::from_words(&g.words));
        prop_assert_eq!(config.servers.len(), g.servers.len());
        for (id, host, quorum, election, observer, client) in &g.servers {
            let spec = &config.servers[id];
            prop_assert_eq!(&spec.host, host);
            prop_assert_eq!((spec.quorum_port, spec.election_port), (*quorum, *election));
            let role = if *observer { PeerType::Observer } else { PeerType::Participant };
            prop_assert_eq!(spec.peer_type, role);
            let client = client.map(|port| HostPort { host: "0.0.0.0".into(), port });
            prop_assert_eq!(&spec.client, &client);
        }
    }
}

#[test]
fn client_limits_default_as_zookeeper_and_take_both_spellings() {
    let config = parse_with("");
    let limits = &config.client_limits;
    assert_eq!(limits, &ClientLimits::default());
    assert_eq!(limits.connection_max_tokens, 0, "ZooKeeper: the connection throttle is off");
    assert_eq!((limits.connection_fill_time_ms, limits.connection_fill_count), (1, 1));
    assert_eq!(limits.connection_freeze_time_ms, -1);
    assert_eq!(limits.connection_drop_increase, 0.02);
    assert_eq!(limits.connection_drop_decrease, 0.002);
    assert_eq!(limits.connection_decrease_ratio, 0.0);
    assert_eq!(limits.request_throttle_limit, 0, "ZooKeeper: the request throttle is off");
    assert_eq!(limits.request_throttle_stall_ms, 100);
    assert!(limits.request_throttle_drop_stale);
    assert_eq!(config.outstanding_max, 1000);

    // The administrator's guide names, the system properties, and those with `zookeeper.`.
    let config = parse_with(
        "connectionMaxTokens=50\nconnectionTokenFillTime=10\nconnectionTokenFillCount=3\n\
         connectionFreezeTime=200\nconnectionDropIncrease=0.1\nconnectionDropDecrease=0.01\n\
         connectionDecreaseRatio=0.5\nrequestThrottleLimit=200\nrequestThrottleStallTime=20\n\
         requestThrottleDropStale=false\nensemble.connReplyBudgetBytes=8388608\n\
         ensemble.connRequestBudgetBytes=0x10000\nensemble.replyBudgetBytes=16777216",
    );
    let limits = &config.client_limits;
    assert_eq!(limits.connection_max_tokens, 50);
    assert_eq!((limits.connection_fill_time_ms, limits.connection_fill_count), (10, 3));
    assert_eq!(limits.connection_freeze_time_ms, 200);
    assert_eq!((limits.connection_drop_increase, limits.connection_drop_decrease), (0.1, 0.01));
    assert_eq!(limits.connection_decrease_ratio, 0.5);
    assert_eq!((limits.request_throttle_limit, limits.request_throttle_stall_ms), (200, 20));
    assert!(!limits.request_throttle_drop_stale);
    assert_eq!((limits.reply_budget_bytes, limits.request_budget_bytes), (8 << 20, 0x10000));
    assert_eq!(limits.server_reply_budget_bytes, 16 << 20);

    let config = parse_with(
        "connection_throttle_tokens=7\nzookeeper.connection_throttle_fill_time=9\n\
         request_throttle_max_requests=11\nzookeeper.request_throttle_stall_time=13",
    );
    let limits = &config.client_limits;
    assert_eq!((limits.connection_max_tokens, limits.connection_fill_time_ms), (7, 9));
    assert_eq!((limits.request_throttle_limit, limits.request_throttle_stall_ms), (11, 13));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    for bad in [
        "connectionMaxTokens=-1",
        "connectionTokenFillTime=0",
        "connectionFreezeTime=-2",
        "connectionDropIncrease=1.5",
        "requestThrottleStallTime=x",
        "ensemble.connReplyBudgetBytes=10",
    ] {
        let key = bad.split('=').next().expect("key");
        assert_eq!(bad_value_key(&error_with(bad)), key, "{bad}");
    }
}

#[test]
fn quorum_tls_keys_are_read_under_either_spelling() {
    let config = parse_with(
        "sslQuorum=true\nportUnification=TRUE\nsslQuorumReloadCertFiles=true\n\
         ssl.quorum.keyStore.location=/etc/zk/q.pem\n\
         zookeeper.ssl.quorum.trustStore.location=/etc/zk/ca.pem\nssl.quorum.keyStore.type=PEM",
    );
    let quorum = &config.quorum_security;
    assert!(quorum.ssl_quorum && quorum.port_unification && quorum.reload_cert_files);
    assert!(quorum.accepts_tls());
    let keys: Vec<(&str, &str)> =
        quorum.ssl.iter().map(|(key, value)| (key.as_str(), value.as_str())).collect();
    assert_eq!(
        keys,
        [
            ("ssl.quorum.keyStore.location", "/etc/zk/q.pem"),
            ("ssl.quorum.keyStore.type", "PEM"),
            ("ssl.quorum.trustStore.location", "/etc/zk/ca.pem"),
        ]
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let plain = parse_with("sslQuorum=false\nquorum.auth.enableSasl=false\nportUnification=false");
    assert_eq!(plain.quorum_security, QuorumSecurity::default());
    assert!(plain.warnings.is_empty());
    assert!(matches!(error_with("sslQuorum=yes"), ConfigError::BadValue { line: 2, .. }));
}

#[test]
fn quorum_sasl_keys_and_their_defaults() {
    let sasl = parse_with("").quorum_security.sasl;
    assert!(!sasl.enabled && !sasl.learner_require && !sasl.server_require);
    assert_eq!(sasl.learner_login_context, "QuorumLearner");
    assert_eq!(sasl.server_login_context, "QuorumServer");
    assert_eq!(sasl.kerberos_service_principal, "zkquorum/localhost");
    let sasl = parse_with(
        "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
         quorum.auth.serverRequireSasl=true\nquorum.auth.learner.saslLoginContext=L\n\
         quorum.auth.server.saslLoginContext=S\nquorum.auth.kerberos.servicePrincipal=zk/_HOST",
    )
    .quorum_security
    .sasl;
    assert!(sasl.enabled && sasl.learner_require && sasl.server_require);
    assert_eq!(
        (sasl.learner_login_context.as_str(), sasl.server_login_context.as_str()),
        ("L", "S")
    );
    assert_eq!(sasl.kerberos_service_principal, "zk/_HOST");
}

/// ZK compat: `parseProperties` refuses each flag that would leave a member unable to join.
#[test]
fn quorum_sasl_flags_that_contradict_each_other_are_errors() {
    for (lines, message) in [
        (
            "quorum.auth.serverRequireSasl=true",
            "quorum.auth.serverRequireSasl: quorum.auth.enableSasl is disabled, so cannot enable \
             quorum.auth.serverRequireSasl",
        ),
        (
            "quorum.auth.learnerRequireSasl=true",
            "quorum.auth.learnerRequireSasl: quorum.auth.enableSasl is disabled, so cannot enable \
             quorum.auth.learnerRequireSasl",
        ),
        (
            "quorum.auth.enableSasl=true\nquorum.auth.serverRequireSasl=true",
            "quorum.auth.serverRequireSasl: quorum.auth.learnerRequireSasl is disabled, so cannot \
             enable quorum.auth.serverRequireSasl",
        ),
    ] {
        assert_eq!(error_with(lines).to_string(), message, "{lines}");
    }
    // The rolling switch's middle step: learners authenticate, servers do not insist yet.
    let config = parse_with("quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true");
    assert!(config.quorum_security.sasl.learner_require);
}

mod system_properties {
    use super::*;
    use crate::runtime::config::sysprops::SystemProperties;

    #[test]
    fn quorum_tls_keys_come_from_jvm_flags_too() {
        let mut system = SystemProperties::default();
        system.insert("zookeeper.ssl.quorum.keyStore.location", "/k.pem", "SERVER_JVMFLAGS");
        system.insert("zookeeper.ssl.quorum.trustStore.location", "/flag.pem", "JVMFLAGS");
        // ZK compat: a zoo.cfg line is set as a system property after the JVM's flags.
        let text = with_data_dir("sslQuorum=true\nssl.quorum.trustStore.location=/cfg.pem");
        let config = ServerConfig::parse_with_system_properties(&text, &system).expect("parse");
        let ssl = &config.quorum_security.ssl;
        assert_eq!(ssl.get("ssl.quorum.keyStore.location").map(String::as_str), Some("/k.pem"));
        assert_eq!(ssl.get("ssl.quorum.trustStore.location").map(String::as_str), Some("/cfg.pem"));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    fn with(flags: &[(&str, &str)], text: &str) -> Result<ServerConfig, ConfigError> {
        let mut system = SystemProperties::default();
        for (k, v) in flags {
            system.insert(k, v, "SERVER_JVMFLAGS");
        }
        ServerConfig::parse_with_system_properties(text, &system)
    }

    #[test]
    fn jvm_flags_set_zookeeper_keys_and_zoo_cfg_wins() {
        let c = with(&[("zookeeper.snapCount", "500"), ("jute.maxbuffer", "4096")], "dataDir=/d")
            .unwrap();
        assert_eq!((c.snap_count, c.frame_max_bytes), (500, 4096));
        assert!(c.system_properties.iter().any(|l| l.contains("zookeeper.snapCount=500")));
        let c = with(&[("zookeeper.snapCount", "500")], "dataDir=/d\nsnapCount=700").unwrap();
        assert_eq!(c.snap_count, 700);
    }

    #[test]
    fn a_bad_flag_names_its_origin() {
        let e = with(&[("zookeeper.snapCount", "many")], "dataDir=/d").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("SERVER_JVMFLAGS") && text.contains("snapCount"), "{text}");
        assert!(!text.contains("line 0"), "{text}");
    }

    #[test]
    fn sasl_keys_from_flags_or_zoo_cfg() {
        let c = with(
            &[
                ("java.security.auth.login.config", "/etc/jaas.conf"),
                (
                    "zookeeper.authProvider.1",
                    "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
                ),
                ("zookeeper.superUser", "admin"),
            ],
            "dataDir=/d\nenforce.auth.enabled=true\nenforce.auth.schemes=sasl, digest",
        )
        .unwrap();
        assert_eq!(
            c.auth.jaas_file.as_ref().unwrap().0,
            std::path::PathBuf::from("/etc/jaas.conf")
        );
        assert!(c.auth.core.providers.sasl);
        assert_eq!(c.auth.core.super_users, ["admin"]);
        assert_eq!(c.auth.core.enforce_schemes, ["sasl", "digest"]);
        let node = c.node_config(ServerId(0), 1);
        assert!(node.auth.providers.sasl);
        // The zoo.cfg form of the JAAS path (an Ensemble extension).
        let c = parse("dataDir=/d\njava.security.auth.login.config=/x/jaas.conf");
        assert_eq!(c.auth.jaas_file.unwrap().1, "zoo.cfg line 2");
    }

    #[test]
    fn enforce_auth_needs_available_schemes() {
        let e = ServerConfig::parse("dataDir=/d\nenforce.auth.enabled=true").unwrap_err();
        assert!(e.to_string().contains("enforce.auth.schemes"), "{e}");
        let e =
            ServerConfig::parse("dataDir=/d\nenforce.auth.enabled=true\nenforce.auth.schemes=sasl")
                .unwrap_err();
        assert!(e.to_string().contains("sasl is not available"), "{e}");
        let e = ServerConfig::parse("dataDir=/d\nsessionRequireClientSASLAuth=true").unwrap_err();
        assert!(e.to_string().contains("sasl is not available"), "{e}");
        let c = ServerConfig::parse(
            "dataDir=/d\nsessionRequireClientSASLAuth=true\n\
             authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
        )
        .unwrap();
        assert_eq!(c.auth.core.enforce_schemes, ["sasl"]);
    }

    #[test]
    fn jaas_file_users_are_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let jaas = dir.path().join("jaas.conf");
        std::fs::write(
            &jaas,
            "Server {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n \
             user_bob=\"pw\";\n};\n",
        )
        .unwrap();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(&cfg, format!("dataDir={}\n", dir.path().display())).unwrap();
        let mut system = SystemProperties::default();
        system.insert("java.security.auth.login.config", jaas.to_str().unwrap(), "JVMFLAGS");
        let (c, _) = ServerConfig::load_with_system_properties(&cfg, &system).unwrap();
        let sasl = c.auth.core.sasl.as_ref().unwrap();
        assert_eq!(sasl.password_of("bob").as_deref(), Some("pw"));
        // A Kerberos module is a clear error naming GSSAPI.
        std::fs::write(
            &jaas,
            "Server {\n com.sun.security.auth.module.Krb5LoginModule required;\n};\n",
        )
        .unwrap();
        let e = ServerConfig::load_with_system_properties(&cfg, &system).unwrap_err();
        assert!(e.to_string().contains("GSSAPI") && e.to_string().contains("JVMFLAGS"), "{e}");
    }
}
