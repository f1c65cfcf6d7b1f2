//! Table-driven invalid environments: one rule broken each (plus a few with many problems at
//! once), asserting the exact messages. And the valid counterparts, warnings and defaults.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod env_support;

use std::sync::LazyLock;

use env_support::*;
use firstboot::config::{Addressing, Deployment};
use firstboot::definition;
use firstboot::env::Environment;
use firstboot::validate::{Invalid, Valid};
use openssl::pkey::PKey;

/// Validation against the built-in appliance definition.
fn validate(env: &Environment, deployment: Deployment) -> Result<Valid, Invalid> {
    firstboot::validate::validate(env, deployment, definition::appliance())
}

const D: Deployment = Deployment::Default;
const F: Deployment = Deployment::Frontend;

/// Certificates and keys for the CA cases, generated once per test run.
struct Pems {
    ca_cert: String,
    ca_key: String,
    other_key: String,
    leaf_cert: String,
    leaf_key: String,
    encrypted_key: String,
    legacy_encrypted_key: String,
    /// Supplied CAs that must be refused: (cert, key, message expected).
    bad_cas: Vec<(String, String, String)>,
    /// A CA that expires in 10 days: (cert, key, its notAfter as printed).
    expiring_ca: (String, String, String),
}

/// The CAs the hardening rules refuse, each with the one message expected.
fn bad_cas() -> Vec<(String, String, String)> {
    let prefix = "TLS Certificate Authority Certificate (appliance.ca_cert): the certificate";
    let expired = ca_between(ec_key(), "Expired CA", -400, -1, Some(true));
    let future = ca_between(ec_key(), "Future CA", 2, 365, Some(true));
    let signless = ca_between(ec_key(), "Signless CA", 0, 365, Some(false));
    let small = ca_between(
        PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap(),
        "Small CA",
        0,
        365,
        Some(true),
    );
    let dsa = ca_between(
        PKey::from_dsa(openssl::dsa::Dsa::generate(2048).unwrap()).unwrap(),
        "DSA CA",
        0,
        365,
        Some(true),
    );
    let key_rule = "expected an RSA key of at least 2048 bits or an EC key";
    let messages = [
        format!(
            "{prefix} (CN=Expired CA) expired on {}; expected a CA certificate that is valid now \
             (every server certificate it signs would be born expired)",
            expired.cert.not_after()
        ),
        format!(
            "{prefix} (CN=Future CA) is not valid before {}; expected a CA certificate that is \
             valid now (check the clocks of the machine that made it and of the ESXi host)",
            future.cert.not_before()
        ),
        format!(
            "{prefix} (CN=Signless CA) has a keyUsage extension without keyCertSign; expected a \
             CA certificate allowed to sign certificates"
        ),
        format!("{prefix} (CN=Small CA) has a 1024-bit RSA key; {key_rule}"),
        format!("{prefix} (CN=DSA CA) has a DSA key; {key_rule}"),
    ];
    [expired, future, signless, small, dsa]
        .into_iter()
        .zip(messages)
        .map(|(ca, m)| (ca.cert_pem(), ca.key_pkcs8_pem(), m))
        .collect()
}

static PEMS: LazyLock<Pems> = LazyLock::new(|| {
    let ca = ec_ca("Test CA");
    let leaf = self_signed(ec_key(), "not a CA", false);
    let other = ec_key();
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
    Pems {
        ca_cert: ca.cert_pem(),
        ca_key: ca.key_pkcs8_pem(),
        other_key: String::from_utf8(other.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        leaf_cert: leaf.cert_pem(),
        leaf_key: leaf.key_pkcs8_pem(),
        encrypted_key: String::from_utf8(
            ca.key
                .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"pw")
                .unwrap(),
        )
        .unwrap(),
        legacy_encrypted_key: String::from_utf8(
            rsa.private_key_to_pem_passphrase(openssl::symm::Cipher::aes_128_cbc(), b"pw")
                .unwrap(),
        )
        .unwrap(),
        bad_cas: bad_cas(),
        expiring_ca: {
            let ca = ca_between(ec_key(), "Soon CA", -300, 10, Some(true));
            let not_after = ca.cert.not_after().to_string();
            (ca.cert_pem(), ca.key_pkcs8_pem(), not_after)
        },
    }
});

enum Base {
    Default,
    Frontend,
}

struct Case {
    name: &'static str,
    base: Base,
    deployment: Deployment,
    overrides: Vec<(&'static str, Option<String>)>,
    expected: Vec<&'static str>,
}

fn case(
    name: &'static str,
    deployment: Deployment,
    overrides: &[(&'static str, Option<&str>)],
    expected: &[&'static str],
) -> Case {
    Case {
        name,
        base: if deployment == F {
            Base::Frontend
        } else {
            Base::Default
        },
        deployment,
        overrides: overrides
            .iter()
            .map(|(k, v)| (*k, v.map(str::to_owned)))
            .collect(),
        expected: expected.to_vec(),
    }
}

fn set(k: &'static str, v: &str) -> (&'static str, Option<String>) {
    (k, Some(v.to_owned()))
}

const LONG_LABEL: &str = "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd";

// The validation table, one case per rule: splitting it would scatter the table.
#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    let p = &*PEMS;
    let pw129 = "x".repeat(129);
    let pw129: &'static str = Box::leak(pw129.into_boxed_str());
    let long_host: &'static str = Box::leak(format!("{LONG_LABEL}.local").into_boxed_str());
    let mut v = vec![
        // --- load-balancer ranges and addresses ---
        case(
            "workload IP inside an LB range",
            D,
            &[("network.workload_ip", Some("192.168.10.200/24"))],
            &["Workload IP (network.workload_ip): 192.168.10.200/24 lies inside load-balancer range 192.168.10.128/25 (loadbalance.service_ip_range); expected an address outside every load-balancer range"],
        ),
        case(
            "LB range with host bits set",
            D,
            &[("loadbalance.service_ip_range", Some("192.168.10.130/25"))],
            &["Load Balancer IP Ranges (loadbalance.service_ip_range): 192.168.10.130/25 has host bits set; expected the network address 192.168.10.128/25 (the kernel refuses `ip route add local` for it otherwise)"],
        ),
        case(
            "LB range overlapping the management subnet",
            D,
            &[("loadbalance.service_ip_range", Some("192.168.0.128/25"))],
            &["Load Balancer IP Ranges (loadbalance.service_ip_range): 192.168.0.128/25 overlaps the management subnet 192.168.0.0/24 of Management IP (network.management_ip); expected ranges outside it"],
        ),
        case(
            "LB ranges overlapping each other",
            D,
            &[("loadbalance.service_ip_range", Some("192.168.10.128/25, 192.168.10.200-192.168.10.210"))],
            &["Load Balancer IP Ranges (loadbalance.service_ip_range): 192.168.10.128/25 overlaps 192.168.10.200-192.168.10.210; expected ranges that do not overlap each other"],
        ),
        case(
            "LB range reversed",
            D,
            &[("loadbalance.service_ip_range", Some("10.0.0.9-10.0.0.1"))],
            &["Load Balancer IP Ranges (loadbalance.service_ip_range): 10.0.0.9-10.0.0.1 is not a valid range; expected a first address not above the last, e.g. 10.0.0.1-10.0.0.9"],
        ),
        case(
            "LB range prefix 33",
            D,
            &[("loadbalance.service_ip_range", Some("10.0.0.0/33"))],
            &["Load Balancer IP Ranges (loadbalance.service_ip_range): \"10.0.0.0/33\" is not a CIDR or address range; expected e.g. 192.168.100.0/24 or 192.168.100.10-192.168.100.20"],
        ),
        case(
            "LB range covering everything",
            D,
            &[("loadbalance.service_ip_range", Some("0.0.0.0/0"))],
            &[
                "Load Balancer IP Ranges (loadbalance.service_ip_range): 0.0.0.0/0 overlaps 0.0.0.0/8 (\"this network\"); expected ranges of ordinary unicast addresses",
                "Load Balancer IP Ranges (loadbalance.service_ip_range): 0.0.0.0/0 overlaps the management subnet 192.168.0.0/24 of Management IP (network.management_ip); expected ranges outside it",
                "Management IP (network.management_ip): 192.168.0.2/24 lies inside load-balancer range 0.0.0.0/0 (loadbalance.service_ip_range); expected an address outside every load-balancer range",
                "Management Gateway (network.management_gateway): 192.168.0.1 lies inside load-balancer range 0.0.0.0/0 (loadbalance.service_ip_range); expected an address outside every load-balancer range",
                "Workload IP (network.workload_ip): 192.168.10.2/24 lies inside load-balancer range 0.0.0.0/0 (loadbalance.service_ip_range); expected an address outside every load-balancer range",
                "Workload Gateway (network.workload_gateway): 192.168.10.1 lies inside load-balancer range 0.0.0.0/0 (loadbalance.service_ip_range); expected an address outside every load-balancer range",
                "DNS (network.nameservers): 1.1.1.1 lies inside load-balancer range 0.0.0.0/0 (loadbalance.service_ip_range); expected DNS servers outside every load-balancer range",
                "DNS (network.nameservers): 1.0.0.1 lies inside load-balancer range 0.0.0.0/0 (loadbalance.service_ip_range); expected DNS servers outside every load-balancer range",
            ],
        ),
        case(
            "LB range in loopback",
            D,
            &[("loadbalance.service_ip_range", Some("127.0.0.0/24"))],
            &["Load Balancer IP Ranges (loadbalance.service_ip_range): 127.0.0.0/24 overlaps 127.0.0.0/8 (loopback); expected ranges of ordinary unicast addresses"],
        ),
        case(
            "workload IP in multicast",
            D,
            &[("network.workload_ip", Some("224.0.0.5/24")), ("network.workload_gateway", None)],
            &["Workload IP (network.workload_ip): 224.0.0.5/24 is in 224.0.0.0/4 (multicast); expected an ordinary unicast address, e.g. 192.168.10.2/24"],
        ),
        case(
            "LB range missing",
            D,
            &[("loadbalance.service_ip_range", None)],
            &["Load Balancer IP Ranges (loadbalance.service_ip_range): not set; expected comma-separated IPv4 CIDRs or address ranges, e.g. 192.168.100.0/24 or 192.168.100.10-192.168.100.20"],
        ),
        case(
            "LB range only commas",
            D,
            &[("loadbalance.service_ip_range", Some(" , ,"))],
            &["Load Balancer IP Ranges (loadbalance.service_ip_range): \", ,\" lists no range; expected e.g. 192.168.100.0/24"],
        ),
        case(
            "gateway inside an LB range",
            D,
            &[("loadbalance.service_ip_range", Some("192.168.10.0/31"))],
            &["Workload Gateway (network.workload_gateway): 192.168.10.1 lies inside load-balancer range 192.168.10.0/31 (loadbalance.service_ip_range); expected an address outside every load-balancer range"],
        ),
        case(
            "DNS server inside an LB range",
            D,
            &[("network.nameservers", Some("1.1.1.1, 192.168.10.130"))],
            &["DNS (network.nameservers): 192.168.10.130 lies inside load-balancer range 192.168.10.128/25 (loadbalance.service_ip_range); expected DNS servers outside every load-balancer range"],
        ),
        case(
            "frontend IP inside an LB range (range notation)",
            F,
            &[("loadbalance.service_ip_range", Some("192.168.100.2-192.168.100.9"))],
            &["Frontend IP (network.frontend_ip): 192.168.100.2/24 lies inside load-balancer range 192.168.100.2-192.168.100.9 (loadbalance.service_ip_range); expected an address outside every load-balancer range"],
        ),
        // --- gateways ---
        case(
            "management gateway outside its subnet",
            D,
            &[("network.management_gateway", Some("192.168.1.1"))],
            &["Management Gateway (network.management_gateway): 192.168.1.1 lies outside 192.168.0.0/24, the subnet of Management IP (network.management_ip); expected an address inside it"],
        ),
        case(
            "workload gateway outside its subnet",
            D,
            &[("network.workload_gateway", Some("10.1.1.1"))],
            &["Workload Gateway (network.workload_gateway): 10.1.1.1 lies outside 192.168.10.0/24, the subnet of Workload IP (network.workload_ip); expected an address inside it"],
        ),
        case(
            "gateway with a prefix length",
            D,
            &[("network.management_gateway", Some("192.168.0.1/24"))],
            &["Management Gateway (network.management_gateway): \"192.168.0.1/24\" has a prefix length; expected a plain IPv4 address, e.g. 192.168.0.1"],
        ),
        case(
            "gateway equal to the appliance's address",
            D,
            &[("network.management_gateway", Some("192.168.0.2"))],
            &["Management Gateway (network.management_gateway): 192.168.0.2 is the appliance's own address (Management IP (network.management_ip)); expected the router's address"],
        ),
        case(
            "static management IP without gateway",
            D,
            &[("network.management_gateway", None)],
            &["Management Gateway (network.management_gateway): not set; expected the gateway of 192.168.0.0/24 because Management IP (network.management_ip) is static: it is the appliance's default gateway"],
        ),
        case(
            "frontend configuration without workload gateway",
            F,
            &[("network.workload_gateway", Some(""))],
            &["Workload Gateway (network.workload_gateway): not set; expected the gateway of 192.168.10.0/24 because Workload IP (network.workload_ip) is static: the Frontend Network configuration does not work without it"],
        ),
        case(
            "frontend configuration without frontend gateway",
            F,
            &[("network.frontend_gateway", None)],
            &["Frontend Gateway (network.frontend_gateway): not set; expected the gateway of 192.168.100.0/24 because Frontend IP (network.frontend_ip) is static: the Frontend Network configuration does not work without it"],
        ),
        // --- addresses ---
        case(
            "management IP without prefix length",
            D,
            &[("network.management_ip", Some("192.168.0.2"))],
            &["Management IP (network.management_ip): \"192.168.0.2\" has no prefix length; expected an IPv4 address with prefix length, e.g. 192.168.0.2/24"],
        ),
        case(
            "management IP is the network address",
            D,
            &[("network.management_ip", Some("192.168.0.0/24"))],
            &["Management IP (network.management_ip): 192.168.0.0/24 is the network address of 192.168.0.0/24; expected a host address inside it, e.g. 192.168.0.2/24"],
        ),
        case(
            "workload IP is the broadcast address",
            D,
            &[("network.workload_ip", Some("192.168.10.255/24"))],
            &["Workload IP (network.workload_ip): 192.168.10.255/24 is the broadcast address of 192.168.10.0/24; expected a host address inside it, e.g. 192.168.10.2/24"],
        ),
        case(
            "management IP not an address",
            D,
            &[("network.management_ip", Some("mgmt.example.com/24"))],
            &["Management IP (network.management_ip): \"mgmt.example.com/24\" is not an IPv4 address with prefix length; expected e.g. 192.168.0.2/24"],
        ),
        case(
            "additional workload network equal to the primary one",
            D,
            &[("network.additional_workload_networks", Some("192.168.20.0/24, 192.168.10.0/24"))],
            &["Additional Workload Networks (network.additional_workload_networks): 192.168.10.0/24 overlaps the primary workload network 192.168.10.0/24 of Workload IP (network.workload_ip); expected only networks reached through the workload gateway"],
        ),
        case(
            "additional workload network with host bits",
            D,
            &[("network.additional_workload_networks", Some("192.168.20.1/24"))],
            &["Additional Workload Networks (network.additional_workload_networks): 192.168.20.1/24 has host bits set; expected the network address 192.168.20.0/24 (the kernel refuses `ip route add local` for it otherwise)"],
        ),
        case(
            "additional workload network as a range",
            D,
            &[("network.additional_workload_networks", Some("192.168.20.0-192.168.20.9"))],
            &["Additional Workload Networks (network.additional_workload_networks): \"192.168.20.0-192.168.20.9\" is not a CIDR; expected comma-separated IPv4 networks, e.g. 192.168.20.0/24, 192.168.30.0/24"],
        ),
        // --- DNS, host name ---
        case(
            "four DNS servers",
            D,
            &[("network.nameservers", Some("1.1.1.1, 1.0.0.1, 8.8.8.8, 8.8.4.4"))],
            &["DNS (network.nameservers): lists 4 servers: \"1.1.1.1, 1.0.0.1, 8.8.8.8, 8.8.4.4\"; expected at most three"],
        ),
        case(
            "DNS server not an address",
            D,
            &[("network.nameservers", Some("1.1.1.1,dns.example.com"))],
            &["DNS (network.nameservers): \"dns.example.com\" is not an IPv4 address; expected comma-separated IPv4 addresses, e.g. 1.1.1.1, 1.0.0.1"],
        ),
        case(
            "bad host name (underscore)",
            D,
            &[("network.hostname", Some("ha_proxy.local"))],
            &["Host Name (network.hostname): \"ha_proxy.local\" is not a valid host name; expected dot-separated labels of 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen, at most 253 characters (RFC 1123)"],
        ),
        case(
            "bad host name (leading hyphen)",
            D,
            &[("network.hostname", Some("-haproxy"))],
            &["Host Name (network.hostname): \"-haproxy\" is not a valid host name; expected dot-separated labels of 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen, at most 253 characters (RFC 1123)"],
        ),
        case(
            "bad host name (64-character label)",
            D,
            &[("network.hostname", Some(long_host))],
            &[Box::leak(format!("Host Name (network.hostname): {} is not a valid host name; expected dot-separated labels of 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen, at most 253 characters (RFC 1123)", firstboot::quote::value(long_host)).into_boxed_str())],
        ),
        // --- port ---
        case(
            "port 22",
            D,
            &[("loadbalance.dataplane_port", Some("22"))],
            &["Dataplane API Management Port (loadbalance.dataplane_port): 22 is reserved for SSH; expected another port from 1 to 65535"],
        ),
        case(
            "port 0",
            D,
            &[("loadbalance.dataplane_port", Some("0"))],
            &["Dataplane API Management Port (loadbalance.dataplane_port): \"0\" is out of range; expected an integer from 1 to 65535 other than 22"],
        ),
        case(
            "port 70000",
            D,
            &[("loadbalance.dataplane_port", Some("70000"))],
            &["Dataplane API Management Port (loadbalance.dataplane_port): \"70000\" is out of range; expected an integer from 1 to 65535 other than 22"],
        ),
        case(
            "port not a number",
            D,
            &[("loadbalance.dataplane_port", Some("-1"))],
            &["Dataplane API Management Port (loadbalance.dataplane_port): \"-1\" is not a port number; expected an integer from 1 to 65535 other than 22"],
        ),
        // --- passwords, users, booleans ---
        case(
            "5-character root password",
            D,
            &[("appliance.root_pwd", Some("12345"))],
            &["Root Password (appliance.root_pwd): is 5 characters long; expected 6 to 128 characters"],
        ),
        case(
            "129-character root password",
            D,
            &[("appliance.root_pwd", Some(pw129))],
            &["Root Password (appliance.root_pwd): is 129 characters long; expected 6 to 128 characters"],
        ),
        case(
            "5-character HAProxy password",
            D,
            &[("loadbalance.haproxy_pwd", Some("ab\u{e9}cd"))],
            &["HAProxy Password (loadbalance.haproxy_pwd): is 5 characters long; expected 6 to 128 characters"],
        ),
        case(
            "129-character HAProxy password",
            D,
            &[("loadbalance.haproxy_pwd", Some(pw129))],
            &["HAProxy Password (loadbalance.haproxy_pwd): is 129 characters long; expected 6 to 128 characters"],
        ),
        case(
            "root password missing",
            D,
            &[("appliance.root_pwd", None)],
            &["Root Password (appliance.root_pwd): not set; expected a password of 6 to 128 characters"],
        ),
        case(
            "HAProxy password null",
            D,
            &[("loadbalance.haproxy_pwd", Some("null"))],
            &["HAProxy Password (loadbalance.haproxy_pwd): not set; expected a password of 6 to 128 characters"],
        ),
        case(
            "password with a line break",
            D,
            &[("appliance.root_pwd", Some("VMware\n1!"))],
            &["Root Password (appliance.root_pwd): contains a control character (line break, tab, …); expected printable characters"],
        ),
        case(
            "user name with a space",
            D,
            &[("loadbalance.haproxy_user", Some("ad min"))],
            &["HAProxy User ID (loadbalance.haproxy_user): \"ad min\" is not a valid user name; expected 1 to 64 letters, digits, '.', '_', '-' or '@'"],
        ),
        case(
            "boolean not true/false",
            D,
            &[("appliance.permit_root_login", Some("yes"))],
            &["Permit Root Login (appliance.permit_root_login): \"yes\" is not a boolean; expected true or false"],
        ),
        case(
            "duplicate key",
            D,
            &[],
            &["Host Name (network.hostname): appears more than once in the environment; expected it once"],
        ),
        // --- CA ---
        case(
            "CA certificate without key",
            D,
            &[("appliance.ca_cert", Some(&p.ca_cert))],
            &["TLS Certificate Authority Private Key (appliance.ca_cert_key): not set; expected the CA's private key because TLS Certificate Authority Certificate (appliance.ca_cert) is given"],
        ),
        case(
            "CA key without certificate",
            D,
            &[("appliance.ca_cert_key", Some(&p.ca_key))],
            &["TLS Certificate Authority Certificate (appliance.ca_cert): not set although TLS Certificate Authority Private Key (appliance.ca_cert_key) is given; expected both the CA certificate and its key, or neither"],
        ),
        case(
            "key not matching the certificate",
            D,
            &[("appliance.ca_cert", Some(&p.ca_cert)), ("appliance.ca_cert_key", Some(&p.other_key))],
            &["TLS Certificate Authority Private Key (appliance.ca_cert_key): does not match the certificate (CN=Test CA); expected the private key of that certificate"],
        ),
        case(
            "non-CA certificate",
            D,
            &[("appliance.ca_cert", Some(&p.leaf_cert)), ("appliance.ca_cert_key", Some(&p.leaf_key))],
            &["TLS Certificate Authority Certificate (appliance.ca_cert): the certificate (CN=not a CA) is not a CA (no basicConstraints CA:TRUE); expected a CA certificate that can sign the appliance's server certificate"],
        ),
        case(
            "encrypted PKCS#8 key",
            D,
            &[("appliance.ca_cert", Some(&p.ca_cert)), ("appliance.ca_cert_key", Some(&p.encrypted_key))],
            &["TLS Certificate Authority Private Key (appliance.ca_cert_key): the private key is encrypted; expected an unencrypted key (decrypt it with `openssl pkey -in key.pem -out plain.pem`)"],
        ),
        case(
            "encrypted legacy PEM key",
            D,
            &[("appliance.ca_cert", Some(&p.ca_cert)), ("appliance.ca_cert_key", Some(&p.legacy_encrypted_key))],
            &["TLS Certificate Authority Private Key (appliance.ca_cert_key): the private key is encrypted; expected an unencrypted key (decrypt it with `openssl pkey -in key.pem -out plain.pem`)"],
        ),
        case(
            "certificate that is not PEM",
            D,
            &[("appliance.ca_cert", Some("hello world")), ("appliance.ca_cert_key", Some(&p.ca_key))],
            &["TLS Certificate Authority Certificate (appliance.ca_cert): no PEM block found; expected text starting with -----BEGIN CERTIFICATE----- (or the same base64-encoded)"],
        ),
        case(
            "key pasted into the certificate field",
            D,
            &[("appliance.ca_cert", Some(&p.ca_key)), ("appliance.ca_cert_key", Some(&p.ca_key))],
            &["TLS Certificate Authority Certificate (appliance.ca_cert): found -----BEGIN PRIVATE KEY-----; expected a certificate (-----BEGIN CERTIFICATE-----)"],
        ),
        // --- many problems at once ---
        case(
            "many problems at once",
            D,
            &[
                ("appliance.root_pwd", Some("123")),
                ("network.hostname", Some("bad host")),
                ("loadbalance.dataplane_port", Some("22")),
                ("network.workload_ip", Some("192.168.10.130/24")),
                ("loadbalance.haproxy_pwd", None),
            ],
            &[
                "Root Password (appliance.root_pwd): is 3 characters long; expected 6 to 128 characters",
                "Host Name (network.hostname): \"bad host\" is not a valid host name; expected dot-separated labels of 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen, at most 253 characters (RFC 1123)",
                "Workload IP (network.workload_ip): 192.168.10.130/24 lies inside load-balancer range 192.168.10.128/25 (loadbalance.service_ip_range); expected an address outside every load-balancer range",
                "Dataplane API Management Port (loadbalance.dataplane_port): 22 is reserved for SSH; expected another port from 1 to 65535",
                "HAProxy Password (loadbalance.haproxy_pwd): not set; expected a password of 6 to 128 characters",
            ],
        ),
        case(
            "frontend configuration missing both gateways, range over the management IP",
            F,
            &[
                ("network.workload_gateway", None),
                ("network.frontend_gateway", Some("null")),
                ("loadbalance.service_ip_range", Some("192.168.0.0/28")),
            ],
            &[
                "Workload Gateway (network.workload_gateway): not set; expected the gateway of 192.168.10.0/24 because Workload IP (network.workload_ip) is static: the Frontend Network configuration does not work without it",
                "Frontend Gateway (network.frontend_gateway): not set; expected the gateway of 192.168.100.0/24 because Frontend IP (network.frontend_ip) is static: the Frontend Network configuration does not work without it",
                "Load Balancer IP Ranges (loadbalance.service_ip_range): 192.168.0.0/28 overlaps the management subnet 192.168.0.0/24 of Management IP (network.management_ip); expected ranges outside it",
                "Management IP (network.management_ip): 192.168.0.2/24 lies inside load-balancer range 192.168.0.0/28 (loadbalance.service_ip_range); expected an address outside every load-balancer range",
                "Management Gateway (network.management_gateway): 192.168.0.1 lies inside load-balancer range 192.168.0.0/28 (loadbalance.service_ip_range); expected an address outside every load-balancer range",
            ],
        ),
        case(
            "everything empty",
            D,
            &[
                ("appliance.root_pwd", Some("")),
                ("loadbalance.haproxy_pwd", Some("")),
                ("loadbalance.service_ip_range", Some("")),
            ],
            &[
                "Root Password (appliance.root_pwd): not set; expected a password of 6 to 128 characters",
                "Load Balancer IP Ranges (loadbalance.service_ip_range): not set; expected comma-separated IPv4 CIDRs or address ranges, e.g. 192.168.100.0/24 or 192.168.100.10-192.168.100.20",
                "HAProxy Password (loadbalance.haproxy_pwd): not set; expected a password of 6 to 128 characters",
            ],
        ),
    ];
    v.extend(hardening_cases());
    // The duplicate-key case needs a second entry for the same key.
    for c in &mut v {
        if c.name == "duplicate key" {
            c.overrides.push(set("network.hostname", "haproxy.local"));
        }
    }
    v
}

fn props_for(c: &Case) -> Vec<(String, String)> {
    let base = match c.base {
        Base::Default => base(),
        Base::Frontend => base_frontend(),
    };
    if c.name == "duplicate key" {
        let mut p = base;
        p.push(("network.hostname".into(), "haproxy2.local".into()));
        return p;
    }
    let overrides: Vec<(&str, Option<&str>)> = c
        .overrides
        .iter()
        .map(|(k, v)| (*k, v.as_deref()))
        .collect();
    with(base, &overrides)
}

#[test]
fn at_least_forty_invalid_environments_with_exact_messages() {
    let cases = cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let props = props_for(c);
        // Through the XML document, as in the appliance.
        let xml = doc(&props, None);
        let env = firstboot::env::parse(xml.as_bytes()).unwrap();
        match validate(&env, c.deployment) {
            Ok(_) => failures.push(format!("{}: unexpectedly valid", c.name)),
            Err(invalid) => {
                let got: Vec<String> = invalid.problems.iter().map(ToString::to_string).collect();
                if got != c.expected {
                    failures.push(format!(
                        "{}:\n  expected: {:#?}\n  got:      {:#?}",
                        c.name, c.expected, got
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_valid_base_environments_are_valid() {
    let env = env(&base(), None);
    let valid = validate(&env, D).unwrap();
    assert!(valid.warnings.is_empty(), "{:?}", valid.warnings);
    let c = valid.config;
    assert_eq!(c.hostname(), "haproxy.local");
    assert!(c.permit_root_login());
    assert_eq!(c.dataplane_port(), 5556);
    assert_eq!(c.haproxy_password().expose(), "haproxy-secret");
    assert!(c.frontend().is_none());
    assert!(c.ca().is_none());

    let env = env_support::env(&base_frontend(), Some(3));
    let c = validate(&env, F).unwrap().config;
    assert_eq!(
        c.frontend(),
        Some(&Addressing::Static {
            address: "192.168.100.2/24".parse().unwrap(),
            gateway: Some("192.168.100.1".parse().unwrap()),
        })
    );
}

#[test]
fn missing_empty_and_null_take_the_defaults() {
    for absent in [None, Some(""), Some("null"), Some("  ")] {
        let props = with(
            base(),
            &[
                ("network.hostname", absent),
                ("network.nameservers", absent),
                ("loadbalance.dataplane_port", absent),
                ("loadbalance.haproxy_user", absent),
                ("appliance.permit_root_login", absent),
            ],
        );
        let c = validate(&env(&props, None), D).unwrap().config;
        assert_eq!(c.hostname(), "haproxy.local");
        assert_eq!(
            c.nameservers(),
            &[
                "1.1.1.1".parse::<std::net::Ipv4Addr>().unwrap(),
                "1.0.0.1".parse().unwrap()
            ]
        );
        assert_eq!(c.dataplane_port(), 5556);
        assert_eq!(c.haproxy_user(), "admin");
        assert!(c.permit_root_login());
    }
}

#[test]
fn booleans_are_case_insensitive() {
    for (v, want) in [
        ("True", true),
        ("true", true),
        ("TRUE", true),
        ("False", false),
        ("false", false),
    ] {
        let props = with(base(), &[("appliance.permit_root_login", Some(v))]);
        assert_eq!(
            validate(&env(&props, None), D)
                .unwrap()
                .config
                .permit_root_login(),
            want,
            "{v}"
        );
    }
}

#[test]
fn range_notation_becomes_minimal_cidrs_in_the_config() {
    let props = with(
        base(),
        &[(
            "loadbalance.service_ip_range",
            Some(" 10.0.0.1-10.0.0.6 ,192.168.10.128/25 "),
        )],
    );
    let c = validate(&env(&props, None), D).unwrap().config;
    let got: Vec<String> = c.lb_ranges().iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "10.0.0.1/32",
            "10.0.0.2/31",
            "10.0.0.4/31",
            "10.0.0.6/32",
            "192.168.10.128/25"
        ]
    );
}

#[test]
fn warnings_for_dhcp_management_and_ignored_frontend_values() {
    let props = with(
        base(),
        &[
            ("network.management_ip", Some("")),
            ("network.frontend_ip", Some("192.168.100.2/24")),
            ("network.frontend_gateway", Some("192.168.100.1")),
        ],
    );
    let valid = validate(&env(&props, None), D).unwrap();
    let got: Vec<String> = valid.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "Frontend IP (network.frontend_ip): \"192.168.100.2/24\" is ignored: the VM is deployed in the Default configuration, which has no frontend network",
            "Frontend Gateway (network.frontend_gateway): \"192.168.100.1\" is ignored: the VM is deployed in the Default configuration, which has no frontend network",
            "Management Gateway (network.management_gateway): \"192.168.0.1\" is ignored: Management IP (network.management_ip) is not set, so the interface uses DHCP and learns its gateway from the lease",
            "Management IP (network.management_ip): not set: the management NIC uses DHCP; its address must never change (use a DHCP reservation), because the Supervisor reaches the Data Plane API there",
        ]
    );
    assert_eq!(valid.config.management(), &Addressing::Dhcp);
    assert!(valid.config.frontend().is_none());
}

#[test]
fn frontend_on_dhcp_needs_no_gateway() {
    let props = with(
        base_frontend(),
        &[
            ("network.frontend_ip", None),
            ("network.frontend_gateway", None),
        ],
    );
    let c = validate(&env(&props, Some(3)), F).unwrap().config;
    assert_eq!(c.frontend(), Some(&Addressing::Dhcp));
}

#[test]
fn a_supplied_ca_is_accepted_and_normalised() {
    let p = &*PEMS;
    let damaged_cert = p.ca_cert.replace('\n', " ");
    let props = with(
        base(),
        &[
            ("appliance.ca_cert", Some(&damaged_cert)),
            ("appliance.ca_cert_key", Some(&p.ca_key)),
        ],
    );
    let c = validate(&env(&props, None), D).unwrap().config;
    let ca = c.ca().unwrap();
    assert_eq!(ca.cert_chain_pem(), p.ca_cert);
    assert_eq!(ca.key_pkcs8_pem().expose(), p.ca_key);
}

#[test]
fn secrets_never_appear_in_messages() {
    let props = with(
        base(),
        &[
            ("appliance.root_pwd", Some("s3cr")),
            ("loadbalance.haproxy_pwd", Some("x".repeat(200).as_str())),
        ],
    );
    let invalid = validate(&env(&props, None), D).unwrap_err();
    let text = invalid.to_string();
    assert!(!text.contains("s3cr"), "{text}");
    assert!(!text.contains("xxxxxx"), "{text}");
}

#[test]
fn near_miss_keys_are_ignored_with_a_warning() {
    let props = with(base(), &[("Network.HostName", Some("typo.local"))]);
    let valid = validate(&env(&props, None), D).unwrap();
    assert_eq!(valid.config.hostname(), "haproxy.local");
    let got: Vec<String> = valid.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "Host Name (network.hostname): the environment has \"Network.HostName\", which is ignored: property keys are case-sensitive; expected network.hostname"
        ]
    );
}

#[test]
fn management_and_workload_on_one_subnet_is_a_warning() {
    let props = with(
        base(),
        &[
            ("network.workload_ip", Some("192.168.0.3/24")),
            ("network.workload_gateway", Some("192.168.0.1")),
        ],
    );
    let valid = validate(&env(&props, None), D).unwrap();
    let got: Vec<String> = valid.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "Workload IP (network.workload_ip): 192.168.0.3/24 shares a subnet with 192.168.0.2/24 (Management IP (network.management_ip)); the management and workload networks should be different subnets"
        ]
    );
}

/// The rules of the validation-gaps issue (items 8, 9 and 10).
#[allow(clippy::too_many_lines)] // a table of cases, as `cases()`
fn hardening_cases() -> Vec<Case> {
    let awn = "Additional Workload Networks (network.additional_workload_networks)";
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut v = vec![
        // --- 8: additional workload networks ---
        case(
            "additional workload network containing the management subnet",
            D,
            &[(
                "network.additional_workload_networks",
                Some("192.168.0.0/23"),
            )],
            &[leak(format!(
                "{awn}: 192.168.0.0/23 overlaps the management subnet 192.168.0.0/24 of Management IP (network.management_ip); expected only networks reached through the workload gateway (management traffic would leave through the workload NIC)"
            ))],
        ),
        case(
            "additional workload network inside the management subnet",
            D,
            &[(
                "network.additional_workload_networks",
                Some("192.168.20.0/24, 192.168.0.128/25"),
            )],
            &[leak(format!(
                "{awn}: 192.168.0.128/25 overlaps the management subnet 192.168.0.0/24 of Management IP (network.management_ip); expected only networks reached through the workload gateway (management traffic would leave through the workload NIC)"
            ))],
        ),
        case(
            "additional workload network containing a DNS server",
            D,
            &[("network.additional_workload_networks", Some("1.1.1.0/24"))],
            &[leak(format!(
                "{awn}: 1.1.1.0/24 contains 1.1.1.1 of DNS (network.nameservers); expected only networks reached through the workload gateway (DNS queries would leave through the workload NIC)"
            ))],
        ),
        case(
            "additional workload network in loopback",
            D,
            &[("network.additional_workload_networks", Some("127.0.0.0/8"))],
            &[leak(format!(
                "{awn}: 127.0.0.0/8 overlaps 127.0.0.0/8 (loopback); expected networks of ordinary unicast addresses"
            ))],
        ),
        case(
            "additional workload network in multicast",
            D,
            &[("network.additional_workload_networks", Some("224.0.0.0/24"))],
            &[leak(format!(
                "{awn}: 224.0.0.0/24 overlaps 224.0.0.0/4 (multicast); expected networks of ordinary unicast addresses"
            ))],
        ),
        case(
            "additional workload network link-local",
            D,
            &[(
                "network.additional_workload_networks",
                Some("169.254.0.0/16"),
            )],
            &[leak(format!(
                "{awn}: 169.254.0.0/16 overlaps 169.254.0.0/16 (link-local); expected networks of ordinary unicast addresses"
            ))],
        ),
        case(
            "additional workload network in 0/8",
            D,
            &[("network.additional_workload_networks", Some("0.0.0.0/8"))],
            &[leak(format!(
                "{awn}: 0.0.0.0/8 overlaps 0.0.0.0/8 (\"this network\"); expected networks of ordinary unicast addresses"
            ))],
        ),
        case(
            "additional workload network in 240/4",
            D,
            &[("network.additional_workload_networks", Some("240.0.0.0/4"))],
            &[leak(format!(
                "{awn}: 240.0.0.0/4 overlaps 240.0.0.0/4 (reserved, including the broadcast address 255.255.255.255); expected networks of ordinary unicast addresses"
            ))],
        ),
        case(
            "additional workload network overlapping an LB range",
            D,
            &[
                ("loadbalance.service_ip_range", Some("192.168.50.0/24")),
                (
                    "network.additional_workload_networks",
                    Some("192.168.48.0/22"),
                ),
            ],
            &[leak(format!(
                "{awn}: 192.168.48.0/22 overlaps load-balancer range 192.168.50.0/24 (loadbalance.service_ip_range); expected networks outside every load-balancer range"
            ))],
        ),
        // --- 10: DNS servers, host name, gateways ---
        case(
            "DNS server on loopback",
            D,
            &[("network.nameservers", Some("127.0.0.1"))],
            &[
                "DNS (network.nameservers): 127.0.0.1 is in 127.0.0.0/8 (loopback); expected the address of a DNS server the appliance can reach, e.g. 1.1.1.1",
            ],
        ),
        case(
            "DNS server 0.0.0.0",
            D,
            &[("network.nameservers", Some("1.1.1.1, 0.0.0.0"))],
            &[
                "DNS (network.nameservers): 0.0.0.0 is in 0.0.0.0/8 (\"this network\"); expected the address of a DNS server the appliance can reach, e.g. 1.1.1.1",
            ],
        ),
        case(
            "DNS server multicast",
            D,
            &[("network.nameservers", Some("224.0.0.251"))],
            &[
                "DNS (network.nameservers): 224.0.0.251 is in 224.0.0.0/4 (multicast); expected the address of a DNS server the appliance can reach, e.g. 1.1.1.1",
            ],
        ),
        case(
            "DNS server broadcast",
            D,
            &[("network.nameservers", Some("255.255.255.255"))],
            &[
                "DNS (network.nameservers): 255.255.255.255 is in 240.0.0.0/4 (reserved, including the broadcast address 255.255.255.255); expected the address of a DNS server the appliance can reach, e.g. 1.1.1.1",
            ],
        ),
        case(
            "DNS server is the appliance's own address",
            D,
            &[("network.nameservers", Some("1.1.1.1, 192.168.10.2"))],
            &[
                "DNS (network.nameservers): 192.168.10.2 is the appliance's own address (Workload IP (network.workload_ip)); expected the address of a DNS server (the appliance runs none)",
            ],
        ),
        case(
            "host name localhost",
            D,
            &[("network.hostname", Some("localhost"))],
            &[
                "Host Name (network.hostname): \"localhost\" is already in /etc/hosts for a loopback or multicast address; expected the appliance's own name, e.g. haproxy.local",
            ],
        ),
        case(
            "host name Localhost (any case)",
            D,
            &[("network.hostname", Some("Localhost"))],
            &[
                "Host Name (network.hostname): \"Localhost\" is already in /etc/hosts for a loopback or multicast address; expected the appliance's own name, e.g. haproxy.local",
            ],
        ),
        case(
            "host name ip6-loopback",
            D,
            &[("network.hostname", Some("ip6-loopback"))],
            &[
                "Host Name (network.hostname): \"ip6-loopback\" is already in /etc/hosts for a loopback or multicast address; expected the appliance's own name, e.g. haproxy.local",
            ],
        ),
        case(
            "workload gateway is the management IP",
            D,
            &[
                ("network.workload_ip", Some("192.168.0.3/24")),
                ("network.workload_gateway", Some("192.168.0.2")),
            ],
            &[
                "Workload Gateway (network.workload_gateway): 192.168.0.2 is the appliance's own address (Management IP (network.management_ip)); expected the router's address",
            ],
        ),
        case(
            "frontend gateway is the workload IP",
            F,
            &[
                ("network.frontend_ip", Some("192.168.10.3/24")),
                ("network.frontend_gateway", Some("192.168.10.2")),
            ],
            &[
                "Frontend Gateway (network.frontend_gateway): 192.168.10.2 is the appliance's own address (Workload IP (network.workload_ip)); expected the router's address",
            ],
        ),
    ];
    // --- 9: supplied CAs ---
    for (i, (cert, key, message)) in PEMS.bad_cas.iter().enumerate() {
        let mut c = case(
            [
                "expired CA",
                "CA not yet valid",
                "CA without keyCertSign",
                "CA with RSA 1024",
                "CA with DSA",
            ][i],
            D,
            &[],
            &[leak(message.clone())],
        );
        c.overrides = vec![
            set("appliance.ca_cert", cert),
            set("appliance.ca_cert_key", key),
        ];
        v.push(c);
    }
    v
}

#[test]
fn an_invalid_management_ip_is_one_problem_not_also_dhcp() {
    for bad in ["192.168.0.2", "192.168.0.0/24", "mgmt/24"] {
        let props = with(base(), &[("network.management_ip", Some(bad))]);
        let invalid = validate(&env(&props, None), D).unwrap_err();
        assert_eq!(invalid.problems.len(), 1, "{bad}: {:?}", invalid.problems);
        assert!(invalid.warnings.is_empty(), "{bad}: {:?}", invalid.warnings);
    }
}

#[test]
fn frontend_ip_in_the_management_subnet_is_a_warning() {
    let props = with(
        base_frontend(),
        &[
            ("network.frontend_ip", Some("192.168.0.3/24")),
            ("network.frontend_gateway", Some("192.168.0.1")),
        ],
    );
    let valid = validate(&env(&props, Some(3)), F).unwrap();
    let got: Vec<String> = valid.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "Frontend IP (network.frontend_ip): 192.168.0.3/24 shares a subnet with 192.168.0.2/24 (Management IP (network.management_ip)); the management and frontend networks should be different subnets"
        ]
    );
}

#[test]
fn a_ca_expiring_within_30_days_is_a_warning() {
    let (cert, key, not_after) = &PEMS.expiring_ca;
    let props = with(
        base(),
        &[
            ("appliance.ca_cert", Some(cert)),
            ("appliance.ca_cert_key", Some(key)),
        ],
    );
    let valid = validate(&env(&props, None), D).unwrap();
    let got: Vec<String> = valid.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [format!(
            "TLS Certificate Authority Certificate (appliance.ca_cert): the certificate (CN=Soon CA) expires on {not_after}, within 30 days; the server certificate it signs expires with it: replace the CA before then"
        )]
    );
    assert!(valid.config.ca().is_some());
}

#[test]
fn a_ca_without_key_usage_is_accepted() {
    // RFC 5280: no keyUsage extension means no restriction (OpenSSL accepts such CAs).
    let ca = ca_between(ec_key(), "Plain CA", 0, 365, None);
    let props = with(
        base(),
        &[
            ("appliance.ca_cert", Some(&ca.cert_pem())),
            ("appliance.ca_cert_key", Some(&ca.key_pkcs8_pem())),
        ],
    );
    let valid = validate(&env(&props, None), D).unwrap();
    assert!(valid.warnings.is_empty(), "{:?}", valid.warnings);
}

#[test]
fn names_the_hosts_template_maps_are_refused_as_host_name() {
    // Every name the rendered /etc/hosts maps besides the host name itself.
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/hosts")).unwrap();
    let names: Vec<&str> = template
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.contains("{{"))
        .flat_map(|l| l.split_whitespace().skip(1))
        .collect();
    assert!(names.contains(&"localhost"), "{names:?}");
    for name in names {
        let props = with(base(), &[("network.hostname", Some(name))]);
        let invalid = validate(&env(&props, None), D);
        assert!(invalid.is_err(), "{name} accepted as host name");
    }
}
