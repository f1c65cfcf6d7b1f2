//! The appliance's own Data Plane API, used as the vSphere Supervisor uses it: curl over TLS
//! verified against the deployment's CA (requests name the management IP, whose IP SAN the
//! server certificate has), credentials in curl config files of mode 0600 (`-K`), so no
//! password is on a command line. The boot test reaches the API from its network namespace
//! through the forward of the management port (`--connect-to` sends requests there); the lab
//! test (lab_boot.rs) from the Supervisor's host on the lab's management network, directly.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::Clock;
use serde_json::{Value, json};
use testkit::netns::Netns;

const CFG: &str = "/v2/services/haproxy/configuration";
const TRANSACTIONS: &str = "/v2/services/haproxy/transactions";

/// Which credentials a request carries.
#[derive(Clone, Copy)]
pub enum Auth {
    None,
    Wrong,
    Right,
}

/// A client of the Data Plane API at `host:port` (the management IP and
/// `loadbalance.dataplane_port`), reached directly from the namespace (the lab's management
/// network) or through `forward` on the namespace's loopback (the boot test's port forward).
pub struct Api<'a> {
    ns: &'a Netns,
    host: String,
    port: u16,
    forward: Option<u16>,
    ca: PathBuf,
    right: PathBuf,
    wrong: PathBuf,
    headers: PathBuf,
}

pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// A curl config file holding `user:password`, created with mode 0600.
fn curlrc(path: &Path, user: &str, password: &str) {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    writeln!(file, "user = \"{}:{}\"", quote(user), quote(password)).unwrap();
}

impl<'a> Api<'a> {
    /// `dir` receives the credential files and the last answer's headers.
    pub fn new(
        ns: &'a Netns,
        dir: &Path,
        ca: &Path,
        (host, port): (&str, u16),
        forward: u16,
        user: &str,
        password: &str,
    ) -> Api<'a> {
        Api::with(
            ns,
            dir,
            "api",
            ca,
            (host, port),
            Some(forward),
            (user, password),
        )
    }

    /// A client that connects to `host:port` itself from `ns`; its files in `dir` are named
    /// after `tag`, so that several clients (other credentials, concurrent ones) can coexist.
    #[allow(dead_code)] // used by lab_boot only; appliance_boot includes this file too
    pub fn direct(
        ns: &'a Netns,
        dir: &Path,
        tag: &str,
        ca: &Path,
        target: (&str, u16),
        (user, password): (&str, &str),
    ) -> Api<'a> {
        Api::with(ns, dir, tag, ca, target, None, (user, password))
    }

    fn with(
        ns: &'a Netns,
        dir: &Path,
        tag: &str,
        ca: &Path,
        (host, port): (&str, u16),
        forward: Option<u16>,
        (user, password): (&str, &str),
    ) -> Api<'a> {
        let right = dir.join(format!("{tag}-auth.curlrc"));
        let wrong = dir.join(format!("{tag}-wrong.curlrc"));
        curlrc(&right, user, password);
        curlrc(&wrong, user, &format!("{password}-wrong"));
        Api {
            ns,
            host: host.to_owned(),
            port,
            forward,
            ca: ca.to_owned(),
            right,
            wrong,
            headers: dir.join(format!("{tag}-headers.txt")),
        }
    }

    /// A request with the right credentials.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.request(method, path, body, Auth::Right)
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&Value>, auth: Auth) -> Reply {
        self.try_request(method, path, body, auth)
            .unwrap_or_else(|e| panic!("curl {method} {path}: no answer: {e}"))
    }

    /// As [`Api::request`]; no answer at all (connection refused, TLS failure, timeout) is
    /// `Err` with curl's message.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        auth: Auth,
    ) -> Result<Reply, String> {
        let (host, port) = (&self.host, self.port);
        let mut cmd = self.ns.command("curl");
        cmd.args(["-sS", "--max-time", "60", "-X", method, "--cacert"])
            .arg(&self.ca);
        if let Some(forward) = self.forward {
            cmd.arg("--connect-to")
                .arg(format!("{host}:{port}:127.0.0.1:{forward}"));
        }
        cmd.arg("-D")
            .arg(&self.headers)
            .args(["-w", "\n%{http_code}"]);
        match auth {
            Auth::None => {}
            Auth::Wrong => {
                cmd.arg("-K").arg(&self.wrong);
            }
            Auth::Right => {
                cmd.arg("-K").arg(&self.right);
            }
        }
        if body.is_some() {
            cmd.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
            ]);
        }
        cmd.arg(format!("https://{host}:{port}{path}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("curl");
        let mut stdin = child.stdin.take().expect("curl's stdin");
        if let Some(b) = body {
            stdin.write_all(b.to_string().as_bytes()).unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().expect("curl's output");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let Some(status) = code.trim().parse().ok().filter(|s| *s != 0) else {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        };
        Ok(Reply {
            status,
            headers: std::fs::read_to_string(&self.headers).unwrap_or_default(),
            body: body.to_owned(),
        })
    }

    /// The configuration's current version.
    pub fn version(&self) -> u64 {
        let r = self.call("GET", &format!("{CFG}/version"), None);
        assert_eq!(r.status, 200, "GET version: {}", r.body);
        r.json().as_u64().expect("an integer version")
    }

    /// Polls reload `id` until it is no longer in progress; its status.
    pub fn wait_reload(&self, id: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let r = self.call("GET", &format!("/v2/services/haproxy/reloads/{id}"), None);
            assert_eq!(r.status, 200, "GET reload {id}: {}", r.body);
            let v = r.json();
            if v["status"] != "in_progress" {
                return v;
            }
            assert!(
                start.elapsed() < limit,
                "reload {id} still in progress after {limit:?}"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// A load-balanced service as the Supervisor creates one: a frontend `name` with one bind on
/// `vip:vip_port` and a backend `<name>-be` with `servers` (name, address, port).
pub struct Service<'a> {
    pub name: &'a str,
    pub vip: &'a str,
    pub vip_port: u16,
    pub servers: &'a [(&'a str, &'a str, u16)],
}

/// Without credentials and with a wrong password: 401 asking for Basic; with the deployment's
/// credentials `GET /v2/info` answers 200. Returns the API's version string.
pub fn check_auth(api: &Api<'_>) -> String {
    for (auth, what) in [
        (Auth::None, "without credentials"),
        (Auth::Wrong, "with a wrong password"),
    ] {
        let r = api.request("GET", "/v2/info", None, auth);
        assert_eq!(r.status, 401, "GET /v2/info {what}: {}", r.body);
        assert!(
            r.header("WWW-Authenticate")
                .is_some_and(|h| h.starts_with("Basic")),
            "GET /v2/info {what}: no WWW-Authenticate: Basic:\n{}",
            r.headers
        );
    }
    let info = api.call("GET", "/v2/info", None);
    assert_eq!(info.status, 200, "GET /v2/info: {}", info.body);
    info.json()["api"]["version"]
        .as_str()
        .unwrap_or("?")
        .to_owned()
}

/// One transaction on the current version: the backend, its servers, the frontend and its
/// bind; committed (202 with a Reload-ID). Returns (the new version, the reload's id).
pub fn create_service(api: &Api<'_>, svc: &Service<'_>) -> (u64, String) {
    let (id, _) = api.begin();
    stage_service(api, &id, svc);
    let reload = committed(&api.commit(&id), &id);
    (api.version(), reload)
}

/// The writes that make `svc`, staged in transaction `id`: backend `<name>-be` (tcp,
/// roundrobin) with its servers, frontend `name` with bind `vip`.
pub fn stage_service(api: &Api<'_>, id: &str, svc: &Service<'_>) {
    let (name, be) = (svc.name, format!("{}-be", svc.name));
    api.stage(
        id,
        "POST",
        &format!("{CFG}/backends"),
        Some(&json!({"name": be, "mode": "tcp", "balance": {"algorithm": "roundrobin"}})),
    );
    for (server, address, port) in svc.servers {
        api.stage(
            id,
            "POST",
            &format!("{CFG}/servers?backend={be}"),
            Some(&json!({"name": server, "address": address, "port": port})),
        );
    }
    api.stage(
        id,
        "POST",
        &format!("{CFG}/frontends"),
        Some(&json!({"name": name, "mode": "tcp", "default_backend": be})),
    );
    api.stage(
        id,
        "POST",
        &format!("{CFG}/binds?frontend={name}"),
        Some(&json!({"name": "vip", "address": svc.vip, "port": svc.vip_port})),
    );
}

/// A commit's answer must be 202 with status `success` and a Reload-ID: returns the id.
pub fn committed(r: &Reply, id: &str) -> String {
    assert_eq!(r.status, 202, "committing transaction {id}: {}", r.body);
    assert_eq!(r.json()["status"], "success", "commit of {id}: {}", r.body);
    r.header("Reload-ID")
        .unwrap_or_else(|| panic!("the commit of {id} has no Reload-ID:\n{}", r.headers))
}

impl Api<'_> {
    /// Starts a transaction on the current version: (its id, that version).
    pub fn begin(&self) -> (String, u64) {
        let v = self.version();
        (self.begin_on(v), v)
    }

    /// Starts a transaction on version `v` (201): its id.
    pub fn begin_on(&self, v: u64) -> String {
        let r = self.call("POST", &format!("{TRANSACTIONS}?version={v}"), None);
        assert_eq!(
            r.status, 201,
            "starting a transaction on version {v}: {}",
            r.body
        );
        r.json()["id"]
            .as_str()
            .expect("a transaction id")
            .to_owned()
    }

    /// One write in transaction `id` (`path` may carry a query already): 202.
    pub fn stage(&self, id: &str, method: &str, path: &str, body: Option<&Value>) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let path = format!("{path}{sep}transaction_id={id}");
        let r = self.call(method, &path, body);
        let sent = body.map(Value::to_string).unwrap_or_default();
        assert_eq!(r.status, 202, "{method} {path} {sent}: {}", r.body);
    }

    /// Commits transaction `id`: the answer, whatever it is.
    pub fn commit(&self, id: &str) -> Reply {
        self.call("PUT", &format!("{TRANSACTIONS}/{id}"), None)
    }
}

/// What the lab does with the API beyond creating a service: service churn, listings, waiting
/// for the server and for reloads.
#[allow(dead_code)] // used by lab_boot only; appliance_boot includes this file too
impl Api<'_> {
    /// Waits (at most `limit`) until the server answers `GET /v2/info` at all; that answer.
    pub fn wait_ready(&self, limit: Duration) -> Reply {
        let start = Instant::now();
        loop {
            match self.try_request("GET", "/v2/info", None, Auth::Right) {
                Ok(r) => return r,
                Err(e) => assert!(
                    start.elapsed() < limit,
                    "the Data Plane API at {}:{} does not answer within {limit:?}: {e}",
                    self.host,
                    self.port
                ),
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// The names of the configuration's `kind` objects (`frontends`, `backends`, or
    /// `servers?backend=B`).
    pub fn names(&self, kind: &str) -> BTreeSet<String> {
        let r = self.call("GET", &format!("{CFG}/{kind}"), None);
        assert_eq!(r.status, 200, "GET {kind}: {}", r.body);
        r.json()["data"]
            .as_array()
            .unwrap_or_else(|| panic!("GET {kind}: no data array: {}", r.body))
            .iter()
            .filter_map(|o| o["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// One transaction: the servers `remove` leave backend `<name>-be`, `add` join it.
    pub fn change_servers(&self, name: &str, remove: &[&str], add: &[(&str, &str, u16)]) -> String {
        let (id, _) = self.begin();
        let be = format!("{name}-be");
        for server in remove {
            let path = format!("{CFG}/servers/{server}?backend={be}");
            self.stage(&id, "DELETE", &path, None);
        }
        for (server, address, port) in add {
            let body = json!({"name": server, "address": address, "port": port});
            self.stage(
                &id,
                "POST",
                &format!("{CFG}/servers?backend={be}"),
                Some(&body),
            );
        }
        committed(&self.commit(&id), &id)
    }

    /// One transaction: frontend `name`'s bind `vip` moves to `vip:port`.
    pub fn move_bind(&self, name: &str, vip: &str, port: u16) -> String {
        let (id, _) = self.begin();
        let body = json!({"name": "vip", "address": vip, "port": port});
        let path = format!("{CFG}/binds/vip?frontend={name}");
        self.stage(&id, "PUT", &path, Some(&body));
        committed(&self.commit(&id), &id)
    }

    /// One transaction: frontend `name` and backend `<name>-be` deleted.
    pub fn delete_service(&self, name: &str) -> String {
        let (id, _) = self.begin();
        self.stage(&id, "DELETE", &format!("{CFG}/frontends/{name}"), None);
        self.stage(&id, "DELETE", &format!("{CFG}/backends/{name}-be"), None);
        committed(&self.commit(&id), &id)
    }

    /// Every reload the server remembers that did not succeed (as JSON).
    pub fn unsuccessful_reloads(&self) -> Vec<Value> {
        let r = self.call("GET", "/v2/services/haproxy/reloads", None);
        assert_eq!(r.status, 200, "GET reloads: {}", r.body);
        r.json()
            .as_array()
            .unwrap_or_else(|| panic!("GET reloads: not a list: {}", r.body))
            .iter()
            .filter(|rec| rec["status"] != "succeeded")
            .cloned()
            .collect()
    }
}

/// Asks `probe` (one connection through the VIP, what it read) until every server of `svc`
/// answered; fails after `limit`. Returns the names seen, in order.
pub fn every_server_answers(
    svc: &Service<'_>,
    probe: &dyn Fn() -> String,
    limit: Duration,
) -> Vec<String> {
    let wanted: BTreeSet<&str> = svc.servers.iter().map(|s| s.0).collect();
    let mut seen = BTreeSet::new();
    let mut answers = Vec::new();
    let start = Instant::now();
    while seen != wanted {
        let got = probe();
        let word = got.trim();
        if let Some(server) = wanted.iter().find(|s| **s == word) {
            seen.insert(*server);
        }
        answers.push(word.to_owned());
        assert!(
            start.elapsed() < limit,
            "{}:{} answered {answers:?} within {limit:?}, not every one of {wanted:?}",
            svc.vip,
            svc.vip_port
        );
        if seen != wanted {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    answers
}

/// A write naming a stale version is refused (409) and changes nothing; then the frontend is
/// deleted on the current version with an immediate reload (204), and is gone (404).
pub fn stale_write_then_delete(api: &Api<'_>, svc: &Service<'_>) {
    let v = api.version();
    let stale = v - 1;
    let r = api.call(
        "POST",
        &format!("{CFG}/frontends?version={stale}"),
        Some(&json!({"name": "late", "mode": "tcp"})),
    );
    assert_eq!(
        r.status, 409,
        "a write on stale version {stale}: {}",
        r.body
    );
    assert_eq!(api.version(), v, "a refused write changed the version");
    let name = svc.name;
    let r = api.call(
        "DELETE",
        &format!("{CFG}/frontends/{name}?version={v}&force_reload=true"),
        None,
    );
    assert_eq!(r.status, 204, "deleting frontend {name}: {}", r.body);
    let r = api.call("GET", &format!("{CFG}/frontends/{name}"), None);
    assert_eq!(
        r.status, 404,
        "frontend {name} after its deletion: {}",
        r.body
    );
}

/// The whole scenario: auth, a service created in one transaction and reloaded, both servers
/// answering through the VIP (`probe`), a stale write refused, the frontend deleted and the
/// VIP port silent.
pub fn serve_a_service(
    api: &Api<'_>,
    svc: &Service<'_>,
    probe: &dyn Fn() -> String,
    clock: &Clock,
) {
    let version = check_auth(api);
    clock.log(format!(
        "ok: the appliance's Data Plane API ({version}) answers with TLS verified against the \
         deployment's CA: 401 with WWW-Authenticate: Basic without credentials and with a wrong \
         password, GET /v2/info 200 with loadbalance.haproxy_user/haproxy_pwd"
    ));
    let (committed, reload) = create_service(api, svc);
    let servers: Vec<String> = svc
        .servers
        .iter()
        .map(|(n, a, p)| format!("{n} {a}:{p}"))
        .collect();
    clock.log(format!(
        "ok: one transaction created backend {}-be ({}) and frontend {} bound on {}:{}; commit \
         202 → version {committed}, Reload-ID {reload}",
        svc.name,
        servers.join(", "),
        svc.name,
        svc.vip,
        svc.vip_port
    ));
    let outcome = api.wait_reload(&reload, Duration::from_secs(120));
    assert_eq!(outcome["status"], "succeeded", "reload {reload}: {outcome}");
    clock.log(format!(
        "ok: reload {reload} succeeded (systemctl reload haproxy)"
    ));
    let answers = every_server_answers(svc, probe, Duration::from_secs(90));
    clock.log(format!(
        "ok: the appliance's Data Plane API answers with TLS and auth (401 without credentials, \
         200 with) and serves a service it created: backends {} answered through {}:{} \
         ({answers:?})",
        svc.servers
            .iter()
            .map(|s| s.0)
            .collect::<Vec<_>>()
            .join(" and "),
        svc.vip,
        svc.vip_port
    ));
    stale_write_then_delete(api, svc);
    let start = Instant::now();
    loop {
        let got = probe();
        if got.trim().is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}:{} still answers after the frontend's deletion: {got:?}",
            svc.vip,
            svc.vip_port
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    clock.log(format!(
        "ok: a write on a stale version is refused (409); DELETE of frontend {} with \
         force_reload 204, then 404, and {}:{} no longer answers",
        svc.name, svc.vip, svc.vip_port
    ));
}
