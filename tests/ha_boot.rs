//! End-to-end: an HA pair (docs/ha-pair.md) of two appliances booted in QEMU on the lab's switch
//! (tests/lab.rs: taps `a-*` and `b-*`), A (management 192.168.0.2, primary) and B (192.168.0.3,
//! secondary), with the same CA, management VIP, VRRP router id, shared secret and
//! load-balancer range.
//!
//! Both boot; one holds the management VIP and the AnyIP routes of the range. The Supervisor
//! (the lab's management host) programs services through `https://VIP:5556` (TLS verified
//! against the deployment's CA); every commit says `X-Ha-Replication: in-sync`; the BACKUP's
//! own API lists every service and refuses a write with 503 naming the MASTER. Then failovers:
//! (a) `kill -9` of keepalived on the MASTER: the BACKUP takes over, the old MASTER holds no VIP
//! and no route and comes back as BACKUP (systemd restarts keepalived); (b) haproxy stopped on
//! the MASTER: takeover, haproxy started again; (c) the MASTER powered off, services added on
//! the new MASTER while it is down (`X-Ha-Replication: peer-behind`), the old MASTER booted
//! again: it catches up (its own API lists the new services) and the pair converges; (d) the
//! Data Plane API stopped on the MASTER: keepalived's health check gives the VIP up. After
//! each: a client on the remote subnet reaches every service through its VIP, the API on the
//! management VIP lists every service, exactly one node holds the VIP and the routes (and only
//! its workload tap carries the VIPs' replies), and both nodes list the same services.
//!
//! Last, the failover figures: `HA_FAILOVERS` (default 20) failovers alternating `kill -9` of
//! keepalived and haproxy stopped, while a client on the remote subnet requests a VIP every
//! 50 ms; per failover the gap that client saw and the services missing afterwards (not listed
//! by the new MASTER's API, or not answering through their VIP); p50 and p95 of the gaps are
//! printed, and every failover must leave 0 services missing (the gaps are not asserted).
//! `HA_BENCH_OUT=FILE` also writes the figures there as Markdown (scripts/bench-ha).
//!
//! Then a split-brain: management frames between the two nodes are dropped on the switch, both
//! hold the VIP and each takes a service; healed, one MASTER remains, the split-brain is logged,
//! the winner's configuration is on both nodes (the loser keeps a copy of its own), and every
//! service answers the remote client again within 10 s of the heal: the winner re-announces its
//! VIPs when its peer returns (the router had learnt the loser's MAC during the split).
//!
//! Needs root, QEMU, genisoimage, nft, curl, python3, openssl, debugfs and the appliance build's
//! tools; without them it fails when `CI` is set and is skipped otherwise. An appliance without
//! the HA parts (keepalived in the image, HA in haproxy-firstboot, replication in the Data
//! Plane API) is skipped with a message naming what is missing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[allow(dead_code)] // parts serve appliance_boot and lab_boot only
#[path = "boot_dataplane.rs"]
mod boot_dataplane;
#[allow(dead_code)] // parts serve lab_boot only
#[path = "lab.rs"]
mod lab;
#[allow(dead_code)] // parts serve lab_boot only
#[path = "lab_services.rs"]
mod lab_services;
#[allow(dead_code)] // the slirp and UEFI parts serve appliance_boot
#[path = "qemu.rs"]
mod qemu;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use boot_dataplane::{Api, Service, committed, stage_service};
use e2e::appliance::Built;
use e2e::rootfs::RootFs;
use e2e::{Clock, env_iso, make_ca, ovf_env};
use lab::{Answer, CLIENT_REMOTE, Lab, SUPERVISOR, Segment, tap_name};
use lab_services::{Expected, both_servers, reloads_succeeded, settle};
use qemu::{Firmware, TapNic, Vm, VmSpec};

const ROOT_PWD: &str = "Ha-test-pw1";
const API_USER: &str = "lbadmin";
const API_PWD: &str = "Api-pass-42";
const SHARED_SECRET: &str = "Pair-secret-4711";
/// `loadbalance.dataplane_port`'s default (not set).
const DATAPLANE_PORT: u16 = 5556;
/// The management VIP (the lab's Supervisor host is 192.168.0.10).
const MGMT_VIP: &str = "192.168.0.100";
const ROUTER_ID: &str = "42";
/// Both nodes' load-balancer range, on the workload network.
const RANGE: &str = "192.168.10.128/25";
/// The services take consecutive VIPs from here, port 80.
const FIRST_VIP: &str = "192.168.10.150";
/// Services programmed while both nodes are up.
const SERVICES: u32 = 8;
/// Services programmed while the old MASTER is powered off.
const MORE_SERVICES: u32 = 4;
/// Console markers of haproxy-firstboot (firstboot/src/apply_cmd.rs).
const APPLIED: &str = "haproxy-firstboot: applied configuration";
const FAILED: &str = "haproxy-firstboot: FAILED";

/// One appliance of the pair.
struct NodeSpec {
    /// Its name in the lab (tap names `<name>-<segment>`).
    name: &'static str,
    mgmt_ip: &'static str,
    workload_ip: &'static str,
    role: &'static str,
    peer: &'static str,
    /// MACs of the management and workload NICs.
    macs: [&'static str; 2],
}

static A: NodeSpec = NodeSpec {
    name: "a",
    mgmt_ip: "192.168.0.2",
    workload_ip: "192.168.10.2",
    role: "primary",
    peer: "192.168.0.3",
    macs: ["00:50:56:aa:0a:01", "00:50:56:aa:0a:02"],
};
static B: NodeSpec = NodeSpec {
    name: "b",
    mgmt_ip: "192.168.0.3",
    workload_ip: "192.168.10.3",
    role: "secondary",
    peer: "192.168.0.2",
    macs: ["00:50:56:aa:0b:01", "00:50:56:aa:0b:02"],
};

/// A node: its VM while it runs, how often it booted, the disk its next boot starts from.
struct Node {
    spec: &'static NodeSpec,
    vm: Option<Vm>,
    boots: u32,
    disk: Option<PathBuf>,
}

impl Node {
    fn vm(&mut self) -> &mut Vm {
        let name = self.spec.name;
        self.vm
            .as_mut()
            .unwrap_or_else(|| panic!("appliance {name} is not running"))
    }

    /// A console command that must succeed; its output.
    fn sh(&mut self, command: &str) -> String {
        let (out, status) = self.vm().shell(command, Duration::from_secs(90));
        assert_eq!(
            status, 0,
            "{}: `{command}` failed ({status}):\n{out}",
            self.spec.name
        );
        out
    }

    fn label(&self) -> String {
        format!("{} ({})", self.spec.name.to_uppercase(), self.spec.mgmt_ip)
    }
}

/// What every phase shares.
struct Ctx<'a> {
    lab: &'a Lab,
    dir: &'a Path,
    ca: &'a (String, String),
    raw: &'a Path,
    clock: &'a Clock,
}

impl<'a> Ctx<'a> {
    /// A Data Plane API client on the Supervisor's host for `host` (the VIP or a node),
    /// verifying TLS against the deployment's CA; credentials in 0600 files named `tag`.
    fn api(&self, tag: &str, host: &str) -> Api<'a> {
        Api::direct(
            self.lab.netns(&SUPERVISOR),
            self.dir,
            tag,
            &self.dir.join("ca.crt"),
            (host, DATAPLANE_PORT),
            (API_USER, API_PWD),
        )
    }

    fn vip_api(&self) -> Api<'a> {
        self.api("vip", MGMT_VIP)
    }
}

/// The services programmed so far: (name, VIP:80).
#[derive(Default)]
struct Services(Vec<(String, SocketAddr)>);

impl Services {
    fn expected(&self) -> Expected {
        let mut e = Expected::default();
        for (name, addr) in &self.0 {
            e.serving(name, &addr.ip().to_string(), addr.port());
        }
        e
    }

    fn names(&self) -> BTreeSet<String> {
        self.0.iter().map(|(n, _)| n.clone()).collect()
    }
}

fn props(node: &NodeSpec, ca: &(String, String)) -> Vec<(&'static str, String)> {
    vec![
        ("appliance.root_pwd", ROOT_PWD.into()),
        ("appliance.permit_root_login", "True".into()),
        ("appliance.ca_cert", ca.0.clone()),
        ("appliance.ca_cert_key", ca.1.clone()),
        ("network.hostname", format!("lb-{}.example.com", node.name)),
        ("network.nameservers", "192.168.0.1".into()),
        ("network.management_ip", format!("{}/24", node.mgmt_ip)),
        ("network.management_gateway", "192.168.0.1".into()),
        ("network.workload_ip", format!("{}/24", node.workload_ip)),
        ("network.workload_gateway", "192.168.10.1".into()),
        (
            "network.additional_workload_networks",
            "10.20.0.0/24".into(),
        ),
        ("loadbalance.service_ip_range", RANGE.into()),
        ("loadbalance.haproxy_user", API_USER.into()),
        ("loadbalance.haproxy_pwd", API_PWD.into()),
        ("ha.peer_ip", node.peer.into()),
        ("ha.management_vip", MGMT_VIP.into()),
        ("ha.router_id", ROUTER_ID.into()),
        ("ha.role", node.role.into()),
        ("ha.shared_secret", SHARED_SECRET.into()),
    ]
}

/// Whether the test can run here (in CI a missing tool is a failure).
fn prerequisites() -> bool {
    e2e::prerequisites(&[
        "qemu-system-x86_64",
        "qemu-img",
        "genisoimage",
        "ip",
        "nft",
        "curl",
        "python3",
        "openssl",
        "debugfs",
        "sfdisk",
        "mmdebstrap",
        "mkfs.ext4",
        "mkfs.vfat",
        "mcopy",
        "syslinux",
    ])
}

/// Whether `file` contains `needle` (case ignored; `grep -qaiF`).
fn file_mentions(file: &Path, needle: &str) -> bool {
    Command::new("grep")
        .args(["-qaiF", needle])
        .arg(file)
        .status()
        .is_ok_and(|s| s.success())
}

/// The HA parts the built appliance lacks, each named.
fn missing_ha_parts(built: &Built) -> Vec<String> {
    let mut missing = Vec::new();
    if !RootFs::of(&built.raw).exists("/usr/sbin/keepalived") {
        missing.push("keepalived in the appliance image (/usr/sbin/keepalived)".to_owned());
    }
    let firstboot = e2e::target_bin("haproxy-firstboot");
    if !file_mentions(&firstboot, "vrrp_instance") {
        missing.push(
            "the HA properties and keepalived.conf in haproxy-firstboot (no vrrp_instance)"
                .to_owned(),
        );
    }
    let api = built.report["dataplaneapi"]["path"]
        .as_str()
        .unwrap_or("(none)");
    if !file_mentions(Path::new(api), "x-ha-replication") {
        missing.push(format!(
            "replication in the appliance's Data Plane API ({api} has no X-Ha-Replication \
             header; ova-builder takes target/release before target/debug: an old release \
             build? cargo build --release -p dataplane, or APPLIANCE_DATAPLANEAPI=PATH)"
        ));
    }
    missing
}

#[test]
fn ha_pair_fails_over() {
    if !prerequisites() {
        return;
    }
    let clock = Clock::new("ha-boot");
    let tmp = tempfile::Builder::new()
        .prefix("ha-boot-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let dir = tmp.path();
    let built = e2e::appliance::shared_build(&clock);
    let missing = missing_ha_parts(&built);
    if !missing.is_empty() {
        testkit::skipping(&format!(
            "this appliance build lacks the HA pair: missing {}",
            missing.join("; ")
        ));
        return;
    }
    let ca = make_ca(dir, "/CN=HA pair CA");
    let lab = Lab::with_appliances(dir, &[A.name, B.name]);
    lab.watch(&[RANGE]);
    clock.log(format!(
        "ok: lab network up (namespaces {}-*), appliances A and B on taps a-* and b-*",
        lab.switch().trim_end_matches("-switch")
    ));
    let ctx = Ctx {
        lab: &lab,
        dir,
        ca: &ca,
        raw: &built.raw,
        clock: &clock,
    };
    let mut pair = [&A, &B].map(|spec| Node {
        spec,
        vm: None,
        boots: 0,
        disk: None,
    });
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        scenario(&ctx, &mut pair);
    }));
    if let Err(panic) = outcome {
        show_journals(&mut pair);
        std::panic::resume_unwind(panic);
    }
    clock.log("all HA pair checks passed");
}

/// The whole scenario: both boot, services, failovers (a), (b), (c), then the figures.
fn scenario(ctx: &Ctx<'_>, pair: &mut [Node; 2]) {
    start(ctx, &mut pair[0]);
    start(ctx, &mut pair[1]);
    ready(ctx, &mut pair[0]);
    ready(ctx, &mut pair[1]);
    let mut services = Services::default();
    let master = first_election(ctx, pair);
    program(ctx, &mut services, SERVICES, "in-sync");
    backup_refuses_writes(ctx, pair, master, &services);
    let master = converged(ctx, pair, Some(master), &services, "after programming");
    let master = kill_keepalived(ctx, pair, master, &services);
    let master = stop_unit(ctx, pair, master, &services, ("b", "haproxy"));
    let master = power_off_and_return(ctx, pair, master, &mut services);
    // (d): keepalived's health check gives up MASTER when the Data Plane API is down, too.
    let master = stop_unit(ctx, pair, master, &services, ("d", "dataplaneapi"));
    let count = std::env::var("HA_FAILOVERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let master = failover_figures(ctx, pair, master, &services, count.max(1));
    split_brain(ctx, pair, master, &mut services);
}

/// Starts QEMU for `node` (its first boot from the shared raw disk, later ones from the disk
/// its previous boot left) on its taps, with its environment on the CD.
fn start(ctx: &Ctx<'_>, node: &mut Node) {
    node.boots += 1;
    let run = format!("{}-{}", node.spec.name, node.boots);
    let iso = env_iso(ctx.dir, &run, &ovf_env(&props(node.spec, ctx.ca)));
    let taps: Vec<TapNic> = [(Segment::Management, 0x03), (Segment::Workload, 0x0b)]
        .into_iter()
        .enumerate()
        .map(|(i, (seg, bus))| TapNic {
            bus,
            mac: node.spec.macs[i],
            tap: tap_name(node.spec.name, seg),
        })
        .collect();
    let (base, format) = match &node.disk {
        Some(disk) => (disk.clone(), "qcow2"),
        None => (ctx.raw.to_owned(), "raw"),
    };
    let spec = VmSpec {
        firmware: Firmware::Bios,
        dir: ctx.dir,
        base: &base,
        base_format: format,
        env_iso: Some(&iso),
        nics: vec![],
        memory_mib: 1024,
    };
    let vm = Vm::start(&spec, &run, &ctx.lab.switch(), &taps);
    node.disk = Some(vm.overlay.clone());
    node.vm = Some(vm);
    ctx.clock.log(format!(
        "{run}: QEMU started (boot {} of {}), NICs on {:?}",
        node.boots,
        node.label(),
        taps.iter().map(|t| t.tap.as_str()).collect::<Vec<_>>()
    ));
}

/// Waits for haproxy-firstboot's verdict (applied) and logs in on the console.
fn ready(ctx: &Ctx<'_>, node: &mut Node) {
    let label = node.label();
    let vm = node.vm();
    vm.wait_for(&[APPLIED, FAILED], Duration::from_secs(600), "first boot");
    let console = vm.console();
    assert!(
        !console.contains(FAILED),
        "{label}: haproxy-firstboot failed:\n{console}"
    );
    vm.login("root", ROOT_PWD, Duration::from_secs(300));
    ctx.clock.log(format!(
        "ok: {label}: {APPLIED:?}, root console login ({:.1} s after QEMU)",
        vm.started.elapsed().as_secs_f64()
    ));
}

/// What a node holds: the management VIP, the AnyIP routes of the range.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Holding {
    vip: bool,
    routes: bool,
}

/// What `node` holds now (nothing when it is powered off).
fn holding(node: &mut Node) -> Holding {
    if node.vm.is_none() {
        return Holding::default();
    }
    let out = node.sh("ip -4 -o addr show dev management; ip route show table local dev lo");
    Holding {
        vip: out.contains(&format!("inet {MGMT_VIP}/")),
        routes: out.contains(RANGE),
    }
}

/// Waits until exactly one node (`want`, when given) holds the VIP and the routes and the
/// other holds neither; returns that node and how long it took.
fn wait_master(pair: &mut [Node; 2], want: Option<usize>, limit: Duration) -> (usize, Duration) {
    let start = Instant::now();
    let all = Holding {
        vip: true,
        routes: true,
    };
    loop {
        let held = [holding(&mut pair[0]), holding(&mut pair[1])];
        let master = match held {
            [h, n] if h == all && n == Holding::default() => Some(0),
            [n, h] if h == all && n == Holding::default() => Some(1),
            _ => None,
        };
        if let Some(m) = master.filter(|m| want.is_none_or(|w| w == *m)) {
            return (m, start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "no single holder of {MGMT_VIP} and {RANGE}{} within {limit:?}: A {:?}, B {:?}",
            want.map(|w| format!(" (wanted {})", pair[w].label()))
                .unwrap_or_default(),
            held[0],
            held[1]
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Both nodes up: one of them becomes MASTER (the primary, normally).
fn first_election(ctx: &Ctx<'_>, pair: &mut [Node; 2]) -> usize {
    let (m, took) = wait_master(pair, None, Duration::from_secs(120));
    ctx.clock.log(format!(
        "ok: election: {} holds the management VIP {MGMT_VIP} and the AnyIP routes of {RANGE}, \
         {} neither ({:.1} s after both logged in)",
        pair[m].label(),
        pair[1 - m].label(),
        took.as_secs_f64()
    ));
    let api = ctx.vip_api();
    api.wait_ready(Duration::from_secs(120));
    m
}

/// Programs `count` more services through the API on the VIP, one transaction each, as the
/// Supervisor does; every commit's `X-Ha-Replication` must start with `replication`.
fn program(ctx: &Ctx<'_>, services: &mut Services, count: u32, replication: &str) {
    let api = ctx.vip_api();
    let first: Ipv4Addr = FIRST_VIP.parse().unwrap();
    let servers = both_servers();
    let mut reload = String::new();
    let mut headers = BTreeSet::new();
    let start = Instant::now();
    for _ in 0..count {
        let i = services.0.len() as u32;
        let name = format!("svc-{i:02}");
        let vip = Ipv4Addr::from(u32::from(first) + i).to_string();
        let svc = Service {
            name: &name,
            vip: &vip,
            vip_port: 80,
            servers: &servers,
        };
        let (id, _) = api.begin();
        stage_service(&api, &id, &svc);
        let reply = api.commit(&id);
        reload = committed(&reply, &id);
        let header = reply.header("X-Ha-Replication").unwrap_or_else(|| {
            panic!(
                "the commit of {name} has no X-Ha-Replication:\n{}",
                reply.headers
            )
        });
        assert!(
            header.starts_with(replication),
            "the commit of {name}: X-Ha-Replication: {header} (wanted {replication})"
        );
        headers.insert(header);
        services
            .0
            .push((name, SocketAddr::new(vip.parse().unwrap(), 80)));
    }
    reloads_succeeded(&api, &reload);
    ctx.clock.log(format!(
        "ok: {count} services programmed through https://{MGMT_VIP}:{DATAPLANE_PORT} (TLS \
         verified against the CA), one transaction each, in {:.1} s; X-Ha-Replication: {:?}; \
         {} services in all, configuration version {}",
        start.elapsed().as_secs_f64(),
        headers,
        services.0.len(),
        api.version()
    ));
}

/// The BACKUP's own API lists every service and refuses writes with 503 naming the MASTER.
fn backup_refuses_writes(ctx: &Ctx<'_>, pair: &[Node; 2], master: usize, services: &Services) {
    let (m, b) = (pair[master].spec, pair[1 - master].spec);
    let api = ctx.api(&format!("node-{}", b.name), b.mgmt_ip);
    assert_eq!(
        api.names("frontends"),
        services.names(),
        "the BACKUP {}'s frontends",
        b.mgmt_ip
    );
    let v = api.version();
    for (path, body) in [
        (
            format!("/v2/services/haproxy/transactions?version={v}"),
            None,
        ),
        (
            format!("/v2/services/haproxy/configuration/frontends?version={v}"),
            Some(serde_json::json!({"name": "on-backup", "mode": "tcp"})),
        ),
    ] {
        let r = api.call("POST", &path, body.as_ref());
        assert_eq!(r.status, 503, "POST {path} on the BACKUP: {}", r.body);
        assert!(
            r.body.contains(m.mgmt_ip),
            "POST {path} on the BACKUP: the answer does not name the MASTER {}: {}",
            m.mgmt_ip,
            r.body
        );
    }
    assert_eq!(
        api.version(),
        v,
        "a refused write changed the BACKUP's version"
    );
    ctx.clock.log(format!(
        "ok: the BACKUP {}'s own API lists all {} services (version {v}) and refuses writes \
         with 503 naming the MASTER {}",
        b.mgmt_ip,
        services.0.len(),
        m.mgmt_ip
    ));
}

/// After a change of MASTER (`want`): one node holds the VIP and the routes; the API on the
/// VIP lists every service; a client on the remote subnet reaches every service; only the
/// MASTER's workload tap carries the VIPs' replies; every running node lists the same
/// services. Returns the MASTER.
fn converged(
    ctx: &Ctx<'_>,
    pair: &mut [Node; 2],
    want: Option<usize>,
    services: &Services,
    when: &str,
) -> usize {
    converged_within(ctx, pair, want, services, when, Duration::from_secs(120))
}

/// [`converged`], with every service answering the remote client within `limit` of the check.
fn converged_within(
    ctx: &Ctx<'_>,
    pair: &mut [Node; 2],
    want: Option<usize>,
    services: &Services,
    when: &str,
    limit: Duration,
) -> usize {
    let (m, _) = wait_master(pair, want, Duration::from_secs(90));
    let api = ctx.vip_api();
    api.wait_ready(Duration::from_secs(90));
    assert_eq!(
        api.names("frontends"),
        services.names(),
        "frontends on the VIP"
    );
    let took = ctx
        .lab
        .netns(&CLIENT_REMOTE)
        .enter(|| settle(&services.expected(), limit));
    let (lab, url) = (ctx.lab, format!("http://{}/", services.0[0].1.ip()));
    lab.reset_counters();
    assert!(lab.two_gets(&CLIENT_REMOTE, &url).is_some(), "{url}");
    let (on_master, on_backup) = (
        lab.count_on(pair[m].spec.name, Segment::Workload),
        lab.count_on(pair[1 - m].spec.name, Segment::Workload),
    );
    assert!(
        on_master.replies > 0 && on_backup.replies == 0,
        "{url}: replies on the MASTER's tap {on_master:?}, on the other's {on_backup:?}"
    );
    for node in pair.iter().filter(|n| n.vm.is_some()) {
        let own = ctx.api(&format!("node-{}", node.spec.name), node.spec.mgmt_ip);
        assert_eq!(
            own.names("frontends"),
            services.names(),
            "{}'s own frontends",
            node.label()
        );
    }
    ctx.clock.log(format!(
        "ok: converged {when}: MASTER {} alone holds {MGMT_VIP} and the routes of {RANGE}; the \
         API on the VIP lists all {} services; from {} every service answers by both backends \
         ({:.1} s); only the MASTER's workload tap carries replies ({on_master:?}); both nodes \
         list the same services",
        pair[m].label(),
        services.0.len(),
        CLIENT_REMOTE.role,
        took.as_secs_f64()
    ));
    m
}

/// systemd's restart count of keepalived on `node`.
fn keepalived_restarts(node: &mut Node) -> u32 {
    node.sh("systemctl show -p NRestarts --value keepalived")
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Waits until `node` is a BACKUP ready to take over: keepalived, haproxy and dataplaneapi
/// active, keepalived's last state BACKUP, and no VIP or route held.
fn wait_backup_ready(node: &mut Node, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let out = node.vm().shell(
            "systemctl is-active keepalived haproxy dataplaneapi; \
             journalctl -b -u keepalived -o cat | grep -o 'Entering [A-Z]* STATE' | tail -n 1",
            Duration::from_secs(90),
        );
        let active = out.0.lines().filter(|l| l.trim() == "active").count();
        if active == 3 && out.0.contains("Entering BACKUP STATE") {
            let held = holding(node);
            assert_eq!(
                held,
                Holding::default(),
                "{}: a BACKUP holding addresses",
                node.label()
            );
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{} is not a ready BACKUP within {limit:?}:\n{}",
            node.label(),
            out.0
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Failover (a): keepalived SIGKILLed on the MASTER.
fn kill_keepalived(
    ctx: &Ctx<'_>,
    pair: &mut [Node; 2],
    master: usize,
    services: &Services,
) -> usize {
    let before = keepalived_restarts(&mut pair[master]);
    pair[master].sh("systemctl kill -s SIGKILL keepalived");
    let (new, took) = wait_master(pair, Some(1 - master), Duration::from_secs(60));
    ctx.clock.log(format!(
        "ok: takeover (a) kill -9 of keepalived on {}: {} holds the VIP and the routes, the old \
         MASTER shows no VIP in `ip -4 addr show management` and no route of {RANGE} in `ip \
         route show table local` ({:.1} s)",
        pair[master].label(),
        pair[new].label(),
        took.as_secs_f64()
    ));
    let back = wait_backup_ready(&mut pair[master], Duration::from_secs(90));
    let after = keepalived_restarts(&mut pair[master]);
    assert!(
        after > before,
        "systemd did not restart keepalived ({before} → {after})"
    );
    ctx.clock.log(format!(
        "ok: (a) {} is BACKUP again: systemd restarted keepalived (NRestarts {before} → \
         {after}), {:.1} s",
        pair[master].label(),
        back.as_secs_f64()
    ));
    converged(ctx, pair, Some(new), services, "after (a)")
}

/// Failovers (b) haproxy and (d) dataplaneapi: `systemctl stop UNIT` on the MASTER: the other
/// node takes over; UNIT started again, the old MASTER comes back as the BACKUP and the pair
/// converges. `step` is (the scenario's letter, UNIT).
fn stop_unit(
    ctx: &Ctx<'_>,
    pair: &mut [Node; 2],
    master: usize,
    services: &Services,
    (letter, unit): (&str, &str),
) -> usize {
    pair[master].sh(&format!("systemctl stop {unit}"));
    let (new, took) = wait_master(pair, Some(1 - master), Duration::from_secs(60));
    ctx.clock.log(format!(
        "ok: takeover ({letter}) {unit} stopped on {}: {} holds the VIP and the routes, the old \
         MASTER neither ({:.1} s)",
        pair[master].label(),
        pair[new].label(),
        took.as_secs_f64()
    ));
    pair[master].sh(&format!("systemctl start {unit}"));
    let back = wait_backup_ready(&mut pair[master], Duration::from_secs(90));
    ctx.clock.log(format!(
        "ok: ({letter}) {unit} started again on {}: BACKUP ({:.1} s)",
        pair[master].label(),
        back.as_secs_f64()
    ));
    converged(ctx, pair, Some(new), services, &format!("after ({letter})"))
}

/// Failover (c): the MASTER powered off; services added on the new MASTER meanwhile; the old
/// one booted again catches up as BACKUP.
fn power_off_and_return(
    ctx: &Ctx<'_>,
    pair: &mut [Node; 2],
    master: usize,
    services: &mut Services,
) -> usize {
    let old = master;
    pair[old].vm().type_text("poweroff\n");
    let clean = pair[old].vm().power_off(Duration::from_secs(120));
    assert!(clean, "{} did not power off", pair[old].label());
    pair[old].vm = None;
    let (new, took) = wait_master(pair, Some(1 - old), Duration::from_secs(60));
    ctx.clock.log(format!(
        "ok: takeover (c) poweroff of {}: {} holds the VIP and the routes ({:.1} s after QEMU \
         exited)",
        pair[old].label(),
        pair[new].label(),
        took.as_secs_f64()
    ));
    program(ctx, services, MORE_SERVICES, "peer-behind");
    ctx.lab
        .netns(&CLIENT_REMOTE)
        .enter(|| settle(&services.expected(), Duration::from_secs(120)));
    start(ctx, &mut pair[old]);
    ready(ctx, &mut pair[old]);
    let since = Instant::now();
    let own = ctx.api(
        &format!("node-{}", pair[old].spec.name),
        pair[old].spec.mgmt_ip,
    );
    own.wait_ready(Duration::from_secs(120));
    while own.names("frontends") != services.names() {
        assert!(
            since.elapsed() < Duration::from_secs(120),
            "{} did not catch up: {:?}",
            pair[old].label(),
            own.names("frontends")
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let version = ctx.vip_api().version();
    assert_eq!(own.version(), version, "the returned node's version");
    ctx.clock.log(format!(
        "ok: catch-up: {} booted again and its own API lists all {} services, the {} added \
         while it was down included, at the MASTER's version {version} ({:.1} s after login)",
        pair[old].label(),
        services.0.len(),
        MORE_SERVICES,
        since.elapsed().as_secs_f64()
    ));
    wait_backup_ready(&mut pair[old], Duration::from_secs(120));
    converged(ctx, pair, Some(new), services, "after (c)")
}

/// One failover of the figures: what the client saw and what was missing.
struct Failover {
    kind: &'static str,
    from: &'static str,
    to: &'static str,
    /// The longest time between two answered requests of the probing client around it.
    gap: f64,
    failed_probes: usize,
    /// Until the other node held the VIP and the routes (seen on the consoles).
    takeover: f64,
    missing: usize,
}

/// The probing client's results: (seconds since `origin`, answered).
type Probes = Mutex<Vec<(f64, bool)>>;

fn probe(addr: SocketAddr, origin: Instant, stop: &AtomicBool, probes: &Probes) {
    while !stop.load(Ordering::Relaxed) {
        let t = origin.elapsed().as_secs_f64();
        let answer = lab::http_get_within(addr, Duration::from_millis(300), Duration::from_secs(1));
        let ok = matches!(answer, Answer::Body(_));
        probes.lock().unwrap().push((t, ok));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The longest interval between answered probes that ends after `t0` and at most at `t1`
/// (from the last answer before `t0`), and the failed probes in between.
fn gap(probes: &[(f64, bool)], t0: f64, t1: f64) -> (f64, usize) {
    let mut prev = probes
        .iter()
        .rev()
        .find(|(t, ok)| *ok && *t <= t0)
        .map(|(t, _)| *t)
        .unwrap_or(t0);
    let mut longest: f64 = 0.0;
    for (t, _) in probes.iter().filter(|(t, ok)| *ok && *t > t0 && *t <= t1) {
        longest = longest.max(t - prev);
        prev = *t;
    }
    longest = longest.max(t1 - prev);
    let failed = probes
        .iter()
        .filter(|(t, ok)| !*ok && *t > t0 && *t <= t1)
        .count();
    (longest, failed)
}

/// Services the new MASTER lacks: not listed on the VIP's API, or not answering through their
/// VIP from the remote client within 10 s.
fn missing_services(ctx: &Ctx<'_>, services: &Services) -> usize {
    let listed = ctx.vip_api().names("frontends");
    let answering = ctx.lab.netns(&CLIENT_REMOTE).enter(|| {
        services
            .0
            .iter()
            .filter(|(_, addr)| {
                let start = Instant::now();
                loop {
                    if matches!(lab::http_get(*addr), Answer::Body(_)) {
                        return true;
                    }
                    if start.elapsed() > Duration::from_secs(10) {
                        return false;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
            .map(|(n, _)| n.clone())
            .collect::<BTreeSet<_>>()
    });
    services
        .0
        .iter()
        .filter(|(n, _)| !listed.contains(n) || !answering.contains(n))
        .count()
}

/// One failover of kind `i` (even: kill -9 of keepalived, odd: haproxy stopped) from
/// `master`, restored afterwards; the new MASTER and the figures (but the gap).
fn one_failover(
    ctx: &Ctx<'_>,
    pair: &mut [Node; 2],
    master: usize,
    i: u32,
    services: &Services,
) -> (usize, Failover) {
    let kill = i.is_multiple_of(2);
    let start = Instant::now();
    pair[master].sh(if kill {
        "systemctl kill -s SIGKILL keepalived"
    } else {
        "systemctl stop haproxy"
    });
    let (new, _) = wait_master(pair, Some(1 - master), Duration::from_secs(60));
    let takeover = start.elapsed().as_secs_f64();
    if !kill {
        pair[master].sh("systemctl start haproxy");
    }
    let missing = missing_services(ctx, services);
    wait_backup_ready(&mut pair[master], Duration::from_secs(120));
    let f = Failover {
        kind: if kill {
            "kill -9 keepalived"
        } else {
            "stop haproxy"
        },
        from: pair[master].spec.name,
        to: pair[new].spec.name,
        gap: 0.0,
        failed_probes: 0,
        takeover,
        missing,
    };
    (new, f)
}

/// `count` failovers under a client probing a VIP every 50 ms from the remote subnet: the gap
/// of each, p50/p95, and the services missing after each (asserted 0).
fn failover_figures(
    ctx: &Ctx<'_>,
    pair: &mut [Node; 2],
    master: usize,
    services: &Services,
    count: u32,
) -> usize {
    let addr = services.0[0].1;
    let (origin, stop, probes) = (Instant::now(), AtomicBool::new(false), Probes::default());
    ctx.clock.log(format!(
        "figures: {count} failovers, alternating kill -9 of keepalived and haproxy stopped on \
         the MASTER; {} requests http://{addr}/ on a new connection every 50 ms",
        CLIENT_REMOTE.role
    ));
    let results = std::thread::scope(|s| {
        let ns = ctx.lab.netns(&CLIENT_REMOTE);
        s.spawn(|| ns.enter(|| probe(addr, origin, &stop, &probes)));
        let _stop = SetOnDrop(&stop);
        let mut master = master;
        let mut results = Vec::new();
        std::thread::sleep(Duration::from_secs(2));
        for i in 0..count {
            let t0 = origin.elapsed().as_secs_f64();
            let (new, mut f) = one_failover(ctx, pair, master, i, services);
            std::thread::sleep(Duration::from_secs(1));
            let t1 = origin.elapsed().as_secs_f64();
            (f.gap, f.failed_probes) = gap(&probes.lock().unwrap(), t0, t1);
            ctx.clock.log(format!(
                "failover {:>2}: {:<18} {} → {}: gap {:.3} s ({} failed requests), VIP and routes \
                 moved after {:.1} s, services missing {}",
                i + 1,
                f.kind,
                f.from.to_uppercase(),
                f.to.to_uppercase(),
                f.gap,
                f.failed_probes,
                f.takeover,
                f.missing
            ));
            results.push(f);
            master = new;
        }
        results
    });
    report(ctx, &results, services.0.len());
    converged(ctx, pair, None, services, "after the figures")
}

/// Sets the flag when dropped (a failing failover still stops the probing client).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The `p`-quantile (nearest rank) of sorted `v`.
fn quantile(v: &[f64], p: f64) -> f64 {
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Prints the figures (and writes them to `HA_BENCH_OUT`); every failover must have left 0
/// services missing.
fn report(ctx: &Ctx<'_>, results: &[Failover], total: usize) {
    let mut gaps: Vec<f64> = results.iter().map(|f| f.gap).collect();
    gaps.sort_by(f64::total_cmp);
    let missing: usize = results.iter().map(|f| f.missing).sum();
    let per_kind = |kind: &str| {
        let mut g: Vec<f64> = results
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| f.gap)
            .collect();
        g.sort_by(f64::total_cmp);
        if g.is_empty() {
            "none".to_owned()
        } else {
            format!(
                "p50 {:.3} s, p95 {:.3} s",
                quantile(&g, 0.5),
                quantile(&g, 0.95)
            )
        }
    };
    let summary = format!(
        "failover figures: {} failovers, client gap p50 {:.3} s, p95 {:.3} s, max {:.3} s \
         (kill -9 keepalived: {}; stop haproxy: {}); services missing after a failover: {missing} \
         (of {total}, summed over all failovers)",
        results.len(),
        quantile(&gaps, 0.5),
        quantile(&gaps, 0.95),
        gaps.last().copied().unwrap_or(0.0),
        per_kind("kill -9 keepalived"),
        per_kind("stop haproxy")
    );
    ctx.clock.log(&summary);
    if let Some(out) = std::env::var_os("HA_BENCH_OUT") {
        let mut md = String::from(
            "| # | failover | from → to | client gap (s) | failed requests | VIP moved after (s) | services missing |\n|---|---|---|---|---|---|---|\n",
        );
        for (i, f) in results.iter().enumerate() {
            md.push_str(&format!(
                "| {} | {} | {} → {} | {:.3} | {} | {:.1} | {} |\n",
                i + 1,
                f.kind,
                f.from.to_uppercase(),
                f.to.to_uppercase(),
                f.gap,
                f.failed_probes,
                f.takeover,
                f.missing
            ));
        }
        md.push_str(&format!("\n{summary}\n"));
        std::fs::write(&out, md).unwrap_or_else(|e| panic!("HA_BENCH_OUT: {e}"));
    }
    assert_eq!(
        missing,
        0,
        "services missing after failovers: {:?}",
        results.iter().map(|f| f.missing).collect::<Vec<_>>()
    );
    ctx.clock.log(format!(
        "ok: no lost service: after each of the {} failovers all {total} services were listed \
         on the VIP's API and answered through their VIPs",
        results.len()
    ));
}

/// On failure: the journals of keepalived, the Data Plane API and haproxy of every running node.
fn show_journals(pair: &mut [Node; 2]) {
    for node in pair.iter_mut().filter(|n| n.vm.is_some()) {
        let label = node.label();
        let shown = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            node.vm().shell(
                "ip -4 -br addr; ip route show table local dev lo; journalctl -b --no-pager \
                 -o short-monotonic -u keepalived -u dataplaneapi -u haproxy | tail -n 80",
                Duration::from_secs(60),
            )
        }));
        use std::io::Write;
        let text = shown
            .map(|(out, _)| out)
            .unwrap_or_else(|_| "(no answer on the console)".into());
        let _ = writeln!(
            std::io::stderr(),
            "{label}: addresses, routes and journal:\n{text}"
        );
    }
}

/// Drops (`cut`) or lets through again the switch's frames between the two nodes' management
/// taps (the Supervisor's host still reaches both).
fn management_link(lab: &Lab, cut: bool) {
    let mut rules = String::from("table bridge ha_cut\ndelete table bridge ha_cut\n");
    if cut {
        let (a, b) = (
            tap_name(A.name, Segment::Management),
            tap_name(B.name, Segment::Management),
        );
        rules.push_str(&format!(
            "table bridge ha_cut {{\n  chain forward {{\n    type filter hook forward priority -10;\n    \
             iifname \"{a}\" oifname \"{b}\" drop\n    iifname \"{b}\" oifname \"{a}\" drop\n  }}\n}}\n"
        ));
    }
    lab.switch_rules("ha-cut", &rules);
}

/// Waits until both nodes hold the VIP (the link between them cut).
fn wait_both_master(pair: &mut [Node; 2], limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let held = [holding(&mut pair[0]), holding(&mut pair[1])];
        if held.iter().all(|h| h.vip) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "with the management link cut, not both MASTER within {limit:?}: A {:?}, B {:?}",
            held[0],
            held[1]
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Split-brain: the management link between the two nodes cut, both become MASTER and each
/// takes a service of its own through its own API; the link healed, one MASTER remains, a node
/// logged the split-brain, the winner's configuration is on both (the loser's service is gone,
/// kept under /var/lib/dataplaneapi/split-brain/ on the loser).
fn split_brain(ctx: &Ctx<'_>, pair: &mut [Node; 2], master: usize, services: &mut Services) {
    management_link(ctx.lab, true);
    let took = wait_both_master(pair, Duration::from_secs(60));
    ctx.clock.log(format!(
        "ok: split-brain: management frames between a-management and b-management dropped on \
         the switch; both nodes hold {MGMT_VIP} ({:.1} s; {} was MASTER)",
        took.as_secs_f64(),
        pair[master].label()
    ));
    let servers = both_servers();
    let vips = ["192.168.10.240", "192.168.10.241"];
    for (i, node) in pair.iter().enumerate() {
        let api = ctx.api(&format!("split-{}", node.spec.name), node.spec.mgmt_ip);
        let name = format!("split-{}", node.spec.name);
        let svc = Service {
            name: &name,
            vip: vips[i],
            vip_port: 80,
            servers: &servers,
        };
        let (id, _) = api.begin();
        stage_service(&api, &id, &svc);
        let reload = committed(&api.commit(&id), &id);
        // Served before the heal: the check after it measures the announcements, not what is
        // left of this commit's reload delay (5 s on the appliance).
        reloads_succeeded(&api, &reload);
    }
    management_link(ctx.lab, false);
    let (winner, took) = wait_master(pair, None, Duration::from_secs(90));
    let loser = 1 - winner;
    ctx.clock.log(format!(
        "ok: split-brain healed: {} alone is MASTER ({:.1} s)",
        pair[winner].label(),
        took.as_secs_f64()
    ));
    let name = format!("split-{}", pair[winner].spec.name);
    services
        .0
        .push((name, SocketAddr::new(vips[winner].parse().unwrap(), 80)));
    // The winner never left MASTER, so keepalived's notify_master did not run: the VIPs answer
    // the remote client again only because the winner re-announces them when its peer returns
    // (without that, the router kept the loser's MAC until its ARP entry went stale: 41 s).
    // The check starts right after the heal, so a late announcement fails it.
    converged_within(
        ctx,
        pair,
        Some(winner),
        services,
        "after the split-brain",
        Duration::from_secs(10),
    );
    let logged: Vec<String> = pair
        .iter_mut()
        .map(|n| {
            n.vm()
                .shell(
                    "journalctl -b --no-pager -o cat -u dataplaneapi -u keepalived | grep -i \
                     'split-brain' | tail -n 3",
                    Duration::from_secs(60),
                )
                .0
        })
        .collect();
    assert!(
        logged
            .iter()
            .any(|l| l.to_ascii_lowercase().contains("split-brain")),
        "no node logged the split-brain: {logged:?}"
    );
    let kept = pair[loser].sh("ls /var/lib/dataplaneapi/split-brain/ | wc -l");
    assert!(
        kept.trim().parse::<u32>().is_ok_and(|n| n >= 1),
        "the loser {} kept no copy of its configuration under /var/lib/dataplaneapi/split-brain/: \
         {kept:?}",
        pair[loser].label()
    );
    let refused = ctx
        .lab
        .netns(&CLIENT_REMOTE)
        .enter(|| lab::http_get(SocketAddr::new(vips[loser].parse().unwrap(), 80)));
    assert_eq!(
        refused,
        Answer::Refused,
        "the loser's split-brain service {} still answers",
        vips[loser]
    );
    ctx.clock.log(format!(
        "ok: split-brain: logged ({:?}); the winner {}'s configuration is on both nodes, the \
         loser's service on {} is gone ({} cop(ies) kept under /var/lib/dataplaneapi/split-brain/ \
         on {})",
        logged.iter().map(|l| l.trim()).collect::<Vec<_>>(),
        pair[winner].label(),
        vips[loser],
        kept.trim(),
        pair[loser].label()
    ));
}
