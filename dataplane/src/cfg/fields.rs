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

pub(super) fn bad(key: &str, expected: impl Into<String>) -> FieldError {
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
    pub(super) fn flag_value(self, key: &str, v: &Value) -> Result<Option<bool>, FieldError> {
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
    /// One directive that stands for several keys (`option httpchk GET /` is `adv_check` and
    /// `httpchk_params`): read into, and written from, the whole object.
    Merged(&'static MergedCodec),
}

/// Writes a merged directive's words from the whole object (None: nothing to write).
pub type WriteMerged = fn(&Map<String, Value>) -> Result<Option<Vec<String>>, FieldError>;

/// Reads and writes a directive that stands for several keys of the object.
#[derive(Debug)]
pub struct MergedCodec {
    pub keys: &'static [&'static str],
    pub read: fn(&[String]) -> Option<Map<String, Value>>,
    pub write: WriteMerged,
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

pub(super) const fn sf(key: &'static str, ty: Type, directive: Directive) -> SectionField {
    SectionField { key, ty, directive }
}

impl SectionField {
    /// Whether the object has this key through this field.
    pub fn owns(&self, key: &str) -> bool {
        match self.directive {
            Directive::Merged(codec) => codec.keys.contains(&key),
            _ => self.key == key,
        }
    }

    /// The keys and values this line stands for, if it is this field's directive.
    pub fn read_entries(&self, ws: &[String]) -> Option<Map<String, Value>> {
        match self.directive {
            Directive::Merged(codec) => (codec.read)(ws),
            _ => self
                .read(ws)
                .map(|v| Map::from_iter([(self.key.to_string(), v)])),
        }
    }

    /// The directive's words for the whole object (None: nothing to write).
    pub fn write_from(&self, obj: &Map<String, Value>) -> Result<Option<Vec<String>>, FieldError> {
        match self.directive {
            Directive::Merged(codec) => (codec.write)(obj),
            _ => match obj.get(self.key) {
                Some(v) => self.write(v),
                None => Ok(None),
            },
        }
    }

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
            Directive::Merged(codec) => (codec.read)(ws).map(Value::Object),
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
            Directive::Merged(codec) => match v.as_object() {
                Some(obj) => (codec.write)(obj),
                None => Err(bad(self.key, "an object")),
            },
        }
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

pub(super) const fn flag(key: &'static str, on: &'static str, off: &'static str) -> LineField {
    LineField {
        key,
        ty: Type::Toggle,
        param: Param::Flag(on, Some(off)),
    }
}

pub(super) const fn on_only(key: &'static str, ty: Type, on: &'static str) -> LineField {
    LineField {
        key,
        ty,
        param: Param::Flag(on, None),
    }
}

pub(super) const fn val(key: &'static str, ty: Type, kw: &'static str) -> LineField {
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

#[cfg(test)]
mod tests {
    use super::super::tables::{BACKEND, BIND, FRONTEND, SERVER};
    use super::super::words;
    use super::*;

    fn ws(line: &str) -> Vec<String> {
        words::split(line)
    }

    #[test]
    #[allow(clippy::too_many_lines)] // a table of test data: one line per directive form
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
                FRONTEND,
                "monitor fail if site_dead or disabled",
                json!({"monitor_fail": {"cond": "if", "cond_test": "site_dead or disabled"}}),
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
            (
                BACKEND,
                "option httpchk GET /healthz HTTP/1.1",
                json!({"adv_check": "httpchk", "httpchk_params": {"method": "GET", "uri": "/healthz", "version": "HTTP/1.1"}}),
            ),
            (
                BACKEND,
                "option mysql-check user haproxy post-41",
                json!({"adv_check": "mysql-check", "mysql_check_params": {"username": "haproxy", "client_version": "post-41"}}),
            ),
            (
                BACKEND,
                "option smtpchk EHLO example.com",
                json!({"adv_check": "smtpchk", "smtpchk_params": {"hello": "EHLO", "domain": "example.com"}}),
            ),
            (
                BACKEND,
                "cookie SRV insert indirect nocache domain .a.com domain .b.com maxidle 30",
                json!({"cookie": {"name": "SRV", "type": "insert", "indirect": true, "nocache": true, "domain": [{"value": ".a.com"}, {"value": ".b.com"}], "maxidle": 30}}),
            ),
            (
                BACKEND,
                "hash-type consistent djb2 avalanche",
                json!({"hash_type": {"method": "consistent", "function": "djb2", "modifier": "avalanche"}}),
            ),
            (
                BACKEND,
                "stick-table type ip size 100k expire 30m nopurge store conn_cur",
                json!({"stick_table": {"type": "ip", "size": 102_400, "expire": 1_800_000, "nopurge": true, "store": "conn_cur"}}),
            ),
            (
                BACKEND,
                "http-check expect ! rstatus ^5",
                json!({"http-check": {"type": "expect", "exclamation_mark": true, "match": "rstatus", "pattern": "^5"}}),
            ),
            (
                BACKEND,
                "default-server inter 3000 rise 2 check",
                json!({"default_server": {"inter": 3000, "rise": 2, "check": "enabled"}}),
            ),
        ];
        for (table, line, want) in cases {
            let words = ws(line);
            let want = want.as_object().expect("object");
            let field = table
                .iter()
                .find(|f| f.read_entries(&words).is_some())
                .expect("a field reads the line");
            assert_eq!(field.read_entries(&words).as_ref(), Some(want), "{line}");
            let written = field.write_from(want).expect("writes").expect("a line");
            assert_eq!(
                field.read_entries(&written).as_ref(),
                Some(want),
                "{line} → {written:?}"
            );
        }
    }

    #[test]
    fn parameters_without_their_check_are_refused() {
        let check = BACKEND
            .iter()
            .find(|f| f.owns("httpchk_params"))
            .expect("check field");
        let obj = json!({"httpchk_params": {"uri": "/"}});
        let e = check
            .write_from(obj.as_object().expect("object"))
            .expect_err("no adv_check");
        assert_eq!(
            e.to_string(),
            "field 'httpchk_params': expected adv_check to say which check these parameters are for"
        );
        let obj = json!({"adv_check": "tcp-check", "httpchk_params": {"uri": "/"}});
        assert!(check.write_from(obj.as_object().expect("object")).is_err());
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
