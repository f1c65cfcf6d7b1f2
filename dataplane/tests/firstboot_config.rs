//! The configuration haproxy-firstboot renders (its golden files) is one this server reads, with
//! the appliance's paths, TLS on the management IP, and reloads confirmed by haproxy's master.

#![cfg(feature = "server")]

use dataplane::settings::{ReloadMethod, Settings};

#[test]
fn the_file_firstboot_renders_is_read_as_meant() {
    let golden = testkit::workspace().join("firstboot/tests/golden");
    let cases = [
        ("env-default-static", "192.168.0.2:5556"),
        ("env-dhcp", "0.0.0.0:5556"),
    ];
    for (case, listen) in cases {
        let path = golden.join(case).join("root/etc/haproxy/dataplaneapi.yaml");
        let s = Settings::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.listen.to_string(), listen, "{case}");
        assert_eq!(s.tls_certificate.to_str(), Some("/etc/haproxy/server.crt"));
        assert_eq!(s.tls_key.to_str(), Some("/etc/haproxy/server.key"));
        assert_eq!(s.config_file.to_str(), Some("/etc/haproxy/haproxy.cfg"));
        assert_eq!(s.userlist, "controller");
        assert!(
            matches!(s.reload.method, ReloadMethod::Command(ref c) if c == "systemctl reload haproxy")
        );
        assert_eq!(
            s.reload.master_socket.as_deref().and_then(|p| p.to_str()),
            Some("/run/haproxy-master.sock")
        );
    }
}

/// The `ha:` section first boot renders for a pair is the one this server reads
/// (docs/ha-pair.md).
#[test]
fn the_ha_section_firstboot_renders_is_read_as_meant() {
    let golden = testkit::workspace().join("firstboot/tests/golden");
    let cases = [
        ("env-ha-primary", 51, "workload", "192.168.10.64/26"),
        (
            "env-ha-frontend-secondary",
            7,
            "frontend",
            "192.168.100.64/26",
        ),
    ];
    for (case, router_id, interface, first_range) in cases {
        let path = golden.join(case).join("root/etc/haproxy/dataplaneapi.yaml");
        let s = Settings::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.listen.to_string(), "0.0.0.0:5556", "{case}");
        let ha = s.ha.unwrap_or_else(|| panic!("{case}: no ha section read"));
        assert_eq!(ha.node_address.to_string(), "192.168.0.2", "{case}");
        assert_eq!(ha.peer_address.to_string(), "192.168.0.3", "{case}");
        assert_eq!(ha.peer_port, 5556, "{case}");
        assert_eq!(ha.management_vip.to_string(), "192.168.0.10", "{case}");
        assert_eq!(ha.secret_file.to_str(), Some("/etc/haproxy/ha-peer.secret"));
        assert_eq!(ha.ca_file.to_str(), Some("/etc/haproxy/ca.crt"));
        assert_eq!(ha.router_id, router_id, "{case}");
        assert_eq!(ha.vip_interface, interface, "{case}");
        assert_eq!(
            ha.service_ranges
                .first()
                .map(ToString::to_string)
                .as_deref(),
            Some(first_range),
            "{case}"
        );
        assert_eq!(
            ha.split_brain_dir.to_str(),
            Some("/var/lib/dataplaneapi/split-brain"),
            "{case}"
        );
    }
}
