//! A lab network for the appliance, made of network namespaces this test creates (and removes
//! when the [`Lab`] is dropped, failure included):
//!
//! - a switch namespace with one bridge per segment; the appliance's NICs are tap ports on the
//!   management, workload and frontend bridges, and QEMU runs inside this namespace; the lab
//!   hosts one appliance (taps `tap-<segment>`) or several, e.g. an HA pair (taps
//!   `<appliance>-<segment>`: `a-management`, `b-workload`, …);
//! - a router namespace with a leg on every segment and strict reverse-path filtering, joining
//!   the appliance's networks to networks the appliance is not attached to: remote clients and
//!   an additional workload network;
//! - HTTP backends (python3 http.server answering with their own name) on the workload network
//!   and on the additional workload network, and clients on the remote, workload and additional
//!   networks;
//! - the Supervisor's host on the management network, from which the appliance's Data Plane API
//!   is programmed.
//!
//! Nothing is addressed in the host's own namespace. nftables counters on the switch's tap
//! ports show by which NIC traffic to and from the load-balancer ranges entered and left.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use testkit::netns::Netns;
use testkit::run;

/// A layer-2 segment: a bridge in the switch namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    Management,
    Workload,
    Frontend,
    /// The additional workload network, one router hop from the workload network.
    Additional,
    /// Remote clients, behind the router.
    Clients,
}

impl Segment {
    pub const ALL: [Segment; 5] = [
        Segment::Management,
        Segment::Workload,
        Segment::Frontend,
        Segment::Additional,
        Segment::Clients,
    ];
    /// The segments the appliance has NICs on.
    pub const APPLIANCE: [Segment; 3] = [Segment::Management, Segment::Workload, Segment::Frontend];

    pub fn name(self) -> &'static str {
        match self {
            Segment::Management => "management",
            Segment::Workload => "workload",
            Segment::Frontend => "frontend",
            Segment::Additional => "additional",
            Segment::Clients => "clients",
        }
    }

    /// The router's address on the segment (every segment's gateway), with prefix length.
    fn router_address(self) -> &'static str {
        match self {
            Segment::Management => "192.168.0.1/24",
            Segment::Workload => "192.168.10.1/24",
            Segment::Frontend => "192.168.100.1/24",
            Segment::Additional => "10.20.0.1/24",
            Segment::Clients => "10.99.0.1/24",
        }
    }

    fn bridge(self) -> String {
        format!("br-{}", self.name())
    }

    /// The tap port of the appliance's NIC on this segment (the lab of one appliance).
    pub fn tap(self) -> String {
        tap_name("", self)
    }
}

/// The tap port of appliance `appliance`'s NIC on `seg`: `tap-<segment>` for the lab's only
/// appliance (`""`), `<appliance>-<segment>` otherwise (at most 15 characters, the kernel's
/// limit: names of at most 4 characters).
pub fn tap_name(appliance: &str, seg: Segment) -> String {
    if appliance.is_empty() {
        format!("tap-{}", seg.name())
    } else {
        format!("{appliance}-{}", seg.name())
    }
}

/// The name of a switch counter: `<kind>_<segment>`, `<kind>_<appliance>_<segment>`.
fn counter_name(kind: &str, appliance: &str, seg: Segment) -> String {
    if appliance.is_empty() {
        format!("{kind}_{}", seg.name())
    } else {
        format!("{kind}_{appliance}_{}", seg.name())
    }
}

/// A host of the lab: its namespace role, segment, address and gateway.
pub struct Host {
    pub role: &'static str,
    pub segment: Segment,
    pub address: &'static str,
}

impl Host {
    pub fn ip(&self) -> &'static str {
        self.address.split('/').next().unwrap_or(self.address)
    }
}

/// The backends answer with their role name.
pub const BACKEND_WORKLOAD: Host = Host {
    role: "backend-workload",
    segment: Segment::Workload,
    address: "192.168.10.11/24",
};
pub const BACKEND_ADDITIONAL: Host = Host {
    role: "backend-additional",
    segment: Segment::Additional,
    address: "10.20.0.11/24",
};
pub const CLIENT_REMOTE: Host = Host {
    role: "client-remote",
    segment: Segment::Clients,
    address: "10.99.0.10/24",
};
pub const CLIENT_WORKLOAD: Host = Host {
    role: "client-workload",
    segment: Segment::Workload,
    address: "192.168.10.20/24",
};
pub const CLIENT_ADDITIONAL: Host = Host {
    role: "client-additional",
    segment: Segment::Additional,
    address: "10.20.0.20/24",
};
/// Where the Supervisor programs the appliance from: the management network.
pub const SUPERVISOR: Host = Host {
    role: "supervisor",
    segment: Segment::Management,
    address: "192.168.0.10/24",
};
pub const BACKEND_PORT: u16 = 8080;

/// Packets seen on one appliance tap port for the watched load-balancer ranges.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortCount {
    /// Frames to an address in a range sent to the appliance through this port.
    pub requests: u64,
    /// Frames from an address in a range that the appliance sent through this port.
    pub replies: u64,
}

pub struct Lab {
    prefix: String,
    /// The appliances' names (`""`: the only one), each with a tap on every appliance segment.
    appliances: Vec<&'static str>,
    namespaces: Vec<Netns>,
    servers: Vec<Child>,
    dir: PathBuf,
    ports: u32,
}

fn ip(args: &[&str]) -> String {
    run(Command::new("ip").args(args))
}

impl Lab {
    /// Builds the whole lab for one appliance: switch, router, backends (serving), clients.
    pub fn new(dir: &Path) -> Lab {
        Lab::with_appliances(dir, &[""])
    }

    /// The lab for the appliances `names` (see [`tap_name`]).
    pub fn with_appliances(dir: &Path, names: &[&'static str]) -> Lab {
        assert!(
            names.iter().all(|n| n.len() <= 4),
            "appliance names of at most 4 characters (tap names): {names:?}"
        );
        let mut lab = Lab {
            prefix: format!("lab{}", std::process::id()),
            appliances: names.to_vec(),
            namespaces: Vec::new(),
            servers: Vec::new(),
            dir: dir.to_owned(),
            ports: 0,
        };
        let switch = lab.add_namespace("switch");
        for seg in Segment::ALL {
            ip(&[
                "-n",
                &switch,
                "link",
                "add",
                &seg.bridge(),
                "type",
                "bridge",
            ]);
            ip(&["-n", &switch, "link", "set", &seg.bridge(), "up"]);
        }
        for appliance in names {
            for seg in Segment::APPLIANCE {
                let tap = tap_name(appliance, seg);
                ip(&["-n", &switch, "tuntap", "add", &tap, "mode", "tap"]);
                ip(&[
                    "-n",
                    &switch,
                    "link",
                    "set",
                    &tap,
                    "master",
                    &seg.bridge(),
                    "up",
                ]);
            }
        }
        lab.add_router();
        for host in [&BACKEND_WORKLOAD, &BACKEND_ADDITIONAL] {
            lab.add_host(host);
            lab.serve(host);
        }
        for host in [
            &CLIENT_REMOTE,
            &CLIENT_WORKLOAD,
            &CLIENT_ADDITIONAL,
            &SUPERVISOR,
        ] {
            lab.add_host(host);
        }
        lab
    }

    /// The namespace of `host`.
    pub fn netns(&self, host: &Host) -> &Netns {
        let name = self.ns(host.role);
        self.namespaces
            .iter()
            .find(|n| n.name() == name)
            .unwrap_or_else(|| panic!("no namespace {name} in the lab"))
    }

    pub fn switch(&self) -> String {
        self.ns("switch")
    }

    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// A namespace with loopback up, IPv6 off (less noise on the counters), and `rp_filter`
    /// strict for every interface that will be created in it.
    fn add_namespace(&mut self, role: &str) -> String {
        let netns = Netns::create("lab", role);
        let ns = netns.name().to_owned();
        debug_assert_eq!(ns, self.ns(role));
        self.namespaces.push(netns);
        self.sysctl(
            &ns,
            &[
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
                "net.ipv4.conf.all.rp_filter=1",
                "net.ipv4.conf.default.rp_filter=1",
            ],
        );
        ns
    }

    fn sysctl(&self, ns: &str, settings: &[&str]) {
        run(Command::new("ip")
            .args(["netns", "exec", ns, "sysctl", "-q", "-w"])
            .args(settings));
    }

    /// A veth from `ns` (named after the segment) to a port of the segment's bridge.
    fn plug(&mut self, ns: &str, seg: Segment, address: &str) {
        self.ports += 1;
        let port = format!("p{}", self.ports);
        let switch = self.switch();
        ip(&[
            "-n",
            &switch,
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            seg.name(),
            "netns",
            ns,
        ]);
        ip(&[
            "-n",
            &switch,
            "link",
            "set",
            &port,
            "master",
            &seg.bridge(),
            "up",
        ]);
        ip(&["-n", ns, "addr", "add", address, "dev", seg.name()]);
        ip(&["-n", ns, "link", "set", seg.name(), "up"]);
    }

    /// The router: a leg on every segment, forwarding, strict reverse-path filtering.
    fn add_router(&mut self) {
        let ns = self.add_namespace("router");
        for seg in Segment::ALL {
            self.plug(&ns, seg, seg.router_address());
            self.sysctl(&ns, &[&format!("net.ipv4.conf.{}.rp_filter=1", seg.name())]);
        }
        self.sysctl(&ns, &["net.ipv4.ip_forward=1"]);
    }

    fn add_host(&mut self, host: &Host) {
        let ns = self.add_namespace(host.role);
        self.plug(&ns, host.segment, host.address);
        let gateway = host
            .segment
            .router_address()
            .split('/')
            .next()
            .unwrap_or_default();
        ip(&["-n", &ns, "route", "add", "default", "via", gateway]);
    }

    /// An HTTP server in the host's namespace whose index page is the host's role.
    fn serve(&mut self, host: &Host) {
        let root = self.dir.join(format!("www-{}", host.role));
        std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        std::fs::write(root.join("index.html"), format!("{}\n", host.role))
            .unwrap_or_else(|e| panic!("index.html: {e}"));
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(host.role), "python3", "-m"])
            .args([
                "http.server",
                &BACKEND_PORT.to_string(),
                "--bind",
                host.ip(),
            ])
            .arg("--directory")
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {} HTTP server: {e}", host.role));
        self.servers.push(child);
        let url = format!("http://{}:{BACKEND_PORT}/", host.ip());
        let start = Instant::now();
        while self.get(host, &url).as_deref() != Some(host.role) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the {} HTTP server does not answer on {url}",
                host.role
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// GET `url` from `client`'s namespace: the trimmed body, or None (no answer within 5 s).
    pub fn get(&self, client: &Host, url: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(client.role), "curl", "-sf"])
            .args(["--connect-timeout", "4", "--max-time", "5", url])
            .output()
            .unwrap_or_else(|e| panic!("running curl: {e}"));
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Two GETs in a row from `client`: the set of backends that answered (None on no answer).
    pub fn two_gets(&self, client: &Host, url: &str) -> Option<BTreeSet<String>> {
        let first = self.get(client, url)?;
        let second = self.get(client, url)?;
        Some([first, second].into_iter().collect())
    }

    /// (Re)loads the switch's counters: per appliance tap port, frames to and from `ranges`.
    pub fn watch(&self, ranges: &[&str]) {
        let set = ranges.join(", ");
        let mut rules =
            String::from("table bridge lab\ndelete table bridge lab\ntable bridge lab {\n");
        let ports: Vec<(&str, Segment)> = self
            .appliances
            .iter()
            .flat_map(|a| Segment::APPLIANCE.map(|seg| (*a, seg)))
            .collect();
        for (a, seg) in &ports {
            let (req, rep) = (counter_name("req", a, *seg), counter_name("rep", a, *seg));
            rules.push_str(&format!("  counter {req} {{}}\n  counter {rep} {{}}\n"));
        }
        rules.push_str("  chain ports {\n    type filter hook forward priority 0;\n");
        for (a, seg) in &ports {
            let (req, rep) = (counter_name("req", a, *seg), counter_name("rep", a, *seg));
            let tap = tap_name(a, *seg);
            rules.push_str(&format!(
                "    oifname \"{tap}\" ip daddr {{ {set} }} counter name \"{req}\"\n    \
                 iifname \"{tap}\" ip saddr {{ {set} }} counter name \"{rep}\"\n"
            ));
        }
        rules.push_str("  }\n}\n");
        self.switch_rules("lab", &rules);
    }

    pub fn reset_counters(&self) {
        run(Command::new("ip").args([
            "netns",
            "exec",
            &self.switch(),
            "nft",
            "reset",
            "counters",
            "table",
            "bridge",
            "lab",
        ]));
    }

    fn counter(&self, name: &str) -> u64 {
        let text = run(Command::new("ip").args([
            "netns",
            "exec",
            &self.switch(),
            "nft",
            "list",
            "counter",
            "bridge",
            "lab",
            name,
        ]));
        text.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no packet count in {text}"))
    }

    /// The counts on the tap of the lab's only appliance on `seg`.
    pub fn count(&self, seg: Segment) -> PortCount {
        self.count_on("", seg)
    }

    /// The counts on the tap of appliance `appliance` on `seg`.
    pub fn count_on(&self, appliance: &str, seg: Segment) -> PortCount {
        PortCount {
            requests: self.counter(&counter_name("req", appliance, seg)),
            replies: self.counter(&counter_name("rep", appliance, seg)),
        }
    }

    /// `nft -f` of `rules` in the switch's namespace (the file is kept in the lab's directory
    /// as `<name>.nft`).
    pub fn switch_rules(&self, name: &str, rules: &str) {
        let file = self.dir.join(format!("{name}.nft"));
        std::fs::write(&file, rules).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        run(Command::new("ip")
            .args(["netns", "exec", &self.switch(), "nft", "-f"])
            .arg(&file));
    }
}

/// What one HTTP request on a new connection got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200 with this (trimmed) body.
    Body(String),
    /// The connection was refused (RST): nothing listens there.
    Refused,
    /// Anything else: a timeout, a reset after connecting, another status.
    Failed(String),
}

/// `GET /` over a new connection to `addr`, from the calling thread's namespace (see
/// [`Netns::enter`]): 3 s to connect, 5 s to answer.
pub fn http_get(addr: SocketAddr) -> Answer {
    http_get_within(addr, Duration::from_secs(3), Duration::from_secs(5))
}

/// As [`http_get`], with `connect` to connect and `answer` for each read and write.
pub fn http_get_within(addr: SocketAddr, connect: Duration, answer: Duration) -> Answer {
    let mut stream = match TcpStream::connect_timeout(&addr, connect) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Answer::Refused,
        Err(e) => return Answer::Failed(format!("connect: {e}")),
    };
    let exchange = |stream: &mut TcpStream| -> std::io::Result<String> {
        stream.set_read_timeout(Some(answer))?;
        stream.set_write_timeout(Some(answer))?;
        stream.write_all(format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    };
    match exchange(&mut stream) {
        Err(e) => Answer::Failed(format!("exchange: {e}")),
        Ok(text) => match text.split_once("\r\n\r\n") {
            Some((head, body)) if head.split_whitespace().nth(1) == Some("200") => {
                Answer::Body(body.trim().to_owned())
            }
            _ => Answer::Failed(format!("answer: {text:?}")),
        },
    }
}

/// What a steady client counted.
#[derive(Debug, Default)]
pub struct Tally {
    pub requests: u64,
    pub failed: u64,
    /// The first failures: (seconds since the client started, what happened).
    pub failures: Vec<(f64, Answer)>,
}

/// A client making one request on a new connection to `addr` every 50 ms until `stop` is set;
/// an answer other than one of `backends` is a failure. Runs on the calling thread, in its
/// namespace.
pub fn steady_client(addr: SocketAddr, backends: &[&str], stop: &AtomicBool) -> Tally {
    let start = Instant::now();
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        tally.requests += 1;
        let answer = http_get(addr);
        if !matches!(&answer, Answer::Body(b) if backends.contains(&b.as_str())) {
            tally.failed += 1;
            if tally.failures.len() < 10 {
                tally.failures.push((start.elapsed().as_secs_f64(), answer));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tally
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.servers {
            // SIGKILL to this PID only (`ip netns exec` exec'd python3).
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleted in reverse order of creation.
        while let Some(ns) = self.namespaces.pop() {
            drop(ns);
        }
    }
}
