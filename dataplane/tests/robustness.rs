//! What must hold when things go wrong: an invalid change, a restart, an outdated transaction,
//! concurrent writers, kill -9 mid-commit, and traffic during reloads.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Appliance, backend, fetch, report};
use dataplane::cfg::{Document, Kind, model};
use serde_json::json;

const CFG: &str = "/v2/services/haproxy/configuration";

#[test]
fn a_change_haproxy_refuses_changes_nothing() {
    let a = Appliance::start();
    let before = a.config_text();
    let v = a.version();
    let body =
        json!({"name": "fe", "mode": "tcp", "default_backend": "does-not-exist"}).to_string();
    let r = a.call("POST", &format!("{CFG}/frontends?version={v}"), Some(&body));
    assert_eq!(r.status, 400, "{}", r.body);
    let message = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.contains("does-not-exist"),
        "haproxy's own message: {message}"
    );
    assert!(
        !message.contains("candidate"),
        "names the real file, not the candidate: {message}"
    );
    assert_eq!(a.config_text(), before, "the file is untouched");
    assert_eq!(a.version(), v);
    assert!(
        std::fs::read_dir(a.dir.path())
            .expect("dir")
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().contains("candidate"))
    );

    let r = a.call(
        "POST",
        &format!("{CFG}/frontends?version={v}"),
        Some("{not json"),
    );
    assert_eq!(r.status, 400);
    let r = a.call(
        "POST",
        &format!("{CFG}/frontends?version={v}"),
        Some(r#"{"name": "x", "maxconn": "many"}"#),
    );
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (
            400,
            Some("invalid frontend: field 'maxconn': expected an integer")
        )
    );
    let r = a.call(
        "POST",
        &format!("{CFG}/frontends"),
        Some(r#"{"name": "x"}"#),
    );
    assert_eq!(r.status, 400, "neither version nor transaction");
    let r = a.call("GET", "/v2/no/such/path", None);
    assert_eq!((r.status, r.json()["code"].as_u64()), (404, Some(404)));
}

#[test]
fn transactions_survive_a_restart_and_become_outdated() {
    let mut a = Appliance::start();
    let v = a.version();
    let t = a
        .call(
            "POST",
            &format!("/v2/services/haproxy/transactions?version={v}"),
            None,
        )
        .json();
    let id = t["id"].as_str().expect("id").to_string();
    let r = a.call(
        "POST",
        &format!("{CFG}/backends?transaction_id={id}"),
        Some(r#"{"name": "kept", "mode": "tcp"}"#),
    );
    assert_eq!(r.status, 202, "{}", r.body);

    a.restart_api();
    let t = a.call(
        "GET",
        &format!("/v2/services/haproxy/transactions/{id}"),
        None,
    );
    assert_eq!(
        (t.status, t.json()["status"].as_str()),
        (200, Some("in_progress"))
    );
    let r = a.call(
        "GET",
        &format!("{CFG}/backends/kept?transaction_id={id}"),
        None,
    );
    assert_eq!(
        r.status, 200,
        "the change is in the transaction after the restart"
    );
    assert_eq!(
        a.call("GET", &format!("{CFG}/backends/kept"), None).status,
        404,
        "and not outside it"
    );

    // Another client commits first: the transaction is outdated.
    let r = a.call(
        "POST",
        &format!("{CFG}/backends?version={v}&force_reload=true"),
        Some(r#"{"name": "other"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let t = a
        .call(
            "GET",
            &format!("/v2/services/haproxy/transactions/{id}"),
            None,
        )
        .json();
    assert_eq!(t["status"], "failed", "outdated shows as the spec's failed");
    let failed = a
        .call(
            "GET",
            "/v2/services/haproxy/transactions?status=failed",
            None,
        )
        .json();
    assert!(
        failed
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["id"] == id))
    );
    let r = a.call(
        "PUT",
        &format!("/v2/services/haproxy/transactions/{id}"),
        None,
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("outdated"), "{}", r.body);
    assert!(
        !a.config_text().contains("backend kept"),
        "nothing half-applied"
    );
    assert_eq!(
        a.call(
            "DELETE",
            &format!("/v2/services/haproxy/transactions/{id}"),
            None
        )
        .status,
        204
    );
    assert_eq!(
        a.call(
            "GET",
            &format!("/v2/services/haproxy/transactions/{id}"),
            None
        )
        .status,
        404
    );
}

#[test]
fn concurrent_writers_never_lose_a_change() {
    let a = Arc::new(Appliance::start());
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let a = a.clone();
            std::thread::spawn(move || {
                let mut conflicts = 0;
                for i in 0..5 {
                    let body = json!({"name": format!("w{w}-{i}"), "mode": "tcp"}).to_string();
                    loop {
                        let v = a.version();
                        let r = a.call("POST", &format!("{CFG}/backends?version={v}"), Some(&body));
                        match r.status {
                            202 => break,
                            409 => conflicts += 1,
                            s => panic!("{s}: {}", r.body),
                        }
                        assert!(conflicts < 500, "no progress");
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: usize = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    let doc = Document::parse(&a.config_text());
    let names: Vec<String> = model::list(&doc, Kind::Backend, None)
        .expect("backends")
        .iter()
        .filter_map(|b| b["name"].as_str().map(String::from))
        .collect();
    assert_eq!(names.len(), 30, "{names:?}");
    assert_eq!(doc.version, 31, "one version per change");
    assert!(a.haproxy_accepts());
    report(&format!(
        "concurrent writers: 30 changes by 6 clients committed, {conflicts} answered 409 and retried"
    ));
}

#[test]
fn kill_9_during_a_commit_leaves_the_old_or_the_new_file() {
    let mut a = Appliance::start();
    let (mut old_seen, mut new_seen) = (0, 0);
    for i in 0..16u64 {
        let old = a.config_text();
        let mut expected = Document::parse(&old);
        let body = json!({"name": format!("b{i}"), "mode": "tcp"});
        model::create(&mut expected, Kind::Backend, &body, None).expect("model");
        expected.version += 1;
        let new = expected.render();
        let v = a.version();
        let path = format!("{CFG}/backends?version={v}");
        let body = body.to_string();
        let pid = a.api_pid().expect("the API runs").to_string();
        std::thread::scope(|s| {
            let client = s.spawn(|| a.call("POST", &path, Some(&body)).status);
            std::thread::sleep(Duration::from_millis(i * 15));
            let killed = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
            assert!(killed.is_ok_and(|k| k.success()));
            let _ = client.join();
        });
        a.kill_api();
        let now = a.config_text();
        if now == old {
            old_seen += 1;
        } else {
            assert_eq!(
                now,
                new,
                "after kill -9 at {} ms: neither the old nor the new file",
                i * 15
            );
            new_seen += 1;
        }
        a.start_api();
        assert!(a.haproxy_accepts());
    }
    assert!(
        std::fs::read_dir(a.dir.path())
            .expect("dir")
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().contains("candidate")),
        "a restart removes a leftover candidate"
    );
    report(&format!(
        "kill -9 mid-commit: 16 kills, {old_seen} left the old file, {new_seen} the new one, none a mix"
    ));
}

#[test]
fn a_steady_client_sees_no_failed_request_during_50_commits() {
    let a = Appliance::start();
    let (b1, b2) = (backend("one"), backend("two"));
    let vip_port = common::free_port();
    let v = a.version();
    for (path, body) in [
        (
            format!("{CFG}/backends?version={v}"),
            json!({"name": "steady-be", "mode": "tcp"}),
        ),
        (
            format!("{CFG}/servers?backend=steady-be&version={}", v + 1),
            json!({"name": "a", "address": "127.0.0.1", "port": b1}),
        ),
        (
            format!("{CFG}/servers?backend=steady-be&version={}", v + 2),
            json!({"name": "b", "address": "127.0.0.1", "port": b2}),
        ),
        (
            format!("{CFG}/frontends?version={}", v + 3),
            json!({"name": "steady", "mode": "tcp", "default_backend": "steady-be"}),
        ),
        (
            format!(
                "{CFG}/binds?frontend=steady&version={}&force_reload=true",
                v + 4
            ),
            json!({"name": "vip", "address": "127.0.0.30", "port": vip_port}),
        ),
    ] {
        let r = a.call("POST", &path, Some(&body.to_string()));
        assert!(r.status / 100 == 2, "{path}: {}", r.body);
    }
    common::wait_for(|| fetch("127.0.0.30", vip_port).is_some(), "the steady VIP");

    let stop = Arc::new(AtomicBool::new(false));
    let (requests, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = {
        let (stop, requests, failures) = (stop.clone(), requests.clone(), failures.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                requests.fetch_add(1, Ordering::Relaxed);
                match fetch("127.0.0.30", vip_port) {
                    Some(answer) if answer == "one" || answer == "two" => {}
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    for i in 0..50 {
        let v = a.version();
        let body =
            json!({"name": format!("churn{i}"), "mode": "tcp", "default_backend": "steady-be"})
                .to_string();
        let r = a.call(
            "POST",
            &format!("{CFG}/frontends?version={v}&force_reload=true"),
            Some(&body),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    stop.store(true, Ordering::Relaxed);
    client.join().expect("client");
    let (n, failed) = (
        requests.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    );
    report(&format!(
        "reloads under traffic: 50 commits with a reload each, steady client {n} requests, {failed} failed"
    ));
    assert!(n > 50, "the client ran throughout ({n} requests)");
    assert_eq!(
        failed, 0,
        "{failed} of {n} requests failed during the reloads"
    );
}

#[test]
fn a_reload_haproxy_cannot_do_is_reported_failed() {
    let a = Appliance::start();
    let v = a.version();
    // haproxy -c accepts a bind on an address this host does not have; starting workers fails.
    let fe = json!({"name": "elsewhere", "mode": "tcp"}).to_string();
    assert_eq!(
        a.call("POST", &format!("{CFG}/frontends?version={v}"), Some(&fe))
            .status,
        202
    );
    let bind = json!({"name": "b", "address": "192.0.2.1", "port": 9}).to_string();
    let r = a.call(
        "POST",
        &format!(
            "{CFG}/binds?frontend=elsewhere&version={}&force_reload=true",
            v + 1
        ),
        Some(&bind),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("could not start workers"), "{}", r.body);
    let reloads = a.call("GET", "/v2/services/haproxy/reloads", None).json();
    let last = reloads
        .as_array()
        .and_then(|l| l.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["status"], "failed", "{reloads}");
    report(&format!("failed reload reported: {}", last["response"]));
}

#[test]
fn a_refused_request_with_a_large_body_still_gets_its_answer() {
    let a = Appliance::start();
    // A client that writes its whole body before reading (Python's http stack does): the 401,
    // 404 or 405 must reach it, not a reset connection.
    let script = r#"
import socket, ssl, sys
ca, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
body = b'{"name": "x", "pad": "' + b'a' * 200000 + b'"}'
for _ in range(10):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
    head = "POST %s HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (path, len(body))
    s.sendall(head.encode() + body)
    print(s.recv(100).decode(errors="replace").split("\r\n")[0])
    s.close()
"#;
    for (path, want) in [
        (
            format!("{CFG}/frontends?version=1"),
            "HTTP/1.1 401 Unauthorized",
        ),
        ("/v2/no/such/path".to_string(), "HTTP/1.1 401 Unauthorized"),
    ] {
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(a.path("ca.crt"))
            .arg(a.port.to_string())
            .arg(&path)
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            text.lines().filter(|l| *l == want).count(),
            10,
            "{path}:\n{text}"
        );
    }
}
