//! XML → Envelope.
//!
//! Two steps: quick-xml's namespace-aware reader builds a small element tree (names resolved
//! to namespace URIs, entities and character references resolved, attribute values
//! normalised as XML requires), then the tree is mapped onto the model. Elements are matched
//! by namespace URI and local name, never by prefix. Sections and elements the model does not
//! know are recorded (sections) or skipped (anything else); only malformed XML or a missing
//! required attribute of a known element is an error, and errors say where.

use std::borrow::Cow;

use quick_xml::NsReader;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;

use crate::model::*;
use crate::text::{Position, line_column};

/// Why a descriptor could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ReadError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    pub message: String,
}

/// Reads an OVF 1.x descriptor.
pub fn read(xml: &str) -> Result<Envelope, ReadError> {
    let root = parse_tree(xml)?;
    let m = Mapper { xml };
    m.envelope(&root)
}

#[derive(Debug, Default)]
struct Element {
    ns: String,
    local: String,
    attrs: Vec<Attr>,
    children: Vec<Element>,
    text: String,
    offset: usize,
}

#[derive(Debug)]
struct Attr {
    ns: String,
    local: String,
    value: String,
}

impl Element {
    fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }

    /// Attribute in namespace `ns`, falling back to the unqualified attribute (some tools
    /// write `id=` where `ovf:id=` is meant).
    fn attr(&self, ns: &str, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns == ns && a.local == local)
            .or_else(|| {
                self.attrs
                    .iter()
                    .find(|a| a.ns.is_empty() && a.local == local)
            })
            .map(|a| a.value.as_str())
    }

    fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, local))
    }

    fn child_text(&self, ns: &str, local: &str) -> Option<String> {
        self.child(ns, local).map(|c| c.text.clone())
    }
}

fn error_at(xml: &str, offset: usize, message: impl Into<String>) -> ReadError {
    let Position { line, column } = line_column(xml, offset);
    ReadError {
        line,
        column,
        message: message.into(),
    }
}

/// XML attribute-value normalisation (literal whitespace → space), then entity resolution.
fn attribute_value(raw: &[u8]) -> Result<String, String> {
    let raw = std::str::from_utf8(raw).map_err(|e| format!("attribute value is not UTF-8: {e}"))?;
    let normalised: String = raw
        .replace("\r\n", "\n")
        .chars()
        .map(|c| {
            if matches!(c, '\r' | '\n' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect();
    quick_xml::escape::unescape(&normalised)
        .map(Cow::into_owned)
        .map_err(|e| format!("bad reference in attribute value: {e}"))
}

fn parse_tree(xml: &str) -> Result<Element, ReadError> {
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let offset = reader.buffer_position() as usize;
        let (ns, event) = match reader.read_resolved_event() {
            Ok((ns, event)) => (resolve(&ns), event),
            Err(e) => {
                return Err(error_at(
                    xml,
                    reader.error_position() as usize,
                    format!("malformed XML: {e}"),
                ));
            }
        };
        match event {
            Event::Start(start) => {
                let ns = ns.map_err(|prefix| {
                    error_at(xml, offset, format!("unknown namespace prefix `{prefix}`"))
                })?;
                let element = element(&reader, &start, ns, offset)
                    .map_err(|message| error_at(xml, offset, message))?;
                if root.is_some() && stack.is_empty() {
                    return Err(error_at(xml, offset, "more than one root element"));
                }
                stack.push(element);
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(error_at(xml, offset, "closing tag without opening tag"));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(text) => {
                if let Some(top) = stack.last_mut() {
                    let content = text
                        .xml10_content()
                        .map_err(|e| error_at(xml, offset, format!("bad text: {e}")))?;
                    top.text.push_str(&content);
                }
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    let content = data
                        .xml10_content()
                        .map_err(|e| error_at(xml, offset, format!("bad CDATA: {e}")))?;
                    top.text.push_str(&content);
                }
            }
            Event::GeneralRef(reference) => {
                let resolved =
                    reference_text(&reference).map_err(|message| error_at(xml, offset, message))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Empty(_)
            | Event::Comment(_)
            | Event::Decl(_)
            | Event::PI(_)
            | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(error_at(
            xml,
            xml.len(),
            format!("document ends inside <{}>", open.local),
        ));
    }
    root.ok_or_else(|| error_at(xml, xml.len(), "no root element"))
}

/// The text a character reference or one of XML's predefined entities stands for.
fn reference_text(reference: &BytesRef<'_>) -> Result<String, String> {
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(c)) => Ok(c.to_string()),
            Ok(None) | Err(_) => Err("bad character reference".to_string()),
        };
    }
    let name = reference
        .decode()
        .map_err(|e| format!("bad reference: {e}"))?;
    quick_xml::escape::resolve_predefined_entity(&name)
        .map(str::to_string)
        .ok_or_else(|| format!("unknown entity `&{name};`"))
}

/// Namespace URI of a resolved name; `Err(prefix)` for an undeclared prefix.
fn resolve(ns: &ResolveResult<'_>) -> Result<String, String> {
    match ns {
        ResolveResult::Bound(n) => Ok(String::from_utf8_lossy(n.as_ref()).into_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(prefix) => Err(String::from_utf8_lossy(prefix).into_owned()),
    }
}

fn element(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    ns: String,
    offset: usize,
) -> Result<Element, String> {
    let local = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| format!("bad attribute in <{local}>: {e}"))?;
        let key = attr.key.as_ref();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            continue;
        }
        let (attr_ns, attr_local) = if let Some(rest) = key.strip_prefix(b"xml:") {
            (
                NS_XML.to_string(),
                String::from_utf8_lossy(rest).into_owned(),
            )
        } else {
            let (resolved, local_name) = reader.resolve_attribute(attr.key);
            let attr_ns = resolve(&resolved).map_err(|prefix| {
                format!("unknown namespace prefix `{prefix}` on an attribute of <{local}>")
            })?;
            (
                attr_ns,
                String::from_utf8_lossy(local_name.as_ref()).into_owned(),
            )
        };
        let value = attribute_value(&attr.value)?;
        attrs.push(Attr {
            ns: attr_ns,
            local: attr_local,
            value,
        });
    }
    Ok(Element {
        ns,
        local,
        attrs,
        children: Vec::new(),
        text: String::new(),
        offset,
    })
}

struct Mapper<'a> {
    xml: &'a str,
}

impl Mapper<'_> {
    fn err(&self, e: &Element, message: impl Into<String>) -> ReadError {
        error_at(self.xml, e.offset, message)
    }

    fn required_attr(&self, e: &Element, local: &str) -> Result<String, ReadError> {
        e.attr(NS_OVF, local).map(str::to_string).ok_or_else(|| {
            self.err(
                e,
                format!("<{}> lacks the required attribute ovf:{local}", e.local),
            )
        })
    }

    fn opt_attr(e: &Element, local: &str) -> Option<String> {
        e.attr(NS_OVF, local).map(str::to_string)
    }

    fn bool_attr(&self, e: &Element, ns: &str, local: &str) -> Result<Option<bool>, ReadError> {
        match e.attr(ns, local).map(str::trim) {
            None => Ok(None),
            Some("true" | "1") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(other) => Err(self.err(
                e,
                format!(
                    "<{}> has {local}=\"{other}\"; expected true or false",
                    e.local
                ),
            )),
        }
    }

    fn num_attr<T: std::str::FromStr>(
        &self,
        e: &Element,
        local: &str,
    ) -> Result<Option<T>, ReadError> {
        match e.attr(NS_OVF, local) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                self.err(
                    e,
                    format!(
                        "<{}> has ovf:{local}=\"{v}\"; expected a whole number",
                        e.local
                    ),
                )
            }),
        }
    }

    fn info(e: &Element) -> String {
        e.child_text(NS_OVF, "Info").unwrap_or_default()
    }

    fn unknown(&self, e: &Element) -> Result<UnknownSection, ReadError> {
        Ok(UnknownSection {
            namespace: e.ns.clone(),
            local_name: e.local.clone(),
            required: self.bool_attr(e, NS_OVF, "required")?,
            info: e.child_text(NS_OVF, "Info"),
            line: line_column(self.xml, e.offset).line,
        })
    }

    fn envelope(&self, root: &Element) -> Result<Envelope, ReadError> {
        if !root.is(NS_OVF, "Envelope") {
            let found = if root.ns.is_empty() {
                format!("<{}> without a namespace", root.local)
            } else {
                format!("<{}> in namespace {}", root.local, root.ns)
            };
            return Err(self.err(
                root,
                format!("the root element is {found}; expected <Envelope> in namespace {NS_OVF} (OVF 1.x)"),
            ));
        }
        let mut env = Envelope {
            lang: root.attr(NS_XML, "lang").map(str::to_string),
            ..Envelope::default()
        };
        for child in &root.children {
            if child.ns != NS_OVF {
                env.unknown_sections.push(self.unknown(child)?);
                continue;
            }
            match child.local.as_str() {
                "References" => {
                    for f in child.children.iter().filter(|f| f.is(NS_OVF, "File")) {
                        env.references.push(File {
                            id: self.required_attr(f, "id")?,
                            href: self.required_attr(f, "href")?,
                            size: self.num_attr(f, "size")?,
                            compression: Self::opt_attr(f, "compression"),
                            chunk_size: self.num_attr(f, "chunkSize")?,
                        });
                    }
                }
                "DiskSection" => env.disk_section = Some(self.disk_section(child)?),
                "NetworkSection" => env.network_section = Some(self.network_section(child)?),
                "DeploymentOptionSection" => {
                    env.deployment_option_section = Some(self.deployment_option_section(child)?)
                }
                "VirtualSystem" => env.virtual_system = Some(self.virtual_system(child)?),
                "Strings" => env.strings.push(Strings {
                    lang: child.attr(NS_XML, "lang").map(str::to_string),
                    file_ref: Self::opt_attr(child, "fileRef"),
                    messages: child
                        .children
                        .iter()
                        .filter(|m| m.is(NS_OVF, "Msg"))
                        .map(|m| {
                            (
                                m.attr(NS_OVF, "msgid").unwrap_or_default().to_string(),
                                m.text.clone(),
                            )
                        })
                        .collect(),
                }),
                "VirtualSystemCollection" => env.unknown_content = Some(self.unknown(child)?),
                _ => env.unknown_sections.push(self.unknown(child)?),
            }
        }
        Ok(env)
    }

    fn disk_section(&self, e: &Element) -> Result<DiskSection, ReadError> {
        let mut disks = Vec::new();
        for d in e.children.iter().filter(|d| d.is(NS_OVF, "Disk")) {
            disks.push(Disk {
                disk_id: self.required_attr(d, "diskId")?,
                file_ref: Self::opt_attr(d, "fileRef"),
                capacity: self.required_attr(d, "capacity")?,
                capacity_allocation_units: Self::opt_attr(d, "capacityAllocationUnits"),
                format: Self::opt_attr(d, "format"),
                populated_size: self.num_attr(d, "populatedSize")?,
                parent_ref: Self::opt_attr(d, "parentRef"),
            });
        }
        Ok(DiskSection {
            info: Self::info(e),
            required: self.bool_attr(e, NS_OVF, "required")?,
            disks,
        })
    }

    fn network_section(&self, e: &Element) -> Result<NetworkSection, ReadError> {
        let mut networks = Vec::new();
        for n in e.children.iter().filter(|n| n.is(NS_OVF, "Network")) {
            networks.push(Network {
                name: self.required_attr(n, "name")?,
                description: n.child_text(NS_OVF, "Description"),
                configuration: Self::opt_attr(n, "configuration"),
            });
        }
        Ok(NetworkSection {
            info: Self::info(e),
            required: self.bool_attr(e, NS_OVF, "required")?,
            networks,
        })
    }

    fn deployment_option_section(&self, e: &Element) -> Result<DeploymentOptionSection, ReadError> {
        let mut configurations = Vec::new();
        for c in e.children.iter().filter(|c| c.is(NS_OVF, "Configuration")) {
            configurations.push(Configuration {
                id: self.required_attr(c, "id")?,
                default: self.bool_attr(c, NS_OVF, "default")?,
                label: c.child_text(NS_OVF, "Label").unwrap_or_default(),
                description: c.child_text(NS_OVF, "Description").unwrap_or_default(),
            });
        }
        Ok(DeploymentOptionSection {
            info: Self::info(e),
            required: self.bool_attr(e, NS_OVF, "required")?,
            configurations,
        })
    }

    fn virtual_system(&self, e: &Element) -> Result<VirtualSystem, ReadError> {
        let mut vs = VirtualSystem {
            id: self.required_attr(e, "id")?,
            info: Self::info(e),
            name: e.child_text(NS_OVF, "Name"),
            ..VirtualSystem::default()
        };
        for child in &e.children {
            if child.ns != NS_OVF {
                vs.unknown_sections.push(self.unknown(child)?);
                continue;
            }
            let required = self.bool_attr(child, NS_OVF, "required")?;
            match child.local.as_str() {
                "Info" | "Name" => {}
                "AnnotationSection" => {
                    vs.annotation_section = Some(AnnotationSection {
                        info: Self::info(child),
                        required,
                        annotation: child.child_text(NS_OVF, "Annotation").unwrap_or_default(),
                    })
                }
                "ProductSection" => vs.product_sections.push(self.product_section(child)?),
                "EulaSection" => vs.eula_sections.push(EulaSection {
                    info: Self::info(child),
                    required,
                    license: child.child_text(NS_OVF, "License").unwrap_or_default(),
                }),
                "OperatingSystemSection" => {
                    vs.operating_system_section = Some(OperatingSystemSection {
                        info: Self::info(child),
                        required,
                        id: self.num_attr(child, "id")?.ok_or_else(|| {
                            self.err(
                                child,
                                "<OperatingSystemSection> lacks the required attribute ovf:id",
                            )
                        })?,
                        version: Self::opt_attr(child, "version"),
                        description: child.child_text(NS_OVF, "Description"),
                        vmw_os_type: child.attr(NS_VMW, "osType").map(str::to_string),
                    })
                }
                "VirtualHardwareSection" => vs
                    .virtual_hardware_sections
                    .push(self.virtual_hardware_section(child)?),
                _ => vs.unknown_sections.push(self.unknown(child)?),
            }
        }
        Ok(vs)
    }

    fn product_section(&self, e: &Element) -> Result<ProductSection, ReadError> {
        let mut p = ProductSection {
            info: Self::info(e),
            required: self.bool_attr(e, NS_OVF, "required")?,
            class: Self::opt_attr(e, "class"),
            instance: Self::opt_attr(e, "instance"),
            product: e.child_text(NS_OVF, "Product"),
            vendor: e.child_text(NS_OVF, "Vendor"),
            version: e.child_text(NS_OVF, "Version"),
            full_version: e.child_text(NS_OVF, "FullVersion"),
            product_url: e.child_text(NS_OVF, "ProductUrl"),
            vendor_url: e.child_text(NS_OVF, "VendorUrl"),
            app_url: e.child_text(NS_OVF, "AppUrl"),
            items: Vec::new(),
        };
        for child in e.children.iter().filter(|c| c.ns == NS_OVF) {
            match child.local.as_str() {
                "Category" => p.items.push(ProductItem::Category(child.text.clone())),
                "Property" => p.items.push(ProductItem::Property(self.property(child)?)),
                _ => {}
            }
        }
        Ok(p)
    }

    fn property(&self, e: &Element) -> Result<Property, ReadError> {
        let mut values = Vec::new();
        for v in e.children.iter().filter(|v| v.is(NS_OVF, "Value")) {
            values.push(PropertyValue {
                value: self.required_attr(v, "value")?,
                configuration: Self::opt_attr(v, "configuration"),
            });
        }
        Ok(Property {
            key: self.required_attr(e, "key")?,
            type_name: self.required_attr(e, "type")?,
            qualifiers: Self::opt_attr(e, "qualifiers"),
            value: Self::opt_attr(e, "value"),
            user_configurable: self.bool_attr(e, NS_OVF, "userConfigurable")?,
            password: self.bool_attr(e, NS_OVF, "password")?,
            configuration: Self::opt_attr(e, "configuration"),
            label: e.child_text(NS_OVF, "Label"),
            description: e.child_text(NS_OVF, "Description"),
            values,
        })
    }

    fn vmw_config(&self, e: &Element) -> Result<VmwConfig, ReadError> {
        let get = |local: &str| {
            e.attr(NS_VMW, local).map(str::to_string).ok_or_else(|| {
                self.err(
                    e,
                    format!("<vmw:{}> lacks the attribute vmw:{local}", e.local),
                )
            })
        };
        Ok(VmwConfig {
            required: self.bool_attr(e, NS_OVF, "required")?,
            key: get("key")?,
            value: get("value")?,
        })
    }

    fn virtual_hardware_section(&self, e: &Element) -> Result<VirtualHardwareSection, ReadError> {
        let mut h = VirtualHardwareSection {
            info: Self::info(e),
            required: self.bool_attr(e, NS_OVF, "required")?,
            id: Self::opt_attr(e, "id"),
            transport: Self::opt_attr(e, "transport"),
            ..VirtualHardwareSection::default()
        };
        for child in &e.children {
            if child.is(NS_OVF, "System") {
                let text = |local: &str| child.child_text(NS_VSSD, local);
                h.system = Some(System {
                    description: text("Description"),
                    element_name: text("ElementName").unwrap_or_default(),
                    instance_id: text("InstanceID").unwrap_or_default(),
                    virtual_system_identifier: text("VirtualSystemIdentifier"),
                    virtual_system_type: text("VirtualSystemType"),
                });
            } else if child.is(NS_OVF, "Item") {
                h.items.push(self.item(child)?);
            } else if child.is(NS_VMW, "Config") {
                h.vmw_config.push(self.vmw_config(child)?);
            } else if child.is(NS_VMW, "ExtraConfig") {
                h.vmw_extra_config.push(self.vmw_config(child)?);
            }
        }
        Ok(h)
    }

    fn item(&self, e: &Element) -> Result<Item, ReadError> {
        let mut item = Item {
            required: self.bool_attr(e, NS_OVF, "required")?,
            configuration: Self::opt_attr(e, "configuration"),
            bound: Self::opt_attr(e, "bound"),
            ..Item::default()
        };
        for c in &e.children {
            if c.ns == NS_RASD {
                let v = Some(c.text.clone());
                match c.local.as_str() {
                    "Address" => item.address = v,
                    "AddressOnParent" => item.address_on_parent = v,
                    "AllocationUnits" => item.allocation_units = v,
                    "AutomaticAllocation" => item.automatic_allocation = v,
                    "AutomaticDeallocation" => item.automatic_deallocation = v,
                    "Caption" => item.caption = v,
                    "Connection" => item.connections.push(c.text.clone()),
                    "ConsumerVisibility" => item.consumer_visibility = v,
                    "Description" => item.description = v,
                    "ElementName" => item.element_name = c.text.clone(),
                    "HostResource" => item.host_resources.push(c.text.clone()),
                    "InstanceID" => item.instance_id = c.text.clone(),
                    "Limit" => item.limit = v,
                    "MappingBehavior" => item.mapping_behavior = v,
                    "OtherResourceType" => item.other_resource_type = v,
                    "Parent" => item.parent = v,
                    "PoolID" => item.pool_id = v,
                    "Reservation" => item.reservation = v,
                    "ResourceSubType" => item.resource_sub_type = v,
                    "ResourceType" => item.resource_type = v,
                    "VirtualQuantity" => item.virtual_quantity = v,
                    "VirtualQuantityUnits" => item.virtual_quantity_units = v,
                    "Weight" => item.weight = v,
                    _ => {}
                }
            } else if c.is(NS_VMW, "CoresPerSocket") {
                item.vmw_cores_per_socket = Some(VmwCoresPerSocket {
                    required: self.bool_attr(c, NS_OVF, "required")?,
                    value: c.text.clone(),
                });
            } else if c.is(NS_VMW, "Config") {
                item.vmw_config.push(self.vmw_config(c)?);
            }
        }
        Ok(item)
    }
}
