//! End-to-end: the appliance in a lab network (tests/lab.rs) of network namespaces, booted in
//! QEMU with its NICs on tap ports, in the Default topology (2 NICs, load-balancer range on the
//! workload network) and the Frontend topology (3 NICs, range on the frontend network). From
//! clients behind the router, on the workload network and on an additional workload network,
//! a VIP is answered by both backends in turn, the replies leave by the NIC the requests came
//! in on (switch port counters; the router's strict rp_filter drops anything else), and an
//! address outside the range is not answered. Day 2: a reboot of the Default topology with a
//! changed environment, then with an invalid one.
//!
//! Needs root, QEMU, genisoimage, nft, curl, python3, and for the appliance build the tools of
//! scripts/deps/appliance*.apt. Without them it fails when `CI` is set and is skipped with a
//! notice otherwise. Development shortcut: `LAB_APPLIANCE_RAW=PATH` boots that raw appliance
//! disk (e.g. `haproxy-v*.raw` from `ova-builder appliance --no-ova`) instead of building one.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "lab.rs"]
mod lab;
#[allow(dead_code)] // the slirp and UEFI parts serve appliance_boot
#[path = "qemu.rs"]
mod qemu;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e::{Clock, env_iso, ovf_env, target_bin};
use lab::{BACKEND_ADDITIONAL, BACKEND_PORT, BACKEND_WORKLOAD, Host, Lab, Segment};
use lab::{CLIENT_ADDITIONAL, CLIENT_REMOTE, CLIENT_WORKLOAD};
use qemu::{Firmware, TapNic, Vm, VmSpec};
use testkit::{run, workspace};

const ROOT_PWD: &str = "Lab-test-pw1";
const ADDITIONAL_NET: &str = "10.20.0.0/24";
/// Default topology: the range on the workload network.
const DEFAULT_RANGE: &str = "192.168.10.128/25";
const DEFAULT_VIP: &str = "192.168.10.200";
/// In the workload subnet, outside every range of either day.
const DEFAULT_OUTSIDE: &str = "192.168.10.50";
/// Day 2: a range added to the Default topology.
const DAY2_RANGE: &str = "192.168.10.64/26";
const DAY2_VIP: &str = "192.168.10.100";
/// Frontend topology: the range on the frontend network.
const FRONTEND_RANGE: &str = "192.168.100.128/25";
const FRONTEND_VIP: &str = "192.168.100.200";
const FRONTEND_OUTSIDE: &str = "192.168.100.100";
/// Console markers of haproxy-firstboot (firstboot/src/apply_cmd.rs).
const APPLIED: &str = "haproxy-firstboot: applied configuration";
const FAILED: &str = "haproxy-firstboot: FAILED";

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

/// The appliance's raw disk: `LAB_APPLIANCE_RAW`, or built once here with `ova-builder
/// appliance --no-ova` (the boot test checks the OVA; the lab needs only the disk).
fn appliance_disk(dir: &Path, clock: &Clock) -> PathBuf {
    if let Some(raw) = std::env::var_os("LAB_APPLIANCE_RAW") {
        clock.log(format!("using LAB_APPLIANCE_RAW={}", raw.to_string_lossy()));
        return PathBuf::from(raw);
    }
    let mut cmd = Command::new(target_bin("ova-builder"));
    cmd.args([
        "appliance",
        "--version",
        "0.0.0-labtest",
        "--no-ova",
        "--json",
    ])
    .arg("--out")
    .arg(dir.join("out"))
    .arg("--firstboot")
    .arg(target_bin("haproxy-firstboot"))
    .arg("--units")
    .arg(workspace().join("firstboot/systemd"))
    // Not available on this project's build machines; the lab programs haproxy directly.
    .arg("--no-dataplaneapi")
    .env("SOURCE_DATE_EPOCH", "1763683200");
    clock.log(format!("building: {cmd:?}"));
    let report: serde_json::Value = serde_json::from_str(&run(&mut cmd)).unwrap();
    clock.log(format!(
        "ok: appliance built in {:.1} s",
        report["total_seconds"].as_f64().unwrap_or(0.0)
    ));
    PathBuf::from(report["raw_disk"].as_str().expect("raw_disk in the report"))
}

/// One topology's environment and where its VIPs live.
struct Topology {
    segments: Vec<Segment>,
    vip_segment: Segment,
    props: Vec<(&'static str, String)>,
}

fn base_props(range: &str, nameserver: &str) -> Vec<(&'static str, String)> {
    vec![
        ("appliance.root_pwd", ROOT_PWD.into()),
        ("appliance.permit_root_login", "True".into()),
        ("network.hostname", "lb-lab.example.com".into()),
        ("network.nameservers", nameserver.into()),
        ("network.management_ip", "192.168.0.2/24".into()),
        ("network.management_gateway", "192.168.0.1".into()),
        ("network.workload_ip", "192.168.10.2/24".into()),
        ("network.workload_gateway", "192.168.10.1".into()),
        (
            "network.additional_workload_networks",
            ADDITIONAL_NET.into(),
        ),
        ("loadbalance.service_ip_range", range.into()),
        ("loadbalance.haproxy_user", "lbadmin".into()),
        ("loadbalance.haproxy_pwd", "Api-pass-42".into()),
    ]
}

fn default_topology(range: &str, nameserver: &str) -> Topology {
    Topology {
        segments: vec![Segment::Management, Segment::Workload],
        vip_segment: Segment::Workload,
        props: base_props(range, nameserver),
    }
}

fn frontend_topology() -> Topology {
    let mut props = base_props(FRONTEND_RANGE, "192.168.0.1");
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
fn boot(
    lab: &Lab,
    dir: &Path,
    base: (&Path, &str),
    run: &str,
    topo: &Topology,
    want: &str,
    clock: &Clock,
) -> Vm {
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
    let mut vm = Vm::start(&spec, run, &lab.switch(), &taps);
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

/// Programs a frontend on `vip`:80 with both backends, roundrobin, through the console: this
/// stands in for the Supervisor's programming through the Data Plane API, which cannot be had
/// on this project's machines. Appended after firstboot's sections, as the API would.
fn program_vip(vm: &mut Vm, name: &str, vip: &str, clock: &Clock) {
    let lines = [
        String::new(),
        format!("# lab_boot {name}: stands in for the Data Plane API"),
        format!("frontend {name}"),
        format!("  bind {vip}:80"),
        format!("  default_backend {name}_pool"),
        format!("backend {name}_pool"),
        "  balance roundrobin".to_owned(),
        format!(
            "  server {} {}:{BACKEND_PORT}",
            BACKEND_WORKLOAD.role,
            BACKEND_WORKLOAD.ip()
        ),
        format!(
            "  server {} {}:{BACKEND_PORT}",
            BACKEND_ADDITIONAL.role,
            BACKEND_ADDITIONAL.ip()
        ),
    ];
    let quoted: Vec<String> = lines.iter().map(|l| format!("'{l}'")).collect();
    let (out, status) = vm.shell(
        &format!(
            "printf '%s\\n' {} >> /etc/haproxy/haproxy.cfg && haproxy -c -f /etc/haproxy/haproxy.cfg \
             && systemctl reload haproxy.service && systemctl is-active haproxy.service",
            quoted.join(" ")
        ),
        Duration::from_secs(120),
    );
    assert_eq!(status, 0, "programming haproxy for {vip} failed:\n{out}");
    clock.log(format!(
        "ok: haproxy programmed through the console: {vip}:80 → {} and {} (roundrobin), \
         haproxy -c valid, reloaded",
        BACKEND_WORKLOAD.role, BACKEND_ADDITIONAL.role
    ));
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
    let raw = appliance_disk(dir, &clock);
    let lab = Lab::new(dir);
    clock.log(format!(
        "ok: lab network up in namespaces {}-*: router (rp_filter=1), backends on {} and {}, \
         clients on {}, {} and {}",
        lab.switch().trim_end_matches("-switch"),
        BACKEND_WORKLOAD.address,
        BACKEND_ADDITIONAL.address,
        CLIENT_REMOTE.address,
        CLIENT_WORKLOAD.address,
        CLIENT_ADDITIONAL.address
    ));
    let clients = [&CLIENT_REMOTE, &CLIENT_WORKLOAD, &CLIENT_ADDITIONAL];

    // ---- Default topology: 2 NICs, VIPs on the workload network
    let topo = default_topology(DEFAULT_RANGE, "192.168.0.1");
    lab.watch(&[DEFAULT_RANGE, DAY2_RANGE]);
    let mut vm = boot(&lab, dir, (&raw, "raw"), "default", &topo, APPLIED, &clock);
    program_vip(&mut vm, "lab_vip", DEFAULT_VIP, &clock);
    check_vip(&lab, DEFAULT_VIP, topo.vip_segment, &clients, &clock);
    check_not_answered(&lab, DEFAULT_OUTSIDE, &CLIENT_REMOTE, &clock);
    power_off(&mut vm, "default", &clock);
    let default_disk = vm.overlay.clone();
    drop(vm);

    day2(&lab, dir, &default_disk, &clients, &clock);

    // ---- Frontend topology: 3 NICs, VIPs on the frontend network, from the same raw disk
    let topo = frontend_topology();
    lab.watch(&[FRONTEND_RANGE]);
    let mut vm = boot(&lab, dir, (&raw, "raw"), "frontend", &topo, APPLIED, &clock);
    program_vip(&mut vm, "lab_vip", FRONTEND_VIP, &clock);
    check_vip(&lab, FRONTEND_VIP, topo.vip_segment, &clients, &clock);
    check_not_answered(&lab, FRONTEND_OUTSIDE, &CLIENT_REMOTE, &clock);
    wrong_path_is_seen(&lab, &mut vm, &clock);
    power_off(&mut vm, "frontend", &clock);
    drop(vm);
    clock.log("all lab checks passed");
}

/// Day 2 on the Default topology's disk: a changed environment (a range added, DNS changed)
/// serves both ranges and keeps what was programmed; then an invalid change keeps the last
/// good configuration and the console says why.
fn day2(lab: &Lab, dir: &Path, disk: &Path, clients: &[&Host], clock: &Clock) {
    let topo = default_topology(&format!("{DEFAULT_RANGE},{DAY2_RANGE}"), "192.168.0.53");
    let mut vm = boot(lab, dir, (disk, "qcow2"), "day2", &topo, APPLIED, clock);
    let (out, status) = vm.shell(
        "grep -c '^frontend lab_vip$' /etc/haproxy/haproxy.cfg; \
         grep -h '^DNS=' /etc/systemd/network/*.network",
        Duration::from_secs(60),
    );
    assert_eq!(status, 0, "day 2 checks inside the guest failed:\n{out}");
    assert!(
        out.lines().any(|l| l.trim() == "1"),
        "the programmed frontend did not survive the reboot:\n{out}"
    );
    assert!(
        out.contains("DNS=192.168.0.53") && !out.contains("DNS=192.168.0.1"),
        "DNS not changed:\n{out}"
    );
    clock.log("ok: day2: the programmed frontend survived reboot and re-apply; DNS changed to 192.168.0.53");
    check_vip(lab, DEFAULT_VIP, Segment::Workload, clients, clock);
    program_vip(&mut vm, "lab_day2", DAY2_VIP, clock);
    check_vip(lab, DAY2_VIP, Segment::Workload, clients, clock);
    check_not_answered(lab, DEFAULT_OUTSIDE, &CLIENT_REMOTE, clock);
    power_off(&mut vm, "day2", clock);
    let day2_disk = vm.overlay.clone();
    drop(vm);

    // An invalid change: host bits in a range.
    let topo = default_topology(&format!("{DEFAULT_RANGE},192.168.10.70/26"), "192.168.0.53");
    let mut vm = boot(
        lab,
        dir,
        (&day2_disk, "qcow2"),
        "day2-invalid",
        &topo,
        FAILED,
        clock,
    );
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
    check_vip(lab, DEFAULT_VIP, Segment::Workload, clients, clock);
    check_vip(lab, DAY2_VIP, Segment::Workload, clients, clock);
    clock.log("ok: day2-invalid: the last good configuration keeps serving both ranges");
    power_off(&mut vm, "day2-invalid", clock);
}
