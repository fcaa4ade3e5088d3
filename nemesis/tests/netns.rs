//! The harness's network namespaces: a run never shares its subnet with another run.

use ensemble_nemesis::netns::Network;

/// Two harness processes whose pids are equal modulo 250 used to pick the same `10.a.b.0/24`;
/// the harness's namespace then held two connected routes for it and the kernel used the
/// older one, so the newer run's clients and `srvr` queries reached the older run's members
/// (seen as WGL violations in one run and a member that "never answered" in the other).
#[test]
fn a_subnet_in_use_is_not_shared() {
    let pid = std::process::id();
    let first = Network::setup_named(
        2,
        &format!("ensnemt-{pid}-a"),
        &format!("nemt{}a", pid % 100_000),
        (250, 7),
    );
    if !first.partitions() {
        eprintln!("namespaces unavailable here ({first:?}): not checked");
        return;
    }
    let second = Network::setup_named(
        2,
        &format!("ensnemt-{pid}-b"),
        &format!("nemt{}b", pid % 100_000),
        (250, 7),
    );
    assert!(second.partitions(), "the second run fell back: {second:?}");
    assert_ne!(first.member_ip(1), second.member_ip(1), "two runs share a subnet");
    assert!(first.routes_own() && second.routes_own(), "a member address routes to another run");
}
