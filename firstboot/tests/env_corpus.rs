//! Every real-world OVF environment document of `../shared/ovfenv-corpus/` parses; several
//! have their decoded values asserted.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::PathBuf;

use firstboot::env::{Environment, parse};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/ovfenv-corpus")
}

fn load(name: &str) -> Environment {
    let path = corpus_dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_corpus_document_parses() {
    let dir = corpus_dir();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "xml") {
            let env = parse(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                !env.properties.is_empty(),
                "{}: no properties",
                path.display()
            );
            // Writing it back and reading it again gives the same document.
            assert_eq!(
                parse(env.to_xml().as_bytes()).unwrap(),
                env,
                "{}",
                path.display()
            );
            n += 1;
        }
    }
    assert_eq!(n, 14, "expected the 14 documents of the corpus");
}

#[test]
fn xml_escapes_are_decoded() {
    let env = load("07-veba-test-fixture-xml-escapes.xml");
    assert_eq!(env.get("guestinfo.specialchars"), Some("& < > ' \""));
    assert_eq!(
        env.get("guestinfo.doublequotedvalue"),
        Some("\"Hello World\"")
    );
    assert_eq!(
        env.get("guestinfo.singlequotedvalue"),
        Some("'Hello World'")
    );
    assert_eq!(
        env.get("guestinfo.mismatchedquotes"),
        Some("'Hello World\"")
    );
    assert_eq!(
        env.get("guestinfo.test_password"),
        Some("\"My&Quoted!Password\"")
    );
    assert_eq!(env.get("guestinfo.boolvalue"), Some("True"));
    let env = load("04-veba-vsphere703-escaped-quote.xml");
    assert_eq!(env.get("guestinfo.root_password"), Some("VM\"ware1"));
    assert_eq!(env.get("guestinfo.netmask"), Some("24 (255.255.255.0)"));
}

#[test]
fn vcenter_true_and_esxi_values_kept_verbatim() {
    let env = load("05-veba-vsphere703-simple-capture.xml");
    assert_eq!(env.get("guestinfo.debug"), Some("True"));
    assert_eq!(env.get("guestinfo.horizon"), Some("False"));
    assert_eq!(env.get("guestinfo.vcenter_password"), Some("VMware1!"));
    let env = load("06-veba-vsphere703-complex-password-capture.xml");
    assert_eq!(
        env.get("guestinfo.vcenter_veba_ui_password"),
        Some("$VMware1!")
    );
    assert_eq!(env.get("guestinfo.webhook_password"), Some("V3b@"));
    let platform = env.platform.clone().unwrap();
    assert_eq!(platform.kind.as_deref(), Some("VMware ESXi"));
    assert_eq!(platform.version.as_deref(), Some("7.0.3"));
}

#[test]
fn empty_values_are_empty() {
    let env = load("03-vmw-ovflib-vapprun.xml");
    assert_eq!(env.get("guestinfo.user_data.doc"), Some(""));
    assert_eq!(env.get("foo"), Some("42"));
    assert_eq!(env.get("bar"), Some("0"));
    assert_eq!(env.adapters, None, "no EthernetAdapterSection");
}

#[test]
fn adapter_section_before_properties() {
    let env = load("09-ovfconf-esx40-adapter-before-properties.xml");
    assert_eq!(env.get("hostname"), Some("falcon"));
    assert_eq!(env.get("dns"), Some("10.72.131.1, 10.72.131.2"));
    let adapters = env.adapters.unwrap();
    assert_eq!(adapters.len(), 1);
    assert_eq!(adapters[0].mac.as_deref(), Some("00:50:56:a0:3f:71"));
    assert_eq!(adapters[0].network.as_deref(), Some("VM Network"));
    assert_eq!(adapters[0].unit_number, None);
}

#[test]
fn adapters_are_read() {
    let env = load("02-vmw-ovflib-vsphere55.xml");
    let adapters = env.adapters.unwrap();
    assert_eq!(adapters.len(), 1);
    assert_eq!(adapters[0].mac.as_deref(), Some("00:00:00:00:00:00"));
    assert_eq!(adapters[0].network.as_deref(), Some("foo"));
    assert_eq!(adapters[0].unit_number.as_deref(), Some("7"));
}

#[test]
fn empty_adapter_section_and_keys_compared_exactly() {
    let env = load("10-esxi65-empty-adapter-section.xml");
    assert_eq!(env.adapters, Some(vec![]));
    assert_eq!(env.adapter_count(), Some(0));
    // vSphere identifies properties by their exact, case-sensitive name.
    assert_eq!(env.get("DNS"), Some("10.193.190.2"));
    assert_eq!(env.get("dns"), None);
}

#[test]
fn class_key_instance_names() {
    let env = load("11-esxi67-esxId-class-key-instance.xml");
    assert_eq!(
        env.get("vami.hostname.windows_server_2019"),
        Some("winsrv01.lab.local")
    );
    assert_eq!(env.get("vami.hostname"), None);
}

#[test]
fn no_whitespace_between_elements_and_comments() {
    let env = load("13-govmomi-MarshalManual-render.xml");
    assert_eq!(env.get("foo"), Some("bar"));
    assert_eq!(env.get("ham"), Some("eggs"));
    let env = load("01-cloudinit-doc-example.xml");
    assert_eq!(env.get("hostname"), Some("ubuntuhost"));
    assert_eq!(
        env.get("user-data"),
        Some("IyEvYmluL3NoCmVjaG8gImhpIHdvcmxkIgo=")
    );
    assert_eq!(env.properties.len(), 7);
}

#[test]
fn lists_with_and_without_spaces() {
    let env = load("08-ovfconf-esxi51-real.xml");
    assert_eq!(env.get("dns"), Some("10.0.128.1,10.0.128.2"));
    assert_eq!(env.get("ntp"), Some("10.1.131.2, 10.1.131.1"));
}
