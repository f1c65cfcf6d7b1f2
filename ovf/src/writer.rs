//! Envelope → XML, built on quick-xml.
//!
//! Output is stable (same model, same bytes) and pretty (two-space indentation; text-only
//! elements on one line). Every text and attribute value is escaped here rather than by
//! quick-xml's default escaping, because that leaves whitespace characters alone: a newline
//! in an attribute would come back as a space (XML attribute-value normalisation), and a
//! carriage return in text would come back as a newline (end-of-line normalisation).
//! Characters XML 1.0 cannot carry at all (most C0 controls) are replaced by U+FFFD.
//!
//! Element order follows DSP8023 1.1.1: `References`, sections, content, `Strings` in the
//! envelope; `Info` first in every section; RASD/VSSD children in the schema's (alphabetical)
//! order, VMware extension elements after them.

use std::borrow::Cow;

use quick_xml::Writer;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;

use crate::model::*;

/// Writes an envelope as an OVF descriptor (UTF-8 XML with declaration, trailing newline).
pub fn write(envelope: &Envelope) -> String {
    let mut w = Out {
        w: Writer::new_with_indent(Vec::new(), b' ', 2),
    };
    w.envelope(envelope);
    let mut bytes = w.w.into_inner();
    bytes.push(b'\n');
    // Everything written came from `&str`s and ASCII markup, so this cannot fail; the lossy
    // conversion only keeps the function total.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Attribute list: `(qualified name, value)`; `None` values are left out.
type Attrs<'a> = Vec<(&'a str, Option<Cow<'a, str>>)>;

fn opt(v: &Option<String>) -> Option<Cow<'_, str>> {
    v.as_deref().map(Cow::Borrowed)
}

fn req(v: &str) -> Option<Cow<'_, str>> {
    Some(Cow::Borrowed(v))
}

fn boolean(v: Option<bool>) -> Option<Cow<'static, str>> {
    v.map(|b| Cow::Borrowed(if b { "true" } else { "false" }))
}

fn number<T: ToString>(v: Option<T>) -> Option<Cow<'static, str>> {
    v.map(|n| Cow::Owned(n.to_string()))
}

/// Whether XML 1.0 can carry the character at all.
fn xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            c if !xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

struct Out {
    w: Writer<Vec<u8>>,
}

impl Out {
    fn event(&mut self, event: Event<'_>) {
        // Writing into a Vec<u8> cannot fail.
        let _ = self.w.write_event(event);
    }

    fn start_tag<'a>(name: &'a str, attrs: Attrs<'_>) -> BytesStart<'a> {
        let mut start = BytesStart::new(name);
        for (key, value) in attrs {
            if let Some(value) = value {
                start.push_attribute(Attribute {
                    key: QName(key.as_bytes()),
                    value: Cow::Owned(escape(&value, true).into_bytes()),
                });
            }
        }
        start
    }

    fn open(&mut self, name: &str, attrs: Attrs<'_>) {
        let tag = Self::start_tag(name, attrs);
        self.event(Event::Start(tag));
    }

    fn close(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(name)));
    }

    fn empty(&mut self, name: &str, attrs: Attrs<'_>) {
        let tag = Self::start_tag(name, attrs);
        self.event(Event::Empty(tag));
    }

    /// `<name attrs>text</name>` on one line (also when the text is empty).
    fn text(&mut self, name: &str, attrs: Attrs<'_>, text: &str) {
        self.open(name, attrs);
        let escaped = escape(text, false);
        self.event(Event::Text(BytesText::from_escaped(escaped.as_str())));
        self.close(name);
    }

    fn opt_text(&mut self, name: &str, text: &Option<String>) {
        if let Some(text) = text {
            self.text(name, vec![], text);
        }
    }

    fn envelope(&mut self, e: &Envelope) {
        self.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        self.open(
            "Envelope",
            vec![
                ("xmlns", req(NS_OVF)),
                ("xmlns:ovf", req(NS_OVF)),
                ("xmlns:rasd", req(NS_RASD)),
                ("xmlns:vmw", req(NS_VMW)),
                ("xmlns:vssd", req(NS_VSSD)),
                ("xml:lang", opt(&e.lang)),
            ],
        );
        self.open("References", vec![]);
        for f in &e.references {
            self.empty(
                "File",
                vec![
                    ("ovf:id", req(&f.id)),
                    ("ovf:href", req(&f.href)),
                    ("ovf:size", number(f.size)),
                    ("ovf:compression", opt(&f.compression)),
                    ("ovf:chunkSize", number(f.chunk_size)),
                ],
            );
        }
        self.close("References");
        if let Some(s) = &e.disk_section {
            self.disk_section(s);
        }
        if let Some(s) = &e.network_section {
            self.network_section(s);
        }
        if let Some(s) = &e.deployment_option_section {
            self.deployment_option_section(s);
        }
        if let Some(vs) = &e.virtual_system {
            self.virtual_system(vs);
        }
        for s in &e.strings {
            self.open(
                "Strings",
                vec![
                    ("xml:lang", opt(&s.lang)),
                    ("ovf:fileRef", opt(&s.file_ref)),
                ],
            );
            for (id, text) in &s.messages {
                self.text("Msg", vec![("ovf:msgid", req(id))], text);
            }
            self.close("Strings");
        }
        self.close("Envelope");
    }

    fn section_start(
        &mut self,
        name: &str,
        mut attrs: Attrs<'_>,
        required: Option<bool>,
        info: &str,
    ) {
        attrs.insert(0, ("ovf:required", boolean(required)));
        self.open(name, attrs);
        self.text("Info", vec![], info);
    }

    fn disk_section(&mut self, s: &DiskSection) {
        self.section_start("DiskSection", vec![], s.required, &s.info);
        for d in &s.disks {
            self.empty(
                "Disk",
                vec![
                    ("ovf:diskId", req(&d.disk_id)),
                    ("ovf:fileRef", opt(&d.file_ref)),
                    ("ovf:capacity", req(&d.capacity)),
                    (
                        "ovf:capacityAllocationUnits",
                        opt(&d.capacity_allocation_units),
                    ),
                    ("ovf:format", opt(&d.format)),
                    ("ovf:populatedSize", number(d.populated_size)),
                    ("ovf:parentRef", opt(&d.parent_ref)),
                ],
            );
        }
        self.close("DiskSection");
    }

    fn network_section(&mut self, s: &NetworkSection) {
        self.section_start("NetworkSection", vec![], s.required, &s.info);
        for n in &s.networks {
            let attrs = vec![
                ("ovf:name", req(&n.name)),
                ("ovf:configuration", opt(&n.configuration)),
            ];
            match &n.description {
                Some(d) => {
                    self.open("Network", attrs);
                    self.text("Description", vec![], d);
                    self.close("Network");
                }
                None => self.empty("Network", attrs),
            }
        }
        self.close("NetworkSection");
    }

    fn deployment_option_section(&mut self, s: &DeploymentOptionSection) {
        self.section_start("DeploymentOptionSection", vec![], s.required, &s.info);
        for c in &s.configurations {
            self.open(
                "Configuration",
                vec![("ovf:id", req(&c.id)), ("ovf:default", boolean(c.default))],
            );
            self.text("Label", vec![], &c.label);
            self.text("Description", vec![], &c.description);
            self.close("Configuration");
        }
        self.close("DeploymentOptionSection");
    }

    fn virtual_system(&mut self, vs: &VirtualSystem) {
        self.open("VirtualSystem", vec![("ovf:id", req(&vs.id))]);
        self.text("Info", vec![], &vs.info);
        self.opt_text("Name", &vs.name);
        if let Some(a) = &vs.annotation_section {
            self.section_start("AnnotationSection", vec![], a.required, &a.info);
            self.text("Annotation", vec![], &a.annotation);
            self.close("AnnotationSection");
        }
        for p in &vs.product_sections {
            self.product_section(p);
        }
        for e in &vs.eula_sections {
            self.section_start("EulaSection", vec![], e.required, &e.info);
            self.text("License", vec![], &e.license);
            self.close("EulaSection");
        }
        if let Some(os) = &vs.operating_system_section {
            self.section_start(
                "OperatingSystemSection",
                vec![
                    ("ovf:id", number(Some(os.id))),
                    ("ovf:version", opt(&os.version)),
                    ("vmw:osType", opt(&os.vmw_os_type)),
                ],
                os.required,
                &os.info,
            );
            self.opt_text("Description", &os.description);
            self.close("OperatingSystemSection");
        }
        for h in &vs.virtual_hardware_sections {
            self.virtual_hardware_section(h);
        }
        self.close("VirtualSystem");
    }

    fn product_section(&mut self, p: &ProductSection) {
        self.section_start(
            "ProductSection",
            vec![
                ("ovf:class", opt(&p.class)),
                ("ovf:instance", opt(&p.instance)),
            ],
            p.required,
            &p.info,
        );
        self.opt_text("Product", &p.product);
        self.opt_text("Vendor", &p.vendor);
        self.opt_text("Version", &p.version);
        self.opt_text("FullVersion", &p.full_version);
        self.opt_text("ProductUrl", &p.product_url);
        self.opt_text("VendorUrl", &p.vendor_url);
        self.opt_text("AppUrl", &p.app_url);
        for item in &p.items {
            match item {
                ProductItem::Category(c) => self.text("Category", vec![], c),
                ProductItem::Property(prop) => self.property(prop),
            }
        }
        self.close("ProductSection");
    }

    fn property(&mut self, p: &Property) {
        let attrs = vec![
            ("ovf:key", req(&p.key)),
            ("ovf:type", req(&p.type_name)),
            ("ovf:qualifiers", opt(&p.qualifiers)),
            ("ovf:value", opt(&p.value)),
            ("ovf:userConfigurable", boolean(p.user_configurable)),
            ("ovf:password", boolean(p.password)),
            ("ovf:configuration", opt(&p.configuration)),
        ];
        if p.label.is_none() && p.description.is_none() && p.values.is_empty() {
            self.empty("Property", attrs);
            return;
        }
        self.open("Property", attrs);
        self.opt_text("Label", &p.label);
        self.opt_text("Description", &p.description);
        for v in &p.values {
            self.empty(
                "Value",
                vec![
                    ("ovf:value", req(&v.value)),
                    ("ovf:configuration", opt(&v.configuration)),
                ],
            );
        }
        self.close("Property");
    }

    fn vmw_config(&mut self, name: &str, c: &VmwConfig) {
        self.empty(
            name,
            vec![
                ("ovf:required", boolean(c.required)),
                ("vmw:key", req(&c.key)),
                ("vmw:value", req(&c.value)),
            ],
        );
    }

    fn virtual_hardware_section(&mut self, h: &VirtualHardwareSection) {
        self.section_start(
            "VirtualHardwareSection",
            vec![("ovf:id", opt(&h.id)), ("ovf:transport", opt(&h.transport))],
            h.required,
            &h.info,
        );
        if let Some(s) = &h.system {
            self.open("System", vec![]);
            self.opt_text("vssd:Description", &s.description);
            self.text("vssd:ElementName", vec![], &s.element_name);
            self.text("vssd:InstanceID", vec![], &s.instance_id);
            self.opt_text("vssd:VirtualSystemIdentifier", &s.virtual_system_identifier);
            self.opt_text("vssd:VirtualSystemType", &s.virtual_system_type);
            self.close("System");
        }
        for item in &h.items {
            self.item(item);
        }
        for c in &h.vmw_config {
            self.vmw_config("vmw:Config", c);
        }
        for c in &h.vmw_extra_config {
            self.vmw_config("vmw:ExtraConfig", c);
        }
        self.close("VirtualHardwareSection");
    }

    fn item(&mut self, i: &Item) {
        self.open(
            "Item",
            vec![
                ("ovf:required", boolean(i.required)),
                ("ovf:configuration", opt(&i.configuration)),
                ("ovf:bound", opt(&i.bound)),
            ],
        );
        self.opt_text("rasd:Address", &i.address);
        self.opt_text("rasd:AddressOnParent", &i.address_on_parent);
        self.opt_text("rasd:AllocationUnits", &i.allocation_units);
        self.opt_text("rasd:AutomaticAllocation", &i.automatic_allocation);
        self.opt_text("rasd:AutomaticDeallocation", &i.automatic_deallocation);
        self.opt_text("rasd:Caption", &i.caption);
        for c in &i.connections {
            self.text("rasd:Connection", vec![], c);
        }
        self.opt_text("rasd:ConsumerVisibility", &i.consumer_visibility);
        self.opt_text("rasd:Description", &i.description);
        self.text("rasd:ElementName", vec![], &i.element_name);
        for r in &i.host_resources {
            self.text("rasd:HostResource", vec![], r);
        }
        self.text("rasd:InstanceID", vec![], &i.instance_id);
        self.opt_text("rasd:Limit", &i.limit);
        self.opt_text("rasd:MappingBehavior", &i.mapping_behavior);
        self.opt_text("rasd:OtherResourceType", &i.other_resource_type);
        self.opt_text("rasd:Parent", &i.parent);
        self.opt_text("rasd:PoolID", &i.pool_id);
        self.opt_text("rasd:Reservation", &i.reservation);
        self.opt_text("rasd:ResourceSubType", &i.resource_sub_type);
        self.opt_text("rasd:ResourceType", &i.resource_type);
        self.opt_text("rasd:VirtualQuantity", &i.virtual_quantity);
        self.opt_text("rasd:VirtualQuantityUnits", &i.virtual_quantity_units);
        self.opt_text("rasd:Weight", &i.weight);
        if let Some(c) = &i.vmw_cores_per_socket {
            self.text(
                "vmw:CoresPerSocket",
                vec![("ovf:required", boolean(c.required))],
                &c.value,
            );
        }
        for c in &i.vmw_config {
            self.vmw_config("vmw:Config", c);
        }
        self.close("Item");
    }
}
