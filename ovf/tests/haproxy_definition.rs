//! The HAProxy definition in `builder/appliance/` parses, and its facts are the documented ones.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use ovf::{BuildFacts, Definition, DiskController, PropertyType};

fn definition_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../builder/appliance/haproxy.toml")
}

#[test]
fn haproxy_definition_parses_with_eula() {
    let def = Definition::from_file(definition_path()).unwrap();
    let eula = def.eula().unwrap();
    assert!(eula.text.as_deref().unwrap().contains("Apache License"));
    assert_eq!(def.hardware().cpus, 2);
    assert_eq!(def.hardware().memory_mib, 4096);
    assert_eq!(def.hardware().disk_controller, DiskController::Pvscsi);
    assert_eq!(
        def.hardware().extra_config,
        vec![(
            "guest_rpc.auth.cloud-init.set".to_string(),
            "FALSE".to_string()
        )]
    );
    assert_eq!(def.default_deployment_option(), Some("default"));
}

#[test]
fn haproxy_definition_parses_without_files() {
    let text = std::fs::read_to_string(definition_path()).unwrap();
    let def = Definition::parse(&text, "haproxy.toml").unwrap();
    assert_eq!(def.eula().unwrap().text, None);
    let slots: Vec<(&str, Option<u32>)> = def
        .nics()
        .iter()
        .map(|n| (n.name.as_str(), n.pci_slot))
        .collect();
    assert_eq!(
        slots,
        [
            ("management", Some(160)),
            ("workload", Some(192)),
            ("frontend", Some(224))
        ]
    );
    assert_eq!(def.nics_in("default").len(), 2);
    assert_eq!(def.nics_in("frontend").len(), 3);
    let port = def.property("loadbalance.dataplane_port").unwrap();
    assert_eq!(port.kind, PropertyType::Int);
    assert_eq!(port.default(), Some("5556"));
    assert_eq!(
        def.property("network.frontend_ip").unwrap().configuration(),
        Some("frontend")
    );
    assert!(def.property("appliance.root_pwd").unwrap().password);
}

/// FullVersion: the build's when it gives one (the appliance names its Data Plane API there),
/// else the definition's `full_version`, else the release version.
#[test]
fn full_version_comes_from_the_build_then_the_definition_then_the_version() {
    let text = std::fs::read_to_string(definition_path()).unwrap();
    let full = |text: &str, full_version: Option<&str>| {
        let def = Definition::parse(text, "haproxy.toml").unwrap();
        let facts = BuildFacts {
            version: Some("1.2.3".into()),
            full_version: full_version.map(str::to_string),
            ..BuildFacts::default()
        };
        let envelope = def.to_envelope(&facts);
        envelope.virtual_system.unwrap().product_sections[0]
            .full_version
            .clone()
    };
    assert_eq!(full(&text, None).as_deref(), Some("1.2.3"));
    let with_own = text.replace(
        "version = \"0.0.0-dev\"",
        "version = \"0.0.0-dev\"\nfull_version = \"own\"",
    );
    assert_ne!(with_own, text);
    assert_eq!(full(&with_own, None).as_deref(), Some("own"));
    assert_eq!(
        full(&with_own, Some("1.2.3; Data Plane API: x 1")).as_deref(),
        Some("1.2.3; Data Plane API: x 1")
    );
}
