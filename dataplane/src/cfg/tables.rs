//! The tables: every field of the spec's frontend, backend, server and bind models that is one
//! haproxy directive or keyword, with the words it stands for.

use serde_json::{Map, Value};

use super::codecs::{
    BALANCE, CHECK, COOKIE, FORWARDFOR, HASH_TYPE, HTTP_CHECK, MONITOR_FAIL, REDISPATCH,
    STICK_TABLE,
};
use super::fields::{
    Directive, FieldError, LineField, ObjectCodec, SectionField, Type, flag, knows, on_only,
    read_params, sf, val, write_params,
};

const MODES: &[&str] = &["http", "tcp"];
const CONNECTION_MODES: &[&str] = &["httpclose", "http-server-close", "http-keep-alive"];

use Directive::{Merged, Object, Option as Opt, OptionChoice, Value as Val};

pub const FRONTEND: &[SectionField] = &[
    sf("mode", Type::Enum(MODES), Val(&["mode"])),
    sf("maxconn", Type::Int, Val(&["maxconn"])),
    sf("default_backend", Type::Word, Val(&["default_backend"])),
    sf("bind_process", Type::Word, Val(&["bind-process"])),
    sf("client_timeout", Type::Millis, Val(&["timeout", "client"])),
    sf(
        "http_keep_alive_timeout",
        Type::Millis,
        Val(&["timeout", "http-keep-alive"]),
    ),
    sf(
        "http_request_timeout",
        Type::Millis,
        Val(&["timeout", "http-request"]),
    ),
    sf("log_tag", Type::Word, Val(&["log-tag"])),
    sf("log_format", Type::Text, Val(&["log-format"])),
    sf("log_format_sd", Type::Text, Val(&["log-format-sd"])),
    sf("unique_id_format", Type::Text, Val(&["unique-id-format"])),
    sf("unique_id_header", Type::Text, Val(&["unique-id-header"])),
    sf("monitor_uri", Type::Word, Val(&["monitor-uri"])),
    sf("httplog", Type::Bool, Opt(&["httplog"])),
    sf("clflog", Type::Bool, Opt(&["httplog", "clf"])),
    sf("tcplog", Type::Bool, Opt(&["tcplog"])),
    sf("dontlognull", Type::Toggle, Opt(&["dontlognull"])),
    sf(
        "http-buffer-request",
        Type::Toggle,
        Opt(&["http-buffer-request"]),
    ),
    sf("http-use-htx", Type::Toggle, Opt(&["http-use-htx"])),
    sf(
        "log_separate_errors",
        Type::Toggle,
        Opt(&["log-separate-errors"]),
    ),
    sf("logasap", Type::Toggle, Opt(&["logasap"])),
    sf("clitcpka", Type::Toggle, Opt(&["clitcpka"])),
    sf(
        "contstats",
        Type::Enum(&["enabled"]),
        Val(&["option", "contstats"]),
    ),
    sf(
        "http_connection_mode",
        Type::Enum(CONNECTION_MODES),
        OptionChoice,
    ),
    sf("forwardfor", Type::Word, Object(&FORWARDFOR)),
    sf("monitor_fail", Type::Word, Object(&MONITOR_FAIL)),
];

pub const BACKEND: &[SectionField] = &[
    sf("mode", Type::Enum(MODES), Val(&["mode"])),
    sf("balance", Type::Word, Object(&BALANCE)),
    sf("bind_process", Type::Word, Val(&["bind-process"])),
    sf("log_tag", Type::Word, Val(&["log-tag"])),
    sf("retries", Type::Int, Val(&["retries"])),
    sf("check_timeout", Type::Millis, Val(&["timeout", "check"])),
    sf(
        "connect_timeout",
        Type::Millis,
        Val(&["timeout", "connect"]),
    ),
    sf("queue_timeout", Type::Millis, Val(&["timeout", "queue"])),
    sf("server_timeout", Type::Millis, Val(&["timeout", "server"])),
    sf("tunnel_timeout", Type::Millis, Val(&["timeout", "tunnel"])),
    sf(
        "http_keep_alive_timeout",
        Type::Millis,
        Val(&["timeout", "http-keep-alive"]),
    ),
    sf(
        "http_request_timeout",
        Type::Millis,
        Val(&["timeout", "http-request"]),
    ),
    sf(
        "external_check_command",
        Type::Word,
        Val(&["external-check", "command"]),
    ),
    sf(
        "external_check_path",
        Type::Word,
        Val(&["external-check", "path"]),
    ),
    sf(
        "http_reuse",
        Type::Enum(&["aggressive", "always", "never", "safe"]),
        Val(&["http-reuse"]),
    ),
    sf("abortonclose", Type::Toggle, Opt(&["abortonclose"])),
    sf("allbackups", Type::Toggle, Opt(&["allbackups"])),
    sf("external_check", Type::Toggle, Opt(&["external-check"])),
    sf(
        "http-buffer-request",
        Type::Toggle,
        Opt(&["http-buffer-request"]),
    ),
    sf("http-use-htx", Type::Toggle, Opt(&["http-use-htx"])),
    sf(
        "http_pretend_keepalive",
        Type::Toggle,
        Opt(&["http-pretend-keepalive"]),
    ),
    sf(
        "http_connection_mode",
        Type::Enum(CONNECTION_MODES),
        OptionChoice,
    ),
    sf("adv_check", Type::Word, Merged(&CHECK)),
    sf("forwardfor", Type::Word, Object(&FORWARDFOR)),
    sf("redispatch", Type::Word, Object(&REDISPATCH)),
    sf("cookie", Type::Word, Object(&COOKIE)),
    sf("hash_type", Type::Word, Object(&HASH_TYPE)),
    sf("stick_table", Type::Word, Object(&STICK_TABLE)),
    sf("http-check", Type::Word, Object(&HTTP_CHECK)),
    sf("default_server", Type::Word, Object(&DEFAULT_SERVER)),
];

const SSL_VERSIONS: &[&str] = &["SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

pub const SERVER: &[LineField] = &[
    flag("agent-check", "agent-check", "no-agent-check"),
    flag("backup", "backup", "no-backup"),
    flag("check", "check", "no-check"),
    flag("check-ssl", "check-ssl", "no-check-ssl"),
    flag(
        "check_via_socks4",
        "check-via-socks4",
        "no-check-via-socks4",
    ),
    flag("force_sslv3", "force-sslv3", "no-force-sslv3"),
    flag("force_tlsv10", "force-tlsv10", "no-force-tlsv10"),
    flag("force_tlsv11", "force-tlsv11", "no-force-tlsv11"),
    flag("force_tlsv12", "force-tlsv12", "no-force-tlsv12"),
    flag("force_tlsv13", "force-tlsv13", "no-force-tlsv13"),
    flag("maintenance", "disabled", "enabled"),
    on_only("no_sslv3", Type::Toggle, "no-sslv3"),
    on_only("no_tlsv10", Type::Toggle, "no-tlsv10"),
    on_only("no_tlsv11", Type::Toggle, "no-tlsv11"),
    on_only("no_tlsv12", Type::Toggle, "no-tlsv12"),
    on_only("no_tlsv13", Type::Toggle, "no-tlsv13"),
    on_only("no_verifyhost", Type::Toggle, "no-verifyhost"),
    flag("send-proxy", "send-proxy", "no-send-proxy"),
    flag("send-proxy-v2", "send-proxy-v2", "no-send-proxy-v2"),
    flag(
        "send_proxy_v2_ssl",
        "send-proxy-v2-ssl",
        "no-send-proxy-v2-ssl",
    ),
    flag(
        "send_proxy_v2_ssl_cn",
        "send-proxy-v2-ssl-cn",
        "no-send-proxy-v2-ssl-cn",
    ),
    flag("ssl", "ssl", "no-ssl"),
    flag("ssl_reuse", "ssl-reuse", "no-ssl-reuse"),
    flag("stick", "stick", "non-stick"),
    flag("tfo", "tfo", "no-tfo"),
    flag("tls_tickets", "tls-tickets", "no-tls-tickets"),
    on_only("allow_0rtt", Type::Bool, "allow-0rtt"),
    val("agent-addr", Type::Word, "agent-addr"),
    val("agent-inter", Type::Millis, "agent-inter"),
    val("agent-port", Type::Port, "agent-port"),
    val("agent-send", Type::Text, "agent-send"),
    val("alpn", Type::Word, "alpn"),
    val("check-sni", Type::Word, "check-sni"),
    val("check_alpn", Type::Word, "check-alpn"),
    val("check_proto", Type::Word, "check-proto"),
    val("ciphers", Type::Word, "ciphers"),
    val("ciphersuites", Type::Word, "ciphersuites"),
    val("cookie", Type::Word, "cookie"),
    val("crl_file", Type::Word, "crl-file"),
    val("downinter", Type::Millis, "downinter"),
    val("error_limit", Type::Int, "error-limit"),
    val("fall", Type::Int, "fall"),
    val("fastinter", Type::Millis, "fastinter"),
    val("health_check_port", Type::Port, "port"),
    val("id", Type::Int, "id"),
    val("init-addr", Type::Word, "init-addr"),
    val("inter", Type::Millis, "inter"),
    val(
        "log_proto",
        Type::Enum(&["legacy", "octet-count"]),
        "log-proto",
    ),
    val("max_reuse", Type::Int, "max-reuse"),
    val("maxconn", Type::Int, "maxconn"),
    val("maxqueue", Type::Int, "maxqueue"),
    val("minconn", Type::Int, "minconn"),
    val("namespace", Type::Word, "namespace"),
    val("npn", Type::Word, "npn"),
    val("observe", Type::Enum(&["layer4", "layer7"]), "observe"),
    val(
        "on-error",
        Type::Enum(&["fastinter", "fail-check", "sudden-death", "mark-down"]),
        "on-error",
    ),
    val(
        "on-marked-down",
        Type::Enum(&["shutdown-sessions"]),
        "on-marked-down",
    ),
    val(
        "on-marked-up",
        Type::Enum(&["shutdown-backup-sessions"]),
        "on-marked-up",
    ),
    val("pool_low_conn", Type::Int, "pool-low-conn"),
    val("pool_max_conn", Type::Int, "pool-max-conn"),
    val("pool_purge_delay", Type::Millis, "pool-purge-delay"),
    val("proto", Type::Word, "proto"),
    val(
        "proxy-v2-options",
        Type::List(&[
            "ssl",
            "cert-cn",
            "ssl-cipher",
            "cert-sig",
            "cert-key",
            "authority",
            "crc32c",
            "unique-id",
        ]),
        "proxy-v2-options",
    ),
    val("redir", Type::Word, "redir"),
    val("resolve-net", Type::Word, "resolve-net"),
    val(
        "resolve-prefer",
        Type::Enum(&["ipv4", "ipv6"]),
        "resolve-prefer",
    ),
    val("resolve_opts", Type::Word, "resolve-opts"),
    val("resolvers", Type::Word, "resolvers"),
    val("rise", Type::Int, "rise"),
    val("slowstart", Type::Millis, "slowstart"),
    val("sni", Type::Word, "sni"),
    val("socks4", Type::Word, "socks4"),
    val("source", Type::Word, "source"),
    val("ssl_cafile", Type::Word, "ca-file"),
    val("ssl_certificate", Type::Word, "crt"),
    val("ssl_max_ver", Type::Enum(SSL_VERSIONS), "ssl-max-ver"),
    val("ssl_min_ver", Type::Enum(SSL_VERSIONS), "ssl-min-ver"),
    val("tcp_ut", Type::Millis, "tcp-ut"),
    val("track", Type::Word, "track"),
    val("verify", Type::Enum(&["none", "required"]), "verify"),
    val("verifyhost", Type::Word, "verifyhost"),
    val("weight", Type::Int, "weight"),
];

pub const BIND: &[LineField] = &[
    on_only("accept_proxy", Type::Bool, "accept-proxy"),
    on_only("allow_0rtt", Type::Bool, "allow-0rtt"),
    on_only("defer_accept", Type::Bool, "defer-accept"),
    on_only("expose_fd_listeners", Type::Bool, "expose-fd listeners"),
    on_only("force_sslv3", Type::Bool, "force-sslv3"),
    on_only("force_tlsv10", Type::Bool, "force-tlsv10"),
    on_only("force_tlsv11", Type::Bool, "force-tlsv11"),
    on_only("force_tlsv12", Type::Bool, "force-tlsv12"),
    on_only("force_tlsv13", Type::Bool, "force-tlsv13"),
    on_only("generate_certificates", Type::Bool, "generate-certificates"),
    on_only("no_ca_names", Type::Bool, "no-ca-names"),
    on_only("no_sslv3", Type::Bool, "no-sslv3"),
    on_only("no_tls_tickets", Type::Bool, "no-tls-tickets"),
    on_only("no_tlsv10", Type::Bool, "no-tlsv10"),
    on_only("no_tlsv11", Type::Bool, "no-tlsv11"),
    on_only("no_tlsv12", Type::Bool, "no-tlsv12"),
    on_only("no_tlsv13", Type::Bool, "no-tlsv13"),
    on_only("prefer_client_ciphers", Type::Bool, "prefer-client-ciphers"),
    on_only("ssl", Type::Bool, "ssl"),
    on_only("strict_sni", Type::Bool, "strict-sni"),
    on_only("tfo", Type::Bool, "tfo"),
    on_only("transparent", Type::Bool, "transparent"),
    on_only("v4v6", Type::Bool, "v4v6"),
    on_only("v6only", Type::Bool, "v6only"),
    val("accept_netscaler_cip", Type::Int, "accept-netscaler-cip"),
    val("alpn", Type::Word, "alpn"),
    val("backlog", Type::Word, "backlog"),
    val("ca_ignore_err", Type::Word, "ca-ignore-err"),
    val("ca_sign_file", Type::Word, "ca-sign-file"),
    val("ca_sign_pass", Type::Word, "ca-sign-pass"),
    val("ca_verify_file", Type::Word, "ca-verify-file"),
    val("ciphers", Type::Word, "ciphers"),
    val("ciphersuites", Type::Word, "ciphersuites"),
    val("crl_file", Type::Word, "crl-file"),
    val("crt_ignore_err", Type::Word, "crt-ignore-err"),
    val("crt_list", Type::Word, "crt-list"),
    val("curves", Type::Word, "curves"),
    val("ecdhe", Type::Word, "ecdhe"),
    val("gid", Type::Int, "gid"),
    val("group", Type::Word, "group"),
    val("id", Type::Word, "id"),
    val("interface", Type::Word, "interface"),
    val("level", Type::Enum(&["user", "operator", "admin"]), "level"),
    val("maxconn", Type::Int, "maxconn"),
    val("mode", Type::Word, "mode"),
    val("mss", Type::Word, "mss"),
    val("namespace", Type::Word, "namespace"),
    val("nice", Type::Int, "nice"),
    val("npn", Type::Word, "npn"),
    val("process", Type::Word, "process"),
    val("proto", Type::Word, "proto"),
    val(
        "severity_output",
        Type::Enum(&["none", "number", "string"]),
        "severity-output",
    ),
    val("ssl_cafile", Type::Word, "ca-file"),
    val("ssl_certificate", Type::Word, "crt"),
    val("ssl_max_ver", Type::Enum(SSL_VERSIONS), "ssl-max-ver"),
    val("ssl_min_ver", Type::Enum(SSL_VERSIONS), "ssl-min-ver"),
    val("tcp_user_timeout", Type::Millis, "tcp-ut"),
    val("tls_ticket_keys", Type::Word, "tls-ticket-keys"),
    val("uid", Type::Word, "uid"),
    val("user", Type::Word, "user"),
    val(
        "verify",
        Type::Enum(&["none", "optional", "required"]),
        "verify",
    ),
];

// default-server <the server keywords>
pub(super) static DEFAULT_SERVER: ObjectCodec = ObjectCodec {
    read: |ws| match ws {
        [kw, params @ ..] if kw == "default-server" => {
            let mut out = Map::new();
            read_params(SERVER, params, &mut out);
            Some(Value::Object(out))
        }
        _ => None,
    },
    write: |key, obj| {
        if let Some(k) = obj.keys().find(|k| !knows(SERVER, k)) {
            return Err(FieldError {
                key: format!("{key}.{k}"),
                expected: "a server keyword this server supports".into(),
            });
        }
        let mut out = vec!["default-server".to_string()];
        out.extend(write_params(SERVER, obj)?);
        Ok(out)
    },
};
