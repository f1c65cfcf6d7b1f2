//! The HA pair (docs/ha-pair.md) with two real nodes: each its own network namespace (made by
//! the test, a veth between them, 10.77.0.2 and 10.77.0.3 /24), haproxy and the Data Plane API in
//! it, one CA for both. The management VIP 10.77.0.10 is added to and removed from a node with
//! `ip addr`, as keepalived does; nothing is configured in the machine's own namespace. Needs root,
//! `ip`, haproxy, curl, openssl and `arping` (a failure in CI without them, skipped with a message
//! elsewhere).

mod common;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{PASSWORD, Reply, USER, report};
use serde_json::json;
use testkit::netns::Netns;
use testkit::run;

const VIP: &str = "10.77.0.10";
const PORT: u16 = 5556;
const RANGE: &str = "10.78.0.0/24";
const SECRET: &str = "pair-secret-for-tests";
const BIN: &str = env!("CARGO_BIN_EXE_haproxy-dataplaneapi");

/// Whether the test can run here: root (network namespaces) and the tools (in CI, where
/// everything must be there, a missing one fails the test).
fn supported() -> bool {
    if !testkit::is_root() {
        testkit::unmet("needs root (network namespaces)");
        return false;
    }
    ["ip", "haproxy", "curl", "openssl", "arping"]
        .into_iter()
        .all(testkit::have)
}

macro_rules! skip_unless_supported {
    () => {
        if !supported() {
            return;
        }
    };
}

/// Pairs made so far in this process (the tests run in parallel: each pair its namespaces).
static PAIRS: AtomicUsize = AtomicUsize::new(0);

/// The pair's two namespaces, joined by a veth `ha0` (10.77.0.2 and 10.77.0.3 /24) made inside
/// the first; deleted when dropped (also after a failure), with the veth.
fn pair_namespaces() -> [Netns; 2] {
    let n = PAIRS.fetch_add(1, Ordering::SeqCst);
    let [a, b] = ["a", "b"].map(|node| Netns::create("dpha", &format!("{node}{n}")));
    a.ip(&[
        "link",
        "add",
        "ha0",
        "type",
        "veth",
        "peer",
        "name",
        "ha0",
        "netns",
        b.name(),
    ]);
    for (ns, addr) in [(&a, "10.77.0.2/24"), (&b, "10.77.0.3/24")] {
        ns.ip(&["link", "set", "ha0", "up"]);
        ns.ip(&["addr", "add", addr, "dev", "ha0"]);
        // As the appliance's sysctl.d does: haproxy binds VIPs the node does not hold.
        run(ns
            .command("sysctl")
            .args(["-qw", "net.ipv4.ip_nonlocal_bind=1"]));
    }
    [a, b]
}

/// One appliance of the pair: haproxy and the API in its namespace.
struct Node {
    ns: Netns,
    addr: &'static str,
    peer: &'static str,
    dir: tempfile::TempDir,
    haproxy: Option<Child>,
    api: Option<Child>,
}

impl Node {
    fn new(ns: Netns, addr: &'static str, peer: &'static str, ca: &Path, ranges: &[&str]) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        common::make_server_cert(d, ca, &[addr, VIP]);
        std::fs::write(d.join("haproxy.cfg"), common::base_config(d)).expect("haproxy.cfg");
        std::fs::write(d.join("ha-peer.secret"), format!("{SECRET}\n")).expect("secret");
        let ranges: String = ranges.iter().map(|r| format!("  - {r}\n")).collect();
        let yaml = format!(
            "config_version: 2\nname: {addr}\ndataplaneapi:\n  scheme:\n  - https\n  tls:\n    tls_host: 0.0.0.0\n    tls_port: {PORT}\n    tls_certificate: {p}/server.crt\n    tls_key: {p}/server.key\n  userlist:\n    userlist: controller\n  transaction:\n    transaction_dir: {p}/state/transactions\nhaproxy:\n  config_file: {p}/haproxy.cfg\n  haproxy_bin: haproxy\n  master_runtime: {p}/master.sock\n  reload:\n    reload_delay: 1\nha:\n  node_address: {addr}\n  peer_address: {peer}\n  peer_port: {PORT}\n  management_vip: {VIP}\n  secret_file: {p}/ha-peer.secret\n  ca_file: {p}/ca.crt\n  router_id: 51\n  service_ranges:\n{ranges}  vip_interface: ha0\n",
            p = d.display()
        );
        std::fs::write(d.join("dataplaneapi.yaml"), yaml).expect("yaml");
        std::fs::write(
            d.join("auth.curlrc"),
            format!("user = \"{USER}:{PASSWORD}\"\n"),
        )
        .expect("curlrc");
        let mut node = Node {
            ns,
            addr,
            peer,
            dir,
            haproxy: None,
            api: None,
        };
        node.start_haproxy();
        node.start_api();
        node
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn in_ns(&self, program: &str) -> Command {
        self.ns.command(program)
    }

    fn start_haproxy(&mut self) {
        self.haproxy = Some(common::start_haproxy(
            self.in_ns("haproxy"),
            self.dir.path(),
        ));
    }

    fn start_api(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("api.log"))
            .expect("api.log");
        let child = self
            .in_ns(BIN)
            .arg("-f")
            .arg(self.path("dataplaneapi.yaml"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("haproxy-dataplaneapi");
        self.api = Some(child);
        common::wait_for(|| self.check(), "the Data Plane API (dataplaneapi check)");
    }

    /// `dataplaneapi check`, as keepalived runs it.
    fn check(&self) -> bool {
        self.in_ns(BIN)
            .arg("check")
            .arg("-f")
            .arg(self.path("dataplaneapi.yaml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn stop_api(&mut self) {
        if let Some(mut c) = self.api.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("api.log")).unwrap_or_default()
    }

    /// The MAC address of the node's `ha0`.
    fn mac(&self) -> String {
        let out = run(self.in_ns("ip").args(["-o", "link", "show", "dev", "ha0"]));
        let mac = out
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1);
        mac.expect("ha0 has a MAC address").to_string()
    }

    /// The MAC address this node's ARP cache has for `ip` on `ha0` (empty: none).
    fn neighbour(&self, ip: &str) -> String {
        let out = run(self
            .in_ns("ip")
            .args(["neigh", "show", "to", ip, "dev", "ha0"]));
        let mac = out.split_whitespace().skip_while(|w| *w != "lladdr").nth(1);
        mac.unwrap_or_default().to_string()
    }

    /// A stale ARP entry for `ip` pointing at `mac`, as a router's after another node
    /// announced `ip` (only a gratuitous ARP, or its expiry, changes it).
    fn learn_neighbour(&self, ip: &str, mac: &str) {
        run(self.in_ns("ip").args([
            "neigh", "replace", ip, "lladdr", mac, "dev", "ha0", "nud", "stale",
        ]));
    }

    fn take_vip(&self) {
        run(self
            .in_ns("ip")
            .args(["addr", "add", &format!("{VIP}/24"), "dev", "ha0"]));
    }

    fn drop_vip(&self) {
        run(self
            .in_ns("ip")
            .args(["addr", "del", &format!("{VIP}/24"), "dev", "ha0"]));
    }

    /// A request to this node's API from its namespace, with the API user's credentials.
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        self.request(method, path, body, true)
    }

    /// A request from the node's namespace, with the API user's credentials or none.
    fn request(&self, method: &str, path: &str, body: Option<&str>, auth: bool) -> Reply {
        common::curl(
            self.in_ns("curl"),
            &format!("https://{}:{PORT}{path}", self.addr),
            &self.path("ca.crt"),
            auth.then(|| self.path("auth.curlrc")).as_deref(),
            (method, body),
        )
    }

    fn version(&self) -> u64 {
        let r = self.call("GET", "/v2/services/haproxy/configuration/version", None);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json().as_u64().expect("an integer version")
    }

    fn status(&self) -> serde_json::Value {
        let r = self.call("GET", "/ha/status", None);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    fn frontends(&self) -> Vec<String> {
        let r = self.call("GET", "/v2/services/haproxy/configuration/frontends", None);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["data"]
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|f| f["name"].as_str().map(String::from))
            .collect()
    }

    /// Whether haproxy itself runs frontend `name` (`show stat` on its stats socket).
    fn haproxy_runs(&self, name: &str) -> bool {
        use std::io::{Read, Write};
        let Ok(mut sock) = std::os::unix::net::UnixStream::connect(self.path("admin.sock")) else {
            return false;
        };
        let mut out = String::new();
        let _ = sock.write_all(b"show stat\n");
        let _ = sock.read_to_string(&mut out);
        out.lines()
            .any(|l| l.starts_with(&format!("{name},FRONTEND,")))
    }

    fn has_frontend(&self, name: &str) -> bool {
        self.frontends().iter().any(|f| f == name)
    }

    /// A service (backend, frontend, bind on `vip:port`) in one transaction; the commit's
    /// answer.
    fn create_service(&self, name: &str, vip: &str, port: u16) -> Reply {
        let v = self.version();
        let r = self.call(
            "POST",
            &format!("/v2/services/haproxy/transactions?version={v}"),
            None,
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.json()["id"].as_str().expect("id").to_string();
        let cfg = "/v2/services/haproxy/configuration";
        let be = format!("{name}-be");
        for (path, body) in [
            (
                format!("{cfg}/backends?transaction_id={id}"),
                json!({"name": be, "mode": "tcp"}),
            ),
            (
                format!("{cfg}/frontends?transaction_id={id}"),
                json!({"name": name, "mode": "tcp", "default_backend": be}),
            ),
            (
                format!("{cfg}/binds?frontend={name}&transaction_id={id}"),
                json!({"name": "vip", "address": vip, "port": port}),
            ),
        ] {
            let r = self.call("POST", &path, Some(&body.to_string()));
            assert_eq!(r.status, 202, "{path}: {}", r.body);
        }
        self.call(
            "PUT",
            &format!("/v2/services/haproxy/transactions/{id}"),
            None,
        )
    }
}

/// The processes stop before the namespace goes (the fields drop after this).
impl Drop for Node {
    fn drop(&mut self) {
        self.stop_api();
        common::stop_haproxy(self.haproxy.take());
    }
}

/// Two nodes, each in its namespace, with one CA.
struct Pair {
    a: Node,
    b: Node,
    _ca: tempfile::TempDir,
}

impl Pair {
    fn new(ranges_b: &[&str]) -> Pair {
        let [ns_a, ns_b] = pair_namespaces();
        let ca = tempfile::tempdir().expect("tempdir");
        common::make_ca(ca.path());
        let a = Node::new(ns_a, "10.77.0.2", "10.77.0.3", ca.path(), &[RANGE]);
        let b = Node::new(ns_b, "10.77.0.3", "10.77.0.2", ca.path(), ranges_b);
        Pair { a, b, _ca: ca }
    }
}

/// Polls `ok` every 100 ms for `within`; the time it took.
fn eventually(within: Duration, what: &str, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

fn replication(r: &Reply) -> String {
    r.header("X-Ha-Replication").unwrap_or_default()
}

fn log_tail(node: &Node) -> String {
    let log = node.log();
    let lines: Vec<&str> = log.lines().rev().take(30).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

#[test]
fn a_commit_reaches_the_backup_before_the_master_answers_and_roles_swap() {
    skip_unless_supported!();
    let p = Pair::new(&[RANGE]);
    p.a.take_vip();
    eventually(Duration::from_secs(5), "A to be MASTER", || {
        p.a.status()["role"] == "master"
    });
    assert_eq!(p.b.status()["role"], "backup");

    let r = p.a.create_service("svc1", "10.78.0.5", 8080);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(
        replication(&r),
        "in-sync",
        "{}\n{}",
        r.headers,
        log_tail(&p.a)
    );
    // Asked at once after the answer: the BACKUP had it before the MASTER answered.
    assert!(p.b.has_frontend("svc1"), "{}", log_tail(&p.b));
    assert_eq!(p.b.version(), p.a.version());
    let took = eventually(Duration::from_secs(10), "B's haproxy to run svc1", || {
        p.b.haproxy_runs("svc1")
    });
    report(&format!(
        "ha_pair: the BACKUP's haproxy runs the replicated service {} ms after the answer",
        took.as_millis()
    ));
    let b_cfg = std::fs::read_to_string(p.b.path("haproxy.cfg")).expect("cfg");
    assert!(
        b_cfg.contains(&p.b.dir.path().display().to_string()),
        "B keeps its own global section"
    );

    let refused = p.b.call(
        "POST",
        &format!(
            "/v2/services/haproxy/configuration/frontends?version={}",
            p.b.version()
        ),
        Some(r#"{"name": "nope", "mode": "tcp"}"#),
    );
    assert_eq!(refused.status, 503, "{}", refused.body);
    let message = refused.json()["message"].as_str().unwrap_or("").to_string();
    assert_eq!(refused.json()["code"], 503);
    assert!(
        message.contains(p.a.addr) && message.contains(VIP),
        "{message}"
    );
    let t = p.b.call(
        "POST",
        &format!(
            "/v2/services/haproxy/transactions?version={}",
            p.b.version()
        ),
        None,
    );
    assert_eq!(t.status, 503, "transactions too: {}", t.body);
    // A write outside a transaction, reloaded at once, replicates too.
    let r = p.a.call(
        "POST",
        &format!(
            "/v2/services/haproxy/configuration/backends?version={}&force_reload=true",
            p.a.version()
        ),
        Some(r#"{"name": "direct-be", "mode": "tcp"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(replication(&r), "in-sync", "{}", r.headers);
    let on_b = p.b.call(
        "GET",
        "/v2/services/haproxy/configuration/backends/direct-be",
        None,
    );
    assert_eq!(on_b.status, 200, "{}", on_b.body);

    // Only the pair's credentials replicate; the status wants some credentials.
    let r = p.b.call("PUT", "/ha/replica", Some("{}"));
    assert_eq!(r.status, 401, "an API user cannot replicate: {}", r.body);
    assert_eq!(p.b.request("GET", "/ha/status", None, false).status, 401);

    // announce: the VIP in use (10.78.0.5 lies in the range), gratuitous ARP on ha0.
    let out =
        p.a.in_ns(BIN)
            .arg("announce")
            .arg("-f")
            .arg(p.a.path("dataplaneapi.yaml"))
            .output()
            .expect("announce");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("10.78.0.5 on ha0"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    role_swap(&p);
}

/// keepalived moves the VIP to B: B accepts writes and replicates them back to A.
fn role_swap(p: &Pair) {
    p.a.drop_vip();
    p.b.take_vip();
    assert_eq!(p.b.status()["role"], "master");
    let r = p.b.create_service("svc2", "10.78.0.6", 8080);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(
        replication(&r),
        "in-sync",
        "{}\n{}",
        r.headers,
        log_tail(&p.b)
    );
    assert!(p.a.has_frontend("svc2") && p.a.has_frontend("svc1"));
    let refused = p.a.call(
        "DELETE",
        &format!(
            "/v2/services/haproxy/configuration/frontends/svc1?version={}",
            p.a.version()
        ),
        None,
    );
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains(p.a.peer), "{}", refused.body);
    report("ha_pair: role swap: the new MASTER accepted a write and replicated it back");
}

#[test]
fn a_backup_that_was_down_catches_up() {
    skip_unless_supported!();
    let mut p = Pair::new(&[RANGE]);
    p.a.take_vip();
    p.b.stop_api();
    assert!(
        !p.b.check(),
        "dataplaneapi check fails while the API is down"
    );
    let r = p.a.create_service("svc1", "10.78.0.5", 8080);
    assert_eq!(r.status, 202, "{}", r.body);
    let h = replication(&r);
    assert!(h.starts_with("peer-behind; "), "{}", r.headers);
    assert!(p.a.log().contains("is behind"), "{}", log_tail(&p.a));
    assert_eq!(p.a.status()["peer_in_sync"], false);
    report(&format!(
        "ha_pair: with the BACKUP down: X-Ha-Replication: {h}"
    ));
    // A peer found unreachable is not tried by the next commit (a powered-off peer would make
    // every write wait for the push's timeout); the watch catches it up when it returns.
    let r = p.a.create_service("svc2", "10.78.0.6", 8080);
    assert_eq!(r.status, 202, "{}", r.body);
    let h = replication(&r);
    assert!(
        h.starts_with("peer-behind; not sent: ") && h.contains("the watch sends it"),
        "{}",
        r.headers
    );

    p.b.start_api();
    let took = eventually(Duration::from_secs(5), "B to catch up", || {
        p.b.has_frontend("svc1") && p.b.has_frontend("svc2")
    });
    assert_eq!(p.b.version(), p.a.version());
    eventually(Duration::from_secs(3), "A to see B in sync", || {
        p.a.status()["peer_in_sync"] == true
    });
    report(&format!(
        "ha_pair: the restarted BACKUP caught up in {} ms",
        took.as_millis()
    ));
}

/// A MAC address of neither node: where a router's ARP cache points after the other node
/// announced a VIP (B's namespace stands in for the router: only a gratuitous ARP from A, or the
/// entry's expiry, corrects it).
const ELSEWHERE: &str = "02:00:00:00:00:99";

/// How many times the node's watch announced its VIPs again.
fn announced_again(node: &Node) -> usize {
    node.log()
        .lines()
        .filter(|l| l.contains("announced again on ha0 (gratuitous ARP)"))
        .count()
}

#[test]
fn the_master_announces_its_vips_again_when_the_peer_returns() {
    skip_unless_supported!();
    let mut p = Pair::new(&[RANGE]);
    p.a.take_vip();
    let r = p.a.create_service("svc1", "10.78.0.5", 8080);
    assert_eq!(replication(&r), "in-sync", "{}", r.headers);
    p.b.learn_neighbour("10.78.0.5", ELSEWHERE);

    // While the peer stays reachable nothing is announced: watched for three of A's rounds.
    let window = Instant::now();
    while window.elapsed() < Duration::from_secs(3) {
        assert_eq!(p.b.neighbour("10.78.0.5"), ELSEWHERE, "{}", log_tail(&p.a));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(announced_again(&p.a), 0, "{}", log_tail(&p.a));

    // B's API stops: A's watch finds it unreachable; when it answers again, A announces.
    p.b.stop_api();
    eventually(Duration::from_secs(5), "A to find B unreachable", || {
        p.a.status()["peer_reason"]
            .as_str()
            .is_some_and(|r| r.contains("cannot connect"))
    });
    assert_eq!(p.b.neighbour("10.78.0.5"), ELSEWHERE);
    p.b.start_api();
    let mac = p.a.mac();
    let took = eventually(
        Duration::from_secs(5),
        "B's ARP entry for 10.78.0.5 to be A's MAC",
        || p.b.neighbour("10.78.0.5") == mac,
    );
    eventually(Duration::from_secs(5), "A to log the announcement", || {
        announced_again(&p.a) == 1
    });
    let log = p.a.log();
    let line = log
        .lines()
        .find(|l| l.contains("announced again"))
        .unwrap_or_default();
    assert!(
        line.contains("HA peer 10.77.0.3 returned as BACKUP") && line.ends_with(": 10.78.0.5"),
        "{line}"
    );
    report(&format!(
        "ha_pair: the BACKUP's API restarted: its ARP entry for the VIP had A's MAC {} ms after it answered again; A logged: {line}",
        took.as_millis()
    ));
}

#[test]
fn split_brain_is_detected_and_the_winner_configuration_wins() {
    skip_unless_supported!();
    let p = Pair::new(&[RANGE]);
    p.a.take_vip();
    let r = p.a.create_service("common", "10.78.0.5", 8080);
    assert_eq!(replication(&r), "in-sync", "{}", r.headers);

    p.b.take_vip();
    eventually(Duration::from_secs(5), "A to report split-brain", || {
        p.a.status()["split_brain"] == true
    });
    assert!(p.a.log().contains("split-brain"), "{}", log_tail(&p.a));
    let on_a = p.a.create_service("only-a", "10.78.0.7", 8080);
    assert_eq!(on_a.status, 202, "{}", on_a.body);
    assert!(
        replication(&on_a).starts_with("peer-behind; "),
        "{}",
        on_a.headers
    );
    let on_b = p.b.create_service("only-b", "10.78.0.8", 8080);
    assert_eq!(on_b.status, 202, "{}", on_b.body);
    assert!(
        replication(&on_b).contains("split-brain"),
        "{}",
        on_b.headers
    );
    assert!(p.b.log().contains("split-brain"), "{}", log_tail(&p.b));
    assert!(!p.b.has_frontend("only-a") && !p.a.has_frontend("only-b"));
    let b_version = p.b.version();

    // Healed: VRRP leaves A MASTER; A's configuration wins, B keeps a copy of what it loses,
    // and A announces its VIPs again (B may have announced them during the split).
    p.b.learn_neighbour("10.78.0.5", ELSEWHERE);
    assert_eq!(announced_again(&p.a), 0, "{}", log_tail(&p.a));
    p.b.drop_vip();
    let mac = p.a.mac();
    eventually(
        Duration::from_secs(5),
        "B's ARP entry for 10.78.0.5 to be A's MAC again",
        || p.b.neighbour("10.78.0.5") == mac,
    );
    let took = eventually(
        Duration::from_secs(5),
        "B to take A's configuration",
        || p.b.has_frontend("only-a"),
    );
    assert!(!p.b.has_frontend("only-b"));
    assert_eq!(p.b.version(), p.a.version());
    let copies: Vec<PathBuf> = std::fs::read_dir(p.b.path("state/split-brain"))
        .expect("B's split-brain directory")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    let kept = std::fs::read_to_string(&copies[0]).expect("the copy");
    assert!(kept.contains("frontend only-b"), "{kept}");
    assert!(
        kept.starts_with(&format!("# _version={b_version}\n")),
        "{kept}"
    );
    assert!(
        p.b.log()
            .contains(&format!("configuration version {b_version}")),
        "{}",
        log_tail(&p.b)
    );
    eventually(Duration::from_secs(3), "A to clear split-brain", || {
        p.a.status()["split_brain"] == false
    });
    eventually(Duration::from_secs(5), "A to log the announcement", || {
        announced_again(&p.a) == 1
    });
    assert!(
        p.a.log().contains("(gratuitous ARP): 10.78.0.5, 10.78.0.7"),
        "{}",
        log_tail(&p.a)
    );
    for (name, node) in [("A", &p.a), ("B", &p.b)] {
        for line in node.log().lines().filter(|l| l.contains("split-brain")) {
            report(&format!("ha_pair: {name}'s log: {line}"));
        }
    }
    report(&format!(
        "ha_pair: split-brain healed in {} ms; the loser's version {b_version} kept in {}",
        took.as_millis(),
        copies[0].display()
    ));
}

#[test]
fn a_peer_with_other_service_ranges_refuses_replicas() {
    skip_unless_supported!();
    let p = Pair::new(&["10.79.0.0/24"]);
    p.a.take_vip();
    let r = p.a.create_service("svc1", "10.78.0.5", 8080);
    assert_eq!(r.status, 202, "{}", r.body);
    let h = replication(&r);
    assert!(
        h.starts_with("peer-behind; ") && h.contains("service_ranges differ") && h.contains("422"),
        "{h}"
    );
    assert!(
        h.contains("only 10.77.0.2 has 10.78.0.0/24")
            && h.contains("only 10.77.0.3 has 10.79.0.0/24"),
        "{h}"
    );
    assert!(
        p.b.log().contains("service_ranges differ"),
        "{}",
        log_tail(&p.b)
    );
    assert!(!p.b.has_frontend("svc1"));
    report(&format!("ha_pair: mismatched ranges: {h}"));
}
