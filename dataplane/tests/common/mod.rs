//! A Data Plane API beside a real haproxy, on loopback: a temporary directory with a CA and a
//! server certificate (openssl), haproxy.cfg with the appliance's `userlist controller`, haproxy
//! in master-worker mode, and `haproxy-dataplaneapi` reloading it through the master CLI.
//! Requests go through curl, verifying the chain against the CA.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::run;

pub const USER: &str = "admin";
pub const PASSWORD: &str = "correct horse battery";

pub struct Appliance {
    pub dir: tempfile::TempDir,
    pub port: u16,
    haproxy: Option<Child>,
    api: Option<Child>,
}

pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn sha512_crypt(password: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl passwd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(password.as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("openssl passwd output");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A CA in `dir` (ca.crt, ca.key).
pub fn make_ca(dir: &Path) {
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(EC_KEY)
        .args(["-keyout", "ca.key", "-out", "ca.crt", "-days", "2"])
        .args(["-subj", "/CN=test CA"])
        .current_dir(dir));
}

/// A server certificate in `dir` (server.crt, server.key) for the IP addresses `ips`, signed by
/// the CA in `ca_dir`, whose certificate is copied to `dir/ca.crt`.
pub fn make_server_cert(dir: &Path, ca_dir: &Path, ips: &[&str]) {
    run(Command::new("openssl")
        .arg("req")
        .args(EC_KEY)
        .args(["-keyout", "server.key", "-out", "server.csr"])
        .args(["-subj", &format!("/CN={}", ips[0])])
        .current_dir(dir));
    let sans: Vec<String> = ips.iter().map(|ip| format!("IP:{ip}")).collect();
    std::fs::write(
        dir.join("san.ext"),
        format!("subjectAltName={}\n", sans.join(",")),
    )
    .expect("san.ext");
    run(Command::new("openssl")
        .args(["x509", "-req", "-in", "server.csr", "-CA"])
        .arg(ca_dir.join("ca.crt"))
        .arg("-CAkey")
        .arg(ca_dir.join("ca.key"))
        .args(["-CAcreateserial", "-out", "server.crt", "-days", "2"])
        .args(["-extfile", "san.ext"])
        .current_dir(dir));
    if ca_dir != dir {
        std::fs::copy(ca_dir.join("ca.crt"), dir.join("ca.crt")).expect("ca.crt");
    }
}

/// The appliance's sections, as haproxy-firstboot writes them (trimmed to what a test needs).
pub fn base_config(dir: &Path) -> String {
    format!(
        "# _version=1\nglobal\n  master-worker\n  stats socket {}/admin.sock mode 600 level admin expose-fd listeners\n  pidfile {}/haproxy.pid\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\nuserlist controller\n  user {USER} password {}\n",
        dir.display(),
        dir.display(),
        sha512_crypt(PASSWORD)
    )
}

impl Appliance {
    pub fn start() -> Appliance {
        Self::start_with(|_| {})
    }

    /// Starts haproxy and the API; `prepare` may change the directory's files first.
    pub fn start_with(prepare: impl FnOnce(&Path)) -> Appliance {
        let dir = tempfile::tempdir().expect("tempdir");
        make_ca(dir.path());
        make_server_cert(dir.path(), dir.path(), &["127.0.0.1"]);
        std::fs::write(dir.path().join("haproxy.cfg"), base_config(dir.path()))
            .expect("haproxy.cfg");
        let port = free_port();
        let yaml = format!(
            "config_version: 2\nname: test\ndataplaneapi:\n  scheme:\n  - https\n  tls:\n    tls_host: 127.0.0.1\n    tls_port: {port}\n    tls_certificate: {d}/server.crt\n    tls_key: {d}/server.key\n  userlist:\n    userlist: controller\n  transaction:\n    transaction_dir: {d}/transactions\nhaproxy:\n  config_file: {d}/haproxy.cfg\n  haproxy_bin: haproxy\n  master_runtime: {d}/master.sock\n  reload:\n    reload_delay: 1\n",
            d = dir.path().display()
        );
        std::fs::write(dir.path().join("dataplaneapi.yaml"), yaml).expect("yaml");
        std::fs::write(
            dir.path().join("auth.curlrc"),
            format!("user = \"{USER}:{PASSWORD}\"\n"),
        )
        .expect("curlrc");
        std::fs::write(
            dir.path().join("wrong.curlrc"),
            format!("user = \"{USER}:wrong\"\n"),
        )
        .expect("curlrc");
        prepare(dir.path());
        let mut a = Appliance {
            dir,
            port,
            haproxy: None,
            api: None,
        };
        a.haproxy = Some(start_haproxy(Command::new("haproxy"), a.dir.path()));
        a.start_api();
        a
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn start_api(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_haproxy-dataplaneapi"))
            .arg("-f")
            .arg(self.path("dataplaneapi.yaml"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("haproxy-dataplaneapi");
        self.api = Some(child);
        let port = self.port;
        wait_for(
            || TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "the Data Plane API's port",
        );
    }

    pub fn api_pid(&self) -> Option<u32> {
        self.api.as_ref().map(Child::id)
    }

    /// SIGKILL, as a crash or the OOM killer would.
    pub fn kill_api(&mut self) {
        if let Some(mut c) = self.api.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart_api(&mut self) {
        self.kill_api();
        self.start_api();
    }

    /// A request with the right credentials.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        self.request(method, path, body, Some("auth.curlrc"))
    }

    /// A request with the credentials of curl config file `auth` (None: no credentials).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        auth: Option<&str>,
    ) -> Reply {
        curl(
            Command::new("curl"),
            &format!("https://127.0.0.1:{}{path}", self.port),
            &self.path("ca.crt"),
            auth.map(|a| self.path(a)).as_deref(),
            (method, body),
        )
    }

    pub fn version(&self) -> u64 {
        let r = self.call("GET", "/v2/services/haproxy/configuration/version", None);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json().as_u64().expect("an integer version")
    }

    pub fn config_text(&self) -> String {
        std::fs::read_to_string(self.path("haproxy.cfg")).expect("haproxy.cfg")
    }

    /// Waits until reload `id` is no longer in progress; returns its JSON.
    pub fn wait_reload(&self, id: &str) -> Value {
        let start = Instant::now();
        loop {
            let r = self.call("GET", &format!("/v2/services/haproxy/reloads/{id}"), None);
            assert_eq!(r.status, 200, "{}", r.body);
            let v = r.json();
            if v["status"] != "in_progress" {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "reload {id} still in progress"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `haproxy -c` on the configuration file.
    pub fn haproxy_accepts(&self) -> bool {
        Command::new("haproxy")
            .args(["-c", "-q", "-f"])
            .arg(self.path("haproxy.cfg"))
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        self.kill_api();
        stop_haproxy(self.haproxy.take());
    }
}

/// haproxy (the program of `cmd`, which may run it elsewhere, e.g. in a network namespace) in
/// master-worker mode on `dir/haproxy.cfg`, its master CLI on `dir/master.sock`; returns once
/// that socket exists.
pub fn start_haproxy(mut cmd: Command, dir: &Path) -> Child {
    let child = cmd
        .arg("-W")
        .arg("-S")
        .arg(dir.join("master.sock"))
        .arg("-f")
        .arg(dir.join("haproxy.cfg"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy");
    wait_for(
        || dir.join("master.sock").exists(),
        "haproxy's master socket",
    );
    child
}

/// Stops what [`start_haproxy`] started: SIGTERM to the master stops the workers too.
pub fn stop_haproxy(haproxy: Option<Child>) {
    if let Some(mut h) = haproxy {
        let _ = Command::new("kill").arg(h.id().to_string()).status();
        let _ = h.wait();
    }
}

/// `method` (with `body`, if any) to `url` with `curl` (the program of `cmd`, which may run it
/// elsewhere, e.g. in a network namespace), verifying TLS against `ca`, with the credentials of
/// curl config file `auth` (None: none).
pub fn curl(
    mut cmd: Command,
    url: &str,
    ca: &Path,
    auth: Option<&Path>,
    (method, body): (&str, Option<&str>),
) -> Reply {
    let headers = tempfile::NamedTempFile::new().expect("headers file");
    cmd.args(["-sS", "--max-time", "60", "-X", method, "--cacert"])
        .arg(ca)
        .arg("-D")
        .arg(headers.path())
        .args(["-w", "\n%{http_code}"]);
    if let Some(a) = auth {
        cmd.arg("-K").arg(a);
    }
    if body.is_some() {
        let ct = if url.contains("/raw") {
            "text/plain"
        } else {
            "application/json"
        };
        cmd.args(["-H", &format!("Content-Type: {ct}"), "--data-binary", "@-"]);
    }
    cmd.arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("curl");
    let mut stdin = child.stdin.take().expect("stdin");
    if let Some(b) = body {
        stdin.write_all(b.as_bytes()).expect("body");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("curl output");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = code.trim().parse().unwrap_or_else(|_| {
        panic!(
            "curl {method} {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Reply {
        status,
        headers: std::fs::read_to_string(headers.path()).unwrap_or_default(),
        body: body.to_string(),
    }
}

pub fn wait_for(mut ok: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP backend on loopback that answers every connection with `name` and closes it.
pub fn backend(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("backend listener");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(name.as_bytes());
        }
    });
    port
}

/// Connects to `addr:port` and reads the answer (None when the connection fails).
pub fn fetch(addr: &str, port: u16) -> Option<String> {
    let mut s = TcpStream::connect((addr, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A line in the test run's output even under libtest's capture (figures the CI log keeps).
pub fn report(line: &str) {
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}
