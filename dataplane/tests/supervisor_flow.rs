//! The vSphere Supervisor's use of the Data Plane API, against a real haproxy over real TLS:
//! credentials, one transaction per service, traffic through the VIP to both servers, a stale
//! version refused, the service deleted.

mod common;

use common::{Appliance, backend, fetch};
use serde_json::json;

const VIP: &str = "127.0.0.10";

fn create_service(a: &Appliance, name: &str, vip_port: u16, servers: &[u16]) -> String {
    let v = a.version();
    let r = a.call(
        "POST",
        &format!("/v2/services/haproxy/transactions?version={v}"),
        None,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let t = r.json();
    assert_eq!(t["status"], "in_progress");
    let id = t["id"].as_str().expect("id").to_string();
    let cfg = "/v2/services/haproxy/configuration";
    let be = format!("{name}-be");
    let posts = [
        (
            format!("{cfg}/backends?transaction_id={id}"),
            json!({"name": be, "mode": "tcp", "balance": {"algorithm": "roundrobin"}}),
        ),
        (
            format!("{cfg}/frontends?transaction_id={id}"),
            json!({"name": name, "mode": "tcp", "default_backend": be, "tcplog": true}),
        ),
        (
            format!("{cfg}/binds?frontend={name}&transaction_id={id}"),
            json!({"name": "vip", "address": VIP, "port": vip_port}),
        ),
    ];
    for (path, body) in posts {
        let r = a.call("POST", &path, Some(&body.to_string()));
        assert_eq!(r.status, 202, "{path}: {}", r.body);
        assert_eq!(r.json()["name"], body["name"]);
    }
    for (i, port) in servers.iter().enumerate() {
        let body = json!({"name": format!("s{i}"), "address": "127.0.0.1", "port": port, "check": "enabled", "weight": 100});
        let r = a.call(
            "POST",
            &format!("{cfg}/servers?backend={be}&transaction_id={id}"),
            Some(&body.to_string()),
        );
        assert_eq!(r.status, 202, "{}", r.body);
    }
    let r = a.call(
        "PUT",
        &format!("/v2/services/haproxy/transactions/{id}"),
        None,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["status"], "success");
    assert_eq!(r.json()["_version"], v + 1);
    r.header("Reload-ID").expect("a Reload-ID header")
}

#[test]
fn the_supervisor_programs_a_service_over_tls() {
    let a = Appliance::start();

    let r = a.request("GET", "/v2/info", None, None);
    assert_eq!(r.status, 401);
    assert!(
        r.header("WWW-Authenticate")
            .is_some_and(|h| h.starts_with("Basic")),
        "{}",
        r.headers
    );
    assert_eq!(r.json()["code"], 401);
    assert_eq!(
        a.request("GET", "/v2/info", None, Some("wrong.curlrc"))
            .status,
        401
    );
    let info = a.call("GET", "/v2/info", None);
    assert_eq!(info.status, 200);
    assert!(
        info.json()["api"]["version"]
            .as_str()
            .is_some_and(|v| v.contains("haproxy-dataplaneapi"))
    );

    let spec = a.call("GET", "/v2/specification", None);
    assert_eq!(spec.status, 200);
    assert_eq!(
        (&spec.json()["swagger"], &spec.json()["basePath"]),
        (&json!("2.0"), &json!("/v2"))
    );

    let (b1, b2) = (backend("backend-one"), backend("backend-two"));
    let vip_port = common::free_port();
    let reload = create_service(&a, "svc1", vip_port, &[b1, b2]);
    assert_eq!(a.wait_reload(&reload)["status"], "succeeded");

    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        seen.insert(fetch(VIP, vip_port).expect("the VIP answers"));
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["backend-one", "backend-two"]
    );

    let listed = a.call(
        "GET",
        "/v2/services/haproxy/configuration/servers?backend=svc1-be",
        None,
    );
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.header("Configuration-Version"),
        Some(a.version().to_string())
    );
    assert_eq!(listed.json()["data"].as_array().map(Vec::len), Some(2));

    let stale = a.version() - 1;
    let r = a.call(
        "POST",
        &format!("/v2/services/haproxy/configuration/frontends?version={stale}"),
        Some(r#"{"name": "late"}"#),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(!a.config_text().contains("late"));

    let v = a.version();
    let r = a.call(
        "DELETE",
        &format!("/v2/services/haproxy/configuration/frontends/svc1?version={v}&force_reload=true"),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.body);
    common::wait_for(
        || fetch(VIP, vip_port).is_none(),
        "the deleted service to stop answering",
    );
    let r = a.call(
        "GET",
        "/v2/services/haproxy/configuration/frontends/svc1",
        None,
    );
    assert_eq!(r.status, 404);
    assert!(a.haproxy_accepts());
}
