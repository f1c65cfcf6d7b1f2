//! Markup characters and non-ASCII text in every kind of text field survive write → read
//! unchanged, and the descriptor still validates against the DMTF schema.
#![allow(clippy::unwrap_used)]

mod support;

use ovf::{BuildFacts, Definition, DiskFacts, ProductItem};
use proptest::prelude::*;

const NASTY: &str = "<&>\"' ]]> &amp; Ünïcödé — 日本語 🚀";

fn definition_text() -> String {
    // TOML basic strings: \" and \\ escaped; the nasty string has no backslash.
    let n = NASTY.replace('"', "\\\"");
    format!(
        r#"[virtual_system]
id = "demo"
name = "Demo {n}"
annotation = "Annotation {n}\nsecond line\twith tab"

[product]
product = "Product {n}"
vendor = "Vendor {n}"
version = "1.0 {n}"
product_url = "https://example.com/?a=1&b=<2>"

[eula]
file = "eula.txt"
info = "EULA info {n}"

[operating_system]
id = 96
description = "OS {n}"

[hardware]
virtual_system_type = "vmx-13"
cpus = 2
memory_mib = 1024
firmware = "efi"
disk_controller = "lsilogic"
extra_config = [{{ key = "k{n}", value = "v{n}\nline" }}]

[[deployment_options]]
id = "one"
label = "Label {n}"
description = "Description {n}"
default = true

[[networks]]
name = "Net {n}"
description = "Network description {n}"

[[nics]]
name = "nic {n}"
network = "Net {n}"
adapter = "e1000e"

[[categories]]
class = "app"
label = "Category {n}"
info = "Info {n}"

[[categories.properties]]
key = "value"
type = "string"
default = "default {n}\nnext line\r\ttab"
label = "Property label {n}"
description = "Property description {n}\r\nwindows line"
"#
    )
}

#[test]
fn markup_and_non_ascii_survive_a_round_trip_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    let eula = format!("License {NASTY}\r\nCRLF line\nLF line\n\n  indented\ttab\n");
    std::fs::write(dir.path().join("eula.txt"), &eula).unwrap();
    std::fs::write(dir.path().join("demo.toml"), definition_text()).unwrap();
    let def = Definition::from_file(dir.path().join("demo.toml")).unwrap();
    let envelope = def.to_envelope(&BuildFacts {
        disk: DiskFacts {
            file_name: Some("disk & <1>.vmdk".into()),
            ..DiskFacts::default()
        },
        build_date: Some(format!("date {NASTY}")),
        ..BuildFacts::default()
    });
    let xml = ovf::write(&envelope);
    // Nothing raw: the only `<` are markup.
    assert!(!xml.contains("<&>"));
    assert!(!xml.contains("]]>"));
    let back = ovf::read(&xml).unwrap();
    assert_eq!(back, envelope);
    assert_eq!(ovf::write(&back), xml);

    // Spot-check the fields the issue names, as read back.
    let vs = back.virtual_system.as_ref().unwrap();
    assert_eq!(vs.eula_sections[0].license, eula);
    assert_eq!(
        vs.annotation_section.as_ref().unwrap().annotation,
        format!("Annotation {NASTY}\nsecond line\twith tab")
    );
    let app = &vs.product_sections[1];
    assert_eq!(
        app.items[0],
        ProductItem::Category(format!("Category {NASTY}"))
    );
    let ProductItem::Property(p) = &app.items[1] else {
        panic!("expected a property")
    };
    assert_eq!(
        p.label.as_deref(),
        Some(format!("Property label {NASTY}").as_str())
    );
    assert_eq!(
        p.description.as_deref(),
        Some(format!("Property description {NASTY}\r\nwindows line").as_str())
    );
    // Attribute values keep their newlines, carriage returns and tabs.
    assert_eq!(
        p.value.as_deref(),
        Some(format!("default {NASTY}\nnext line\r\ttab").as_str())
    );
    assert_eq!(back.references[0].href, "disk & <1>.vmdk");
    let hw = &vs.virtual_hardware_sections[0];
    assert_eq!(hw.vmw_extra_config[0].value, format!("v{NASTY}\nline"));

    support::assert_valid(&xml, "escaping.ovf");
}

fn xml_text() -> impl Strategy<Value = String> {
    // Any character XML 1.0 can carry, weighted towards the ones that need escaping.
    let special = proptest::string::string_regex("[<>&\"' \r\n\t]").unwrap();
    let any = proptest::string::string_regex(
        "[\t\n\r\u{20}-\u{D7FF}\u{E000}-\u{FFFD}\u{10000}-\u{10FFFF}]",
    )
    .unwrap();
    proptest::collection::vec(prop_oneof![3 => special, 1 => any], 0..24)
        .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any XML-legal text in element text and in attribute values comes back unchanged.
    #[test]
    fn any_text_round_trips(annotation in xml_text(), label in xml_text(), value in xml_text(), license in xml_text()) {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../builder/appliance/haproxy.toml"),
        ).unwrap();
        let def = Definition::parse(&text, "haproxy.toml").unwrap();
        let mut envelope = def.to_envelope(&BuildFacts::default());
        let vs = envelope.virtual_system.as_mut().unwrap();
        vs.annotation_section.as_mut().unwrap().annotation = annotation;
        vs.eula_sections.push(ovf::EulaSection { info: label.clone(), required: None, license });
        if let ProductItem::Property(p) = &mut vs.product_sections[1].items[1] {
            p.label = Some(label);
            p.value = Some(value.clone());
        }
        vs.virtual_hardware_sections[0].vmw_extra_config[0].value = value;
        let xml = ovf::write(&envelope);
        let back = ovf::read(&xml).unwrap();
        prop_assert_eq!(&back, &envelope);
        prop_assert_eq!(ovf::write(&back), xml);
    }
}
