//! The OVF environment document (DSP0243 `Environment`, as vSphere writes it) → properties
//! and network adapters.
//!
//! Parsing matches namespace URIs, never prefixes (`oe:` and the default namespace are the
//! same namespace in every real document, and some documents use only one of them), is
//! independent of section order, and ignores everything it does not need (comments,
//! `PlatformSection`, unknown sections). Keys are kept exactly as written: vSphere identifies a
//! property by its fully-qualified `[class.]key[.instance]` name, compared as an exact,
//! case-sensitive string.

use ovf::text::{Position, line_column};
use quick_xml::NsReader;
use quick_xml::escape::EscapeError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};

use crate::{definition, quote};

/// Namespace of the OVF environment (`oe:` / default namespace).
pub const OVF_ENV_NS: &str = "http://schemas.dmtf.org/ovf/environment/1";
/// Namespace of VMware's environment extensions (`ve:`).
pub const VMW_ENV_NS: &str = "http://www.vmware.com/schema/ovfenv";

/// One `Property` of the `PropertySection`, with XML escapes decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
}

/// One `ve:Adapter` of the `ve:EthernetAdapterSection`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adapter {
    /// MAC address as vSphere wrote it, e.g. `00:50:56:a9:4c:b4`.
    pub mac: Option<String>,
    /// Name of the vSphere network (port group) the NIC is connected to.
    pub network: Option<String>,
    /// `ve:unitNumber` (absent on ESX 4.0).
    pub unit_number: Option<String>,
}

/// The hypervisor platform that wrote the document (`PlatformSection`), when present.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Platform {
    pub kind: Option<String>,
    pub version: Option<String>,
    pub vendor: Option<String>,
}

/// What first boot needs from an OVF environment document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    /// Properties in document order (duplicates kept: [`Environment::duplicates`] reports them).
    pub properties: Vec<Property>,
    /// `Some` when the document has a `ve:EthernetAdapterSection` (possibly empty).
    pub adapters: Option<Vec<Adapter>>,
    pub platform: Option<Platform>,
}

impl Environment {
    /// The value of the property with exactly this fully-qualified key (the last one wins if
    /// the document repeats it).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }

    /// Keys that occur more than once, in order of first occurrence.
    pub fn duplicates(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        let mut dups: Vec<&str> = Vec::new();
        for p in &self.properties {
            if !seen.insert(p.key.as_str()) && !dups.contains(&p.key.as_str()) {
                dups.push(&p.key);
            }
        }
        dups
    }

    /// Number of adapters in the `EthernetAdapterSection`; `None` when it is absent.
    pub fn adapter_count(&self) -> Option<usize> {
        self.adapters.as_ref().map(Vec::len)
    }
}

impl Environment {
    /// Write the document as vSphere does (`oe:`/`ve:` prefixes, values escaped, line breaks
    /// as character references so any conforming parser reads them back unchanged). For tests,
    /// fuzzing and debugging: `parse(env.to_xml())` gives `env` back.
    pub fn to_xml(&self) -> String {
        use quick_xml::Writer;
        use quick_xml::events::attributes::Attribute;
        use quick_xml::name::QName;

        fn attr<'a>(name: &'a str, value: &str) -> Attribute<'a> {
            let escaped = quick_xml::escape::escape(value)
                .replace('\n', "&#10;")
                .replace('\r', "&#13;")
                .replace('\t', "&#9;");
            Attribute {
                key: QName(name.as_bytes()),
                value: std::borrow::Cow::Owned(escaped.into_bytes()),
            }
        }

        let mut w = Writer::new_with_indent(Vec::new(), b' ', 3);
        let root = w
            .create_element("Environment")
            .with_attribute(("xmlns", OVF_ENV_NS))
            .with_attribute(("xmlns:oe", OVF_ENV_NS))
            .with_attribute(("xmlns:ve", VMW_ENV_NS))
            .with_attribute(("oe:id", ""))
            .write_inner_content(|w| {
                if let Some(p) = &self.platform {
                    w.create_element("PlatformSection")
                        .write_inner_content(|w| {
                            for (name, v) in [
                                ("Kind", &p.kind),
                                ("Version", &p.version),
                                ("Vendor", &p.vendor),
                            ] {
                                if let Some(v) = v {
                                    w.create_element(name)
                                        .write_text_content(quick_xml::events::BytesText::new(v))?;
                                }
                            }
                            Ok(())
                        })?;
                }
                w.create_element("PropertySection")
                    .write_inner_content(|w| {
                        for p in &self.properties {
                            w.create_element("Property")
                                .with_attribute(attr("oe:key", &p.key))
                                .with_attribute(attr("oe:value", &p.value))
                                .write_empty()?;
                        }
                        Ok(())
                    })?;
                if let Some(adapters) = &self.adapters {
                    w.create_element("ve:EthernetAdapterSection")
                        .write_inner_content(|w| {
                            for a in adapters {
                                let mut e = w.create_element("ve:Adapter");
                                for (name, v) in [
                                    ("ve:mac", &a.mac),
                                    ("ve:network", &a.network),
                                    ("ve:unitNumber", &a.unit_number),
                                ] {
                                    if let Some(v) = v {
                                        e = e.with_attribute(attr(name, v));
                                    }
                                }
                                e.write_empty()?;
                            }
                            Ok(())
                        })?;
                }
                Ok(())
            });
        // Writing into a Vec cannot fail.
        let _ = root;
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&String::from_utf8_lossy(&w.into_inner()));
        out.push('\n');
        out
    }
}

/// Why a document is not a usable OVF environment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("not well-formed XML at line {line}, column {column}: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "the document is not an OVF environment: its root element is {found}; expected \
         Environment in namespace {OVF_ENV_NS}"
    )]
    NotAnEnvironment { found: String },
    #[error("the document is empty; expected an OVF environment (<Environment …>)")]
    Empty,
}

/// Parse an OVF environment document.
pub fn parse(bytes: &[u8]) -> Result<Environment, EnvError> {
    // Tolerate a UTF-8 byte-order mark (written by some Windows tools).
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        // The lossy copy keeps the valid prefix byte for byte, so the offset still fits.
        let Position { line, column } =
            line_column(&String::from_utf8_lossy(bytes), e.valid_up_to());
        EnvError::Malformed {
            line,
            column,
            message: "invalid UTF-8; expected a UTF-8 document".into(),
        }
    })?;
    Parser::new(text).run()
}

/// Where in the tree the parser is (only the parts that matter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    Root,
    PropertySection,
    AdapterSection,
    Platform,
    PlatformField(PlatformField),
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PlatformField {
    Kind,
    Version,
    Vendor,
}

struct Parser<'a> {
    text: &'a str,
    reader: NsReader<&'a [u8]>,
    stack: Vec<Ctx>,
    env: Environment,
    seen_root: bool,
    /// Text of the platform field being read.
    field_text: String,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        let mut reader = NsReader::from_reader(text.as_bytes());
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        Parser {
            text,
            reader,
            stack: Vec::new(),
            env: Environment::default(),
            seen_root: false,
            field_text: String::new(),
        }
    }

    fn malformed(&self, pos: u64, message: impl Into<String>) -> EnvError {
        let pos = usize::try_from(pos)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        let Position { line, column } = line_column(self.text, pos);
        EnvError::Malformed {
            line,
            column,
            message: message.into(),
        }
    }

    fn run(mut self) -> Result<Environment, EnvError> {
        loop {
            let event = match self.reader.read_resolved_event() {
                Ok((ns, event)) => (owned_ns(&ns), event),
                Err(e) => {
                    let pos = self.reader.error_position();
                    return Err(self.malformed(pos, reader_message(&e)));
                }
            };
            match event {
                (ns, Event::Start(start)) => {
                    let ctx = self.element(ns.as_deref(), &start)?;
                    self.stack.push(ctx);
                }
                (ns, Event::Empty(start)) => {
                    self.element(ns.as_deref(), &start)?;
                }
                (_, Event::End(_)) => {
                    if let Some(Ctx::PlatformField(field)) = self.stack.pop() {
                        let value = std::mem::take(&mut self.field_text).trim().to_owned();
                        let platform = self.env.platform.get_or_insert_with(Platform::default);
                        *match field {
                            PlatformField::Kind => &mut platform.kind,
                            PlatformField::Version => &mut platform.version,
                            PlatformField::Vendor => &mut platform.vendor,
                        } = Some(value);
                    }
                }
                (_, Event::Text(t)) => {
                    let pos = self.reader.buffer_position();
                    let text = t.decode().map_err(|e| self.malformed(pos, e.to_string()))?;
                    self.text(&text, pos)?;
                }
                (_, Event::CData(t)) => {
                    let pos = self.reader.buffer_position();
                    let text = t.decode().map_err(|e| self.malformed(pos, e.to_string()))?;
                    self.text(&text, pos)?;
                }
                (_, Event::GeneralRef(r)) => {
                    // `&…;` in text arrives as its own event: resolve it (character or one of
                    // the five predefined entities; anything else is not well-formed).
                    let pos = self.reader.buffer_position();
                    let name = r.decode().map(|n| n.into_owned()).unwrap_or_default();
                    let reference = format!("&{name};");
                    let resolved = quick_xml::escape::unescape(&reference)
                        .map_err(|_| {
                            let shown = quote::value(&reference);
                            self.malformed(pos, format!("unknown entity {shown}"))
                        })?
                        .into_owned();
                    self.text(&resolved, pos)?;
                }
                (_, Event::Eof) => break,
                _ => {}
            }
        }
        if !self.stack.is_empty() {
            let pos = self.text.len() as u64;
            return Err(self.malformed(pos, "the document ends before the root element is closed"));
        }
        if !self.seen_root {
            return Err(EnvError::Empty);
        }
        Ok(self.env)
    }

    /// Character data: kept inside platform fields, ignored elsewhere inside the root, an
    /// error outside it.
    fn text(&mut self, text: &str, pos: u64) -> Result<(), EnvError> {
        if let Some(Ctx::PlatformField(_)) = self.stack.last() {
            self.field_text.push_str(text);
        } else if self.stack.is_empty() && !text.chars().all(char::is_whitespace) {
            return Err(self.malformed(pos, "text outside the root element"));
        }
        Ok(())
    }

    /// Handle an opening (or empty) element; returns its context for children.
    fn element(&mut self, ns: Option<&str>, start: &BytesStart<'_>) -> Result<Ctx, EnvError> {
        let local = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
        if ns == Some(UNKNOWN_NS) {
            let pos = self.reader.buffer_position();
            let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
            let name = quote::value(&name);
            return Err(self.malformed(
                pos,
                format!("undeclared namespace prefix in element {name}"),
            ));
        }
        let parent = self.stack.last().copied();
        let Some(parent) = parent else {
            if self.seen_root {
                let pos = self.reader.buffer_position();
                return Err(self.malformed(pos, "a second root element"));
            }
            self.seen_root = true;
            if ns != Some(OVF_ENV_NS) || local != "Environment" {
                let local = quote::value(&local);
                return Err(EnvError::NotAnEnvironment {
                    found: match ns {
                        Some(ns) => format!("{local} in namespace {}", quote::value(ns)),
                        None => format!("{local} (no namespace)"),
                    },
                });
            }
            // Validate the root's attributes (duplicates, escapes) like any other element.
            self.attributes(start)?;
            return Ok(Ctx::Root);
        };
        let attrs = self.attributes(start)?;
        let ctx = match (parent, ns, local.as_str()) {
            (Ctx::Root, Some(OVF_ENV_NS), "PropertySection") => Ctx::PropertySection,
            (Ctx::Root, Some(OVF_ENV_NS), "PlatformSection") => {
                self.env.platform.get_or_insert_with(Platform::default);
                Ctx::Platform
            }
            (Ctx::Root, Some(VMW_ENV_NS), "EthernetAdapterSection") => {
                self.env.adapters.get_or_insert_with(Vec::new);
                Ctx::AdapterSection
            }
            (Ctx::Platform, Some(OVF_ENV_NS), "Kind") => Ctx::PlatformField(PlatformField::Kind),
            (Ctx::Platform, Some(OVF_ENV_NS), "Version") => {
                Ctx::PlatformField(PlatformField::Version)
            }
            (Ctx::Platform, Some(OVF_ENV_NS), "Vendor") => {
                Ctx::PlatformField(PlatformField::Vendor)
            }
            (Ctx::PropertySection, Some(OVF_ENV_NS), "Property") => {
                let key = find(&attrs, OVF_ENV_NS, "key");
                if let Some(key) = key {
                    let value = find(&attrs, OVF_ENV_NS, "value").unwrap_or_default();
                    self.env.properties.push(Property { key, value });
                }
                Ctx::Other
            }
            (Ctx::AdapterSection, Some(VMW_ENV_NS), "Adapter") => {
                let adapter = Adapter {
                    mac: find(&attrs, VMW_ENV_NS, "mac"),
                    network: find(&attrs, VMW_ENV_NS, "network"),
                    unit_number: find(&attrs, VMW_ENV_NS, "unitNumber"),
                };
                if let Some(adapters) = self.env.adapters.as_mut() {
                    adapters.push(adapter);
                }
                Ctx::Other
            }
            _ => Ctx::Other,
        };
        Ok(ctx)
    }

    /// All attributes of an element as (namespace URI, local name, normalised and unescaped
    /// value).
    fn attributes(&self, start: &BytesStart<'_>) -> Result<Vec<Attr>, EnvError> {
        let owner = self.value_owner(start);
        let mut out = Vec::new();
        for attr in start.attributes() {
            let pos = self.reader.buffer_position();
            let attr = attr.map_err(|e| {
                self.malformed(pos, quote::one_line(&e.to_string(), PARSER_MESSAGE_CHARS))
            })?;
            let (ns, local) = self.reader.resolve_attribute(attr.key);
            let ns = owned_ns(&ns);
            let name = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
            if ns.as_deref() == Some(UNKNOWN_NS) {
                let name = quote::value(&name);
                return Err(self.malformed(pos, format!("undeclared namespace prefix in {name}")));
            }
            // The document is valid UTF-8 and a value lies between ASCII quotes.
            let raw = String::from_utf8_lossy(&attr.value);
            let value = attribute_value(&raw)
                .map_err(|problem| self.malformed(pos, problem.message(&name, &owner)))?;
            out.push(Attr {
                ns,
                local: String::from_utf8_lossy(local.as_ref()).into_owned(),
                value,
            });
        }
        Ok(out)
    }

    /// Whose value the attributes of this element may hold, for messages about them.
    fn value_owner(&self, start: &BytesStart<'_>) -> Owner {
        let is_property = start.local_name().as_ref() == b"Property";
        if !is_property {
            return Owner::NotAProperty;
        }
        for attr in start.attributes().flatten() {
            let (ns, local) = self.reader.resolve_attribute(attr.key);
            if owned_ns(&ns).as_deref() == Some(OVF_ENV_NS) && local.as_ref() == b"key" {
                let raw = String::from_utf8_lossy(&attr.value).into_owned();
                return match attribute_value(&raw) {
                    Ok(key) => Owner::Property(key),
                    Err(_) => Owner::UnknownProperty,
                };
            }
        }
        Owner::UnknownProperty
    }
}

/// Which property an element's attribute values belong to.
enum Owner {
    NotAProperty,
    /// A `Property` whose key could not be read: its value may be a secret.
    UnknownProperty,
    Property(String),
}

impl Owner {
    /// Whether text of the attribute values may be shown: never for a secret property, nor for
    /// a property whose key is unknown (it may be a secret).
    fn may_show_values(&self) -> bool {
        match self {
            Owner::NotAProperty => true,
            Owner::UnknownProperty => false,
            // Near misses of a secret key (case, spaces) count as the secret.
            Owner::Property(key) => !definition::appliance()
                .properties
                .iter()
                .any(|p| p.secret && p.key.eq_ignore_ascii_case(key.trim())),
        }
    }
}

/// Why an attribute value is not well-formed.
enum ValueProblem {
    /// A raw `<` (XML 1.0 §3.1, production AttValue), at this character.
    LessThan {
        at: usize,
    },
    Escape {
        at: usize,
        error: EscapeError,
    },
}

impl ValueProblem {
    /// What is wrong, where, and what is expected; quotes value text only when `owner` allows.
    fn message(&self, attribute: &str, owner: &Owner) -> String {
        let attribute = quote::value(attribute);
        let place = match owner {
            Owner::Property(key) => {
                format!("attribute {attribute} of property {}", quote::value(key))
            }
            _ => format!("attribute {attribute}"),
        };
        let show = owner.may_show_values();
        match self {
            ValueProblem::LessThan { at } => format!(
                "a raw '<' at character {at} of the value of {place}; expected &lt; (a value \
                 cannot contain '<')"
            ),
            ValueProblem::Escape { at, error } => {
                let what = match error {
                    EscapeError::UnrecognizedEntity(_, name) if show => {
                        format!(
                            "the unknown entity reference {}",
                            quote::value(&format!("&{name};"))
                        )
                    }
                    EscapeError::UnrecognizedEntity(_, name) => format!(
                        "an unknown entity reference of {} characters",
                        name.chars().count() + 2
                    ),
                    EscapeError::UnterminatedEntity(_) => "a '&' without a closing ';'".to_owned(),
                    EscapeError::InvalidCharRef(e) if show => {
                        format!(
                            "an invalid character reference ({})",
                            quote::one_line(&e.to_string(), PARSER_MESSAGE_CHARS)
                        )
                    }
                    EscapeError::InvalidCharRef(_) => "an invalid character reference".to_owned(),
                };
                format!(
                    "{what} at character {at} of the value of {place}; expected &amp; &lt; &gt; \
                     &quot; &apos; or a character reference such as &#10;"
                )
            }
        }
    }
}

/// An attribute value as XML 1.0 defines it (§2.11, §3.3.3): line ends normalised, each
/// literal line break or tab a space, references replaced; a raw `<` is not well-formed.
fn attribute_value(raw: &str) -> Result<String, ValueProblem> {
    if let Some(i) = raw.find('<') {
        return Err(ValueProblem::LessThan {
            at: char_number(raw, i),
        });
    }
    let normalised = raw.replace("\r\n", " ").replace(['\r', '\n', '\t'], " ");
    quick_xml::escape::unescape(&normalised)
        .map(|v| v.into_owned())
        .map_err(|error| {
            let byte = match &error {
                EscapeError::UnrecognizedEntity(r, _) | EscapeError::UnterminatedEntity(r) => {
                    r.start
                }
                EscapeError::InvalidCharRef(_) => normalised.find("&#").unwrap_or(0),
            };
            ValueProblem::Escape {
                at: char_number(&normalised, byte),
                error,
            }
        })
}

/// 1-based character number of a byte offset.
fn char_number(s: &str, byte: usize) -> usize {
    s.char_indices().take_while(|(i, _)| *i < byte).count() + 1
}

/// A reader error, with names from the document quoted bounded.
fn reader_message(e: &quick_xml::Error) -> String {
    use quick_xml::errors::IllFormedError as Ill;
    match e {
        quick_xml::Error::IllFormed(Ill::MismatchedEndTag { expected, found }) => format!(
            "the end tag {} does not close the open element {}",
            quote::value(found),
            quote::value(expected)
        ),
        quick_xml::Error::IllFormed(Ill::UnmatchedEndTag(name)) => {
            format!("the end tag {} closes no open element", quote::value(name))
        }
        quick_xml::Error::IllFormed(Ill::MissingEndTag(name)) => {
            format!("the element {} is not closed", quote::value(name))
        }
        other => quote::one_line(&other.to_string(), PARSER_MESSAGE_CHARS),
    }
}

struct Attr {
    ns: Option<String>,
    local: String,
    value: String,
}

fn find(attrs: &[Attr], ns: &str, local: &str) -> Option<String> {
    attrs
        .iter()
        .find(|a| a.ns.as_deref() == Some(ns) && a.local == local)
        .map(|a| a.value.clone())
}

/// Characters of a message of quick-xml's shown (they may name elements of any length).
const PARSER_MESSAGE_CHARS: usize = 200;

/// Marks an undeclared prefix (cannot be a real URI: it contains NUL).
const UNKNOWN_NS: &str = "\u{0}unknown";

/// Resolve a namespace to an owned URI; [`UNKNOWN_NS`] marks an undeclared prefix.
fn owned_ns(ns: &ResolveResult<'_>) -> Option<String> {
    match ns {
        ResolveResult::Bound(Namespace(uri)) => Some(String::from_utf8_lossy(uri).into_owned()),
        ResolveResult::Unbound => None,
        ResolveResult::Unknown(_) => Some(UNKNOWN_NS.into()),
    }
}
