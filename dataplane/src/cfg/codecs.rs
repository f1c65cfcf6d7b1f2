//! The directives whose JSON value is an object (`balance`, `forwardfor`, `cookie`, …) or that
//! stand for several keys (`option httpchk GET /` is `adv_check` and `httpchk_params`).

use serde_json::{Map, Value, json};

use super::fields::{FieldError, MergedCodec, ObjectCodec, Type, bad};

// ---- object-valued fields ----

pub(super) static FORWARDFOR: ObjectCodec = ObjectCodec {
    read: |ws| {
        let ws = as_strs(ws);
        let ["option", "forwardfor", rest @ ..] = ws.as_slice() else {
            return None;
        };
        let mut out = Map::new();
        out.insert("enabled".into(), json!("enabled"));
        let mut it = rest.iter();
        while let Some(w) = it.next() {
            match *w {
                "except" => out.insert("except".into(), json!(it.next()?)),
                "header" => out.insert("header".into(), json!(it.next()?)),
                "if-none" => out.insert("ifnone".into(), json!(true)),
                _ => return None,
            };
        }
        Some(Value::Object(out))
    },
    write: |key, obj| {
        only_keys(key, obj, &["enabled", "except", "header", "ifnone"])?;
        if obj.get("enabled").and_then(Value::as_str) != Some("enabled") {
            return Err(bad(&format!("{key}.enabled"), "\"enabled\" (required)"));
        }
        let mut out = vec!["option".to_string(), "forwardfor".to_string()];
        for (k, word) in [("except", "except"), ("header", "header")] {
            if let Some(v) = obj.get(k).filter(|v| !v.is_null()) {
                out.push(word.to_string());
                out.push(Type::Word.to_word(&format!("{key}.{k}"), v)?);
            }
        }
        match obj.get("ifnone") {
            Some(Value::Bool(true)) => out.push("if-none".to_string()),
            None | Some(Value::Bool(false) | Value::Null) => {}
            Some(_) => return Err(bad(&format!("{key}.ifnone"), "true or false")),
        }
        Ok(out)
    },
};

pub(super) static REDISPATCH: ObjectCodec = ObjectCodec {
    read: |ws| match as_strs(ws).as_slice() {
        ["option", "redispatch"] => Some(json!({"enabled": "enabled"})),
        ["option", "redispatch", n] => {
            Some(json!({"enabled": "enabled", "interval": n.parse::<i64>().ok()?}))
        }
        ["no", "option", "redispatch"] => Some(json!({"enabled": "disabled"})),
        _ => None,
    },
    write: |key, obj| {
        only_keys(key, obj, &["enabled", "interval"])?;
        let on = Type::Toggle.flag_value(
            &format!("{key}.enabled"),
            obj.get("enabled").unwrap_or(&Value::Null),
        )?;
        let mut out: Vec<String> = match on {
            Some(false) => vec!["no".into(), "option".into(), "redispatch".into()],
            _ => vec!["option".into(), "redispatch".into()],
        };
        if let Some(v) = obj.get("interval").filter(|v| !v.is_null())
            && on != Some(false)
        {
            out.push(Type::Int.to_word(&format!("{key}.interval"), v)?);
        }
        Ok(out)
    },
};

const ALGORITHMS: &[&str] = &[
    "roundrobin",
    "static-rr",
    "leastconn",
    "first",
    "source",
    "uri",
    "url_param",
    "hdr",
    "random",
    "rdp-cookie",
];

pub(super) static BALANCE: ObjectCodec = ObjectCodec {
    read: read_balance,
    write: write_balance,
};

fn read_balance(ws: &[String]) -> Option<Value> {
    let ws = as_strs(ws);
    let ["balance", alg, rest @ ..] = ws.as_slice() else {
        return None;
    };
    let mut out = Map::new();
    let (name, arg) = match alg.split_once('(') {
        Some((n, a)) => (n, Some(a.strip_suffix(')')?)),
        None => (*alg, None),
    };
    if !ALGORITHMS.contains(&name) {
        return None;
    }
    out.insert("algorithm".into(), json!(name));
    match (name, arg) {
        ("hdr", Some(h)) => out.insert("hdr_name".into(), json!(h)),
        ("rdp-cookie", Some(c)) => out.insert("rdp_cookie_name".into(), json!(c)),
        ("random", Some(n)) => out.insert("random_draws".into(), json!(n.parse::<i64>().ok()?)),
        (_, None) => None,
        _ => return None,
    };
    let mut it = rest.iter();
    if name == "url_param" {
        out.insert("url_param".into(), json!(it.next()?));
    }
    while let Some(w) = it.next() {
        let mut number = |k: &str| -> Option<()> {
            out.insert(k.into(), json!(it.next()?.parse::<i64>().ok()?));
            Some(())
        };
        match (name, *w) {
            ("hdr", "use_domain_only") => {
                out.insert("hdr_use_domain_only".into(), json!(true));
            }
            ("uri", "whole") => {
                out.insert("uri_whole".into(), json!(true));
            }
            ("uri", "len") => number("uri_len")?,
            ("uri", "depth") => number("uri_depth")?,
            ("url_param", "check_post") => number("url_param_check_post")?,
            ("url_param", "max_wait") => number("url_param_max_wait")?,
            _ => return None,
        }
    }
    Some(Value::Object(out))
}

fn write_balance(key: &str, obj: &Map<String, Value>) -> Result<Vec<String>, FieldError> {
    only_keys(
        key,
        obj,
        &[
            "algorithm",
            "hdr_name",
            "hdr_use_domain_only",
            "random_draws",
            "rdp_cookie_name",
            "uri_depth",
            "uri_len",
            "uri_whole",
            "url_param",
            "url_param_check_post",
            "url_param_max_wait",
        ],
    )?;
    let sub = |k: &str| format!("{key}.{k}");
    let get = |k: &str| obj.get(k).filter(|v| !v.is_null());
    let alg = Type::Enum(ALGORITHMS).to_word(
        &sub("algorithm"),
        obj.get("algorithm").unwrap_or(&Value::Null),
    )?;
    let mut out = vec!["balance".to_string()];
    let with_arg = |k: &str, ty: Type| -> Result<String, FieldError> {
        Ok(match get(k) {
            Some(v) => format!("{alg}({})", ty.to_word(&sub(k), v)?),
            None => alg.clone(),
        })
    };
    match alg.as_str() {
        "hdr" => match get("hdr_name") {
            Some(v) => out.push(format!("hdr({})", Type::Word.to_word(&sub("hdr_name"), v)?)),
            None => return Err(bad(&sub("hdr_name"), "a header name (required with hdr)")),
        },
        "rdp-cookie" => out.push(with_arg("rdp_cookie_name", Type::Word)?),
        "random" => out.push(with_arg("random_draws", Type::Int)?),
        "url_param" => {
            out.push(alg.clone());
            match get("url_param") {
                Some(v) => out.push(Type::Word.to_word(&sub("url_param"), v)?),
                None => {
                    return Err(bad(
                        &sub("url_param"),
                        "a parameter name (required with url_param)",
                    ));
                }
            }
        }
        _ => out.push(alg.clone()),
    }
    let flags: &[(&str, &str, &str)] = &[
        ("hdr", "hdr_use_domain_only", "use_domain_only"),
        ("uri", "uri_whole", "whole"),
    ];
    for (a, k, word) in flags {
        if *a == alg && get(k) == Some(&Value::Bool(true)) {
            out.push(word.to_string());
        }
    }
    let numbers: &[(&str, &str, &str)] = &[
        ("uri", "uri_len", "len"),
        ("uri", "uri_depth", "depth"),
        ("url_param", "url_param_check_post", "check_post"),
        ("url_param", "url_param_max_wait", "max_wait"),
    ];
    for (a, k, word) in numbers {
        if let Some(v) = get(k).filter(|_| *a == alg) {
            out.push(word.to_string());
            out.push(Type::Int.to_word(&sub(k), v)?);
        }
    }
    Ok(out)
}

fn as_strs(ws: &[String]) -> Vec<&str> {
    ws.iter().map(String::as_str).collect()
}

fn only_keys(key: &str, obj: &Map<String, Value>, known: &[&str]) -> Result<(), FieldError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(bad(
            &format!("{key}.{k}"),
            format!("no such field; this server knows {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A sub-field's path for messages: `cookie.name`.
fn sub(key: &str, field: &str) -> String {
    format!("{key}.{field}")
}

/// An optional sub-field as one word of the given type.
fn word(
    key: &str,
    obj: &Map<String, Value>,
    field: &str,
    ty: Type,
) -> Result<Option<String>, FieldError> {
    obj.get(field)
        .filter(|v| !v.is_null())
        .map(|v| ty.to_word(&sub(key, field), v))
        .transpose()
}

/// Whether an optional boolean sub-field is true.
fn yes(key: &str, obj: &Map<String, Value>, field: &str) -> Result<bool, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null | Value::Bool(false)) => Ok(false),
        Some(Value::Bool(true)) => Ok(true),
        Some(_) => Err(bad(&sub(key, field), "true or false")),
    }
}

fn strings(ws: &[&str]) -> Vec<String> {
    ws.iter().map(|w| w.to_string()).collect()
}

// cookie <name> [rewrite|insert|prefix] [indirect] [nocache] [postonly] [preserve] [httponly]
//        [secure] [domain <d>]* [maxidle <n>] [maxlife <n>] [dynamic]
const COOKIE_FLAGS: &[&str] = &[
    "indirect", "nocache", "postonly", "preserve", "httponly", "secure", "dynamic",
];

pub(super) static COOKIE: ObjectCodec = ObjectCodec {
    read: |ws| {
        let ws = as_strs(ws);
        let ["cookie", name, rest @ ..] = ws.as_slice() else {
            return None;
        };
        let mut out = Map::new();
        out.insert("name".into(), json!(name));
        let mut domains = Vec::new();
        let mut it = rest.iter();
        while let Some(w) = it.next() {
            match *w {
                "rewrite" | "insert" | "prefix" => {
                    out.insert("type".into(), json!(w));
                }
                f if COOKIE_FLAGS.contains(&f) => {
                    out.insert(f.into(), json!(true));
                }
                "domain" => domains.push(json!({"value": it.next()?})),
                "maxidle" | "maxlife" => {
                    out.insert((*w).into(), json!(it.next()?.parse::<i64>().ok()?));
                }
                _ => return None,
            }
        }
        if !domains.is_empty() {
            out.insert("domain".into(), Value::Array(domains));
        }
        Some(Value::Object(out))
    },
    write: |key, obj| {
        let mut known = vec!["name", "type", "domain", "maxidle", "maxlife"];
        known.extend(COOKIE_FLAGS);
        only_keys(key, obj, &known)?;
        let name = word(key, obj, "name", Type::Word)?
            .ok_or_else(|| bad(&sub(key, "name"), "a cookie name (required)"))?;
        let mut out = vec!["cookie".to_string(), name];
        out.extend(word(
            key,
            obj,
            "type",
            Type::Enum(&["rewrite", "insert", "prefix"]),
        )?);
        for f in COOKIE_FLAGS {
            if yes(key, obj, f)? {
                out.push(f.to_string());
            }
        }
        if let Some(domains) = obj.get("domain").filter(|v| !v.is_null()) {
            let items = domains
                .as_array()
                .ok_or_else(|| bad(&sub(key, "domain"), "an array of {\"value\": DOMAIN}"))?;
            for d in items {
                let v = d
                    .get("value")
                    .ok_or_else(|| bad(&sub(key, "domain"), "an array of {\"value\": DOMAIN}"))?;
                out.push("domain".into());
                out.push(Type::Word.to_word(&sub(key, "domain"), v)?);
            }
        }
        for f in ["maxidle", "maxlife"] {
            if let Some(n) = word(key, obj, f, Type::Int)? {
                out.extend([f.to_string(), n]);
            }
        }
        Ok(out)
    },
};

// hash-type <method> [<function>] [<modifier>]
pub(super) static HASH_TYPE: ObjectCodec = ObjectCodec {
    read: |ws| {
        let ws = as_strs(ws);
        let ["hash-type", method, rest @ ..] = ws.as_slice() else {
            return None;
        };
        let mut out = Map::new();
        out.insert("method".into(), json!(method));
        for w in rest {
            let k = if *w == "avalanche" {
                "modifier"
            } else {
                "function"
            };
            out.insert(k.into(), json!(w));
        }
        Some(Value::Object(out))
    },
    write: |key, obj| {
        only_keys(key, obj, &["method", "function", "modifier"])?;
        let method = word(key, obj, "method", Type::Enum(&["map-based", "consistent"]))?
            .ok_or_else(|| bad(&sub(key, "method"), "map-based or consistent (required)"))?;
        let mut out = vec!["hash-type".to_string(), method];
        out.extend(word(
            key,
            obj,
            "function",
            Type::Enum(&["sdbm", "djb2", "wt6", "crc32"]),
        )?);
        out.extend(word(key, obj, "modifier", Type::Enum(&["avalanche"]))?);
        Ok(out)
    },
};

/// haproxy's size format (`100k`, `1m`, `2g`: powers of 1024).
fn size(word: &str) -> Option<i64> {
    let (digits, factor) = match word.char_indices().last()? {
        (i, 'k' | 'K') => (&word[..i], 1 << 10),
        (i, 'm' | 'M') => (&word[..i], 1 << 20),
        (i, 'g' | 'G') => (&word[..i], 1 << 30),
        _ => (word, 1),
    };
    digits.parse::<i64>().ok()?.checked_mul(factor)
}

// stick-table type <type> [len <keylen>] size <size> [expire <expire>] [nopurge] [peers <p>]
//             [store <data>]
pub(super) static STICK_TABLE: ObjectCodec = ObjectCodec {
    read: |ws| {
        let ws = as_strs(ws);
        let ["stick-table", rest @ ..] = ws.as_slice() else {
            return None;
        };
        let mut out = Map::new();
        let mut it = rest.iter();
        while let Some(w) = it.next() {
            match *w {
                "type" | "peers" | "store" => out.insert((*w).into(), json!(it.next()?)),
                "len" => out.insert("keylen".into(), json!(it.next()?.parse::<i64>().ok()?)),
                "size" => out.insert("size".into(), json!(size(it.next()?)?)),
                "expire" => out.insert("expire".into(), json!(super::fields::millis(it.next()?)?)),
                "nopurge" => out.insert("nopurge".into(), json!(true)),
                _ => return None,
            };
        }
        Some(Value::Object(out))
    },
    write: |key, obj| {
        only_keys(
            key,
            obj,
            &[
                "type", "keylen", "size", "expire", "nopurge", "peers", "store",
            ],
        )?;
        let ty = word(
            key,
            obj,
            "type",
            Type::Enum(&["ip", "ipv6", "integer", "string", "binary"]),
        )?
        .ok_or_else(|| {
            bad(
                &sub(key, "type"),
                "ip, ipv6, integer, string or binary (required)",
            )
        })?;
        let mut out = strings(&["stick-table", "type"]);
        out.push(ty);
        let pairs: &[(&str, &str, Type)] = &[
            ("keylen", "len", Type::Int),
            ("size", "size", Type::Int),
            ("expire", "expire", Type::Millis),
            ("peers", "peers", Type::Word),
            ("store", "store", Type::Word),
        ];
        for (field, kw, ty) in pairs {
            if *field == "store" && yes(key, obj, "nopurge")? {
                out.push("nopurge".into());
            }
            if let Some(v) = word(key, obj, field, *ty)? {
                out.extend([kw.to_string(), v]);
            }
        }
        if !out.iter().any(|w| w == "size") {
            return Err(bad(
                &sub(key, "size"),
                "the table's size (required by haproxy)",
            ));
        }
        Ok(out)
    },
};

// http-check disable-on-404 | send-state | expect [!] <match> <pattern>
pub(super) static HTTP_CHECK: ObjectCodec = ObjectCodec {
    read: |ws| match as_strs(ws).as_slice() {
        ["http-check", t @ ("disable-on-404" | "send-state")] => Some(json!({"type": t})),
        ["http-check", "expect", "!", m, p] => {
            Some(json!({"type": "expect", "exclamation_mark": true, "match": m, "pattern": p}))
        }
        ["http-check", "expect", m, p] => Some(json!({"type": "expect", "match": m, "pattern": p})),
        _ => None,
    },
    write: |key, obj| {
        only_keys(key, obj, &["type", "exclamation_mark", "match", "pattern"])?;
        let ty = word(
            key,
            obj,
            "type",
            Type::Enum(&["disable-on-404", "expect", "send-state"]),
        )?
        .ok_or_else(|| {
            bad(
                &sub(key, "type"),
                "disable-on-404, expect or send-state (required)",
            )
        })?;
        let mut out = vec!["http-check".to_string(), ty.clone()];
        if ty == "expect" {
            if yes(key, obj, "exclamation_mark")? {
                out.push("!".into());
            }
            let m = word(
                key,
                obj,
                "match",
                Type::Enum(&["status", "rstatus", "string", "rstring"]),
            )?;
            let p = word(key, obj, "pattern", Type::Word)?;
            match (m, p) {
                (Some(m), Some(p)) => out.extend([m, p]),
                _ => return Err(bad(key, "match and pattern with type expect")),
            }
        }
        Ok(out)
    },
};

// monitor fail if|unless <condition>
pub(super) static MONITOR_FAIL: ObjectCodec = ObjectCodec {
    read: |ws| match as_strs(ws).as_slice() {
        ["monitor", "fail", cond @ ("if" | "unless"), test @ ..] if !test.is_empty() => {
            Some(json!({"cond": cond, "cond_test": test.join(" ")}))
        }
        _ => None,
    },
    write: |key, obj| {
        only_keys(key, obj, &["cond", "cond_test"])?;
        let cond = word(key, obj, "cond", Type::Enum(&["if", "unless"]))?
            .ok_or_else(|| bad(&sub(key, "cond"), "if or unless (required)"))?;
        let test = word(key, obj, "cond_test", Type::Text)?
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| bad(&sub(key, "cond_test"), "a condition (required)"))?;
        let mut out = strings(&["monitor", "fail"]);
        out.push(cond);
        // The condition is ACL words, written as the administrator wrote them.
        out.extend(test.split_whitespace().map(String::from));
        Ok(out)
    },
};

// option <check> [parameters]: adv_check and, for four of the checks, its parameters object.
pub(super) static CHECK: MergedCodec = MergedCodec {
    keys: &[
        "adv_check",
        "httpchk_params",
        "mysql_check_params",
        "pgsql_check_params",
        "smtpchk_params",
    ],
    read: read_check,
    write: write_check,
};

const ADV_CHECKS: &[&str] = &[
    "ssl-hello-chk",
    "smtpchk",
    "ldap-check",
    "mysql-check",
    "pgsql-check",
    "tcp-check",
    "redis-check",
    "httpchk",
];

fn read_check(ws: &[String]) -> Option<Map<String, Value>> {
    let ws = as_strs(ws);
    let ["option", check, args @ ..] = ws.as_slice() else {
        return None;
    };
    if !ADV_CHECKS.contains(check) {
        return None;
    }
    let mut out = Map::new();
    out.insert("adv_check".into(), json!(check));
    let params = match (*check, args) {
        (_, []) => None,
        ("httpchk", [uri]) => Some(json!({"uri": uri})),
        ("httpchk", [method, uri]) => Some(json!({"method": method, "uri": uri})),
        ("httpchk", [method, uri, version]) => {
            Some(json!({"method": method, "uri": uri, "version": version}))
        }
        ("mysql-check", ["user", user]) => Some(json!({"username": user})),
        ("mysql-check", ["user", user, v @ ("pre-41" | "post-41")]) => {
            Some(json!({"username": user, "client_version": v}))
        }
        ("pgsql-check", ["user", user]) => Some(json!({"username": user})),
        ("smtpchk", [hello, domain]) => Some(json!({"hello": hello, "domain": domain})),
        _ => return None,
    };
    if let Some(p) = params {
        out.insert(format!("{}_params", check.replace('-', "_")), p);
    }
    Some(out)
}

fn write_check(obj: &Map<String, Value>) -> Result<Option<Vec<String>>, FieldError> {
    let Some(check) = word("adv_check", obj, "adv_check", Type::Enum(ADV_CHECKS))
        .map_err(|_| bad("adv_check", format!("one of {}", ADV_CHECKS.join(", "))))?
    else {
        if let Some(k) = CHECK.keys[1..]
            .iter()
            .find(|k| obj.get(**k).is_some_and(|v| !v.is_null()))
        {
            return Err(bad(
                k,
                "adv_check to say which check these parameters are for",
            ));
        }
        return Ok(None);
    };
    let params_key = match check.as_str() {
        "httpchk" => Some("httpchk_params"),
        "mysql-check" => Some("mysql_check_params"),
        "pgsql-check" => Some("pgsql_check_params"),
        "smtpchk" => Some("smtpchk_params"),
        _ => None,
    };
    if let Some(k) = CHECK.keys[1..]
        .iter()
        .find(|k| Some(**k) != params_key && obj.get(**k).is_some_and(|v| !v.is_null()))
    {
        return Err(bad(k, format!("no parameters: adv_check is {check}")));
    }
    let mut out = vec!["option".to_string(), check.clone()];
    let Some((key, params)) =
        params_key.and_then(|k| obj.get(k).filter(|v| !v.is_null()).map(|p| (k, p)))
    else {
        return Ok(Some(out));
    };
    let p = params.as_object().ok_or_else(|| bad(key, "an object"))?;
    let args: Vec<Option<String>> = match check.as_str() {
        "httpchk" => {
            only_keys(key, p, &["method", "uri", "version"])?;
            let methods = Type::Enum(&["HEAD", "PUT", "POST", "GET", "TRACE", "PATCH"]);
            let (m, u, v) = (
                word(key, p, "method", methods)?,
                word(key, p, "uri", Type::Word)?,
                word(key, p, "version", Type::Text)?,
            );
            if u.is_none() && (m.is_some() || v.is_some()) {
                return Err(bad(&sub(key, "uri"), "a URI with a method or version"));
            }
            if v.is_some() && m.is_none() {
                return Err(bad(&sub(key, "method"), "a method with a version"));
            }
            vec![m, u, v]
        }
        "smtpchk" => {
            only_keys(key, p, &["hello", "domain"])?;
            let (h, d) = (
                word(key, p, "hello", Type::Word)?,
                word(key, p, "domain", Type::Word)?,
            );
            if h.is_some() != d.is_some() {
                return Err(bad(key, "both hello and domain, or neither"));
            }
            vec![h, d]
        }
        _ => {
            let known: &[&str] = if check == "mysql-check" {
                &["username", "client_version"]
            } else {
                &["username"]
            };
            only_keys(key, p, known)?;
            let user = word(key, p, "username", Type::Word)?;
            let version = word(key, p, "client_version", Type::Enum(&["pre-41", "post-41"]))?;
            match user {
                Some(u) => vec![Some("user".into()), Some(u), version],
                None if version.is_some() => {
                    return Err(bad(&sub(key, "username"), "a user with client_version"));
                }
                None => vec![],
            }
        }
    };
    out.extend(args.into_iter().flatten());
    Ok(Some(out))
}
