//! Parser behaviour beyond the corpus: namespaces by URI, order independence, malformed input
//! reported with its position, documents that are not OVF environments.

#![allow(clippy::unwrap_used)] // tests may unwrap

use firstboot::env::{EnvError, parse};

const OE: &str = "http://schemas.dmtf.org/ovf/environment/1";
const VE: &str = "http://www.vmware.com/schema/ovfenv";

#[test]
fn namespaces_are_matched_by_uri_not_prefix() {
    let doc = format!(
        r#"<e:Environment xmlns:e="{OE}" xmlns:x="{VE}">
  <x:EthernetAdapterSection><x:Adapter x:mac="00:50:56:00:00:01" x:network="M"/></x:EthernetAdapterSection>
  <e:PropertySection>
    <e:Property e:key="network.hostname" e:value="a.example"/>
    <e:Property key="unqualified.attributes" value="are not OVF attributes"/>
  </e:PropertySection>
</e:Environment>"#
    );
    let env = parse(doc.as_bytes()).unwrap();
    assert_eq!(env.get("network.hostname"), Some("a.example"));
    assert_eq!(env.get("unqualified.attributes"), None);
    assert_eq!(env.adapter_count(), Some(1));
}

#[test]
fn a_prefix_bound_to_another_namespace_is_not_ovf() {
    let doc = format!(
        r#"<Environment xmlns="{OE}" xmlns:oe="urn:something-else">
  <PropertySection><Property oe:key="k" oe:value="v"/></PropertySection>
</Environment>"#
    );
    let env = parse(doc.as_bytes()).unwrap();
    assert_eq!(env.get("k"), None);
}

#[test]
fn attribute_order_and_section_order_do_not_matter() {
    let doc = format!(
        r#"<Environment xmlns="{OE}" xmlns:oe="{OE}">
  <Unknown><PropertySection><Property oe:key="nested" oe:value="ignored"/></PropertySection></Unknown>
  <PropertySection><Property oe:value="v1" oe:key="k1"/></PropertySection>
  <PlatformSection><Kind>VMware ESXi</Kind></PlatformSection>
  <PropertySection><Property oe:key="k2" oe:value="line1&#10;line2"/></PropertySection>
</Environment>"#
    );
    let env = parse(doc.as_bytes()).unwrap();
    assert_eq!(env.get("k1"), Some("v1"));
    assert_eq!(env.get("k2"), Some("line1\nline2"));
    assert_eq!(
        env.get("nested"),
        None,
        "only the Environment's own PropertySection counts"
    );
}

#[test]
fn duplicates_are_reported() {
    let doc = format!(
        r#"<Environment xmlns="{OE}" xmlns:oe="{OE}"><PropertySection>
  <Property oe:key="a" oe:value="1"/><Property oe:key="a" oe:value="2"/><Property oe:key="b" oe:value=""/>
</PropertySection></Environment>"#
    );
    let env = parse(doc.as_bytes()).unwrap();
    assert_eq!(env.get("a"), Some("2"));
    assert_eq!(env.duplicates(), ["a"]);
}

#[test]
fn malformed_xml_says_where() {
    // An unescaped `&` as govmomi's MarshalManual writes it.
    let doc = format!(
        "<Environment xmlns=\"{OE}\" xmlns:oe=\"{OE}\">\n<PropertySection>\n  <Property oe:key=\"pw\" oe:value=\"a&b\"/>\n</PropertySection></Environment>"
    );
    match parse(doc.as_bytes()) {
        Err(EnvError::Malformed { line, .. }) => assert_eq!(line, 3),
        other => panic!("{other:?}"),
    }
    // Mismatched end tag.
    let doc =
        format!("<Environment xmlns=\"{OE}\">\n<PropertySection>\n</Property>\n</Environment>");
    let err = parse(doc.as_bytes()).unwrap_err();
    assert!(matches!(err, EnvError::Malformed { line: 3, .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("not well-formed XML at line 3, column"),
        "{err}"
    );
    // Truncated document.
    let doc = format!("<Environment xmlns=\"{OE}\">\n<PropertySection>");
    let err = parse(doc.as_bytes()).unwrap_err();
    assert!(matches!(err, EnvError::Malformed { .. }), "{err}");
    // Undeclared prefix.
    let doc = format!(
        "<Environment xmlns=\"{OE}\"><PropertySection><Property oe:key=\"a\" oe:value=\"b\"/></PropertySection></Environment>"
    );
    let err = parse(doc.as_bytes()).unwrap_err();
    assert!(matches!(err, EnvError::Malformed { line: 1, .. }), "{err}");
    // Not UTF-8.
    let err = parse(b"<Environment>\xff</Environment>").unwrap_err();
    assert!(
        matches!(
            err,
            EnvError::Malformed {
                line: 1,
                column: 14,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn other_documents_are_refused() {
    assert_eq!(parse(b"").unwrap_err(), EnvError::Empty);
    assert_eq!(parse(b"  \n").unwrap_err(), EnvError::Empty);
    let err = parse(b"<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\"/>").unwrap_err();
    assert_eq!(
        err.to_string(),
        "the document is not an OVF environment: its root element is \"Envelope\" in namespace \
         \"http://schemas.dmtf.org/ovf/envelope/1\"; expected Environment in namespace \
         http://schemas.dmtf.org/ovf/environment/1"
    );
    let err = parse(b"<Environment/>").unwrap_err();
    assert!(matches!(err, EnvError::NotAnEnvironment { .. }), "{err}");
    let err = parse(b"No value found").unwrap_err();
    assert!(
        matches!(err, EnvError::Malformed { .. } | EnvError::Empty),
        "{err}"
    );
}

#[test]
fn bom_and_crlf_are_tolerated() {
    let doc = format!(
        "\u{feff}<?xml version=\"1.0\"?>\r\n<Environment xmlns=\"{OE}\" xmlns:oe=\"{OE}\">\r\n<PropertySection><Property oe:key=\"k\" oe:value=\"v\"/></PropertySection></Environment>\r\n"
    );
    assert_eq!(parse(doc.as_bytes()).unwrap().get("k"), Some("v"));
}

#[test]
fn undeclared_element_prefix_is_malformed() {
    let doc = format!("<Environment xmlns=\"{OE}\">\n<ve:EthernetAdapterSection/>\n</Environment>");
    let err = parse(doc.as_bytes()).unwrap_err();
    assert!(matches!(err, EnvError::Malformed { line: 2, .. }), "{err}");
    assert!(
        err.to_string()
            .contains("undeclared namespace prefix in element \"ve:EthernetAdapterSection\""),
        "{err}"
    );
}

/// Found by the `env_parse` fuzz target: references split text into several events.
#[test]
fn references_inside_platform_text_are_kept() {
    let doc = format!(
        "<Environment xmlns=\"{OE}\"><PlatformSection><Vendor> VMware &amp; &quot;co&#46;&quot; <![CDATA[<x>]]> </Vendor></PlatformSection></Environment>"
    );
    let env = parse(doc.as_bytes()).unwrap();
    let vendor = env.platform.as_ref().unwrap().vendor.as_deref();
    assert_eq!(vendor, Some("VMware & \"co.\" <x>"));
    assert_eq!(parse(env.to_xml().as_bytes()).unwrap(), env);
}

/// XML 1.0 §3.3.3 (and §2.11 line ends): literal line breaks and tabs in an attribute value
/// become spaces (CRLF one space); character references keep the characters they name.
#[test]
fn literal_whitespace_in_attribute_values_is_normalised_to_spaces() {
    let doc = format!(
        "<Environment xmlns=\"{OE}\" xmlns:oe=\"{OE}\"><PropertySection>\
         <Property oe:key=\"k\" oe:value=\"a\nb\tc\r\nd\re&#10;f&#9;g&#13;h\"/>\
         </PropertySection></Environment>"
    );
    let env = parse(doc.as_bytes()).unwrap();
    assert_eq!(env.get("k"), Some("a b c d e\nf\tg\rh"));
}

#[test]
fn a_raw_less_than_in_an_attribute_value_is_not_well_formed() {
    let doc = format!(
        "<Environment xmlns=\"{OE}\" xmlns:oe=\"{OE}\"><PropertySection>\n\
         <Property oe:key=\"network.hostname\" oe:value=\"a<b\"/>\
         </PropertySection></Environment>"
    );
    match parse(doc.as_bytes()) {
        Err(EnvError::Malformed { line, message, .. }) => {
            assert_eq!(line, 2, "{message}");
            assert!(message.contains("'<'"), "{message}");
            assert!(message.contains("network.hostname"), "{message}");
        }
        other => panic!("expected a well-formedness error, got {other:?}"),
    }
}
