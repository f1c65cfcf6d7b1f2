//! The spec's JSON fields and the haproxy.cfg words they stand for, one table per model.
//!
//! A section field (frontend, backend) is one directive line of the section; a line field
//! (server, bind) is one keyword, with or without a value, on the object's line. Reading turns
//! the words back into the JSON value; a line no field claims is not the model's and is kept.

use serde_json::{Map, Value, json};

/// The JSON type of a field and the rule its value must follow.
#[derive(Debug, Clone, Copy)]
pub enum Type {
    /// A string without blanks (the spec's `^[^\s]+$`).
    Word,
    /// Any string without control characters; quoted in the file.
    Text,
    Int,
    /// An integer number of milliseconds; haproxy's time units are read back as milliseconds.
    Millis,
    /// 1–65535.
    Port,
    /// `true`/`false`: the keyword is present or not.
    Bool,
    /// `"enabled"`/`"disabled"`.
    Toggle,
    Enum(&'static [&'static str]),
    /// An array of these words, comma-separated in the file.
    List(&'static [&'static str]),
}

/// A value that breaks its field's rule: the field's key and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field '{key}': expected {expected}")]
pub struct FieldError {
    pub key: String,
    pub expected: String,
}

fn bad(key: &str, expected: impl Into<String>) -> FieldError {
    FieldError {
        key: key.to_string(),
        expected: expected.into(),
    }
}

impl Type {
    /// The value as one word of the file, or why it cannot be one.
    pub fn to_word(self, key: &str, v: &Value) -> Result<String, FieldError> {
        match self {
            Type::Word => match v.as_str() {
                Some(s)
                    if !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                {
                    Ok(s.to_string())
                }
                _ => Err(bad(key, "a non-empty string without blanks")),
            },
            Type::Text => match v.as_str() {
                Some(s) if !s.chars().any(char::is_control) => Ok(s.to_string()),
                _ => Err(bad(key, "a string without control characters")),
            },
            Type::Int => v
                .as_i64()
                .map(|n| n.to_string())
                .ok_or_else(|| bad(key, "an integer")),
            Type::Millis => match v.as_i64() {
                Some(n) if n >= 0 => Ok(n.to_string()),
                _ => Err(bad(key, "a whole number of milliseconds (0 or more)")),
            },
            Type::Port => match v.as_u64() {
                Some(n @ 1..=65535) => Ok(n.to_string()),
                _ => Err(bad(key, "a port number from 1 to 65535")),
            },
            Type::Enum(choices) => match v.as_str() {
                Some(s) if choices.contains(&s) => Ok(s.to_string()),
                _ => Err(bad(key, format!("one of {}", choices.join(", ")))),
            },
            Type::List(choices) => {
                let items = v.as_array().ok_or_else(|| bad(key, "an array"))?;
                let mut out = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(s) if choices.contains(&s) => out.push(s),
                        _ => return Err(bad(key, format!("an array of {}", choices.join(", ")))),
                    }
                }
                if out.is_empty() {
                    return Err(bad(key, "a non-empty array"));
                }
                Ok(out.join(","))
            }
            Type::Bool | Type::Toggle => Err(bad(key, "a keyword flag")),
        }
    }

    /// A word of the file as this field's JSON value (None when it is not a valid one).
    fn parse_word(self, word: &str) -> Option<Value> {
        match self {
            Type::Word | Type::Text => Some(json!(word)),
            Type::Int => word.parse::<i64>().ok().map(Value::from),
            Type::Millis => millis(word).map(Value::from),
            Type::Port => word.parse::<u16>().ok().filter(|p| *p > 0).map(Value::from),
            Type::Enum(choices) => choices.contains(&word).then(|| json!(word)),
            Type::List(choices) => {
                let items: Vec<&str> = word.split(',').collect();
                items
                    .iter()
                    .all(|i| choices.contains(i))
                    .then(|| json!(items))
            }
            Type::Bool | Type::Toggle => None,
        }
    }

    /// The JSON value of a flag keyword: `on` is whether the positive form was written.
    fn flag(self, on: bool) -> Value {
        match self {
            Type::Toggle => json!(if on { "enabled" } else { "disabled" }),
            _ => json!(on),
        }
    }

    /// Whether a flag's JSON value asks for the positive keyword (`Some(true)`), the negative
    /// one (`Some(false)`) or nothing.
    fn flag_value(self, key: &str, v: &Value) -> Result<Option<bool>, FieldError> {
        match (self, v) {
            (Type::Bool, Value::Bool(true)) => Ok(Some(true)),
            (Type::Bool, Value::Bool(false)) => Ok(None),
            (Type::Toggle, Value::String(s)) if s == "enabled" => Ok(Some(true)),
            (Type::Toggle, Value::String(s)) if s == "disabled" => Ok(Some(false)),
            (Type::Bool, _) => Err(bad(key, "true or false")),
            _ => Err(bad(key, "\"enabled\" or \"disabled\"")),
        }
    }
}

/// haproxy's time format (`10s`, `1500`, `2m`, `1h`, `1d`, `100ms`, `10us`) in milliseconds.
pub fn millis(word: &str) -> Option<i64> {
    let split = word
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(word.len());
    let (digits, unit) = word.split_at(split);
    let n: i64 = digits.parse().ok()?;
    let factor = match unit {
        "" | "ms" => return Some(n),
        "us" => return Some(n / 1000),
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

// ---- section fields (frontend, backend) ----

/// How a section field is written in the section.
#[derive(Debug, Clone, Copy)]
pub enum Directive {
    /// These words followed by the value: `timeout client 5000`.
    Value(&'static [&'static str]),
    /// `option <words>` for true/"enabled"; "disabled" is `no option <words>`.
    Option(&'static [&'static str]),
    /// `option <value>`, the value one of the field's enum words.
    OptionChoice,
    /// A field whose value is an object, with its own reader and writer.
    Object(&'static ObjectCodec),
}

/// Writes an object-valued field's directive words.
pub type WriteObject = fn(&str, &Map<String, Value>) -> Result<Vec<String>, FieldError>;

/// Reads and writes a field whose JSON value is an object (balance, forwardfor, redispatch).
#[derive(Debug)]
pub struct ObjectCodec {
    pub read: fn(&[String]) -> Option<Value>,
    pub write: WriteObject,
}

#[derive(Debug, Clone, Copy)]
pub struct SectionField {
    pub key: &'static str,
    pub ty: Type,
    pub directive: Directive,
}

const fn sf(key: &'static str, ty: Type, directive: Directive) -> SectionField {
    SectionField { key, ty, directive }
}

impl SectionField {
    /// The field's value if this line is its directive.
    pub fn read(&self, ws: &[String]) -> Option<Value> {
        match self.directive {
            Directive::Value(kw) => {
                if ws.len() == kw.len() + 1 && ws.iter().zip(kw).all(|(w, k)| w == k) {
                    self.ty.parse_word(&ws[kw.len()])
                } else {
                    None
                }
            }
            Directive::Option(kw) => {
                let (negated, rest) = match ws {
                    [no, opt, rest @ ..] if no == "no" && opt == "option" => (true, rest),
                    [opt, rest @ ..] if opt == "option" => (false, rest),
                    _ => return None,
                };
                let matches = rest.len() == kw.len() && rest.iter().zip(kw).all(|(w, k)| w == k);
                match (matches, negated, self.ty) {
                    (false, _, _) => None,
                    (true, true, Type::Bool) => None,
                    (true, negated, ty) => Some(ty.flag(!negated)),
                }
            }
            Directive::OptionChoice => match (ws, self.ty) {
                ([opt, choice], Type::Enum(choices)) if opt == "option" => {
                    choices.contains(&choice.as_str()).then(|| json!(choice))
                }
                _ => None,
            },
            Directive::Object(codec) => (codec.read)(ws),
        }
    }

    /// The directive's words for this value (None: nothing to write).
    pub fn write(&self, v: &Value) -> Result<Option<Vec<String>>, FieldError> {
        if v.is_null() {
            return Ok(None);
        }
        let strs = |kw: &[&str]| kw.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self.directive {
            Directive::Value(kw) => {
                let mut out = strs(kw);
                out.push(self.ty.to_word(self.key, v)?);
                Ok(Some(out))
            }
            Directive::Option(kw) => Ok(self.ty.flag_value(self.key, v)?.map(|on| {
                let mut out = if on { vec![] } else { vec!["no".to_string()] };
                out.push("option".to_string());
                out.extend(strs(kw));
                out
            })),
            Directive::OptionChoice => Ok(Some(vec![
                "option".to_string(),
                self.ty.to_word(self.key, v)?,
            ])),
            Directive::Object(codec) => match v.as_object() {
                Some(obj) => (codec.write)(self.key, obj).map(Some),
                None => Err(bad(self.key, "an object")),
            },
        }
    }
}

const MODES: &[&str] = &["http", "tcp"];
const CONNECTION_MODES: &[&str] = &["httpclose", "http-server-close", "http-keep-alive"];
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

use Directive::{Object, Option as Opt, OptionChoice, Value as Val};

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
    sf("adv_check", Type::Enum(ADV_CHECKS), OptionChoice),
    sf("forwardfor", Type::Word, Object(&FORWARDFOR)),
    sf("redispatch", Type::Word, Object(&REDISPATCH)),
];

// ---- object-valued fields ----

static FORWARDFOR: ObjectCodec = ObjectCodec {
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

static REDISPATCH: ObjectCodec = ObjectCodec {
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

static BALANCE: ObjectCodec = ObjectCodec {
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

// ---- line fields (server, bind) ----

/// How a line field is written on the object's line.
#[derive(Debug, Clone, Copy)]
pub enum Param {
    /// A keyword (words separated by a blank) for true/"enabled", and for "disabled" the
    /// negative keyword when haproxy has one.
    Flag(&'static str, Option<&'static str>),
    /// A keyword followed by the value.
    Value(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct LineField {
    pub key: &'static str,
    pub ty: Type,
    pub param: Param,
}

const fn flag(key: &'static str, on: &'static str, off: &'static str) -> LineField {
    LineField {
        key,
        ty: Type::Toggle,
        param: Param::Flag(on, Some(off)),
    }
}

const fn on_only(key: &'static str, ty: Type, on: &'static str) -> LineField {
    LineField {
        key,
        ty,
        param: Param::Flag(on, None),
    }
}

const fn val(key: &'static str, ty: Type, kw: &'static str) -> LineField {
    LineField {
        key,
        ty,
        param: Param::Value(kw),
    }
}

/// Reads the parameters after an object's address into `out`; returns how many words no field
/// claimed (they are not the model's and are not shown).
pub fn read_params(fields: &[LineField], params: &[String], out: &mut Map<String, Value>) -> usize {
    let mut unknown = 0;
    let mut i = 0;
    'words: while i < params.len() {
        for f in fields {
            match f.param {
                Param::Flag(on, off) => {
                    let on_words: Vec<&str> = on.split(' ').collect();
                    if params[i..].len() >= on_words.len()
                        && params[i..].iter().zip(&on_words).all(|(p, w)| p == w)
                    {
                        out.insert(f.key.into(), f.ty.flag(true));
                        i += on_words.len();
                        continue 'words;
                    }
                    if off == Some(params[i].as_str()) {
                        out.insert(f.key.into(), f.ty.flag(false));
                        i += 1;
                        continue 'words;
                    }
                }
                Param::Value(kw) if kw == params[i] && i + 1 < params.len() => {
                    if let Some(v) = f.ty.parse_word(&params[i + 1]) {
                        out.insert(f.key.into(), v);
                    }
                    i += 2;
                    continue 'words;
                }
                Param::Value(_) => {}
            }
        }
        unknown += 1;
        i += 1;
    }
    unknown
}

/// The parameter words for the fields of `obj` (keys not in the table are the caller's).
pub fn write_params(
    fields: &[LineField],
    obj: &Map<String, Value>,
) -> Result<Vec<String>, FieldError> {
    let mut out = Vec::new();
    for f in fields {
        let Some(v) = obj.get(f.key).filter(|v| !v.is_null()) else {
            continue;
        };
        match f.param {
            Param::Flag(on, off) => match f.ty.flag_value(f.key, v)? {
                Some(true) => out.extend(on.split(' ').map(String::from)),
                Some(false) => out.extend(off.map(String::from)),
                None => {}
            },
            Param::Value(kw) => {
                out.push(kw.to_string());
                out.push(f.ty.to_word(f.key, v)?);
            }
        }
    }
    Ok(out)
}

/// Whether the table has a field of this key.
pub fn knows(fields: &[LineField], key: &str) -> bool {
    fields.iter().any(|f| f.key == key)
}

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

#[cfg(test)]
mod tests {
    use super::super::words;
    use super::*;

    fn ws(line: &str) -> Vec<String> {
        words::split(line)
    }

    #[test]
    fn section_fields_round_trip() {
        let cases: &[(&[SectionField], &str, Value)] = &[
            (
                FRONTEND,
                "timeout client 10s",
                json!({"client_timeout": 10000}),
            ),
            (FRONTEND, "option httplog clf", json!({"clflog": true})),
            (
                FRONTEND,
                "no option dontlognull",
                json!({"dontlognull": "disabled"}),
            ),
            (
                FRONTEND,
                "option http-server-close",
                json!({"http_connection_mode": "http-server-close"}),
            ),
            (
                FRONTEND,
                "option forwardfor except 127.0.0.1 if-none",
                json!({"forwardfor": {"enabled": "enabled", "except": "127.0.0.1", "ifnone": true}}),
            ),
            (
                BACKEND,
                "balance hdr(Host) use_domain_only",
                json!({"balance": {"algorithm": "hdr", "hdr_name": "Host", "hdr_use_domain_only": true}}),
            ),
            (
                BACKEND,
                "balance url_param id check_post 10",
                json!({"balance": {"algorithm": "url_param", "url_param": "id", "url_param_check_post": 10}}),
            ),
            (
                BACKEND,
                "option redispatch 3",
                json!({"redispatch": {"enabled": "enabled", "interval": 3}}),
            ),
            (
                BACKEND,
                "option tcp-check",
                json!({"adv_check": "tcp-check"}),
            ),
        ];
        for (table, line, want) in cases {
            let words = ws(line);
            let (key, value) = want
                .as_object()
                .and_then(|o| o.iter().next())
                .expect("one key");
            let field = table.iter().find(|f| f.key == key).expect("field in table");
            assert_eq!(field.read(&words).as_ref(), Some(value), "{line}");
            let written = field.write(value).expect("writes").expect("a line");
            assert_eq!(
                field.read(&written).as_ref(),
                Some(value),
                "{line} → {written:?}"
            );
        }
    }

    #[test]
    fn bad_values_name_the_field() {
        let maxconn = FRONTEND
            .iter()
            .find(|f| f.key == "maxconn")
            .expect("maxconn");
        let e = maxconn.write(&json!("ten")).expect_err("not an int");
        assert_eq!(e.to_string(), "field 'maxconn': expected an integer");
        let tag = FRONTEND
            .iter()
            .find(|f| f.key == "log_format")
            .expect("log_format");
        assert!(
            tag.write(&json!("a\nbackend evil")).is_err(),
            "a newline would inject a line"
        );
    }

    #[test]
    fn line_params_round_trip() {
        let obj = json!({"check": "enabled", "backup": "disabled", "weight": 10, "inter": 2000, "maintenance": "enabled", "proxy-v2-options": ["ssl", "cert-cn"], "health_check_port": 8080});
        let obj = obj.as_object().expect("object");
        let words = write_params(SERVER, obj).expect("writes");
        let mut back = Map::new();
        assert_eq!(read_params(SERVER, &words, &mut back), 0);
        assert_eq!(&back, obj);
        let mut bind = Map::new();
        assert_eq!(
            read_params(
                BIND,
                &ws("expose-fd listeners ssl crt /x.pem foo"),
                &mut bind
            ),
            1
        );
        assert_eq!(
            Value::Object(bind),
            json!({"expose_fd_listeners": true, "ssl": true, "ssl_certificate": "/x.pem"})
        );
    }

    #[test]
    fn haproxy_times_are_milliseconds() {
        assert_eq!(millis("10s"), Some(10_000));
        assert_eq!(millis("1500"), Some(1500));
        assert_eq!(millis("5m"), Some(300_000));
        assert_eq!(millis("x"), None);
    }
}
