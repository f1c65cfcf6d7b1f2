//! The Supervisor's side of the lab (tests/lab_boot.rs): Kubernetes-style services programmed
//! through the appliance's Data Plane API (the client of tests/boot_dataplane.rs, run in the
//! lab's management namespace), service churn under a steady client, two clients committing on
//! the same version, and the checks of what answers on which VIP:port.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use e2e::Clock;

use crate::boot_dataplane::{Api, Service, committed, create_service, stage_service};
use crate::lab::{self, Answer, BACKEND_ADDITIONAL, BACKEND_PORT, BACKEND_WORKLOAD, Host, Lab};

/// A backend server as the API takes it: (name, address, port).
pub type Server = (&'static str, &'static str, u16);

/// The lab's two HTTP backends as servers, named after what they answer.
pub fn both_servers() -> [Server; 2] {
    [server(&BACKEND_WORKLOAD), server(&BACKEND_ADDITIONAL)]
}

fn server(host: &Host) -> Server {
    (host.role, host.ip(), BACKEND_PORT)
}

/// The workload backend under another name: an endpoint the churn replaces.
fn old_endpoint() -> Server {
    ("backend-workload-old", BACKEND_WORKLOAD.ip(), BACKEND_PORT)
}

/// What must answer where: every address of `answering` by both backends, every one of
/// `refusing` with a refused connection; `frontends` are the API's frontends.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    pub answering: Vec<SocketAddr>,
    pub refusing: Vec<SocketAddr>,
    pub frontends: BTreeSet<String>,
}

impl Expected {
    pub fn serving(&mut self, name: &str, vip: &str, port: u16) {
        self.frontends.insert(name.to_owned());
        self.answering.push(addr(vip, port));
    }
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// Whether `vip` is answered by both backends within a few requests (roundrobin alternates;
/// another client may take every other turn). Err: what was answered instead.
fn both_answer(vip: SocketAddr) -> Result<(), String> {
    let wanted: BTreeSet<&str> = [BACKEND_WORKLOAD.role, BACKEND_ADDITIONAL.role].into();
    let mut seen = BTreeSet::new();
    let mut answers = Vec::new();
    for _ in 0..6 {
        let answer = lab::http_get(vip);
        if let Answer::Body(b) = &answer
            && let Some(w) = wanted.iter().find(|w| **w == b.as_str())
        {
            seen.insert(*w);
            if seen == wanted {
                return Ok(());
            }
        } else if !matches!(answer, Answer::Body(_)) {
            return Err(format!("{vip}: {answer:?}"));
        }
        answers.push(answer);
    }
    Err(format!("{vip}: not both backends: {answers:?}"))
}

/// Polls, from the calling thread's namespace, until every address of `expected.answering`
/// is answered by both backends and every one of `expected.refusing` refuses; fails with
/// what is wrong after `limit`. Returns the time it took.
pub fn settle(expected: &Expected, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let mut wrong: Vec<String> = expected
            .answering
            .iter()
            .filter_map(|a| both_answer(*a).err())
            .collect();
        for a in &expected.refusing {
            let answer = lab::http_get(*a);
            if answer != Answer::Refused {
                wrong.push(format!("{a} should refuse: {answer:?}"));
            }
        }
        if wrong.is_empty() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "after {limit:?}, {} of {} VIP:port pairs are not as expected:\n{}",
            wrong.len(),
            expected.answering.len() + expected.refusing.len(),
            wrong.join("\n")
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The last reload `reload` succeeded (waited for), and no other reload the server remembers
/// failed.
pub fn reloads_succeeded(api: &Api<'_>, reload: &str) {
    let outcome = api.wait_reload(reload, Duration::from_secs(180));
    assert_eq!(outcome["status"], "succeeded", "reload {reload}: {outcome}");
    let failed = api.unsuccessful_reloads();
    assert!(
        failed.is_empty(),
        "reloads that did not succeed: {failed:?}"
    );
}

/// What the churn does to each of its 30 services after creating it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Kept,
    /// Created with the workload backend only; the additional one is added.
    ScaledUp,
    /// Created with an old endpoint and the additional backend; the old endpoint is removed
    /// and the workload backend added, in one transaction.
    Replaced,
    /// The bind moves to another port.
    Moved(u16),
    Deleted,
}

struct Planned {
    name: String,
    vip: String,
    port: u16,
    fate: Fate,
}

/// 30 services on consecutive VIPs from `first_vip`, on port 80 or 8000+i: 10 kept, 4 scaled
/// up, 3 with an endpoint replaced, 3 moved to port 9000+i, 10 deleted.
fn plan(first_vip: Ipv4Addr) -> Vec<Planned> {
    (0..30u16)
        .map(|i| {
            let fate = match i {
                0..10 => Fate::Kept,
                10..14 => Fate::ScaledUp,
                14..17 => Fate::Replaced,
                17..20 => Fate::Moved(9000 + i),
                _ => Fate::Deleted,
            };
            Planned {
                name: format!("svc-{i:02}"),
                vip: Ipv4Addr::from(u32::from(first_vip) + u32::from(i)).to_string(),
                port: if i % 2 == 0 { 80 } else { 8000 + i },
                fate,
            }
        })
        .collect()
}

fn initial_servers(fate: Fate) -> Vec<Server> {
    match fate {
        Fate::ScaledUp => vec![server(&BACKEND_WORKLOAD)],
        Fate::Replaced => vec![old_endpoint(), server(&BACKEND_ADDITIONAL)],
        _ => both_servers().to_vec(),
    }
}

/// Sets `stop` when dropped, so that a panic in the churn still ends the steady client.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Churn like a cluster's: 30 services created, 10 changed, 10 deleted, each in its own
/// transaction, while a client in `steady.0`'s namespace makes a request on a new connection
/// to `steady.1` (an untouched service) every 50 ms. Afterwards exactly the 20 remaining
/// services answer (checked from `checker`'s namespace) and the deleted ones and the old ports
/// refuse; the steady client saw no failed request. Returns what must answer and refuse
/// (`expected` extended).
pub fn churn(
    api: &Api<'_>,
    lab: &Lab,
    (client, steady): (&Host, SocketAddr),
    checker: &Host,
    (first_vip, mut expected): (Ipv4Addr, Expected),
    clock: &Clock,
) -> Expected {
    let plan = plan(first_vip);
    let stop = AtomicBool::new(false);
    let backends = [BACKEND_WORKLOAD.role, BACKEND_ADDITIONAL.role];
    let tally = std::thread::scope(|s| {
        let ns = lab.netns(client);
        let steady_client = s.spawn(|| ns.enter(|| lab::steady_client(steady, &backends, &stop)));
        let guard = StopOnDrop(&stop);
        clock.log(format!(
            "churn: a steady client on {} requests {steady} on a new connection every 50 ms",
            client.role
        ));
        let last_reload = apply_plan(api, &plan, clock);
        reloads_succeeded(api, &last_reload);
        clock.log(format!(
            "ok: churn: the last reload {last_reload} succeeded, and no reload the API \
             remembers failed"
        ));
        expected = expected_after(&plan, expected.clone());
        let took = lab
            .netns(checker)
            .enter(|| settle(&expected, Duration::from_secs(120)));
        clock.log(format!(
            "ok: churn: from {}, exactly the 20 remaining services answer, each by both \
             backends ({} VIP:port pairs with lab-vip), and the 10 deleted services and 3 old \
             ports refuse ({} pairs; settled in {:.1} s)",
            checker.role,
            expected.answering.len(),
            expected.refusing.len(),
            took.as_secs_f64()
        ));
        drop(guard);
        steady_client.join().unwrap()
    });
    clock.log(format!(
        "churn: 30 services created, 10 changed, 10 deleted; steady client {} requests, {} failed",
        tally.requests, tally.failed
    ));
    assert_eq!(
        tally.failed, 0,
        "the steady client on {steady} saw failed requests during the churn (seconds since it \
         started, answer): {:?}",
        tally.failures
    );
    check_model(api, &plan, &expected);
    clock.log(format!(
        "ok: churn: the API lists the {} frontends expected and the changed backends' servers",
        expected.frontends.len()
    ));
    expected
}

/// Creates, changes and deletes as planned, one transaction each; the last reload's id.
fn apply_plan(api: &Api<'_>, plan: &[Planned], clock: &Clock) -> String {
    let start = Instant::now();
    let mut reload = String::new();
    for p in plan {
        let servers = initial_servers(p.fate);
        let svc = Service {
            name: &p.name,
            vip: &p.vip,
            vip_port: p.port,
            servers: &servers,
        };
        reload = create_service(api, &svc).1;
    }
    clock.log(format!(
        "ok: churn: 30 services created, one transaction each ({} to {}), in {:.1} s",
        plan[0].vip,
        plan[29].vip,
        start.elapsed().as_secs_f64()
    ));
    let start = Instant::now();
    for p in plan {
        reload = match p.fate {
            Fate::ScaledUp => api.change_servers(&p.name, &[], &[server(&BACKEND_ADDITIONAL)]),
            Fate::Replaced => {
                api.change_servers(&p.name, &[old_endpoint().0], &[server(&BACKEND_WORKLOAD)])
            }
            Fate::Moved(port) => api.move_bind(&p.name, &p.vip, port),
            Fate::Kept | Fate::Deleted => continue,
        };
    }
    clock.log(format!(
        "ok: churn: 10 services changed (4 servers added, 3 servers replaced, 3 ports \
         changed), one transaction each, in {:.1} s",
        start.elapsed().as_secs_f64()
    ));
    let start = Instant::now();
    for p in plan.iter().filter(|p| p.fate == Fate::Deleted) {
        reload = api.delete_service(&p.name);
    }
    clock.log(format!(
        "ok: churn: 10 services deleted, one transaction each, in {:.1} s; configuration \
         version {}",
        start.elapsed().as_secs_f64(),
        api.version()
    ));
    reload
}

fn expected_after(plan: &[Planned], mut expected: Expected) -> Expected {
    for p in plan {
        match p.fate {
            Fate::Deleted => expected.refusing.push(addr(&p.vip, p.port)),
            Fate::Moved(port) => {
                expected.refusing.push(addr(&p.vip, p.port));
                expected.serving(&p.name, &p.vip, port);
            }
            _ => expected.serving(&p.name, &p.vip, p.port),
        }
    }
    expected
}

/// The API's model after the churn: exactly the expected frontends and their backends, and the
/// changed backends hold exactly both backends' servers.
fn check_model(api: &Api<'_>, plan: &[Planned], expected: &Expected) {
    assert_eq!(
        api.names("frontends"),
        expected.frontends,
        "frontends after the churn"
    );
    let backends: BTreeSet<String> = expected
        .frontends
        .iter()
        .map(|f| format!("{f}-be"))
        .collect();
    assert_eq!(api.names("backends"), backends, "backends after the churn");
    let both: BTreeSet<String> = both_servers().iter().map(|s| s.0.to_owned()).collect();
    for p in plan
        .iter()
        .filter(|p| matches!(p.fate, Fate::ScaledUp | Fate::Replaced))
    {
        let kind = format!("servers?backend={}-be", p.name);
        assert_eq!(api.names(&kind), both, "servers of {}-be", p.name);
    }
}

/// Two clients start transactions on the same version, each creating its own service, and
/// commit at the same moment: one commit is accepted (202), the other refused (409) and its
/// transaction outdated; nothing of the refused one is in the configuration or answers. A
/// retry on the new version succeeds. Checked from `client`'s namespace.
pub fn conflicting_commits(
    apis: [&Api<'_>; 2],
    services: [&Service<'_>; 2],
    lab: &Lab,
    client: &Host,
    clock: &Clock,
) {
    let v = apis[0].version();
    let ids = [apis[0].begin_on(v), apis[1].begin_on(v)];
    stage_service(apis[0], &ids[0], services[0]);
    stage_service(apis[1], &ids[1], services[1]);
    let barrier = Barrier::new(2);
    let replies = std::thread::scope(|s| {
        let commit = |i: usize| {
            let (api, id, barrier) = (apis[i], &ids[i], &barrier);
            s.spawn(move || {
                barrier.wait();
                api.commit(id)
            })
        };
        let (a, b) = (commit(0), commit(1));
        [a.join().unwrap(), b.join().unwrap()]
    });
    let statuses = [replies[0].status, replies[1].status];
    let winner = match statuses {
        [202, 409] => 0,
        [409, 202] => 1,
        _ => panic!(
            "two commits on version {v}: expected one 202 and one 409, got {statuses:?}: {} / {}",
            replies[0].body, replies[1].body
        ),
    };
    let loser = 1 - winner;
    let reload = committed(&replies[winner], &ids[winner]);
    clock.log(format!(
        "ok: conflict: two clients committed transactions started on version {v} at once: {} \
         202 (Reload-ID {reload}), {} 409 ({})",
        services[winner].name,
        services[loser].name,
        replies[loser].body.trim()
    ));
    not_half_applied(apis[loser], &ids[loser], services, winner, v + 1);
    reloads_succeeded(apis[winner], &reload);
    let mut expected = Expected::default();
    let (w, l) = (services[winner], services[loser]);
    expected.serving(w.name, w.vip, w.vip_port);
    expected.refusing.push(addr(l.vip, l.vip_port));
    lab.netns(client)
        .enter(|| settle(&expected, Duration::from_secs(90)));
    clock.log(format!(
        "ok: conflict: nothing of {} is applied: version {}, its frontend and backend 404, its \
         transaction outdated and deleted; {}:{} answers (both backends), {}:{} refuses",
        l.name,
        v + 1,
        w.vip,
        w.vip_port,
        l.vip,
        l.vip_port
    ));
    let (version, reload) = create_service(apis[loser], l);
    reloads_succeeded(apis[loser], &reload);
    expected.refusing.clear();
    expected.serving(l.name, l.vip, l.vip_port);
    lab.netns(client)
        .enter(|| settle(&expected, Duration::from_secs(90)));
    clock.log(format!(
        "ok: conflict: the refused client's retry on the new version committed (202 → version \
         {version}, reload {reload} succeeded) and {}:{} answers by both backends",
        l.vip, l.vip_port
    ));
}

/// After the refused commit: the version is `version`, the winner's objects are there, the
/// loser's are not, the loser's transaction is no longer in progress (then deleted).
fn not_half_applied(
    loser_api: &Api<'_>,
    loser_id: &str,
    services: [&Service<'_>; 2],
    winner: usize,
    version: u64,
) {
    assert_eq!(loser_api.version(), version, "the version after the race");
    let (w, l) = (services[winner], services[1 - winner]);
    let cfg = "/v2/services/haproxy/configuration";
    for (name, want) in [(w.name, 200), (l.name, 404)] {
        for path in [
            format!("{cfg}/frontends/{name}"),
            format!("{cfg}/backends/{name}-be"),
        ] {
            let r = loser_api.call("GET", &path, None);
            assert_eq!(r.status, want, "GET {path} after the race: {}", r.body);
        }
    }
    let path = format!("/v2/services/haproxy/transactions/{loser_id}");
    let r = loser_api.call("GET", &path, None);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    let status = r.json()["status"].as_str().unwrap_or("").to_owned();
    assert!(
        status == "failed" || status == "outdated",
        "the refused transaction's status: {}",
        r.body
    );
    let r = loser_api.call("DELETE", &path, None);
    assert_eq!(r.status, 204, "DELETE {path}: {}", r.body);
}
