//! Real systemd: `systemd-analyze verify` accepts the unit files, and systemd-networkd, run in
//! a private network + mount namespace with veth links named like the appliance's NICs, reads
//! the generated files and installs the addresses, the policy routing (tables 2 and 3, rules
//! `from <address>`, `to <additional network>`, `from <LB range>`) and the AnyIP `local`
//! routes on `lo`.
#![allow(clippy::unwrap_used)]

mod apply_support;

use std::path::Path;
use std::process::Command;

use apply_support::*;

const UNITS: &[&str] = &["haproxy-firstboot.service", "dataplaneapi.service"];

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    if !have("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    // ExecStart must name an existing executable: point it at a stub in the scratch dir.
    let stub = dir.path().join("stub");
    std::fs::write(&stub, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut paths = Vec::new();
    for unit in UNITS {
        let text = std::fs::read_to_string(src.join(unit)).unwrap();
        assert!(text.contains("ExecStart=/usr/local/bin/"), "{unit}");
        let text = text
            .replace("/usr/local/bin/haproxy-firstboot", stub.to_str().unwrap())
            .replace("/usr/local/bin/dataplaneapi", stub.to_str().unwrap());
        let p = dir.path().join(unit);
        std::fs::write(&p, text).unwrap();
        paths.push(p);
    }
    let o = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "systemd-analyze verify: {}",
        text(&o)
    );
    // The unit apply writes is the one the image installs.
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let a = apply(&root, &default_props(), "default", &[]);
    assert!(a.status.success(), "{}", text(&a));
    assert_eq!(
        std::fs::read(root.join("etc/systemd/system/dataplaneapi.service")).unwrap(),
        std::fs::read(src.join("dataplaneapi.service")).unwrap()
    );
}

/// The unit starts the Data Plane API on the file apply writes, and its sandbox keeps what the
/// API needs: /etc/haproxy writable (haproxy.cfg is renamed into place), its state directory,
/// and no MemoryDenyWriteExecute (inherited by `haproxy -c`, it breaks PCRE2's JIT and so every
/// configuration with a regex).
#[test]
fn dataplaneapi_unit_reads_the_rendered_yaml() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/dataplaneapi.service"),
    )
    .unwrap();
    let lines: Vec<&str> = unit.lines().collect();
    for want in [
        "ExecStart=/usr/local/bin/dataplaneapi -f /etc/haproxy/dataplaneapi.yaml",
        "After=network-online.target haproxy.service haproxy-firstboot.service",
        "Restart=on-failure",
        "StateDirectory=dataplaneapi",
        "ProtectSystem=strict",
        "ReadWritePaths=/etc/haproxy",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
    ] {
        assert!(lines.contains(&want), "missing {want:?}");
    }
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("MemoryDenyWriteExecute=")),
        "{unit}"
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let a = apply(&root, &default_props(), "default", &[]);
    assert!(a.status.success(), "{}", text(&a));
    let yaml = std::fs::read_to_string(root.join("etc/haproxy/dataplaneapi.yaml")).unwrap();
    assert!(yaml.starts_with("# "), "{yaml}");
    assert!(yaml.contains("\nconfig_version: 2\n"), "{yaml}");
}

/// The image ships `firstboot/systemd/network/*.link` (so udev — and the initramfs — name the
/// NICs from the first boot on); apply renders the same files, so it never changes them.
#[test]
fn shipped_link_files_are_the_rendered_ones() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let a = apply(&root, &default_props(), "default", &[]);
    assert!(a.status.success(), "{}", text(&a));
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/network");
    for nic in ["management", "workload", "frontend"] {
        let name = format!("10-{nic}.link");
        assert_eq!(
            std::fs::read_to_string(shipped.join(&name)).unwrap(),
            std::fs::read_to_string(root.join("etc/systemd/network").join(&name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn unit_ordering() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/haproxy-firstboot.service"),
    )
    .unwrap();
    for want in [
        "Type=oneshot",
        "After=local-fs.target systemd-udevd.service",
        "Before=network-pre.target systemd-networkd.service haproxy.service dataplaneapi.service ssh.service",
        "Before=nftables.service",
        "Before=keepalived.service",
        "Wants=network-pre.target",
        "StandardOutput=journal+console",
        "ExecStart=/usr/local/bin/haproxy-firstboot apply",
    ] {
        assert!(text.contains(want), "missing {want:?}");
    }
}

/// Runs networkd in a new network and mount namespace. /sys is remounted read-only for the
/// namespace: that is how networkd (like in a container) knows there is no udev to wait for.
const SCRIPT: &str = r#"
set -eu
mount --make-rprivate /
mount -t sysfs -o ro sysfs /sys
mkdir -p /run/systemd /etc/systemd/network
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/netif
chown systemd-network:systemd-network /run/systemd/netif 2>/dev/null || true
mount --bind "$NETDIR" /etc/systemd/network
ip link set lo up
for n in management workload frontend; do
  ip link add "$n" type veth peer name "$n-p"
  ip link set "$n-p" up
done
/lib/systemd/systemd-networkd >"$LOG" 2>&1 &
pid=$!
i=0
while [ $i -lt 150 ]; do
  if ip route show table local | grep -q "$WANT_LOCAL" && ip rule | grep -q "lookup $WAIT_TABLE" \
     && ip route show table "$WAIT_TABLE" | grep -q default && ip route show table 2 | grep -q default; then
    break
  fi
  sleep 0.1; i=$((i+1))
done
echo "=== addr"; ip -4 -br addr
echo "=== rule"; ip rule
echo "=== route"; ip -4 route show table all
echo "$PROBES" | tr ';' '\n' | while read -r probe; do echo "=== get $probe"; ip route get $probe; done
kill $pid
"#;

/// Applies `props` into a scratch root and runs networkd on its files in a namespace;
/// returns the namespace's addresses, rules and routes, and the kernel's answer to
/// `ip route get PROBE` for each probe (`None` when skipped).
fn networkd_state(
    props: &[(String, String)],
    deployment: &str,
    want_local: &str,
    probes: &[&str],
    wait_table: &str,
) -> Option<String> {
    let networkd = Path::new("/lib/systemd/systemd-networkd");
    if !have("unshare") || !have("ip") {
        return None;
    }
    if !have(&networkd.to_string_lossy()) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let a = apply(&root, props, deployment, &[]);
    assert!(a.status.success(), "{}", text(&a));
    let o = Command::new("unshare")
        .args(["-m", "-n", "sh", "-c", SCRIPT])
        .env("NETDIR", root.join("etc/systemd/network"))
        .env("LOG", dir.path().join("networkd.log"))
        .env("WANT_LOCAL", want_local)
        .env("PROBES", probes.join(";"))
        .env("WAIT_TABLE", wait_table)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let log = std::fs::read_to_string(dir.path().join("networkd.log")).unwrap_or_default();
    assert!(o.status.success(), "{}\nnetworkd log:\n{log}", text(&o));
    Some(format!("{out}\n=== networkd log\n{log}"))
}

fn assert_has(state: &str, wants: &[&str]) {
    let out = state.split("\n=== networkd log\n").next().unwrap_or("");
    for want in wants {
        assert!(out.contains(want), "missing {want:?} in:\n{state}");
    }
    let main_defaults = out
        .lines()
        .filter(|l| l.starts_with("default ") && !l.contains(" table "))
        .count();
    assert_eq!(
        main_defaults, 1,
        "one default route in main expected:\n{state}"
    );
}

#[test]
fn networkd_reads_the_generated_files_frontend() {
    let props = with(
        frontend_props(),
        &[(
            "network.additional_workload_networks",
            Some("10.20.0.0/16, 10.30.0.0/24"),
        )],
    );
    let Some(state) = networkd_state(
        &props,
        "frontend",
        "192.168.100.64/26",
        &[
            "192.168.100.77",
            // Replies from a VIP to clients on an additional workload network and on the
            // workload network: through the VIP's own NIC (frontend), never the workload NIC,
            // or a router with strict reverse-path filtering drops them.
            "10.20.0.5 from 192.168.100.77",
            "192.168.10.50 from 192.168.100.77",
            // The workload NIC's own traffic to those networks stays on the workload NIC.
            "10.20.0.5 from 192.168.10.2",
        ],
        "3",
    ) else {
        return;
    };
    assert_has(
        &state,
        &[
            // addresses
            "management@management-p UP             192.168.0.2/24",
            "workload@workload-p UP             192.168.10.2/24",
            "frontend@frontend-p UP             192.168.100.2/24",
            // policy rules
            "100:\tfrom 192.168.10.2 lookup 2",
            "100:\tfrom 192.168.100.2 lookup 3",
            "150:\tfrom 192.168.100.64/26 lookup 3",
            "200:\tfrom all to 10.20.0.0/16 lookup 2",
            "200:\tfrom all to 10.30.0.0/24 lookup 2",
            // tables
            "default via 192.168.10.1 dev workload table 2",
            "192.168.10.0/24 dev workload table 2",
            "default via 192.168.100.1 dev frontend table 3",
            "192.168.100.0/24 dev frontend table 3",
            // main: the management gateway is the only default route
            "default via 192.168.0.1 dev management proto static",
            // AnyIP
            "local 192.168.100.64/26 dev lo table local",
            "local 192.168.100.77 dev lo table local",
            "10.20.0.5 from 192.168.100.77 via 192.168.100.1 dev frontend table 3",
            "192.168.10.50 from 192.168.100.77 via 192.168.100.1 dev frontend table 3",
            "10.20.0.5 from 192.168.10.2 via 192.168.10.1 dev workload table 2",
        ],
    );
}

#[test]
fn networkd_reads_the_generated_files_default() {
    let Some(state) = networkd_state(
        &default_props(),
        "default",
        "192.168.10.128/27",
        &[
            "192.168.10.140",
            "10.20.0.5 from 192.168.10.140",
            "172.16.5.5 from 192.168.10.140",
        ],
        "2",
    ) else {
        return;
    };
    assert_has(
        &state,
        &[
            "management@management-p UP             192.168.0.2/24",
            "workload@workload-p UP             192.168.10.2/24",
            "100:\tfrom 192.168.10.2 lookup 2",
            "150:\tfrom 192.168.10.64/26 lookup 2",
            "150:\tfrom 192.168.10.128/27 lookup 2",
            "200:\tfrom all to 10.20.0.0/16 lookup 2",
            "default via 192.168.10.1 dev workload table 2",
            "default via 192.168.0.1 dev management proto static",
            "local 192.168.10.64/26 dev lo table local",
            "local 192.168.10.128/27 dev lo table local",
            "local 192.168.10.140 dev lo table local",
            // Replies from a VIP leave by the workload NIC, to any client.
            "10.20.0.5 from 192.168.10.140 via 192.168.10.1 dev workload table 2",
            "172.16.5.5 from 192.168.10.140 via 192.168.10.1 dev workload table 2",
        ],
    );
    assert!(!state.contains("lookup 3"), "{state}");
}
