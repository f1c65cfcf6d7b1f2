//! End-to-end: the appliance in a lab network (tests/lab.rs) of network namespaces, booted in
//! QEMU with its NICs on tap ports, in the Default topology (2 NICs, load-balancer range on the
//! workload network) and the Frontend topology (3 NICs, range on the frontend network), and
//! programmed as the vSphere Supervisor programs it: every service through the appliance's
//! Data Plane API, from the management network, over TLS verified against the CA the
//! deployment supplied, with the configured user and password (tests/lab_services.rs).
//!
//! From clients behind the router, on the workload network and on an additional workload
//! network, a VIP is answered by both backends in turn, the replies leave by the NIC the
//! requests came in on (switch port counters; the router's strict rp_filter drops anything
//! else), and an address outside the range is not answered. Service churn (30 created, 10
//! changed, 10 deleted) under a steady client that must see no failed request; two clients
//! committing on the same version (one 409). Day 2: a reboot of the Default topology with a
//! changed environment (a range added, DNS and the API's password changed) keeps every
//! service the API created, then an invalid one keeps the last good configuration.
//!
//! Needs root, QEMU, genisoimage, nft, curl, python3, openssl, and for the appliance build the
//! tools of scripts/deps/appliance*.apt. Without them it fails when `CI` is set and is skipped
//! with a notice otherwise. The appliance is the build this test run shares with the boot test
//! and the HA pair (tests/appliance.rs: made by the first of them, reused by the others).
//! Development shortcut: `LAB_APPLIANCE_RAW=PATH` boots that raw appliance disk (e.g.
//! `haproxy-v*.raw` from `ova-builder appliance --no-ova`, with the Data Plane API) instead.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[allow(dead_code)] // parts serve appliance_boot only
#[path = "boot_dataplane.rs"]
mod boot_dataplane;
#[path = "lab.rs"]
mod lab;
#[path = "lab_services.rs"]
mod lab_services;
#[allow(dead_code)] // the slirp and UEFI parts serve appliance_boot
#[path = "qemu.rs"]
mod qemu;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use boot_dataplane::{Api, Auth, Service, check_auth, create_service};
use e2e::appliance::Built;
use e2e::{Clock, env_iso, make_ca, ovf_env};
use lab::{BACKEND_ADDITIONAL, BACKEND_WORKLOAD, Host, Lab, SUPERVISOR, Segment};
use lab::{CLIENT_ADDITIONAL, CLIENT_REMOTE, CLIENT_WORKLOAD};
use lab_services::{Expected, both_servers, settle};
use qemu::{Firmware, TapNic, Vm, VmSpec};

const ROOT_PWD: &str = "Lab-test-pw1";
const ADDITIONAL_NET: &str = "10.20.0.0/24";
const MGMT_IP: &str = "192.168.0.2";
/// `loadbalance.dataplane_port`'s default (the lab does not set it).
const DATAPLANE_PORT: u16 = 5556;
const API_USER: &str = "lbadmin";
const API_PWD: &str = "Api-pass-42";
/// Day 2's `loadbalance.haproxy_pwd`.
const API_PWD_DAY2: &str = "Api-pass-43-day2";
/// Default topology: the range on the workload network.
const DEFAULT_RANGE: &str = "192.168.10.128/25";
const DEFAULT_VIP: &str = "192.168.10.200";
/// The churn's 30 services take consecutive VIPs from here (in DEFAULT_RANGE).
const CHURN_FIRST_VIP: &str = "192.168.10.150";
/// In the workload subnet, outside every range of either day.
const DEFAULT_OUTSIDE: &str = "192.168.10.50";
/// Day 2: a range added to the Default topology.
const DAY2_RANGE: &str = "192.168.10.64/26";
const DAY2_VIP: &str = "192.168.10.100";
/// Frontend topology: the range on the frontend network.
const FRONTEND_RANGE: &str = "192.168.100.128/25";
const FRONTEND_VIP: &str = "192.168.100.200";
const FRONTEND_OUTSIDE: &str = "192.168.100.100";
/// The two services of the conflict, on the frontend range.
const RACE_VIPS: [&str; 2] = ["192.168.100.201", "192.168.100.202"];
/// Console markers of haproxy-firstboot (firstboot/src/apply_cmd.rs).
const APPLIED: &str = "haproxy-firstboot: applied configuration";
const FAILED: &str = "haproxy-firstboot: FAILED";
const CLIENTS: [&Host; 3] = [&CLIENT_REMOTE, &CLIENT_WORKLOAD, &CLIENT_ADDITIONAL];

/// Whether the test can run here (in CI a missing tool is a failure).
fn prerequisites(building: bool) -> bool {
    let mut tools = vec![
        "qemu-system-x86_64",
        "qemu-img",
        "genisoimage",
        "ip",
        "nft",
        "curl",
        "python3",
        "openssl",
    ];
    if building {
        tools.extend([
            "mmdebstrap",
            "mkfs.ext4",
            "mkfs.vfat",
            "mcopy",
            "syslinux",
            "sfdisk",
        ]);
    }
    e2e::prerequisites(&tools)
}

/// The appliance's raw disk: `LAB_APPLIANCE_RAW`, or the build this test run shares with the
/// boot test and the HA pair (tests/appliance.rs; made here if no test made it yet). The
/// [`Built`] keeps the shared build in use.
fn appliance_disk(clock: &Clock) -> (PathBuf, Option<Built>) {
    if let Some(raw) = std::env::var_os("LAB_APPLIANCE_RAW") {
        clock.log(format!("using LAB_APPLIANCE_RAW={}", raw.to_string_lossy()));
        return (PathBuf::from(raw), None);
    }
    let built = e2e::appliance::shared_build(clock);
    (built.raw.clone(), Some(built))
}

/// What every phase shares: the lab, the scratch directory, the deployment's CA (certificate,
/// key; the certificate also in `dir/ca.crt`), the clock.
struct Ctx<'a> {
    lab: &'a Lab,
    dir: &'a Path,
    ca: &'a (String, String),
    clock: &'a Clock,
}

impl<'a> Ctx<'a> {
    /// A Data Plane API client on the Supervisor's host (management network), verifying TLS
    /// against the deployment's CA, with `password` (in 0600 curl config files named `tag`).
    fn api(&self, tag: &str, password: &str) -> Api<'a> {
        Api::direct(
            self.lab.netns(&SUPERVISOR),
            self.dir,
            tag,
            &self.dir.join("ca.crt"),
            (MGMT_IP, DATAPLANE_PORT),
            (API_USER, password),
        )
    }
}

/// One topology's environment and where its VIPs live.
struct Topology {
    segments: Vec<Segment>,
    vip_segment: Segment,
    props: Vec<(&'static str, String)>,
}

fn base_props(
    ca: &(String, String),
    range: &str,
    nameserver: &str,
    api_pwd: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("appliance.root_pwd", ROOT_PWD.into()),
        ("appliance.permit_root_login", "True".into()),
        ("appliance.ca_cert", ca.0.clone()),
        ("appliance.ca_cert_key", ca.1.clone()),
        ("network.hostname", "lb-lab.example.com".into()),
        ("network.nameservers", nameserver.into()),
        ("network.management_ip", format!("{MGMT_IP}/24")),
        ("network.management_gateway", "192.168.0.1".into()),
        ("network.workload_ip", "192.168.10.2/24".into()),
        ("network.workload_gateway", "192.168.10.1".into()),
        (
            "network.additional_workload_networks",
            ADDITIONAL_NET.into(),
        ),
        ("loadbalance.service_ip_range", range.into()),
        ("loadbalance.haproxy_user", API_USER.into()),
        ("loadbalance.haproxy_pwd", api_pwd.into()),
    ]
}

fn default_topology(
    ca: &(String, String),
    range: &str,
    nameserver: &str,
    api_pwd: &str,
) -> Topology {
    Topology {
        segments: vec![Segment::Management, Segment::Workload],
        vip_segment: Segment::Workload,
        props: base_props(ca, range, nameserver, api_pwd),
    }
}

fn frontend_topology(ca: &(String, String)) -> Topology {
    let mut props = base_props(ca, FRONTEND_RANGE, "192.168.0.1", API_PWD);
    props.push(("network.frontend_ip", "192.168.100.2/24".into()));
    props.push(("network.frontend_gateway", "192.168.100.1".into()));
    Topology {
        segments: Segment::APPLIANCE.to_vec(),
        vip_segment: Segment::Frontend,
        props,
    }
}

fn mac(seg: Segment) -> &'static str {
    match seg {
        Segment::Management => "00:50:56:aa:00:01",
        Segment::Workload => "00:50:56:aa:00:02",
        _ => "00:50:56:aa:00:03",
    }
}

/// vSphere's PCI slots 160/192/224 → buses 0x03/0x0b/0x13 (see tests/qemu.rs).
fn pci_bus(seg: Segment) -> u8 {
    match seg {
        Segment::Management => 0x03,
        Segment::Workload => 0x0b,
        _ => 0x13,
    }
}

/// Boots `topo` from `base` (a qcow2 overlay takes the writes) with its environment on the CD,
/// waits for haproxy-firstboot's verdict (`want` of APPLIED/FAILED) and logs in on the console.
fn boot(ctx: &Ctx<'_>, base: (&Path, &str), run: &str, topo: &Topology, want: &str) -> Vm {
    let (dir, clock) = (ctx.dir, ctx.clock);
    let iso = env_iso(dir, run, &ovf_env(&topo.props));
    let taps: Vec<TapNic> = topo
        .segments
        .iter()
        .map(|&seg| TapNic {
            bus: pci_bus(seg),
            mac: mac(seg),
            tap: seg.tap(),
        })
        .collect();
    let spec = VmSpec {
        firmware: Firmware::Bios,
        dir,
        base: base.0,
        base_format: base.1,
        env_iso: Some(&iso),
        nics: vec![],
        memory_mib: 1024,
    };
    let mut vm = Vm::start(&spec, run, &ctx.lab.switch(), &taps);
    clock.log(format!(
        "{run}: QEMU started in the lab's switch namespace, NICs on {:?}",
        taps.iter().map(|t| t.tap.as_str()).collect::<Vec<_>>()
    ));
    vm.wait_for(&[APPLIED, FAILED], Duration::from_secs(420), "first boot");
    let console = vm.console();
    let other = if want == APPLIED { FAILED } else { APPLIED };
    assert!(
        !console.contains(other),
        "{run}: expected {want:?}, the console shows {other:?}:\n{console}"
    );
    clock.log(format!(
        "ok: {run}: console shows {want:?} ({:.1} s after QEMU)",
        vm.started.elapsed().as_secs_f64()
    ));
    vm.login("root", ROOT_PWD, Duration::from_secs(240));
    clock.log(format!(
        "ok: {run}: root console login ({:.1} s after QEMU)",
        vm.started.elapsed().as_secs_f64()
    ));
    vm
}

/// Runs `f` (checks through the Data Plane API and the VIPs); if it fails, the guest's journal
/// of the API and haproxy is shown (read on the serial console) before the failure.
fn with_journal<T>(vm: &mut Vm, f: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(panic) => {
            let (journal, _) = vm.shell(
                "journalctl -b --no-pager -o short-monotonic -u dataplaneapi -u haproxy \
                 | tail -n 80; systemctl --no-pager status dataplaneapi haproxy | cat",
                Duration::from_secs(60),
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "the guest's journal of dataplaneapi and haproxy:\n{journal}"
            );
            std::panic::resume_unwind(panic)
        }
    }
}

/// Waits for the Data Plane API on the management network, then checks its authentication:
/// 401 without and with wrong credentials, 200 with the deployment's.
fn api_answers(api: &Api<'_>, run: &str, clock: &Clock) {
    api.wait_ready(Duration::from_secs(120));
    let version = check_auth(api);
    clock.log(format!(
        "ok: {run}: from {} on the management network, the Data Plane API ({version}) at \
         https://{MGMT_IP}:{DATAPLANE_PORT} answers with TLS verified against the deployment's \
         CA: 401 without credentials and with a wrong password, 200 with \
         loadbalance.haproxy_user/haproxy_pwd",
        SUPERVISOR.ip()
    ));
}

/// Creates service `name` through the Data Plane API as the Supervisor does: one transaction
/// with backend `<name>-be` (both lab backends, roundrobin) and frontend `name` bound on
/// `vip`:80, committed; waits for its reload.
fn program_vip(api: &Api<'_>, name: &str, vip: &str, clock: &Clock) {
    let servers = both_servers();
    let svc = Service {
        name,
        vip,
        vip_port: 80,
        servers: &servers,
    };
    let (version, reload) = create_service(api, &svc);
    lab_services::reloads_succeeded(api, &reload);
    clock.log(format!(
        "ok: service {name} programmed through the Data Plane API: one transaction (backend \
         {name}-be with {} and {}, frontend {name} bound on {vip}:80), commit 202 → version \
         {version}, reload {reload} succeeded",
        BACKEND_WORKLOAD.role, BACKEND_ADDITIONAL.role
    ));
}

fn vip_addr(vip: &str) -> SocketAddr {
    SocketAddr::new(vip.parse().unwrap(), 80)
}

fn both_backends() -> BTreeSet<String> {
    [BACKEND_WORKLOAD.role, BACKEND_ADDITIONAL.role]
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// From each client: two requests in a row to `vip` are answered by both backends, and the
/// switch saw requests and replies on `vip_segment`'s tap port only.
fn check_vip(lab: &Lab, vip: &str, vip_segment: Segment, clients: &[&Host], clock: &Clock) {
    let url = format!("http://{vip}/");
    // The first answer can take a while: networkd and haproxy may still be settling.
    let start = std::time::Instant::now();
    while lab.get(clients[0], &url).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{url} does not answer {} within 120 s",
            clients[0].role
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    for client in clients {
        lab.reset_counters();
        let seen = lab.two_gets(client, &url);
        assert_eq!(
            seen.as_ref(),
            Some(&both_backends()),
            "two requests from {} ({}) to {url}",
            client.role,
            client.ip()
        );
        for seg in Segment::APPLIANCE {
            let count = lab.count(seg);
            if seg == vip_segment {
                assert!(
                    count.requests > 0 && count.replies > 0,
                    "{url} from {}: no traffic counted on the {} tap: {count:?}",
                    client.role,
                    seg.name()
                );
            } else {
                assert_eq!(
                    count,
                    lab::PortCount::default(),
                    "{url} from {}: VIP traffic on the {} tap (requests came in on {})",
                    client.role,
                    seg.name(),
                    vip_segment.name()
                );
            }
        }
        clock.log(format!(
            "ok: {url} from {} ({}): answered by both backends in turn; requests in and \
             replies out by the {} NIC only ({:?})",
            client.role,
            client.ip(),
            vip_segment.name(),
            lab.count(vip_segment)
        ));
    }
}

fn check_not_answered(lab: &Lab, address: &str, client: &Host, clock: &Clock) {
    lab.reset_counters();
    let url = format!("http://{address}/");
    assert_eq!(
        lab.get(client, &url),
        None,
        "{url} (outside the load-balancer ranges) answered {}",
        client.role
    );
    clock.log(format!(
        "ok: {url} (outside every load-balancer range) is not answered"
    ));
}

/// Negative control: with the `from <LB range>` rule deleted in the guest (the routing defect
/// fixed in 8df70c1), a reply to a client on the additional workload network leaves by the
/// workload NIC; the counters must see it and the router's rp_filter must drop it.
fn wrong_path_is_seen(lab: &Lab, vm: &mut Vm, clock: &Clock) {
    let (out, status) = vm.shell(
        &format!("ip rule del from {FRONTEND_RANGE} && ip route flush cache"),
        Duration::from_secs(60),
    );
    assert_eq!(status, 0, "deleting the from-range rule failed:\n{out}");
    lab.reset_counters();
    let url = format!("http://{FRONTEND_VIP}/");
    let answer = lab.get(&CLIENT_ADDITIONAL, &url);
    let workload = lab.count(Segment::Workload);
    assert_eq!(
        answer, None,
        "without the from-range rule, the router's rp_filter should drop the reply"
    );
    assert!(
        workload.replies > 0,
        "without the from-range rule, replies should be counted on the workload tap: {workload:?}"
    );
    clock.log(format!(
        "ok: negative control: without `from {FRONTEND_RANGE}` the reply to {} leaves by the \
         workload NIC ({workload:?}) and the router drops it",
        CLIENT_ADDITIONAL.ip()
    ));
}

fn power_off(vm: &mut Vm, run: &str, clock: &Clock) {
    let clean = vm.power_off(Duration::from_secs(120));
    clock.log(format!(
        "{run}: powered off ({})",
        if clean { "ACPI" } else { "killed" }
    ));
    assert!(clean, "{run}: no ACPI power-off within 120 s");
}

#[test]
fn lab_default_and_frontend_topologies() {
    let building = std::env::var_os("LAB_APPLIANCE_RAW").is_none();
    if !prerequisites(building) {
        return;
    }
    let clock = Clock::new("lab-boot");
    let tmp = tempfile::Builder::new()
        .prefix("lab-boot-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let dir = tmp.path();
    let (raw, _built) = appliance_disk(&clock);
    let ca = make_ca(dir, "/CN=Lab deployment CA");
    let lab = Lab::new(dir);
    clock.log(format!(
        "ok: lab network up in namespaces {}-*: router (rp_filter=1), backends on {} and {}, \
         clients on {}, {} and {}, the Supervisor on {}",
        lab.switch().trim_end_matches("-switch"),
        BACKEND_WORKLOAD.address,
        BACKEND_ADDITIONAL.address,
        CLIENT_REMOTE.address,
        CLIENT_WORKLOAD.address,
        CLIENT_ADDITIONAL.address,
        SUPERVISOR.address
    ));
    let ctx = Ctx {
        lab: &lab,
        dir,
        ca: &ca,
        clock: &clock,
    };
    let day1 = default_topology_day1(&ctx, &raw);
    day2(&ctx, &day1);
    frontend_topology_with_conflict(&ctx, &raw);
    clock.log("all lab checks passed");
}

/// What day 1 of the Default topology leaves: its disk, what must answer and refuse, and the
/// configuration version at power-off.
struct Day1 {
    disk: PathBuf,
    expected: Expected,
    version: u64,
}

/// The Default topology (2 NICs, VIPs on the workload network): service lab-vip through the
/// API, checked from every client with the switch's counters; then the churn.
fn default_topology_day1(ctx: &Ctx<'_>, raw: &Path) -> Day1 {
    let (lab, clock) = (ctx.lab, ctx.clock);
    let topo = default_topology(ctx.ca, DEFAULT_RANGE, "192.168.0.1", API_PWD);
    lab.watch(&[DEFAULT_RANGE, DAY2_RANGE]);
    let mut vm = boot(ctx, (raw, "raw"), "default", &topo, APPLIED);
    let api = ctx.api("default", API_PWD);
    let expected = with_journal(&mut vm, || {
        api_answers(&api, "default", clock);
        program_vip(&api, "lab-vip", DEFAULT_VIP, clock);
        check_vip(lab, DEFAULT_VIP, topo.vip_segment, &CLIENTS, clock);
        check_not_answered(lab, DEFAULT_OUTSIDE, &CLIENT_REMOTE, clock);
        let mut expected = Expected::default();
        expected.serving("lab-vip", DEFAULT_VIP, 80);
        lab_services::churn(
            &api,
            lab,
            (&CLIENT_REMOTE, vip_addr(DEFAULT_VIP)),
            &CLIENT_WORKLOAD,
            (CHURN_FIRST_VIP.parse().unwrap(), expected),
            clock,
        )
    });
    let version = api.version();
    power_off(&mut vm, "default", clock);
    Day1 {
        disk: vm.overlay.clone(),
        expected,
        version,
    }
}

/// The Frontend topology (3 NICs, VIPs on the frontend network), from the same raw disk:
/// lab-vip through the API from every client, the conflict of two clients, and the negative
/// control of the routing.
fn frontend_topology_with_conflict(ctx: &Ctx<'_>, raw: &Path) {
    let (lab, clock) = (ctx.lab, ctx.clock);
    let topo = frontend_topology(ctx.ca);
    lab.watch(&[FRONTEND_RANGE]);
    let mut vm = boot(ctx, (raw, "raw"), "frontend", &topo, APPLIED);
    let (a, b) = (
        ctx.api("frontend-a", API_PWD),
        ctx.api("frontend-b", API_PWD),
    );
    with_journal(&mut vm, || {
        api_answers(&a, "frontend", clock);
        program_vip(&a, "lab-vip", FRONTEND_VIP, clock);
        check_vip(lab, FRONTEND_VIP, topo.vip_segment, &CLIENTS, clock);
        check_not_answered(lab, FRONTEND_OUTSIDE, &CLIENT_REMOTE, clock);
        let servers = both_servers();
        let race = RACE_VIPS.map(|vip| Service {
            name: if vip == RACE_VIPS[0] {
                "race-a"
            } else {
                "race-b"
            },
            vip,
            vip_port: 80,
            servers: &servers,
        });
        lab_services::conflicting_commits(
            [&a, &b],
            [&race[0], &race[1]],
            lab,
            &CLIENT_REMOTE,
            clock,
        );
    });
    wrong_path_is_seen(lab, &mut vm, clock);
    power_off(&mut vm, "frontend", clock);
}

/// Day 2 on the Default topology's disk: a changed environment (a range added, DNS and the
/// API's password changed) keeps every service the API created, serving both ranges; then an
/// invalid change keeps the last good configuration and the console says why.
fn day2(ctx: &Ctx<'_>, day1: &Day1) {
    let (lab, clock) = (ctx.lab, ctx.clock);
    let range = format!("{DEFAULT_RANGE},{DAY2_RANGE}");
    let topo = default_topology(ctx.ca, &range, "192.168.0.53", API_PWD_DAY2);
    let mut vm = boot(ctx, (&day1.disk, "qcow2"), "day2", &topo, APPLIED);
    let (out, status) = vm.shell(
        "grep -h '^DNS=' /etc/systemd/network/*.network",
        Duration::from_secs(60),
    );
    assert_eq!(status, 0, "day 2 checks inside the guest failed:\n{out}");
    assert!(
        out.contains("DNS=192.168.0.53") && !out.contains("DNS=192.168.0.1"),
        "DNS not changed:\n{out}"
    );
    clock.log("ok: day2: DNS changed to 192.168.0.53");
    let (old, api) = (ctx.api("day2-old", API_PWD), ctx.api("day2", API_PWD_DAY2));
    let expected = with_journal(&mut vm, || {
        day2_api(&old, &api, day1, clock);
        let took = lab
            .netns(&CLIENT_ADDITIONAL)
            .enter(|| settle(&day1.expected, Duration::from_secs(120)));
        clock.log(format!(
            "ok: day2: every service the API created still serves: from {}, {} VIP:port pairs \
             answered by both backends, {} refused as before ({:.1} s)",
            CLIENT_ADDITIONAL.role,
            day1.expected.answering.len(),
            day1.expected.refusing.len(),
            took.as_secs_f64()
        ));
        check_vip(lab, DEFAULT_VIP, Segment::Workload, &CLIENTS, clock);
        program_vip(&api, "lab-day2", DAY2_VIP, clock);
        check_vip(lab, DAY2_VIP, Segment::Workload, &CLIENTS, clock);
        check_not_answered(lab, DEFAULT_OUTSIDE, &CLIENT_REMOTE, clock);
        let mut expected = day1.expected.clone();
        expected.serving("lab-day2", DAY2_VIP, 80);
        expected
    });
    let version = api.version();
    power_off(&mut vm, "day2", clock);
    let day2_disk = vm.overlay.clone();
    drop(vm);
    day2_invalid(ctx, &day2_disk, &api, (&expected, version));
}

/// Day 2's API: the old password 401, the new one 200; the version moved on (firstboot
/// rewrote the userlist) and every frontend of day 1 is still there.
fn day2_api(old: &Api<'_>, api: &Api<'_>, day1: &Day1, clock: &Clock) {
    let r = api.wait_ready(Duration::from_secs(120));
    assert_eq!(
        r.status, 200,
        "GET /v2/info with the new password: {}",
        r.body
    );
    let r = old.request("GET", "/v2/info", None, Auth::Right);
    assert_eq!(
        r.status, 401,
        "GET /v2/info with the old password: {}",
        r.body
    );
    let version = api.version();
    assert!(
        version > day1.version,
        "the configuration version did not move on: {} on day 1, {version} now",
        day1.version
    );
    assert_eq!(
        api.names("frontends"),
        day1.expected.frontends,
        "the frontends after the reboot"
    );
    clock.log(format!(
        "ok: day2: the Data Plane API answers with the new properties: the old \
         loadbalance.haproxy_pwd 401, the new one 200; configuration version {} → {version} \
         with all {} frontends the API created",
        day1.version,
        day1.expected.frontends.len()
    ));
}

/// An invalid change (host bits in a range): firstboot fails, the last good configuration
/// stays: AnyIP routes, the API with day 2's password and version, every service serving.
fn day2_invalid(ctx: &Ctx<'_>, disk: &Path, api: &Api<'_>, (expected, version): (&Expected, u64)) {
    let (lab, clock) = (ctx.lab, ctx.clock);
    let range = format!("{DEFAULT_RANGE},192.168.10.70/26");
    let topo = default_topology(ctx.ca, &range, "192.168.0.53", API_PWD_DAY2);
    let mut vm = boot(ctx, (disk, "qcow2"), "day2-invalid", &topo, FAILED);
    assert!(
        vm.console().contains("loadbalance.service_ip_range"),
        "the console does not name loadbalance.service_ip_range:\n{}",
        vm.console()
    );
    let (out, status) = vm.shell(
        "journalctl -b --no-pager -u haproxy-firstboot.service | grep -c 'loadbalance.service_ip_range'; \
         ip route show table local type local dev lo",
        Duration::from_secs(60),
    );
    assert_eq!(status, 0, "the journal does not say why:\n{out}");
    assert!(
        out.contains(DEFAULT_RANGE) && out.contains(DAY2_RANGE),
        "the last good AnyIP routes are not in place:\n{out}"
    );
    clock.log(format!(
        "ok: day2-invalid: console and journal show {FAILED:?} naming \
         loadbalance.service_ip_range; AnyIP routes of the last good configuration in place"
    ));
    with_journal(&mut vm, || {
        let r = api.wait_ready(Duration::from_secs(120));
        assert_eq!(
            r.status, 200,
            "GET /v2/info with day 2's password: {}",
            r.body
        );
        assert_eq!(
            api.version(),
            version,
            "the version after a failed first boot"
        );
        assert_eq!(api.names("frontends"), expected.frontends, "the frontends");
        let took = lab
            .netns(&CLIENT_REMOTE)
            .enter(|| settle(expected, Duration::from_secs(120)));
        check_vip(lab, DEFAULT_VIP, Segment::Workload, &CLIENTS, clock);
        check_vip(lab, DAY2_VIP, Segment::Workload, &CLIENTS, clock);
        clock.log(format!(
            "ok: day2-invalid: the last good configuration keeps serving: the API answers with \
             day 2's password at version {version} with its {} frontends, {} VIP:port pairs \
             answered by both backends and {} refused ({:.1} s)",
            expected.frontends.len(),
            expected.answering.len(),
            expected.refusing.len(),
            took.as_secs_f64()
        ));
    });
    power_off(&mut vm, "day2-invalid", clock);
}
