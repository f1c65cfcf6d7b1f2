//! The host firewall (`/etc/nftables.conf`) with the real nftables: `nft -c` accepts what
//! apply writes for every deployment and addressing, and the rules, loaded in a test-created
//! network namespace whose veths are named like the appliance's NICs, let real TCP connects
//! reach sshd and the Data Plane API through `management` only, a virtual IP's other ports
//! through any NIC, and nothing on the workload or frontend addresses themselves.
#![allow(clippy::unwrap_used)]

mod apply_support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use apply_support::*;
use testkit::netns::Netns;

const CONF: &str = "etc/nftables.conf";
const DATAPLANE_PORT: u16 = 5556;
/// A port haproxy would bind on a virtual IP when the Data Plane API programs a frontend.
const VIP_PORT: u16 = 8443;
/// Two virtual IPs of frontend_props()'s range, one routed to the workload NIC and one to the
/// frontend NIC by the client.
const VIP_VIA_WORKLOAD: &str = "192.168.100.70";
const VIP_VIA_FRONTEND: &str = "192.168.100.71";

fn rendered_rules(props: &[(String, String)], deployment: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let a = apply(&root, props, deployment, &[]);
    assert!(a.status.success(), "{}", text(&a));
    let path = root.join(CONF);
    let rules = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("apply wrote no {}: {e}", path.display()));
    (dir, rules)
}

/// `nft -c -f`, in a private network namespace so nothing can touch the host's rules.
fn nft_check(rules: &str, dir: &Path) {
    let file = dir.join("check.nft");
    std::fs::write(&file, rules).unwrap();
    let o = Command::new("unshare")
        .args(["-n", "nft", "-c", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "nft -c rejects:\n{rules}\n{}", text(&o));
}

#[test]
fn nft_accepts_the_rules_of_every_deployment() {
    if !have("nft") || !have("unshare") {
        return;
    }
    let dhcp = with(
        default_props(),
        &[
            ("network.management_ip", Some("")),
            ("network.management_gateway", None),
            ("loadbalance.service_ip_range", Some("10.99.0.1-10.99.0.6")),
            ("loadbalance.dataplane_port", Some("65535")),
        ],
    );
    let cases = [
        (default_props(), "default"),
        (frontend_props(), "frontend"),
        (dhcp, "default"),
        // an HA pair's node: VRRP from the peer
        (ha_props(frontend_props(), "secondary"), "frontend"),
    ];
    for (props, deployment) in cases {
        let (dir, rules) = rendered_rules(&props, deployment);
        nft_check(&rules, dir.path());
    }
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().unwrap();
    assert!(o.status.success(), "ip {args:?}: {}", text(&o));
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Outcome {
    Accepted,
    /// A TCP reset: the port looks closed.
    Refused,
    /// No answer: the packet was dropped.
    Dropped,
}

fn connect(to: &str, port: u16) -> Outcome {
    let addr: SocketAddr = format!("{to}:{port}").parse().unwrap();
    match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(_) => Outcome::Accepted,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Outcome::Refused,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Outcome::Dropped,
        Err(e) => panic!("connecting to {addr}: {e}"),
    }
}

/// The appliance side (NICs named management/workload/frontend, AnyIP for the range) and a
/// client with one veth on each segment and the two virtual IPs routed to different NICs.
fn topology(appliance: &Netns, client: &Netns, lb_range: &str) {
    let links = [
        ("management", "c-mgmt", "192.168.0"),
        ("workload", "c-work", "192.168.10"),
        ("frontend", "c-front", "192.168.100"),
    ];
    for (nic, peer, net) in links {
        ip(&[
            "link",
            "add",
            nic,
            "netns",
            appliance.name(),
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "netns",
            client.name(),
        ]);
        appliance.ip(&["addr", "add", &format!("{net}.2/24"), "dev", nic]);
        appliance.ip(&["link", "set", nic, "up"]);
        client.ip(&["addr", "add", &format!("{net}.1/24"), "dev", peer]);
        client.ip(&["link", "set", peer, "up"]);
    }
    appliance.ip(&["route", "add", "local", lb_range, "dev", "lo"]);
    client.ip(&["route", "add", VIP_VIA_WORKLOAD, "via", "192.168.10.2"]);
    client.ip(&["route", "add", VIP_VIA_FRONTEND, "via", "192.168.100.2"]);
}

/// What a client sees on every (address, port) of interest.
fn probe(client: &Netns) -> Vec<(String, u16, Outcome)> {
    let targets = [
        "192.168.0.2",
        "192.168.10.2",
        "192.168.100.2",
        VIP_VIA_WORKLOAD,
        VIP_VIA_FRONTEND,
    ];
    client.enter(|| {
        let mut seen = Vec::new();
        for to in targets {
            for port in [22, DATAPLANE_PORT, VIP_PORT] {
                seen.push((to.to_owned(), port, connect(to, port)));
            }
        }
        seen
    })
}

#[test]
fn rules_in_a_namespace_keep_management_services_on_the_management_nic() {
    if !have("nft") || !have("ip") {
        return;
    }
    let props = with(
        frontend_props(),
        &[(
            "loadbalance.dataplane_port",
            Some(&DATAPLANE_PORT.to_string()),
        )],
    );
    let (dir, rules) = rendered_rules(&props, "frontend");
    let appliance = Netns::create("fwtest", "appliance");
    let client = Netns::create("fwtest", "client");
    topology(&appliance, &client, "192.168.100.64/26");
    // sshd and a DHCP-addressed Data Plane API listen on every address (the worst case);
    // haproxy's frontend on the wildcard too, so only the firewall decides.
    let _listeners: Vec<TcpListener> = appliance.enter(|| {
        [22, DATAPLANE_PORT, VIP_PORT]
            .iter()
            .map(|p| TcpListener::bind(("0.0.0.0", *p)).unwrap())
            .collect()
    });

    // Without the rules everything answers everywhere: the probe can see exposure.
    let open = probe(&client);
    assert!(
        open.iter().all(|(_, _, o)| *o == Outcome::Accepted),
        "without a firewall: {open:?}"
    );

    let file = dir.path().join("rules.nft");
    std::fs::write(&file, &rules).unwrap();
    let o = appliance
        .command("nft")
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "nft -f: {}", text(&o));

    use Outcome::*;
    let expected = [
        // management: its services; nothing else
        ("192.168.0.2", [Accepted, Accepted, Dropped]),
        // the workload and frontend addresses: management ports closed, the rest dropped
        ("192.168.10.2", [Refused, Refused, Dropped]),
        ("192.168.100.2", [Refused, Refused, Dropped]),
        // virtual IPs through either NIC: whatever haproxy binds, but no management service
        (VIP_VIA_WORKLOAD, [Refused, Refused, Accepted]),
        (VIP_VIA_FRONTEND, [Refused, Refused, Accepted]),
    ];
    let seen = probe(&client);
    let mut wrong = Vec::new();
    for (to, outcomes) in expected {
        for (port, want) in [22, DATAPLANE_PORT, VIP_PORT].into_iter().zip(outcomes) {
            let got = seen
                .iter()
                .find(|(t, p, _)| t == to && *p == port)
                .map(|(_, _, o)| *o);
            if got != Some(want) {
                wrong.push(format!("{to}:{port}: expected {want:?}, got {got:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}\nrules:\n{rules}", wrong.join("\n"));
}
