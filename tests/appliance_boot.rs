//! End-to-end: the appliance as `ova-builder appliance` builds it (the build this test run
//! shares with the lab and the HA pair, tests/appliance.rs: made by the first of them, reused
//! by the others), booted in QEMU with VMware-like hardware and an OVF environment on a CD-ROM, and check from the
//! host what `haproxy-firstboot` did; then boot a fresh copy with an invalid environment.
//!
//! Needs root and the tools of scripts/deps/appliance*.apt (CI has both). Without them it fails
//! when `CI` is set and is skipped with a notice otherwise. It runs the binaries `cargo build
//! --workspace --bins` made (it never runs cargo itself). The appliance's Data Plane API (the
//! default build's haproxy-dataplaneapi, or the binary `APPLIANCE_DATAPLANEAPI=PATH` names) is
//! used through the forwarded management port as the Supervisor uses it (boot_dataplane.rs):
//! TLS and auth, a service whose two servers QEMU serves on the workload network, reload,
//! stale version, deletion.
//! `APPLIANCE_NO_OVA=1` builds and boots the raw disk only, instead of the OVA's VMDK;
//! `APPLIANCE_TEST_DIR=DIR` keeps the test's files (disks, consoles, environments) in DIR
//! (development; ova-builder's build cache makes a rebuild of changed inputs fast).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "qemu.rs"]
mod qemu;

#[path = "boot_dataplane.rs"]
mod boot_dataplane;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::appliance::Built;
use e2e::rootfs::RootFs;
use e2e::{Clock, env_iso, make_ca, ovf_env, prerequisites, target_bin};
use qemu::{Firmware, GuestService, Nic, Vm, VmSpec};
use testkit::netns::Netns;
use testkit::{run, workspace};

const MGMT_IP: &str = "192.168.0.2";
const MGMT_NET: &str = "192.168.0.0/24";
const MGMT_GW: &str = "192.168.0.1";
const WORKLOAD_IP: &str = "192.168.10.2";
const WORKLOAD_NET: &str = "192.168.10.0/24";
const WORKLOAD_GW: &str = "192.168.10.1";
const LB_RANGE: &str = "192.168.10.128/25";
/// A virtual IP in LB_RANGE, on the workload segment (QEMU forwards to it there).
const VIP: &str = "192.168.10.130";
/// The port of the haproxy frontend the test binds on VIP at run time, as the Data Plane API
/// would: the firewall must let it through without knowing it.
const VIP_PORT: u16 = 8443;
const DATAPLANE_PORT: u16 = 5556;
const API_USER: &str = "lbadmin";
/// The servers of the service the test creates through the Data Plane API: (name, address,
/// port) on the workload network, where QEMU itself answers each connection with the server's
/// name (the guest's networks reach nothing else).
const BACKENDS: [(&str, &str, u16); 2] = [
    ("backend-one", "192.168.10.11", 8080),
    ("backend-two", "192.168.10.12", 8080),
];
const ROOT_PWD: &str = "Boot-test-pw1";
/// Console markers of haproxy-firstboot (firstboot/src/apply_cmd.rs).
const APPLIED: &str = "haproxy-firstboot: applied configuration";
const FAILED: &str = "haproxy-firstboot: FAILED";

/// One line on stderr, bypassing the test harness's output capture.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn flatten(vm: &Vm, dir: &Path, name: &str) -> RootFs {
    let raw = dir.join(format!("{name}-after.raw"));
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&vm.overlay)
        .arg(&raw));
    RootFs::of(&raw)
}

fn valid_props(ca: &(String, String)) -> Vec<(&'static str, String)> {
    vec![
        ("appliance.root_pwd", ROOT_PWD.into()),
        ("appliance.permit_root_login", "True".into()),
        ("appliance.ca_cert", ca.0.clone()),
        ("appliance.ca_cert_key", ca.1.clone()),
        ("network.hostname", "lb-boottest.example.com".into()),
        ("network.nameservers", "192.168.0.1".into()),
        ("network.management_ip", format!("{MGMT_IP}/24")),
        ("network.management_gateway", MGMT_GW.into()),
        ("network.workload_ip", format!("{WORKLOAD_IP}/24")),
        ("network.workload_gateway", WORKLOAD_GW.into()),
        ("network.additional_workload_networks", "".into()),
        ("loadbalance.service_ip_range", LB_RANGE.into()),
        ("loadbalance.dataplane_port", DATAPLANE_PORT.to_string()),
        ("loadbalance.haproxy_user", API_USER.into()),
        ("loadbalance.haproxy_pwd", "Api-pass-42".into()),
    ]
}

/// Host-port forwards per NIC: (management, workload).
type Forwards = Vec<(u16, String, u16)>;

/// The backends of [`BACKENDS`] as services of the workload network: each connection gets the
/// server's name, then the end of the stream.
fn backend_services() -> Vec<GuestService> {
    BACKENDS
        .iter()
        .map(|(name, ip, port)| GuestService {
            ip,
            port: *port,
            command: format!("/usr/bin/printf {name}"),
        })
        .collect()
}

fn nics(management: Forwards, workload: Forwards, services: Vec<GuestService>) -> Vec<Nic> {
    vec![
        // management: vSphere PCI slot 160 → 0000:03:00.0
        Nic {
            bus: 0x03,
            mac: "00:50:56:aa:00:01",
            net: MGMT_NET,
            host: MGMT_GW,
            forwards: management,
            guest_services: vec![],
        },
        // workload: slot 192 → 0000:0b:00.0
        Nic {
            bus: 0x0b,
            mac: "00:50:56:aa:00:02",
            net: WORKLOAD_NET,
            host: WORKLOAD_GW,
            forwards: workload,
            guest_services: services,
        },
    ]
}

/// ssh-keyscan through the forwarded port in `ns` until it answers (or `limit`).
fn scan_host_key(ns: &Netns, port: u16, limit: Duration) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        let out = ns
            .command("ssh-keyscan")
            .args([
                "-T",
                "5",
                "-t",
                "ed25519",
                "-p",
                &port.to_string(),
                "127.0.0.1",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(line) = text.lines().find(|l| l.contains("ssh-ed25519")) {
            return line.split_whitespace().nth(2).map(str::to_owned);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    None
}

/// What a client in `ns` gets through the forward at `port` (on the namespace's loopback)
/// within `limit` after sending `request`: the bytes read until EOF, reset or the limit (QEMU
/// accepts the connection at once and closes it when the guest refuses; a dropped SYN gives
/// nothing).
fn exchange(ns: &Netns, port: u16, request: &[u8], limit: Duration) -> String {
    ns.enter(|| exchange_here(port, request, limit))
}

fn exchange_here(port: u16, request: &[u8], limit: Duration) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(limit));
    let _ = stream.write_all(request);
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let start = Instant::now();
    while start.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// sshd must not answer through the workload-segment forwards (workload address and a VIP):
/// the management services answer on the management NIC only.
fn assert_no_sshd(ns: &Netns, forwards: &[(u16, &str)], clock: &Clock) {
    for (port, target) in forwards {
        let got = exchange(ns, *port, b"", Duration::from_secs(10));
        assert!(
            !got.contains("SSH-"),
            "sshd answers on {target}:22 through the workload NIC: {got:?}"
        );
        clock.log(format!(
            "ok: no sshd on {target}:22 through the workload NIC (got {} bytes)",
            got.len()
        ));
    }
}

fn openssl_check(dir: &Path, ca: &str, crt: &str, key: &str, clock: &Clock) {
    let ca_path = dir.join("check-ca.pem");
    let crt_path = dir.join("check-server.crt");
    let key_path = dir.join("check-server.key");
    std::fs::write(&ca_path, ca).unwrap();
    std::fs::write(&crt_path, crt).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let verify = run(Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&ca_path)
        .arg(&crt_path));
    assert!(verify.contains(": OK"), "{verify}");
    let text = run(Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&crt_path));
    assert!(
        text.contains(&format!("IP Address:{MGMT_IP}")),
        "server.crt SANs lack the management IP: {text}"
    );
    let cert_pub = run(Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(&crt_path));
    let key_pub = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key_path));
    assert_eq!(cert_pub, key_pub, "server.key does not match server.crt");
    clock.log(format!(
        "ok: server.crt chains to the supplied CA (openssl verify), SAN has {MGMT_IP}, key matches"
    ));
}

#[test]
fn appliance_builds_and_boots() {
    let tools = [
        qemu::OVMF_CODE,
        "mmdebstrap",
        "mkfs.ext4",
        "mkfs.vfat",
        "mcopy",
        "syslinux",
        "sfdisk",
        "qemu-system-x86_64",
        "qemu-img",
        "genisoimage",
        "debugfs",
        "ssh-keyscan",
        "openssl",
        "curl",
    ];
    if !prerequisites(&tools) {
        return;
    }
    let clock = Clock::new("appliance-boot");
    // APPLIANCE_TEST_DIR=DIR (development): work in DIR (disks, consoles, environments) and
    // keep it.
    let keep = std::env::var_os("APPLIANCE_TEST_DIR").map(PathBuf::from);
    let tmp = tempfile::Builder::new()
        .prefix("appliance-boot-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let dir = keep.as_deref().unwrap_or(tmp.path());
    std::fs::create_dir_all(dir).unwrap();

    // The appliance build every boot test of this run shares (tests/appliance.rs).
    let built = e2e::appliance::shared_build(&clock);
    let (base, base_format) = deployable_disk(&built, dir, &clock);
    check_pristine_image(&built.raw, &clock);
    let ca = make_ca(dir, "/CN=Boot Test CA");
    // QEMU and every client of the guest run in a namespace of their own: the forwards
    // listen on its loopback, and the guest's user-mode networks (restrict=on) reach nothing.
    let netns = Netns::create("boot", "qemu");
    let disk = BootDisk {
        dir,
        base: &base,
        format: base_format,
        netns: &netns,
    };
    boot_with_a_valid_environment(&disk, &ca, built.has_dataplaneapi, &clock);
    boot_with_an_invalid_environment(&disk, &ca, &clock);
    clock.log("all appliance boot checks passed");
}

/// The disk every boot starts from (never written: each boot has its own overlay), and the
/// network namespace QEMU and the test's clients run in.
struct BootDisk<'a> {
    dir: &'a Path,
    base: &'a Path,
    format: &'static str,
    netns: &'a Netns,
}

/// The OVA, when built: verify it, import it into vcsim, and boot its VMDK (the artifact users
/// deploy); otherwise the raw disk.
fn deployable_disk(built: &Built, dir: &Path, clock: &Clock) -> (PathBuf, &'static str) {
    let (ova_builder, raw) = (&built.ova_builder, &built.raw);
    match &built.ova {
        Some(ova) => {
            run(Command::new(ova_builder).arg("verify").arg(ova));
            clock.log(format!("ok: ova-builder verify accepts {}", ova.display()));
            // The appliance OVA through govc into vcsim, both deployment options (4 GiB disk).
            let firstboot = target_bin("haproxy-firstboot");
            if e2e::vcsim::import_and_check(ova, ova_builder, &firstboot, 4 << 20).is_some() {
                clock.log("ok: govc imports the appliance OVA into vcsim for both deployment options with every property");
            }
            let list = run(Command::new("tar").arg("-tf").arg(ova));
            let vmdk = list
                .lines()
                .find(|l| l.ends_with(".vmdk"))
                .expect("a VMDK in the OVA")
                .to_owned();
            testkit::untar(ova, dir, &[&vmdk]);
            (dir.join(vmdk), "vmdk")
        }
        None => (raw.clone(), "raw"),
    }
}

/// The pristine image: no per-deployment identity inside.
fn check_pristine_image(raw: &Path, clock: &Clock) {
    let pristine = RootFs::of(raw);
    let ssh_files = pristine.ls("/etc/ssh");
    assert!(
        !ssh_files.iter().any(|f| f.starts_with("ssh_host_")),
        "the image ships SSH host keys: {ssh_files:?}"
    );
    assert_eq!(
        pristine.read("/etc/machine-id").as_deref(),
        Some(""),
        "machine-id must be empty"
    );
    assert!(
        pristine.read("/usr/local/bin/haproxy-firstboot").is_some(),
        "haproxy-firstboot not installed"
    );
    let wants = pristine.ls("/etc/systemd/system/multi-user.target.wants");
    assert!(
        wants.iter().any(|w| w == "haproxy-firstboot.service"),
        "haproxy-firstboot.service not enabled: {wants:?}"
    );
    clock.log("ok: image has no SSH host keys, an empty machine-id, haproxy-firstboot installed and enabled");
}

/// Boot 1 (SeaBIOS, syslinux): a valid environment is applied, sshd answers on the
/// management IP only, haproxy runs the generated configuration, and the disk holds what
/// first boot wrote.
fn boot_with_a_valid_environment(
    disk: &BootDisk<'_>,
    ca: &(String, String),
    has_dataplaneapi: bool,
    clock: &Clock,
) {
    let dir = disk.dir;
    let iso = env_iso(dir, "valid", &ovf_env(&valid_props(ca)));
    // Forwards on the loopback of the test's own namespace: nothing else listens there.
    let (ssh_port, api_port) = (10022, 15556);
    let mut forwards = vec![(ssh_port, MGMT_IP.to_owned(), 22)];
    if has_dataplaneapi {
        forwards.push((api_port, MGMT_IP.to_owned(), DATAPLANE_PORT));
    }
    let (workload_ssh_port, vip_ssh_port, vip_port) = (11022, 12022, 18443);
    let workload_forwards = vec![
        (workload_ssh_port, WORKLOAD_IP.to_owned(), 22),
        (vip_ssh_port, VIP.to_owned(), 22),
        (vip_port, VIP.to_owned(), VIP_PORT),
    ];
    let spec = VmSpec {
        firmware: Firmware::Bios,
        dir,
        base: disk.base,
        base_format: disk.format,
        env_iso: Some(&iso),
        nics: nics(forwards, workload_forwards, backend_services()),
        memory_mib: 1024,
    };
    let mut vm = Vm::start(&spec, "valid", disk.netns.name(), &[]);
    vm.wait_for(&["Linux version"], Duration::from_secs(180), "kernel start");
    clock.log(format!(
        "ok: kernel started ({:.1} s after QEMU)",
        vm.started.elapsed().as_secs_f64()
    ));
    vm.wait_for(&[APPLIED, FAILED], Duration::from_secs(300), "first boot");
    let console = vm.console();
    assert!(
        !console.contains(FAILED),
        "haproxy-firstboot failed on a valid environment:\n{console}"
    );
    clock.log(format!(
        "ok: console shows {APPLIED:?} ({:.1} s after QEMU)",
        vm.started.elapsed().as_secs_f64()
    ));

    // sshd on the static management IP (the forward targets it; a DHCP lease would be 10.0.2.15)
    let scanned = scan_host_key(disk.netns, ssh_port, Duration::from_secs(120))
        .expect("sshd answered on the management IP");
    clock.log(format!(
        "ok: sshd answers on {MGMT_IP}:22 (static management IP applied), host key {}…",
        &scanned[..16]
    ));
    // sshd is up now: it must still not answer on the workload segment.
    assert_no_sshd(
        disk.netns,
        &[(workload_ssh_port, WORKLOAD_IP), (vip_ssh_port, VIP)],
        clock,
    );

    if has_dataplaneapi {
        check_dataplaneapi_tls(disk.netns, api_port, &dir.join("ca.crt"), clock);
    }
    check_inside_the_guest(&mut vm, clock);
    if has_dataplaneapi {
        let (ports, props) = ((api_port, vip_port), valid_props(ca));
        check_dataplaneapi_service(&mut vm, disk, &props, ports, clock);
    }
    firewall_checks(&mut vm, disk.netns, vip_port, workload_ssh_port, clock);
    let clean = vm.power_off(Duration::from_secs(90));
    clock.log(format!(
        "powered off ({}) at {:.1} s",
        if clean { "ACPI" } else { "killed" },
        vm.started.elapsed().as_secs_f64()
    ));
    assert!(
        clean,
        "the guest did not power off within 90 s of system_powerdown"
    );

    check_disk_after_first_boot(&vm, dir, ca, &scanned, clock);
    drop(vm);
}

/// The Data Plane API's TLS certificate chains to the supplied CA (openssl s_client).
fn check_dataplaneapi_tls(ns: &Netns, api_port: u16, ca_file: &Path, clock: &Clock) {
    let start = Instant::now();
    loop {
        let out = ns
            .command("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{api_port}"),
                "-verify_return_error",
                "-CAfile",
            ])
            .arg(ca_file)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && text.contains("Verify return code: 0 (ok)") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "Data Plane API TLS check failed:\n{text}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    clock.log("ok: the Data Plane API's TLS certificate chains to the supplied CA");
}

/// The value of property `key` in `props`.
fn prop<'a>(props: &'a [(&str, String)], key: &str) -> &'a str {
    props
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no property {key}"))
}

/// The appliance's own Data Plane API, through the management forward `ports.0` with the
/// deployment's CA and credentials (`props`): auth, a service on VIP:VIP_PORT with the servers
/// of [`BACKENDS`] answering through the VIP forward `ports.1`, a stale write refused, the
/// service deleted. On failure the guest's journal of the API and haproxy is shown first.
fn check_dataplaneapi_service(
    vm: &mut Vm,
    disk: &BootDisk<'_>,
    props: &[(&str, String)],
    (api_port, vip_port): (u16, u16),
    clock: &Clock,
) {
    let api = boot_dataplane::Api::new(
        disk.netns,
        disk.dir,
        &disk.dir.join("ca.crt"),
        (MGMT_IP, DATAPLANE_PORT),
        api_port,
        prop(props, "loadbalance.haproxy_user"),
        prop(props, "loadbalance.haproxy_pwd"),
    );
    let service = boot_dataplane::Service {
        name: "boot-svc",
        vip: VIP,
        vip_port: VIP_PORT,
        servers: &BACKENDS,
    };
    let probe = || exchange(disk.netns, vip_port, b"", Duration::from_secs(10));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        boot_dataplane::serve_a_service(&api, &service, &probe, clock);
    }));
    if let Err(panic) = outcome {
        let (journal, _) = vm.shell(
            "journalctl --no-pager -o short-monotonic -u dataplaneapi -u haproxy | tail -n 60; \
             systemctl --no-pager status dataplaneapi haproxy | cat",
            Duration::from_secs(60),
        );
        say(&format!(
            "the guest's journal of dataplaneapi and haproxy:\n{journal}"
        ));
        std::panic::resume_unwind(panic);
    }
}

/// Log in on the serial console with the root password from the environment, and look at
/// haproxy and the addresses from inside.
fn check_inside_the_guest(vm: &mut Vm, clock: &Clock) {
    vm.login("root", ROOT_PWD, Duration::from_secs(180));
    clock.log(format!(
        "ok: root console login with appliance.root_pwd ({:.1} s after QEMU)",
        vm.started.elapsed().as_secs_f64()
    ));
    let (out, status) = vm.shell(
        "systemctl is-active haproxy.service; haproxy -c -f /etc/haproxy/haproxy.cfg; \
         grep -c '^userlist controller' /etc/haproxy/haproxy.cfg; ip -br -4 addr show dev management; \
         ip route show table local type local dev lo",
        Duration::from_secs(60),
    );
    assert_eq!(status, 0, "checks inside the guest failed:\n{out}");
    assert!(
        out.lines().any(|l| l.trim() == "active"),
        "haproxy.service is not active:\n{out}"
    );
    assert!(
        out.contains("Configuration file is valid"),
        "haproxy -c:\n{out}"
    );
    assert!(
        out.contains(&format!("{MGMT_IP}/24")),
        "management address:\n{out}"
    );
    assert!(
        out.contains(LB_RANGE),
        "no AnyIP local route for {LB_RANGE}:\n{out}"
    );
    clock.log(format!(
        "ok: haproxy.service active with the generated config (haproxy -c valid, userlist \
         controller), management NIC {MGMT_IP}/24, AnyIP route {LB_RANGE} ({:.1} s after QEMU)",
        vm.started.elapsed().as_secs_f64()
    ));
}

/// What the first boot left on the disk (read without mounting): the host key sshd showed,
/// the generated haproxy.cfg, the supplied CA and a server certificate that chains to it.
fn check_disk_after_first_boot(
    vm: &Vm,
    dir: &Path,
    ca: &(String, String),
    scanned: &str,
    clock: &Clock,
) {
    let after = flatten(vm, dir, "valid");
    let pubkey = after
        .read("/etc/ssh/ssh_host_ed25519_key.pub")
        .expect("a host key on the disk after boot");
    assert!(
        pubkey.contains(scanned),
        "sshd's key is not the one on the disk: {pubkey}"
    );
    clock.log("ok: sshd's host key was generated in this boot (absent from the image, present on the disk now)");
    let haproxy_cfg = after.read("/etc/haproxy/haproxy.cfg").expect("haproxy.cfg");
    assert!(
        haproxy_cfg.contains("userlist controller"),
        "haproxy.cfg is not the generated one:\n{haproxy_cfg}"
    );
    assert!(
        haproxy_cfg.contains(&format!("user {API_USER} password $6$")),
        "no SHA-512 crypt API user:\n{haproxy_cfg}"
    );
    clock.log("ok: /etc/haproxy/haproxy.cfg is the generated one (userlist controller, SHA-512 crypt user)");
    let ca_on_disk = after
        .read("/etc/haproxy/ca.crt")
        .expect("/etc/haproxy/ca.crt");
    assert_eq!(
        ca_on_disk.trim(),
        ca.0.trim(),
        "/etc/haproxy/ca.crt is not the supplied CA"
    );
    let crt = after
        .read("/etc/haproxy/server.crt")
        .expect("/etc/haproxy/server.crt");
    let key = after
        .read("/etc/haproxy/server.key")
        .expect("/etc/haproxy/server.key");
    openssl_check(dir, &ca.0, &crt, &key, clock);
    let _ = std::fs::remove_file(&after.image);
}

/// Boot 2: an invalid environment on a fresh overlay, booted with UEFI firmware this time
/// (systemd-boot on the ESP; boot 1 used SeaBIOS and syslinux): FAILED naming the keys, and
/// nothing applied.
fn boot_with_an_invalid_environment(disk: &BootDisk<'_>, ca: &(String, String), clock: &Clock) {
    let dir = disk.dir;
    let mut bad = valid_props(ca);
    for (k, v) in bad.iter_mut() {
        match *k {
            "network.management_ip" => *v = "192.168.0.300/24".into(),
            "loadbalance.dataplane_port" => *v = "22".into(),
            _ => {}
        }
    }
    let iso = env_iso(dir, "invalid", &ovf_env(&bad));
    let spec = VmSpec {
        firmware: Firmware::Uefi,
        dir,
        base: disk.base,
        base_format: disk.format,
        env_iso: Some(&iso),
        nics: nics(vec![], vec![], vec![]),
        memory_mib: 1024,
    };
    let mut vm = Vm::start(&spec, "invalid", disk.netns.name(), &[]);
    // The kernel logs its EFI line after "Linux version" and before the DMI line: wait for the
    // DMI line, or the check below races the console on a slow machine.
    vm.wait_for(&["DMI:"], Duration::from_secs(180), "kernel start (UEFI)");
    assert!(
        vm.console().contains("efi: EFI v"),
        "the kernel was not started by UEFI firmware"
    );
    clock.log(format!(
        "ok: UEFI boot (OVMF → systemd-boot): kernel started ({:.1} s after QEMU)",
        vm.started.elapsed().as_secs_f64()
    ));
    vm.wait_for(
        &[FAILED, APPLIED],
        Duration::from_secs(300),
        "first boot with an invalid environment",
    );
    vm.wait_for(&["login:"], Duration::from_secs(180), "login prompt");
    let console = vm.console();
    assert!(
        !console.contains(APPLIED),
        "an invalid environment was applied:\n{console}"
    );
    for key in ["network.management_ip", "loadbalance.dataplane_port"] {
        assert!(
            console.contains(key),
            "the console does not name {key}:\n{console}"
        );
    }
    clock.log(format!(
        "ok: invalid environment: console shows {FAILED:?} naming network.management_ip and \
         loadbalance.dataplane_port ({:.1} s after QEMU)",
        vm.started.elapsed().as_secs_f64()
    ));
    let clean = vm.power_off(Duration::from_secs(90));
    clock.log(format!(
        "powered off ({})",
        if clean { "ACPI" } else { "killed" }
    ));
    let after = flatten(&vm, dir, "invalid");
    let cfg = after.read("/etc/haproxy/haproxy.cfg").unwrap_or_default();
    assert!(
        !cfg.contains("userlist controller"),
        "haproxy.cfg was rewritten from an invalid environment"
    );
    assert!(
        after.read("/etc/haproxy/server.crt").is_none(),
        "TLS files were written from an invalid environment"
    );
    let networks = after.ls("/etc/systemd/network");
    let written: Vec<&String> = networks
        .iter()
        .filter(|n| n.ends_with(".network"))
        .collect();
    assert!(
        written.is_empty(),
        "network files were written from an invalid environment: {written:?}"
    );
    clock.log(
        "ok: invalid environment applied nothing (haproxy.cfg untouched, no TLS or network files)",
    );
}

/// nftables.service loaded haproxy-firstboot's rules, and a haproxy frontend bound on a VIP
/// after boot (as the Data Plane API binds them) is reachable through the workload NIC. Last,
/// without the rules sshd answers on the workload address: the probe of [`assert_no_sshd`]
/// sees exposure when there is some.
fn firewall_checks(vm: &mut Vm, ns: &Netns, vip_port: u16, workload_ssh_port: u16, clock: &Clock) {
    let console = vm.console();
    assert!(
        !console.contains("ordering cycle"),
        "systemd found an ordering cycle:\n{console}"
    );
    let (out, status) = vm.shell(
        "systemctl is-active nftables.service; nft list chain inet haproxy_appliance input",
        Duration::from_secs(60),
    );
    assert_eq!(status, 0, "nftables checks failed:\n{out}");
    let management_rule =
        format!("iifname \"management\" tcp dport {{ 22, {DATAPLANE_PORT} }} accept");
    assert!(
        out.lines().any(|l| l.trim() == "active") && out.contains(&management_rule),
        "nftables.service did not load the rendered rules:\n{out}"
    );
    clock.log("ok: nftables.service active with haproxy-firstboot's rules");
    // A second haproxy with one frontend on the VIP: the firewall does not list its port.
    let cfg = format!(
        "defaults\\n mode http\\n timeout connect 5s\\n timeout client 5s\\n timeout server 5s\\n\
         frontend vip_test\\n bind {VIP}:{VIP_PORT}\\n \
         http-request return status 200 content-type text/plain string vip-ok\\n"
    );
    let (out, status) = vm.shell(
        &format!("printf '{cfg}' > /run/vip-test.cfg && haproxy -D -f /run/vip-test.cfg"),
        Duration::from_secs(60),
    );
    assert_eq!(
        status, 0,
        "starting a haproxy frontend on {VIP}:{VIP_PORT}:\n{out}"
    );
    let start = Instant::now();
    loop {
        let got = exchange(
            ns,
            vip_port,
            b"GET / HTTP/1.0\r\n\r\n",
            Duration::from_secs(10),
        );
        if got.contains("vip-ok") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the haproxy frontend on {VIP}:{VIP_PORT} is unreachable through the workload NIC: {got:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    clock.log(format!(
        "ok: a haproxy frontend bound on {VIP}:{VIP_PORT} after boot answers through the workload NIC"
    ));
    let (out, status) = vm.shell("nft flush ruleset", Duration::from_secs(60));
    assert_eq!(status, 0, "nft flush ruleset:\n{out}");
    let got = exchange(ns, workload_ssh_port, b"", Duration::from_secs(10));
    assert!(
        got.contains("SSH-"),
        "without the firewall sshd should answer on {WORKLOAD_IP}:22: {got:?}"
    );
    clock.log(format!(
        "ok: control: with the rules flushed, sshd answers on {WORKLOAD_IP}:22 (the probe detects exposure)"
    ));
}

#[test]
fn packer_template_validates() {
    if !prerequisites(&["packer"]) {
        return;
    }
    // The template's file provisioners must exist: the firstboot binary from the build.
    let out = Command::new("packer")
        .current_dir(workspace())
        .args(["validate", "-var-file=packer/example.pkrvars.hcl"])
        .arg(format!(
            "-var=firstboot_binary={}",
            target_bin("haproxy-firstboot").display()
        ))
        .arg("packer/")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "packer validate failed:\n{text}");
    say("[packer] ok: packer validate passes for packer/haproxy.pkr.hcl");
}
