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
