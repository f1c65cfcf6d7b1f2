//! One test per rule of the HA group (docs/ha-pair.md), with the exact messages.

use std::sync::OnceLock;

use crate::config::{Deployment, HaRole};
use crate::definition;
use crate::env::{Environment, Property};
use crate::validate::{Invalid, Valid, validate};

/// A supplied CA, generated once: the pair requires one.
fn ca() -> &'static (String, String) {
    static CA: OnceLock<(String, String)> = OnceLock::new();
    CA.get_or_init(|| crate::tls::generate_ca("ha-test").unwrap())
}

/// A valid single appliance with a supplied CA.
fn single() -> Vec<(String, String)> {
    let (cert, key) = ca();
    [
        ("appliance.root_pwd", "Root-pass1"),
        ("appliance.ca_cert", cert.as_str()),
        ("appliance.ca_cert_key", key.as_str()),
        ("network.hostname", "lb-a.example"),
        ("network.nameservers", "192.168.0.53, 1.1.1.1"),
        ("network.management_ip", "192.168.0.2/24"),
        ("network.management_gateway", "192.168.0.1"),
        ("network.workload_ip", "192.168.10.2/24"),
        ("network.workload_gateway", "192.168.10.1"),
        ("loadbalance.service_ip_range", "192.168.10.128/25"),
        ("loadbalance.haproxy_pwd", "Api-pass-123"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The primary of a valid pair.
fn pair() -> Vec<(String, String)> {
    with(
        single(),
        &[
            ("ha.peer_ip", Some("192.168.0.3")),
            ("ha.management_vip", Some("192.168.0.10")),
            ("ha.shared_secret", Some("pair-secret-1")),
        ],
    )
}

fn with(
    mut props: Vec<(String, String)>,
    changes: &[(&str, Option<&str>)],
) -> Vec<(String, String)> {
    for (key, value) in changes {
        props.retain(|(k, _)| k != key);
        if let Some(v) = value {
            props.push(((*key).to_owned(), (*v).to_owned()));
        }
    }
    props
}

fn run(props: &[(String, String)]) -> Result<Valid, Invalid> {
    let env = Environment {
        properties: props
            .iter()
            .map(|(key, value)| Property {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        ..Environment::default()
    };
    validate(&env, Deployment::Default, definition::appliance())
}

/// The problems of an invalid environment, as printed.
fn problems(props: &[(String, String)]) -> Vec<String> {
    match run(props) {
        Ok(_) => panic!("valid: {props:?}"),
        Err(invalid) => invalid.problems.iter().map(ToString::to_string).collect(),
    }
}

fn warnings(props: &[(String, String)]) -> Vec<String> {
    run(props)
        .unwrap()
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Asserts that `props` are refused with exactly `expected` among the problems of the HA
/// rules (the other groups' problems of the same environment are allowed).
#[track_caller]
fn refused(props: &[(String, String)], expected: &[&str]) {
    let got = problems(props);
    for e in expected {
        assert!(got.iter().any(|g| g == e), "missing {e:?} in {got:#?}");
    }
}

#[test]
fn no_ha_property_is_a_single_appliance_without_warnings() {
    let valid = run(&single()).unwrap();
    assert_eq!(valid.config.ha(), None);
    assert!(valid.warnings.iter().all(|w| !w.key.starts_with("ha.")));
    // The defaults given explicitly are no reason for a warning either.
    let defaults = with(
        single(),
        &[
            ("ha.router_id", Some("51")),
            ("ha.role", Some("primary")),
            ("ha.peer_ip", Some(" ")),
            ("ha.management_vip", Some("null")),
            ("ha.shared_secret", Some("")),
        ],
    );
    let valid = run(&defaults).unwrap();
    assert_eq!(valid.config.ha(), None);
    assert!(valid.warnings.iter().all(|w| !w.key.starts_with("ha.")));
}

#[test]
fn pair_settings_without_a_pair_are_ignored_with_warnings_that_hide_the_secret() {
    let props = with(
        single(),
        &[
            ("ha.router_id", Some("7")),
            ("ha.role", Some("secondary")),
            ("ha.shared_secret", Some("a-hidden-secret")),
        ],
    );
    let w = warnings(&props);
    let why = "is ignored: no HA pair is configured (Peer Management IP (ha.peer_ip) and \
               Management Virtual IP (ha.management_vip) are not set), so the appliance runs alone";
    assert_eq!(
        w,
        [
            format!("Virtual Router ID (ha.router_id): \"7\" {why}"),
            format!("Role (ha.role): \"secondary\" {why}"),
            format!("Shared Secret (ha.shared_secret): a value of 15 characters {why}"),
        ]
    );
    assert!(!w.concat().contains("a-hidden-secret"));
}

#[test]
fn a_valid_pair_is_parsed() {
    let valid = run(&pair()).unwrap();
    let ha = valid.config.ha().unwrap();
    assert_eq!(ha.node().to_string(), "192.168.0.2/24");
    assert_eq!(ha.peer().to_string(), "192.168.0.3");
    assert_eq!(ha.vip().to_string(), "192.168.0.10");
    assert_eq!(ha.router_id(), 51);
    assert_eq!(ha.role(), HaRole::Primary);
    assert_eq!(ha.role().priority(), 150);
    assert_eq!(ha.secret().expose(), "pair-secret-1");
    let secondary = with(
        pair(),
        &[
            ("ha.role", Some("secondary")),
            ("ha.router_id", Some(" 255 ")),
        ],
    );
    let valid = run(&secondary).unwrap();
    let ha = valid.config.ha().unwrap();
    assert_eq!((ha.role(), ha.role().priority()), (HaRole::Secondary, 100));
    assert_eq!(ha.router_id(), 255);
    // A secret is used exactly as given, spaces included.
    let spaced = with(pair(), &[("ha.shared_secret", Some(" spaced secret "))]);
    let valid = run(&spaced).unwrap();
    assert_eq!(
        valid.config.ha().unwrap().secret().expose(),
        " spaced secret "
    );
}

#[test]
fn either_address_turns_the_pair_on_and_then_all_three_are_required() {
    let only_peer = with(
        pair(),
        &[("ha.management_vip", None), ("ha.shared_secret", None)],
    );
    assert_eq!(
        problems(&only_peer),
        [
            "Management Virtual IP (ha.management_vip): not set although Peer Management IP \
             (ha.peer_ip) is given; expected the management virtual IP both appliances share, \
             e.g. 192.168.0.10, for an HA pair (or neither, for a single appliance)",
            "Shared Secret (ha.shared_secret): not set although Peer Management IP \
             (ha.peer_ip) is given; expected a secret of 8 to 128 characters, the same on both \
             appliances, for an HA pair",
        ]
    );
    let only_vip = with(pair(), &[("ha.peer_ip", Some("NULL"))]);
    assert_eq!(
        problems(&only_vip),
        [
            "Peer Management IP (ha.peer_ip): not set although Management Virtual IP \
             (ha.management_vip) is given; expected the other appliance's management IP, e.g. \
             192.168.0.3, for an HA pair (or neither, for a single appliance)"
        ]
    );
}

#[test]
fn the_pair_needs_a_static_management_ip() {
    let dhcp = with(
        pair(),
        &[
            ("network.management_ip", None),
            ("network.management_gateway", None),
        ],
    );
    assert_eq!(
        problems(&dhcp),
        [
            "Management IP (network.management_ip): not set (DHCP); expected a static IPv4 \
             address with prefix length, e.g. 192.168.0.2/24, because an HA pair is configured \
             (Peer Management IP (ha.peer_ip)): the peer and the management virtual IP must lie \
             in its subnet"
        ]
    );
    // A management IP that is given but wrong is one problem, reported by the network group.
    let wrong = with(pair(), &[("network.management_ip", Some("192.168.0.2"))]);
    let got = problems(&wrong);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].contains("has no prefix length"), "{got:#?}");
}

#[test]
fn the_pair_needs_a_supplied_ca() {
    let generated = with(
        pair(),
        &[("appliance.ca_cert", None), ("appliance.ca_cert_key", None)],
    );
    assert_eq!(
        problems(&generated),
        [
            "TLS Certificate Authority Certificate (appliance.ca_cert): not set; expected the \
             CA certificate (and TLS Certificate Authority Private Key (appliance.ca_cert_key)) \
             that signs the server certificates of both appliances, because an HA pair is \
             configured (Peer Management IP (ha.peer_ip)): the Supervisor trusts one CA for the \
             management virtual IP, whichever appliance holds it"
        ]
    );
}

#[test]
fn addresses_are_plain_ipv4() {
    let props = with(
        pair(),
        &[
            ("ha.peer_ip", Some("192.168.0.3/24")),
            ("ha.management_vip", Some("vip.example")),
        ],
    );
    assert_eq!(
        problems(&props),
        [
            "Peer Management IP (ha.peer_ip): \"192.168.0.3/24\" has a prefix length; expected \
             a plain IPv4 address, e.g. 192.168.0.3",
            "Management Virtual IP (ha.management_vip): \"vip.example\" is not an IPv4 address; \
             expected a plain IPv4 address, e.g. 192.168.0.10",
        ]
    );
}

#[test]
fn addresses_lie_inside_the_management_subnet_on_a_host_address() {
    let props = with(
        pair(),
        &[
            ("ha.peer_ip", Some("192.168.1.3")),
            ("ha.management_vip", Some("192.168.0.255")),
        ],
    );
    assert_eq!(
        problems(&props),
        [
            "Peer Management IP (ha.peer_ip): 192.168.1.3 lies outside 192.168.0.0/24, the \
             subnet of Management IP (network.management_ip); expected an address inside it",
            "Management Virtual IP (ha.management_vip): 192.168.0.255 is the broadcast address \
             of 192.168.0.0/24; expected a host address inside it",
        ]
    );
    let network = with(pair(), &[("ha.management_vip", Some("192.168.0.0"))]);
    refused(
        &network,
        &[
            "Management Virtual IP (ha.management_vip): 192.168.0.0 is the network address of \
           192.168.0.0/24; expected a host address inside it",
        ],
    );
}

#[test]
fn addresses_differ_from_every_appliance_address_gateway_and_dns_server() {
    let props = with(
        pair(),
        &[
            ("ha.peer_ip", Some("192.168.0.2")),
            ("ha.management_vip", Some("192.168.0.1")),
        ],
    );
    assert_eq!(
        problems(&props),
        [
            "Peer Management IP (ha.peer_ip): 192.168.0.2 is the appliance's own address \
             (Management IP (network.management_ip)); expected an address no other host or \
             service of the appliance uses",
            "Management Virtual IP (ha.management_vip): 192.168.0.1 is a gateway (Management \
             Gateway (network.management_gateway)); expected an address no other host or \
             service of the appliance uses",
        ]
    );
    let dns = with(pair(), &[("ha.management_vip", Some("192.168.0.53"))]);
    assert_eq!(
        problems(&dns),
        [
            "Management Virtual IP (ha.management_vip): 192.168.0.53 is a DNS server (DNS \
          (network.nameservers)); expected an address no other host or service of the \
          appliance uses"
        ]
    );
    // The workload network shares the management subnet here (a warning of its own), so the
    // workload IP can be in it.
    let shared = with(
        pair(),
        &[
            ("network.workload_ip", Some("192.168.0.20/24")),
            ("network.workload_gateway", Some("192.168.0.1")),
            ("ha.peer_ip", Some("192.168.0.20")),
        ],
    );
    refused(
        &shared,
        &[
            "Peer Management IP (ha.peer_ip): 192.168.0.20 is the appliance's own address \
           (Workload IP (network.workload_ip)); expected an address no other host or service \
           of the appliance uses",
        ],
    );
}

#[test]
fn peer_and_vip_differ() {
    let props = with(pair(), &[("ha.management_vip", Some("192.168.0.3"))]);
    assert_eq!(
        problems(&props),
        [
            "Peer Management IP (ha.peer_ip): 192.168.0.3 is also Management Virtual IP \
          (ha.management_vip); expected the other appliance's own management address, which \
          differs from the virtual IP"
        ]
    );
}

#[test]
fn addresses_lie_outside_every_load_balancer_range() {
    // A range inside the management subnet is refused by the load-balancing group too; the VIP
    // in it is a problem of its own.
    let props = with(
        pair(),
        &[
            ("network.management_ip", Some("192.168.0.2/16")),
            ("loadbalance.service_ip_range", Some("192.168.100.0/24")),
            ("ha.management_vip", Some("192.168.100.10")),
        ],
    );
    refused(
        &props,
        &[
            "Management Virtual IP (ha.management_vip): 192.168.100.10 lies inside load-balancer \
           range 192.168.100.0/24 (loadbalance.service_ip_range); expected an address outside \
           every load-balancer range",
        ],
    );
}

#[test]
fn router_id_is_an_integer_from_1_to_255() {
    for (given, message) in [
        ("0", "\"0\" is out of range"),
        ("256", "\"256\" is out of range"),
        ("-1", "\"-1\" is not a virtual router id"),
        ("five", "\"five\" is not a virtual router id"),
    ] {
        let props = with(pair(), &[("ha.router_id", Some(given))]);
        assert_eq!(
            problems(&props),
            [format!(
                "Virtual Router ID (ha.router_id): {message}; expected an integer from 1 to \
                 255, the same on both appliances"
            )]
        );
    }
}

#[test]
fn role_is_primary_or_secondary() {
    let props = with(pair(), &[("ha.role", Some("Primary"))]);
    assert_eq!(
        problems(&props),
        [
            "Role (ha.role): \"Primary\" is not an allowed value; expected one of primary, \
          secondary"
        ]
    );
}

#[test]
fn shared_secret_has_8_to_128_printable_characters_and_is_never_shown() {
    for (given, message) in [
        (
            "seven77".to_owned(),
            "is 7 characters long; expected 8 to 128 characters",
        ),
        (
            "x".repeat(129),
            "is 129 characters long; expected at most 128 characters",
        ),
        (
            "tab\tinside-it".to_owned(),
            "contains a control character (line break, tab, …); expected printable characters",
        ),
    ] {
        let props = with(pair(), &[("ha.shared_secret", Some(&given))]);
        let got = problems(&props);
        assert_eq!(
            got,
            [format!("Shared Secret (ha.shared_secret): {message}")]
        );
        assert!(!got.concat().contains(&given));
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let props = with(
        pair(),
        &[
            ("ha.peer_ip", Some("10.0.0.3")),
            ("ha.management_vip", Some("192.168.0.3/24")),
            ("ha.router_id", Some("300")),
            ("ha.role", Some("backup")),
            ("ha.shared_secret", Some("short")),
            ("appliance.ca_cert", None),
            ("appliance.ca_cert_key", None),
        ],
    );
    let keys: Vec<String> = match run(&props) {
        Ok(_) => panic!("valid"),
        Err(invalid) => invalid.problems.into_iter().map(|p| p.key).collect(),
    };
    assert_eq!(
        keys,
        [
            "ha.management_vip",
            "ha.peer_ip",
            "ha.router_id",
            "ha.role",
            "ha.shared_secret",
            "appliance.ca_cert",
        ]
    );
}
