//! The API's four objects in a [`Document`]: frontends and backends are sections, binds and
//! servers are lines of their parent section. Reading goes through the field tables; a write
//! replaces only the lines the object owns and keeps every other line where it was.

use serde_json::{Map, Value, json};

use super::document::{Document, Section};
use super::fields::{self, FieldError, LineField, SectionField};
use super::tables;
use super::words;

/// What the API can find, create, replace and delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Frontend,
    Backend,
    Server,
    Bind,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("invalid {kind}: {reason}")]
    Invalid { kind: &'static str, reason: String },
}

impl Kind {
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Frontend => "frontend",
            Kind::Backend => "backend",
            Kind::Server => "server",
            Kind::Bind => "bind",
        }
    }

    /// The section keyword of a section kind, or of a line kind's parent.
    fn section_keyword(self) -> &'static str {
        match self {
            Kind::Frontend | Kind::Bind => "frontend",
            Kind::Backend | Kind::Server => "backend",
        }
    }

    /// Names of sections: the spec's `^[A-Za-z0-9-_.:]+$`; of lines: `^[^\s]+$`.
    fn valid_name(self, name: &str) -> bool {
        !name.is_empty()
            && match self {
                Kind::Frontend | Kind::Backend => name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)),
                Kind::Server | Kind::Bind => {
                    !name.chars().any(|c| c.is_whitespace() || c.is_control())
                }
            }
    }

    fn invalid(self, reason: impl Into<String>) -> ModelError {
        ModelError::Invalid {
            kind: self.singular(),
            reason: reason.into(),
        }
    }
}

impl From<(Kind, FieldError)> for ModelError {
    fn from((kind, e): (Kind, FieldError)) -> Self {
        kind.invalid(e.to_string())
    }
}

fn section_table(kind: Kind) -> &'static [SectionField] {
    match kind {
        Kind::Frontend => tables::FRONTEND,
        _ => tables::BACKEND,
    }
}

fn line_table(kind: Kind) -> &'static [LineField] {
    match kind {
        Kind::Server => tables::SERVER,
        _ => tables::BIND,
    }
}

/// The name and the fields of a JSON object from a request, checked against the kind's rules.
fn checked_name(kind: Kind, data: &Value) -> Result<(String, &Map<String, Value>), ModelError> {
    let obj = data
        .as_object()
        .ok_or_else(|| kind.invalid("the body must be a JSON object"))?;
    let name = match obj.get("name") {
        Some(Value::String(n)) if kind.valid_name(n) => n.clone(),
        Some(Value::String(n)) => {
            return Err(kind.invalid(format!(
                "name {:?} has characters the spec does not allow",
                n.chars().take(64).collect::<String>()
            )));
        }
        _ => return Err(kind.invalid("'name' is required (a string)")),
    };
    Ok((name, obj))
}

// ---- sections ----

fn read_section(kind: Kind, s: &Section) -> Value {
    let table = section_table(kind);
    let mut out = Map::new();
    out.insert("name".into(), json!(s.name.clone().unwrap_or_default()));
    for line in &s.body {
        let ws = words::split(line);
        if let Some(entries) = table.iter().find_map(|f| f.read_entries(&ws)) {
            out.extend(entries);
        }
    }
    Value::Object(out)
}

fn owned_by_table(table: &[SectionField], line: &str) -> bool {
    let ws = words::split(line);
    table.iter().any(|f| f.read_entries(&ws).is_some())
}

/// The directive lines for a section object.
fn section_lines(kind: Kind, obj: &Map<String, Value>) -> Result<Vec<String>, ModelError> {
    let table = section_table(kind);
    if let Some(k) = obj
        .keys()
        .find(|k| *k != "name" && !table.iter().any(|f| f.owns(k)))
    {
        return Err(kind.invalid(format!("field '{k}' is not supported by this server")));
    }
    let mut lines = Vec::new();
    for f in table {
        if let Some(ws) = f.write_from(obj).map_err(|e| (kind, e))? {
            lines.push(format!("  {}", words::join(&ws)));
        }
    }
    Ok(lines)
}

pub fn list(doc: &Document, kind: Kind, parent: Option<&str>) -> Result<Vec<Value>, ModelError> {
    match kind {
        Kind::Frontend | Kind::Backend => Ok(doc
            .sections_of(kind.section_keyword())
            .map(|s| read_section(kind, s))
            .collect()),
        Kind::Server | Kind::Bind => {
            let section = parent_section(doc, kind, parent)?;
            Ok(section
                .body
                .iter()
                .filter_map(|l| read_line(kind, &words::split(l)))
                .collect())
        }
    }
}

pub fn get(
    doc: &Document,
    kind: Kind,
    name: &str,
    parent: Option<&str>,
) -> Result<Value, ModelError> {
    let not_found = || ModelError::NotFound(format!("{} '{name}'", kind.singular()));
    match kind {
        Kind::Frontend | Kind::Backend => doc
            .find(kind.section_keyword(), name)
            .map(|s| read_section(kind, s))
            .ok_or_else(not_found),
        Kind::Server | Kind::Bind => list(doc, kind, parent)?
            .into_iter()
            .find(|v| v["name"] == name)
            .ok_or_else(not_found),
    }
}

/// Adds the object; returns it as read back from the document.
pub fn create(
    doc: &mut Document,
    kind: Kind,
    data: &Value,
    parent: Option<&str>,
) -> Result<Value, ModelError> {
    let (name, obj) = checked_name(kind, data)?;
    if get(doc, kind, &name, parent).is_ok() {
        return Err(ModelError::AlreadyExists(format!(
            "{} '{name}'",
            kind.singular()
        )));
    }
    match kind {
        Kind::Frontend | Kind::Backend => {
            let lines = section_lines(kind, obj)?;
            doc.append(Section::new(kind.section_keyword(), &name, lines));
        }
        Kind::Server | Kind::Bind => {
            let line = object_line(kind, &name, obj)?;
            let section = parent_section_mut(doc, kind, parent)?;
            let at = insert_position(&section.body);
            section.body.insert(at, line);
        }
    }
    get(doc, kind, &name, parent)
}

/// Replaces the object `name` (the body's name must be the same).
pub fn replace(
    doc: &mut Document,
    kind: Kind,
    name: &str,
    data: &Value,
    parent: Option<&str>,
) -> Result<Value, ModelError> {
    let (body_name, obj) = checked_name(kind, data)?;
    get(doc, kind, name, parent)?;
    if body_name != name {
        return Err(kind.invalid(format!(
            "the body's name '{body_name}' differs from '{name}' in the path (renaming is not supported)"
        )));
    }
    match kind {
        Kind::Frontend | Kind::Backend => {
            let lines = section_lines(kind, obj)?;
            let table = section_table(kind);
            let section = doc
                .find_mut(kind.section_keyword(), name)
                .ok_or_else(|| ModelError::NotFound(name.to_string()))?;
            let kept: Vec<String> = section
                .body
                .drain(..)
                .filter(|l| !owned_by_table(table, l))
                .collect();
            section.body = lines.into_iter().chain(kept).collect();
        }
        Kind::Server | Kind::Bind => {
            let line = object_line(kind, name, obj)?;
            let section = parent_section_mut(doc, kind, parent)?;
            if let Some(slot) = section
                .body
                .iter_mut()
                .find(|l| line_name(kind, l).as_deref() == Some(name))
            {
                *slot = line;
            }
        }
    }
    get(doc, kind, name, parent)
}

pub fn delete(
    doc: &mut Document,
    kind: Kind,
    name: &str,
    parent: Option<&str>,
) -> Result<(), ModelError> {
    get(doc, kind, name, parent)?;
    match kind {
        Kind::Frontend | Kind::Backend => {
            doc.remove(kind.section_keyword(), name);
        }
        Kind::Server | Kind::Bind => {
            let section = parent_section_mut(doc, kind, parent)?;
            section
                .body
                .retain(|l| line_name(kind, l).as_deref() != Some(name));
        }
    }
    Ok(())
}

// ---- lines ----

fn line_keyword(kind: Kind) -> &'static str {
    match kind {
        Kind::Server => "server",
        _ => "bind",
    }
}

fn parent_name(kind: Kind, parent: Option<&str>) -> Result<&str, ModelError> {
    parent.ok_or_else(|| {
        kind.invalid(format!(
            "the query parameter '{}' (the parent {}) is required",
            kind.section_keyword(),
            kind.section_keyword()
        ))
    })
}

fn parent_section<'a>(
    doc: &'a Document,
    kind: Kind,
    parent: Option<&str>,
) -> Result<&'a Section, ModelError> {
    let p = parent_name(kind, parent)?;
    doc.find(kind.section_keyword(), p)
        .ok_or_else(|| ModelError::NotFound(format!("{} '{p}'", kind.section_keyword())))
}

fn parent_section_mut<'a>(
    doc: &'a mut Document,
    kind: Kind,
    parent: Option<&str>,
) -> Result<&'a mut Section, ModelError> {
    let p = parent_name(kind, parent)?;
    doc.find_mut(kind.section_keyword(), p)
        .ok_or_else(|| ModelError::NotFound(format!("{} '{p}'", kind.section_keyword())))
}

/// After the last line of this section that is not blank or a comment: new lines join the
/// section's content, before the blank line that separates it from the next one.
fn insert_position(body: &[String]) -> usize {
    body.iter()
        .rposition(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map_or(0, |i| i + 1)
}

fn line_name(kind: Kind, line: &str) -> Option<String> {
    read_line(kind, &words::split(line)).and_then(|v| v["name"].as_str().map(String::from))
}

/// `address[:port[-end]]` split: the port is the digits after the last colon.
fn split_address(addr: &str) -> (&str, Option<u16>, Option<u16>) {
    if let Some((host, port)) = addr.rsplit_once(':') {
        let (first, end) = match port.split_once('-') {
            Some((a, b)) => (a, b.parse().ok()),
            None => (port, None),
        };
        if let Ok(p) = first.parse::<u16>() {
            return (host, Some(p), end);
        }
    }
    (addr, None, None)
}

fn read_line(kind: Kind, ws: &[String]) -> Option<Value> {
    let mut out = Map::new();
    match (kind, ws) {
        (Kind::Server, [kw, name, addr, params @ ..]) if kw == "server" => {
            let (host, port, _) = split_address(addr);
            out.insert("name".into(), json!(name));
            out.insert("address".into(), json!(host));
            if let Some(p) = port.filter(|p| *p > 0) {
                out.insert("port".into(), json!(p));
            }
            fields::read_params(tables::SERVER, params, &mut out);
        }
        (Kind::Bind, [kw, addr, params @ ..]) if kw == "bind" => {
            let (host, port, end) = split_address(addr);
            let name = params
                .iter()
                .position(|p| p == "name")
                .and_then(|i| params.get(i + 1))
                .cloned()
                .unwrap_or_else(|| addr.clone());
            out.insert("name".into(), json!(name));
            if !host.is_empty() {
                out.insert("address".into(), json!(host));
            }
            if let Some(p) = port.filter(|p| *p > 0) {
                out.insert("port".into(), json!(p));
            }
            if let Some(e) = end.filter(|p| *p > 0) {
                out.insert("port-range-end".into(), json!(e));
            }
            let without_name: Vec<String> = strip_name_param(params);
            fields::read_params(tables::BIND, &without_name, &mut out);
        }
        _ => return None,
    }
    Some(Value::Object(out))
}

fn strip_name_param(params: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(params.len());
    let mut it = params.iter();
    while let Some(p) = it.next() {
        if p == "name" {
            it.next();
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// The object's line: `server <name> <address>[:<port>] <params>` or
/// `bind <address>[:<port>[-<end>]] name <name> <params>`.
fn object_line(kind: Kind, name: &str, obj: &Map<String, Value>) -> Result<String, ModelError> {
    let table = line_table(kind);
    let own = ["name", "address", "port", "port-range-end"];
    if let Some(k) = obj
        .keys()
        .find(|k| !own.contains(&k.as_str()) && !fields::knows(table, k))
    {
        return Err(kind.invalid(format!("field '{k}' is not supported by this server")));
    }
    let word = |k: &str, ty: fields::Type| -> Result<Option<String>, ModelError> {
        obj.get(k)
            .filter(|v| !v.is_null())
            .map(|v| ty.to_word(k, v))
            .transpose()
            .map_err(|e| ModelError::from((kind, e)))
    };
    let address = word("address", fields::Type::Word)?;
    let port = word("port", fields::Type::Port)?;
    let end = word("port-range-end", fields::Type::Port)?;
    let mut addr = match (kind, address) {
        (_, Some(a)) => a,
        (Kind::Server, None) => return Err(kind.invalid("'address' is required")),
        (_, None) if port.is_some() => String::new(),
        (_, None) => return Err(kind.invalid("'address' or 'port' is required")),
    };
    if let Some(p) = port {
        addr = format!("{addr}:{p}");
        if let Some(e) = end {
            addr = format!("{addr}-{e}");
        }
    }
    let mut ws = vec![line_keyword(kind).to_string()];
    match kind {
        Kind::Server => ws.extend([name.to_string(), addr]),
        _ => ws.extend([addr, "name".to_string(), name.to_string()]),
    }
    ws.extend(fields::write_params(table, obj).map_err(|e| (kind, e))?);
    Ok(format!("  {}", words::join(&ws)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "global\n  daemon\n\nfrontend fe\n  mode tcp\n  http-request deny if FALSE\n  bind 127.0.0.1:8080 name web\n\nbackend be\n  balance roundrobin\n  server s1 10.0.0.1:80 check weight 5\n";

    #[test]
    fn reads_the_objects_of_a_file() {
        let doc = Document::parse(BASE);
        assert_eq!(
            list(&doc, Kind::Frontend, None).expect("list"),
            vec![json!({"name": "fe", "mode": "tcp"})]
        );
        assert_eq!(
            get(&doc, Kind::Server, "s1", Some("be")).expect("server"),
            json!({"name": "s1", "address": "10.0.0.1", "port": 80, "check": "enabled", "weight": 5})
        );
        assert_eq!(
            get(&doc, Kind::Bind, "web", Some("fe")).expect("bind"),
            json!({"name": "web", "address": "127.0.0.1", "port": 8080})
        );
        assert!(matches!(
            list(&doc, Kind::Server, Some("nope")),
            Err(ModelError::NotFound(_))
        ));
    }

    #[test]
    fn a_replace_keeps_the_lines_the_model_does_not_know() {
        let mut doc = Document::parse(BASE);
        replace(
            &mut doc,
            Kind::Frontend,
            "fe",
            &json!({"name": "fe", "mode": "http", "maxconn": 100}),
            None,
        )
        .expect("replace");
        let fe = doc.find("frontend", "fe").expect("fe");
        assert_eq!(
            fe.body,
            [
                "  mode http",
                "  maxconn 100",
                "  http-request deny if FALSE",
                "  bind 127.0.0.1:8080 name web",
                ""
            ]
        );
    }

    #[test]
    fn create_then_delete_gives_back_the_same_file() {
        let mut doc = Document::parse(BASE);
        let before = doc.render();
        create(
            &mut doc,
            Kind::Backend,
            &json!({"name": "b2", "mode": "tcp", "balance": {"algorithm": "leastconn"}}),
            None,
        )
        .expect("backend");
        create(
            &mut doc,
            Kind::Server,
            &json!({"name": "s2", "address": "10.0.0.2", "port": 443, "ssl": "enabled"}),
            Some("be"),
        )
        .expect("server");
        assert!(
            doc.render().contains("  server s2 10.0.0.2:443 ssl\n"),
            "{}",
            doc.render()
        );
        assert!(matches!(
            create(&mut doc, Kind::Backend, &json!({"name": "b2"}), None),
            Err(ModelError::AlreadyExists(_))
        ));
        delete(&mut doc, Kind::Server, "s2", Some("be")).expect("delete server");
        delete(&mut doc, Kind::Backend, "b2", None).expect("delete backend");
        // The blank line added before the new section stays: the only difference.
        assert_eq!(doc.render(), format!("{before}\n"));
    }

    #[test]
    fn invalid_objects_are_refused_with_the_reason() {
        let mut doc = Document::parse(BASE);
        let e =
            create(&mut doc, Kind::Frontend, &json!({"name": "bad name"}), None).expect_err("name");
        assert!(e.to_string().contains("name \"bad name\""), "{e}");
        let e = create(
            &mut doc,
            Kind::Frontend,
            &json!({"name": "x", "stick_table": {}}),
            None,
        )
        .expect_err("field");
        assert_eq!(
            e.to_string(),
            "invalid frontend: field 'stick_table' is not supported by this server"
        );
        let e = create(
            &mut doc,
            Kind::Server,
            &json!({"name": "s", "port": 80}),
            Some("be"),
        )
        .expect_err("address");
        assert_eq!(e.to_string(), "invalid server: 'address' is required");
        let e = create(
            &mut doc,
            Kind::Server,
            &json!({"name": "s", "address": "1.2.3.4", "port": 0}),
            Some("be"),
        )
        .expect_err("port");
        assert_eq!(
            e.to_string(),
            "invalid server: field 'port': expected a port number from 1 to 65535"
        );
    }
}
