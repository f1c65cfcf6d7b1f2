//! haproxy-firstboot and the Data Plane API share haproxy.cfg: first boot owns `global`,
//! `defaults` and `userlist controller`, the API everything it creates. Each keeps the other's
//! sections across its rewrites, a reboot with changed properties is a new configuration
//! version (transactions started before it are outdated), the API then answers to the new
//! password only, and an invalid environment changes nothing. Both real binaries, a real
//! `haproxy -c`, curl over TLS verified against the deployment's CA; loopback only.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{make_ca, ovf_env, target_bin};
use serde_json::{Value, json};

const MGMT_IP: &str = "192.168.0.2";
const CFG: &str = "/v2/services/haproxy/configuration";

fn props(ca: &(String, String), password: &str, dns: &str) -> Vec<(&'static str, String)> {
    vec![
        ("appliance.root_pwd", "Root-pass-1".into()),
        ("appliance.permit_root_login", "False".into()),
        ("appliance.ca_cert", ca.0.clone()),
        ("appliance.ca_cert_key", ca.1.clone()),
        ("network.hostname", "lb.example.com".into()),
        ("network.nameservers", dns.into()),
        ("network.management_ip", format!("{MGMT_IP}/24")),
        ("network.management_gateway", "192.168.0.1".into()),
        ("network.workload_ip", "192.168.10.2/24".into()),
        ("network.workload_gateway", "192.168.10.1".into()),
        ("network.additional_workload_networks", "".into()),
        ("loadbalance.service_ip_range", "192.168.10.64/26".into()),
        ("loadbalance.dataplane_port", "5556".into()),
        ("loadbalance.haproxy_user", "admin".into()),
        ("loadbalance.haproxy_pwd", password.into()),
    ]
}

/// `haproxy-firstboot apply` into `root`; its exit status.
fn first_boot(dir: &Path, props: &[(&str, String)]) -> i32 {
    let env = dir.join("ovf-env.xml");
    std::fs::write(&env, ovf_env(props)).expect("env");
    let out = Command::new(target_bin("haproxy-firstboot"))
        .args(["apply", "--deployment", "default", "--env"])
        .arg(&env)
        .arg("--root")
        .arg(dir.join("root"))
        .output()
        .expect("haproxy-firstboot");
    out.status.code().unwrap_or(-1)
}

struct Api {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Api {
    /// The API on loopback over first boot's files (haproxy.cfg, server certificate and key).
    fn start(dir: &Path) -> Api {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let etc = dir.join("root/etc/haproxy");
        let yaml = format!(
            "config_version: 2\ndataplaneapi:\n  tls:\n    tls_host: 127.0.0.1\n    tls_port: {port}\n    tls_certificate: {e}/server.crt\n    tls_key: {e}/server.key\n  userlist:\n    userlist: controller\n  transaction:\n    transaction_dir: {d}/transactions\nhaproxy:\n  config_file: {e}/haproxy.cfg\n  haproxy_bin: haproxy\n  reload:\n    reload_delay: 0\n    reload_cmd: \"true\"\n",
            e = etc.display(),
            d = dir.display()
        );
        std::fs::write(dir.join("dataplaneapi.yaml"), yaml).expect("yaml");
        let child = Command::new(target_bin("haproxy-dataplaneapi"))
            .arg("-f")
            .arg(dir.join("dataplaneapi.yaml"))
            .stdout(Stdio::null())
            .spawn()
            .expect("haproxy-dataplaneapi");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the API did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Api {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// A request as `password` (curl -K: no password on the command line), the certificate
    /// checked for the management IP against the CA.
    fn call(&self, password: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let rc = self.dir.join("curlrc");
        std::fs::write(&rc, format!("user = \"admin:{password}\"\n")).expect("curlrc");
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "--max-time",
            "60",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
            "-K",
        ])
        .arg(&rc)
        .arg("--cacert")
        .arg(self.dir.join("ca.crt"))
        .args([
            "--connect-to",
            &format!("{MGMT_IP}:5556:127.0.0.1:{}", self.port),
        ])
        .arg(format!("https://{MGMT_IP}:5556{path}"));
        if body.is_some() {
            cmd.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
            ]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl");
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(b) = body {
            stdin.write_all(b.to_string().as_bytes()).expect("body");
        }
        drop(stdin);
        let out = child.wait_with_output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let status = code.trim().parse().unwrap_or(0);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A service in one transaction, committed; then a transaction left open. Returns the version
/// before the commit and the open transaction's id.
fn program_a_service(api: &Api, pw: &str) -> (u64, String) {
    let (status, v) = api.call(pw, "GET", &format!("{CFG}/version"), None);
    assert_eq!(status, 200);
    let v = v.as_u64().expect("version");
    let txns = "/v2/services/haproxy/transactions";
    let (_, t) = api.call(pw, "POST", &format!("{txns}?version={v}"), None);
    let id = t["id"].as_str().expect("transaction").to_string();
    let q = format!("transaction_id={id}");
    let objects = [
        (
            "backends?",
            json!({"name": "svc-be", "mode": "tcp", "balance": {"algorithm": "roundrobin"}}),
        ),
        (
            "servers?backend=svc-be&",
            json!({"name": "s1", "address": "192.168.10.11", "port": 80}),
        ),
        (
            "frontends?",
            json!({"name": "svc", "mode": "tcp", "default_backend": "svc-be"}),
        ),
        (
            "binds?frontend=svc&",
            json!({"name": "vip", "address": "192.168.10.70", "port": 80}),
        ),
    ];
    for (what, body) in objects {
        let path = format!("{CFG}/{what}{q}");
        assert_eq!(api.call(pw, "POST", &path, Some(&body)).0, 202, "{path}");
    }
    assert_eq!(api.call(pw, "PUT", &format!("{txns}/{id}"), None).0, 202);
    let (_, open) = api.call(pw, "POST", &format!("{txns}?version={}", v + 1), None);
    (
        v,
        open["id"].as_str().expect("open transaction").to_string(),
    )
}

/// After the reboot: the new password only, a newer version, the service, the open
/// transaction outdated. Returns the file after one more API write.
fn check_after_the_reboot(api: &Api, committed: u64, open: &str, cfg_path: &Path) -> String {
    assert_eq!(
        api.call("First-pass-1", "GET", "/v2/info", None).0,
        401,
        "the old password"
    );
    let pw = "Second-pass-2";
    assert_eq!(
        api.call(pw, "GET", "/v2/info", None).0,
        200,
        "the new password"
    );
    let (_, now) = api.call(pw, "GET", &format!("{CFG}/version"), None);
    assert!(
        now.as_u64() > Some(committed),
        "the version moved on: {now} after {committed}"
    );
    let (_, fes) = api.call(pw, "GET", &format!("{CFG}/frontends"), None);
    assert_eq!(fes["data"][0]["name"], "svc");
    let (status, binds) = api.call(pw, "GET", &format!("{CFG}/binds?frontend=svc"), None);
    assert_eq!(
        (status, &binds["data"][0]["address"]),
        (200, &json!("192.168.10.70"))
    );
    let txn = format!("/v2/services/haproxy/transactions/{open}");
    let (_, t) = api.call(pw, "GET", &txn, None);
    assert_eq!(t["status"], "failed", "outdated by the reboot");
    assert_eq!(api.call(pw, "PUT", &txn, None).0, 409);
    let before = std::fs::read_to_string(cfg_path).expect("haproxy.cfg");
    let path = format!("{CFG}/servers/s1?backend=svc-be&version={now}");
    assert_eq!(api.call(pw, "DELETE", &path, None).0, 202);
    let written = std::fs::read_to_string(cfg_path).expect("haproxy.cfg");
    let first_boots = |t: &str| {
        let body = t.split_once('\n').map_or(t, |(_, rest)| rest);
        body.split_once("\nbackend svc-be")
            .map(|(ours, _)| ours.to_string())
    };
    assert_eq!(
        first_boots(&written),
        first_boots(&before),
        "the API kept first boot's sections"
    );
    written
}

/// The API's part of haproxy.cfg: everything from its first section on.
fn api_sections(text: &str) -> Option<&str> {
    text.split_once("\nbackend svc-be").map(|(_, rest)| rest)
}

#[test]
fn first_boot_and_the_data_plane_api_keep_each_others_sections() {
    if !testkit::have("haproxy") || !testkit::have("curl") || !testkit::have("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let ca = make_ca(dir, "/CN=Day 2 CA");
    assert_eq!(
        first_boot(dir, &props(&ca, "First-pass-1", "192.168.0.53")),
        0
    );
    let api = Api::start(dir);
    let (v, open) = program_a_service(&api, "First-pass-1");
    drop(api);

    // Day 2: a new API password and new DNS servers.
    let cfg_path = dir.join("root/etc/haproxy/haproxy.cfg");
    let before = std::fs::read_to_string(&cfg_path).expect("haproxy.cfg");
    assert_eq!(
        first_boot(dir, &props(&ca, "Second-pass-2", "192.168.0.54")),
        0
    );
    let after = std::fs::read_to_string(&cfg_path).expect("haproxy.cfg");
    assert_eq!(
        api_sections(&after),
        api_sections(&before),
        "first boot kept the API's sections:\n{after}"
    );
    assert_ne!(after, before, "the userlist changed");

    let api = Api::start(dir);
    let written = check_after_the_reboot(&api, v + 1, &open, &cfg_path);
    drop(api);

    // An invalid environment changes nothing: the API's services stay.
    let mut bad = props(&ca, "Third-pass-3", "192.168.0.54");
    for (k, v) in &mut bad {
        if *k == "loadbalance.service_ip_range" {
            *v = "192.168.10.0/24".into(); // holds the workload IP
        }
    }
    assert_eq!(first_boot(dir, &bad), 1);
    assert_eq!(
        std::fs::read_to_string(&cfg_path).expect("haproxy.cfg"),
        written
    );
}
