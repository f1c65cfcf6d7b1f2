//! The field tables against the real haproxy: objects using many of the spec's fields are
//! written, pass `haproxy -c`, and read back as they were sent.

mod common;

use common::Appliance;
use serde_json::{Value, json};

const CFG: &str = "/v2/services/haproxy/configuration";

fn create_and_read_back(a: &Appliance, collection: &str, query: &str, object: &Value) {
    let v = a.version();
    let r = a.call(
        "POST",
        &format!("{CFG}/{collection}?{query}version={v}"),
        Some(&object.to_string()),
    );
    assert_eq!(
        r.status, 202,
        "{collection}: haproxy -c refused what we wrote: {}",
        r.body
    );
    let name = object["name"].as_str().expect("name");
    let back = a.call("GET", &format!("{CFG}/{collection}/{name}?{query}"), None);
    assert_eq!(back.status, 200);
    assert_eq!(
        &back.json()["data"],
        object,
        "{collection} read back differs"
    );
}

#[test]
fn objects_with_many_fields_pass_haproxy_and_read_back() {
    let a = Appliance::start();
    let backend = json!({
        "name": "be-all", "mode": "http", "balance": {"algorithm": "uri", "uri_depth": 3, "uri_whole": true},
        "retries": 3, "check_timeout": 2000, "connect_timeout": 5000, "queue_timeout": 30000,
        "server_timeout": 60000, "tunnel_timeout": 3_600_000, "http_keep_alive_timeout": 1000,
        "http_request_timeout": 5000, "http_reuse": "safe", "abortonclose": "enabled",
        "allbackups": "disabled", "http_pretend_keepalive": "enabled", "http_connection_mode": "http-keep-alive",
        "adv_check": "httpchk", "httpchk_params": {"method": "GET", "uri": "/healthz", "version": "HTTP/1.1"},
        "forwardfor": {"enabled": "enabled", "header": "X-Client", "ifnone": true},
        "redispatch": {"enabled": "enabled", "interval": 2},
        "cookie": {"name": "SRV", "type": "insert", "indirect": true, "nocache": true, "maxidle": 60},
        "hash_type": {"method": "consistent", "function": "sdbm"},
        "stick_table": {"type": "ip", "size": 102_400, "expire": 1_800_000, "store": "conn_cur"},
        "http-check": {"type": "expect", "match": "status", "pattern": "200"},
        "default_server": {"inter": 3000, "rise": 2, "fall": 3},
        "log_tag": "be-all"
    });
    create_and_read_back(&a, "backends", "", &backend);
    let server = json!({
        "name": "s1", "address": "127.0.0.1", "port": 8080, "check": "enabled", "weight": 50,
        "inter": 2000, "fastinter": 500, "downinter": 5000, "rise": 2, "fall": 3, "maxconn": 100,
        "maxqueue": 10, "backup": "disabled", "slowstart": 10000, "cookie": "s1", "on-error": "mark-down",
        "observe": "layer7", "send-proxy-v2": "enabled", "proxy-v2-options": ["ssl", "cert-cn"],
        "health_check_port": 8081, "agent-check": "disabled", "maintenance": "disabled", "id": 7
    });
    create_and_read_back(&a, "servers", "backend=be-all&", &server);
    let frontend = json!({
        "name": "fe-all", "mode": "http", "maxconn": 1000, "default_backend": "be-all",
        "client_timeout": 30000, "http_request_timeout": 10000, "httplog": true,
        "dontlognull": "enabled", "log_separate_errors": "enabled", "http_connection_mode": "httpclose",
        "forwardfor": {"enabled": "enabled"}, "unique_id_format": "%{+X}o %ci:%cp_%fi:%fp_%Ts_%rt",
        "unique_id_header": "X-Unique-ID", "log_format": "%ci:%cp [%tr] %ft %b/%s %ST %B",
        "monitor_uri": "/alive", "monitor_fail": {"cond": "if", "cond_test": "FALSE"}
    });
    create_and_read_back(&a, "frontends", "", &frontend);
    let bind = json!({
        "name": "web", "address": "127.0.0.40", "port": 8443, "maxconn": 500, "defer_accept": true,
        "tfo": true, "accept_proxy": true, "v4v6": true, "backlog": "1024", "tcp_user_timeout": 30000
    });
    create_and_read_back(&a, "binds", "frontend=fe-all&", &bind);
    assert!(a.haproxy_accepts());
}
