//! The HA pair's keepalived with the real keepalived and systemd (Debian's, as on the appliance):
//! `keepalived -t` accepts the configuration apply writes for either node in either deployment;
//! `systemd-analyze verify` accepts Debian's keepalived.service with the drop-in; and, run in two
//! test-created network namespaces joined by a veth named `management`, behind their rendered
//! nftables rules, the two nodes' keepalived elect the primary, which holds the management VIP and the local routes of the LB ranges while
//! the secondary holds none; after `kill -9` of the MASTER's keepalived the secondary takes over
//! within a second, the killed node's leftovers are exactly what the drop-in's `ExecStopPost=`
//! commands remove, and the old MASTER, restarted, stays BACKUP. systemd-networkd, restarted or
//! seeing the management link flap, leaves keepalived's VIP and local route alone.
//!
//! What the namespace test changes in the rendered configuration, and why (nothing else):
//! `/usr/local/bin/dataplaneapi` becomes a stub script (no Data Plane API runs here: `check`
//! succeeds, `announce` records that it ran), and the `track_process` blocks go: keepalived
//! learns of processes through the kernel's process-event connector, which exists only in the
//! initial network namespace ("Failed to set/clear process event listen").
#![allow(clippy::unwrap_used)]

mod apply_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use apply_support::*;
use testkit::netns::Netns;

const CONF: &str = "etc/keepalived/keepalived.conf";
const DROPIN: &str = "etc/systemd/system/keepalived.service.d/appliance.conf";
const VIP: &str = "192.168.0.10/24";

/// The two nodes' property sets: the primary (192.168.0.2) and the secondary (192.168.0.3),
/// each the other's peer, with the same CA, VIP, router id, ranges and secret.
fn pair_props(base: Vec<(String, String)>) -> [Vec<(String, String)>; 2] {
    let primary = ha_props(base, "primary");
    let secondary = with(
        primary.clone(),
        &[
            ("network.management_ip", Some("192.168.0.3/24")),
            ("network.hostname", Some("haproxy-b.corp.example")),
            ("ha.peer_ip", Some("192.168.0.2")),
            ("ha.role", Some("secondary")),
        ],
    );
    [primary, secondary]
}

/// Applies `props` into a new root under `dir`; returns the root.
fn rendered(dir: &Path, name: &str, props: &[(String, String)], deployment: &str) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir(&root).unwrap();
    let a = apply(&root, props, deployment, &[]);
    assert!(a.status.success(), "{}", text(&a));
    root
}

/// An executable stub for `/usr/local/bin/dataplaneapi`: `announce` appends its arguments to
/// `announced`, everything else succeeds.
fn stub(dir: &Path, announced: &Path) -> PathBuf {
    let path = dir.join("dataplaneapi-stub");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nif [ \"$1\" = announce ]; then echo \"$@\" >> '{}'; fi\nexit 0\n",
            announced.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// `keepalived -t -f CONF` in a private network namespace with a `management` veth holding
/// `address` (keepalived checks that the interfaces and the source address exist).
fn keepalived_check(conf: &Path, address: &str) -> std::process::Output {
    let script = format!(
        "ip link set lo up && ip link add management type veth peer name peer0 && \
         ip link set management up && ip address add {address} dev management && \
         keepalived -t -f '{}'",
        conf.display()
    );
    Command::new("unshare")
        .args(["--net", "--map-root-user", "sh", "-c", &script])
        .output()
        .unwrap()
}

#[test]
fn keepalived_accepts_the_configuration_of_either_node() {
    if !have("keepalived") || !have("unshare") || !have("ip") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let announced = dir.path().join("announced");
    let stub = stub(dir.path(), &announced);
    let cases = [
        ("default", pair_props(default_props())),
        ("frontend", pair_props(frontend_props())),
    ];
    for (deployment, nodes) in cases {
        for (props, address) in nodes.iter().zip(["192.168.0.2/24", "192.168.0.3/24"]) {
            let name = format!("{deployment}-{}", &address[10..11]);
            let root = rendered(dir.path(), &name, props, deployment);
            let text_conf = std::fs::read_to_string(root.join(CONF)).unwrap();
            // The check and announce commands must exist: only their path changes.
            assert_eq!(text_conf.matches("/usr/local/bin/dataplaneapi ").count(), 2);
            let conf = dir.path().join(format!("{name}.conf"));
            std::fs::write(
                &conf,
                text_conf.replace("/usr/local/bin/dataplaneapi", stub.to_str().unwrap()),
            )
            .unwrap();
            let o = keepalived_check(&conf, address);
            assert!(
                o.status.success(),
                "keepalived -t rejects {name}:\n{text_conf}\n{}",
                text(&o)
            );
        }
    }
    // The check is not a formality: a broken configuration fails it.
    let broken = dir.path().join("broken.conf");
    let good = std::fs::read_to_string(dir.path().join("default-2.conf")).unwrap();
    std::fs::write(
        &broken,
        good.replace("virtual_router_id 51", "virtual_router_id 300"),
    )
    .unwrap();
    let o = keepalived_check(&broken, "192.168.0.2/24");
    assert!(!o.status.success(), "{}", text(&o));
}

/// Debian's keepalived.service: where the package installs it.
fn debian_unit() -> Option<PathBuf> {
    ["/lib/systemd/system", "/usr/lib/systemd/system"]
        .iter()
        .map(|d| Path::new(d).join("keepalived.service"))
        .find(|p| p.is_file())
}

fn verify(units: &Path) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(units.join("keepalived.service"))
        // The directory first, so the drop-in beside the unit is read.
        .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()))
        .output()
        .unwrap()
}

#[test]
fn systemd_analyze_verify_accepts_the_drop_in() {
    if !have("systemd-analyze") || !have("keepalived") {
        return;
    }
    let Some(unit) = debian_unit() else {
        testkit::missing("Debian's keepalived.service");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = rendered(
        dir.path(),
        "root",
        &ha_props(default_props(), "primary"),
        "default",
    );
    let units = dir.path().join("units");
    std::fs::create_dir_all(units.join("keepalived.service.d")).unwrap();
    std::fs::copy(&unit, units.join("keepalived.service")).unwrap();
    let dropin = std::fs::read_to_string(root.join(DROPIN)).unwrap();
    let dropin_path = units.join("keepalived.service.d/appliance.conf");
    std::fs::write(&dropin_path, &dropin).unwrap();
    let o = verify(&units);
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "systemd-analyze verify:\n{dropin}\n{}",
        text(&o)
    );
    // ... and it did read the drop-in: a mistake in it is reported.
    std::fs::write(&dropin_path, format!("{dropin}NoSuchKey=1\n")).unwrap();
    let o = verify(&units);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("NoSuchKey"),
        "{}",
        text(&o)
    );
    for want in [
        "After=haproxy-firstboot.service haproxy.service dataplaneapi.service",
        "Restart=always",
        "RestartSec=1s",
        "KillMode=mixed",
        "ExecStopPost=-/usr/sbin/ip address del 192.168.0.10/24 dev management",
        "ExecStopPost=-/usr/sbin/ip route del local 192.168.10.64/26 dev lo table local",
        "ExecStopPost=-/usr/sbin/ip route del local 192.168.10.128/27 dev lo table local",
    ] {
        assert!(
            dropin.lines().any(|l| l == want),
            "missing {want:?}:\n{dropin}"
        );
    }
}

/// The address families `systemd-analyze security --offline` says the unit at `unit` (with the
/// drop-ins beside it) may use, of AF_PACKET and AF_NETLINK.
fn packet_and_netlink_allowed(unit: &Path) -> Vec<&'static str> {
    let o = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(unit)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    ["AF_PACKET", "AF_NETLINK"]
        .into_iter()
        .filter(|af| {
            out.lines()
                .any(|l| l.starts_with(&format!("✗ RestrictAddressFamilies=~{af} ")))
        })
        .collect()
}

/// The Data Plane API's sandbox widens (raw packets, netlink) for a node of a pair only: the
/// unit the image ships keeps both out, the pair's drop-in lets them in, systemd accepts it.
#[test]
fn the_dataplaneapi_drop_in_widens_the_sandbox_for_a_pair_only() {
    const UNIT_DROPIN: &str = "etc/systemd/system/dataplaneapi.service.d/ha.conf";
    if !have("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let single = rendered(dir.path(), "single", &default_props(), "default");
    assert!(!single.join(UNIT_DROPIN).exists());
    let root = rendered(
        dir.path(),
        "pair",
        &ha_props(default_props(), "primary"),
        "default",
    );
    let units = dir.path().join("units");
    std::fs::create_dir_all(units.join("dataplaneapi.service.d")).unwrap();
    // ExecStart must name an existing executable.
    let stub = stub(dir.path(), &dir.path().join("announced"));
    let unit_text = std::fs::read_to_string(root.join("etc/systemd/system/dataplaneapi.service"))
        .unwrap()
        .replace("/usr/local/bin/dataplaneapi", stub.to_str().unwrap());
    let unit = units.join("dataplaneapi.service");
    std::fs::write(&unit, unit_text).unwrap();
    assert_eq!(packet_and_netlink_allowed(&unit), Vec::<&str>::new());
    let dropin = std::fs::read_to_string(root.join(UNIT_DROPIN)).unwrap();
    std::fs::write(units.join("dataplaneapi.service.d/ha.conf"), &dropin).unwrap();
    assert_eq!(
        packet_and_netlink_allowed(&unit),
        ["AF_PACKET", "AF_NETLINK"],
        "{dropin}"
    );
    let o = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()))
        .output()
        .unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "systemd-analyze verify:\n{dropin}\n{}",
        text(&o)
    );
    assert!(
        dropin
            .lines()
            .any(|l| l == "CapabilityBoundingSet=CAP_NET_RAW")
    );
}

/// The configuration as the namespace test runs it (see the module's comment).
fn for_namespace(conf: &str, stub: &Path) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in conf.lines() {
        let t = line.trim();
        if t.starts_with("vrrp_track_process ") || t == "track_process {" {
            skipping = true;
        }
        if !skipping {
            out.push_str(&line.replace("/usr/local/bin/dataplaneapi", stub.to_str().unwrap()));
            out.push('\n');
        }
        if skipping && t == "}" {
            skipping = false;
        }
    }
    assert!(!out.contains("track_process"), "{out}");
    out
}

/// One node's keepalived, killed (SIGKILL, parent and VRRP child) when dropped.
struct Keepalived {
    child: Child,
    vrrp_pidfile: PathBuf,
}

impl Keepalived {
    fn start(ns: &Netns, conf: &Path, dir: &Path, name: &str) -> Keepalived {
        let pidfile = dir.join(format!("{name}.pid"));
        let vrrp_pidfile = dir.join(format!("{name}-vrrp.pid"));
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = ns
            .command("keepalived")
            .args(["--vrrp", "--dont-fork", "--log-console", "--log-detail"])
            .arg("--use-file")
            .arg(conf)
            .arg("--pid")
            .arg(&pidfile)
            .arg("--vrrp_pid")
            .arg(&vrrp_pidfile)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Keepalived {
            child,
            vrrp_pidfile,
        }
    }

    /// `kill -9` of both processes, as a crash or the OOM killer would. Once: the pid file is
    /// removed, so a later call (the drop) cannot hit a process that reused the number.
    fn kill9(&mut self) {
        let vrrp = std::fs::read_to_string(&self.vrrp_pidfile).unwrap_or_default();
        let _ = std::fs::remove_file(&self.vrrp_pidfile);
        if let Ok(pid) = vrrp.trim().parse::<u32>() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .output();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Whether `ns` holds the management VIP, and its keepalived-installed local routes.
fn holdings(ns: &Netns) -> (bool, Vec<String>) {
    let addrs = ns.ip(&["-4", "address", "show", "dev", "management"]);
    let routes = ns.ip(&["route", "show", "table", "local", "dev", "lo"]);
    let local: Vec<String> = routes
        .lines()
        .filter(|l| l.starts_with("local 192.168.10."))
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    (addrs.contains(&format!("inet {VIP} ")), local)
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "no {what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

const ROUTES: [&str; 2] = ["local 192.168.10.64/26", "local 192.168.10.128/27"];

#[test]
#[allow(clippy::too_many_lines)] // one scenario, step by step
fn in_namespaces_the_primary_holds_the_addresses_and_a_killed_master_is_cleaned_up() {
    if !have("keepalived") || !have("ip") {
        return;
    }
    if !testkit::is_root() {
        testkit::unmet("needs root (network namespaces)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let announced = dir.path().join("announced");
    let stub = stub(dir.path(), &announced);
    let [primary, secondary] = pair_props(default_props());
    let a_root = rendered(dir.path(), "a", &primary, "default");
    let b_root = rendered(dir.path(), "b", &secondary, "default");
    let a = Netns::create("kapair", "a");
    let b = Netns::create("kapair", "b");
    // Made inside A, its peer moved to B: never in the machine's own namespace.
    a.ip(&[
        "link",
        "add",
        "management",
        "type",
        "veth",
        "peer",
        "name",
        "management",
        "netns",
        b.name(),
    ]);
    for (ns, address) in [(&a, "192.168.0.2/24"), (&b, "192.168.0.3/24")] {
        ns.ip(&["address", "add", address, "dev", "management"]);
        ns.ip(&["link", "set", "management", "up"]);
    }
    let conf = |root: &Path, name: &str| {
        let text = std::fs::read_to_string(root.join(CONF)).unwrap();
        let path = dir.path().join(format!("{name}.conf"));
        std::fs::write(&path, for_namespace(&text, &stub)).unwrap();
        path
    };
    let (a_conf, b_conf) = (conf(&a_root, "a"), conf(&b_root, "b"));
    // Each node's own firewall: VRRP passes from the peer (else both would become MASTER).
    if have("nft") {
        for (ns, root) in [(&a, &a_root), (&b, &b_root)] {
            let o = ns
                .command("nft")
                .arg("-f")
                .arg(root.join("etc/nftables.conf"))
                .output()
                .unwrap();
            assert!(o.status.success(), "nft -f: {}", text(&o));
        }
    }

    // Both start as BACKUP; the primary (priority 150) wins the first election.
    let mut ka = Keepalived::start(&a, &a_conf, dir.path(), "a");
    let _kb = Keepalived::start(&b, &b_conf, dir.path(), "b");
    wait_for("MASTER on the primary", Duration::from_secs(10), || {
        holdings(&a) == (true, ROUTES.map(String::from).to_vec())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(holdings(&a), (true, ROUTES.map(String::from).to_vec()));
    assert_eq!(holdings(&b), (false, vec![]), "the BACKUP holds nothing");
    wait_for("notify_master", Duration::from_secs(5), || {
        std::fs::read_to_string(&announced)
            .is_ok_and(|t| t.contains("announce -f /etc/haproxy/dataplaneapi.yaml"))
    });

    // kill -9: the secondary takes over within a second; the killed node keeps its addresses.
    ka.kill9();
    let takeover = wait_for("takeover by the secondary", Duration::from_secs(3), || {
        holdings(&b).0
    });
    eprintln!("takeover after kill -9 of the MASTER's keepalived: {takeover:?}");
    assert!(takeover < Duration::from_secs(1), "{takeover:?}");
    wait_for("the secondary's routes", Duration::from_secs(1), || {
        holdings(&b) == (true, ROUTES.map(String::from).to_vec())
    });
    assert_eq!(
        holdings(&a),
        (true, ROUTES.map(String::from).to_vec()),
        "a SIGKILLed keepalived leaves its VIP and routes behind"
    );

    // What systemd runs after the kill: the drop-in's ExecStopPost= commands.
    let dropin = std::fs::read_to_string(a_root.join(DROPIN)).unwrap();
    let commands: Vec<&str> = dropin
        .lines()
        .filter_map(|l| l.strip_prefix("ExecStopPost=-"))
        .collect();
    assert_eq!(commands.len(), 3, "{dropin}");
    for command in commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        let o = a.command(words[0]).args(&words[1..]).output().unwrap();
        assert!(o.status.success(), "{command}: {}", text(&o));
    }
    assert_eq!(holdings(&a), (false, vec![]), "ExecStopPost leaves nothing");

    // Restarted (Restart=always), the old MASTER stays BACKUP: one owner of every address.
    let _ka = Keepalived::start(&a, &a_conf, dir.path(), "a2");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(holdings(&a), (false, vec![]));
    assert_eq!(holdings(&b), (true, ROUTES.map(String::from).to_vec()));
}

/// The pair's files and their modes; applying again changes nothing; a single appliance again
/// removes them and gets its AnyIP routes and its management-IP listener back.
#[test]
fn the_pair_files_come_and_go_with_the_pair() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let pair = ha_props(default_props(), "primary");
    let a = apply(&root, &pair, "default", &[]);
    assert!(a.status.success(), "{}", text(&a));
    for (path, mode) in [
        (CONF, 0o600),
        (DROPIN, 0o644),
        ("etc/systemd/system/dataplaneapi.service.d/ha.conf", 0o644),
        ("etc/sysctl.d/60-haproxy-ha.conf", 0o644),
        ("etc/haproxy/ha-peer.secret", 0o600),
    ] {
        let meta = std::fs::metadata(root.join(path)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, mode, "{path}");
    }
    assert_eq!(
        std::fs::read_to_string(root.join("etc/haproxy/ha-peer.secret")).unwrap(),
        "pair-secret-42\n"
    );
    let again = apply(&root, &pair, "default", &[]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("(0 files changed)"),
        "{}",
        text(&again)
    );
    // The secret appears in no output.
    assert!(!text(&a).contains("pair-secret-42") && !text(&again).contains("pair-secret-42"));

    let single = apply(&root, &default_props(), "default", &[]);
    assert!(single.status.success(), "{}", text(&single));
    let out = String::from_utf8_lossy(&single.stderr);
    for path in [
        CONF,
        DROPIN,
        "etc/systemd/system/dataplaneapi.service.d/ha.conf",
        "etc/sysctl.d/60-haproxy-ha.conf",
        "etc/haproxy/ha-peer.secret",
    ] {
        assert!(!root.join(path).exists(), "{path}");
        assert!(out.contains(&format!("removed /{path}")), "{out}");
    }
    let anyip = std::fs::read_to_string(root.join("etc/systemd/network/10-lo-anyip.network"));
    assert_eq!(anyip.unwrap().matches("[Route]").count(), 2);
    let yaml = std::fs::read_to_string(root.join("etc/haproxy/dataplaneapi.yaml")).unwrap();
    assert!(
        yaml.contains("tls_host: 192.168.0.2\n") && !yaml.contains("\nha:"),
        "{yaml}"
    );
}

/// systemd-networkd (run on an HA node's rendered files in a new network and mount namespace)
/// keeps what keepalived adds, the management VIP and a local route, when it restarts and when
/// the management link loses and regains its carrier: it must not take a MASTER's addresses
/// away behind keepalived's back.
const NETWORKD_SCRIPT: &str = r#"
set -eu
mount --make-rprivate /
mount -t sysfs -o ro sysfs /sys
mkdir -p /run/systemd /etc/systemd/network
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/netif
chown systemd-network:systemd-network /run/systemd/netif 2>/dev/null || true
mount --bind "$NETDIR" /etc/systemd/network
ip link set lo up
for n in management workload; do
  ip link add "$n" type veth peer name "$n-p"
  ip link set "$n-p" up
done
show() {
  echo "=== $1"
  ip -4 -o address show dev management | awk '{print $4}' | sort | tr '\n' ' '
  echo
  ip route show table local dev lo | grep '^local 192.168.10.64/26' || echo "no local route"
}
/lib/systemd/systemd-networkd >"$LOG" 2>&1 &
pid=$!
# networkd would keep this namespace alive after a failed step: it stops with the script
trap 'kill $pid 2>/dev/null || true' EXIT
i=0
while [ $i -lt 100 ] && ! ip route | grep -q "default via 192.168.0.1"; do sleep 0.1; i=$((i+1)); done
# what keepalived does on becoming MASTER
ip address add 192.168.0.10/24 dev management
ip route add local 192.168.10.64/26 dev lo table local proto keepalived scope host
show keepalived
kill $pid; wait $pid || true
/lib/systemd/systemd-networkd >>"$LOG" 2>&1 &
pid=$!
sleep 2
show restart
ip link set management-p down; sleep 1; ip link set management-p up; sleep 2
show flap
"#;

#[test]
fn networkd_leaves_keepalived_addresses_alone() {
    let networkd = "/lib/systemd/systemd-networkd";
    if !have("unshare") || !have("ip") || !have(networkd) {
        return;
    }
    if !testkit::is_root() {
        testkit::unmet("needs root (mount and network namespaces)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = rendered(
        dir.path(),
        "root",
        &ha_props(default_props(), "primary"),
        "default",
    );
    let log = dir.path().join("networkd.log");
    let o = Command::new("unshare")
        .args(["-m", "-n", "sh", "-c", NETWORKD_SCRIPT])
        .env("NETDIR", root.join("etc/systemd/network"))
        .env("LOG", &log)
        .output()
        .unwrap();
    let networkd_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(o.status.success(), "{}\n{networkd_log}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let held = "192.168.0.10/24 192.168.0.2/24 \n\
                local 192.168.10.64/26 proto keepalived scope host \n";
    for step in ["keepalived", "restart", "flap"] {
        assert!(
            out.contains(&format!("=== {step}\n{held}")),
            "after {step}:\n{out}\nnetworkd log:\n{networkd_log}"
        );
    }
}
