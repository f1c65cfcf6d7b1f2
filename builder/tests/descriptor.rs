//! `ova-builder descriptor` and the HAProxy descriptor it writes: DMTF-valid (normal and
//! strict), byte-stable, and exactly the appliance of `docs/properties.md`.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use ovf::{Envelope, Item, resource_type};
use testkit::ovf_schema;

fn ova_builder(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ova-builder"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout_of(args: &[&str]) -> String {
    let out = ova_builder(args);
    assert!(
        out.status.success(),
        "ova-builder {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const REALISTIC: &[&str] = &[
    "--disk-file",
    "haproxy-v1.2.3-disk1.vmdk",
    "--disk-size",
    "162529280",
    "--disk-capacity",
    "2147483648",
    "--populated-size",
    "428867584",
    "--version",
    "1.2.3",
    "--build-date",
    "2026-11-21T22:00:00Z",
    "--base-image",
    "Debian 12 (bookworm), mmdebstrap",
];

#[test]
fn placeholder_descriptor_validates_normal_and_strict() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("haproxy.ovf");
    stdout_of(&["descriptor", "-o", file.to_str().unwrap()]);
    ovf_schema::assert_valid(&file);
    let xml = std::fs::read_to_string(&file).unwrap();
    let env = ovf::read(&xml).unwrap();
    assert_eq!(env.references[0].href, "haproxy-disk1.vmdk");
    assert_eq!(env.references[0].size, None);
    let disk = &env.disk_section.as_ref().unwrap().disks[0];
    assert_eq!(disk.capacity, "0");
    assert_eq!(disk.populated_size, None);
}

#[test]
fn realistic_descriptor_validates_and_carries_the_disk_facts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("haproxy.ovf");
    let mut args = vec!["descriptor", "-o", file.to_str().unwrap()];
    args.extend_from_slice(REALISTIC);
    stdout_of(&args);
    ovf_schema::assert_valid(&file);

    let env = ovf::read(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let f = &env.references[0];
    assert_eq!(
        (f.href.as_str(), f.size),
        ("haproxy-v1.2.3-disk1.vmdk", Some(162_529_280))
    );
    assert_eq!(f.compression, None);
    let disk = &env.disk_section.as_ref().unwrap().disks[0];
    assert_eq!(disk.capacity, "2147483648");
    assert_eq!(disk.capacity_allocation_units.as_deref(), Some("byte"));
    assert_eq!(disk.populated_size, Some(428_867_584));
    assert_eq!(disk.file_ref.as_deref(), Some(f.id.as_str()));
    assert_eq!(
        disk.format.as_deref(),
        Some("http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized")
    );
    let vs = env.virtual_system.as_ref().unwrap();
    let product = &vs.product_sections[0];
    assert_eq!(product.version.as_deref(), Some("1.2.3"));
    assert_eq!(product.full_version.as_deref(), Some("1.2.3"));

    // Provenance: present, filled from the build, never shown to the deployer.
    let props = env.properties();
    let provenance: Vec<(&str, Option<&str>)> = props
        .iter()
        .filter(|(_, _, p)| p.user_configurable != Some(true))
        .map(|(k, _, p)| (k.as_str(), p.value.as_deref()))
        .collect();
    assert_eq!(
        provenance,
        [
            ("appliance.version", Some("1.2.3")),
            ("appliance.build_date", Some("2026-11-21T22:00:00Z")),
            (
                "appliance.base_image",
                Some("Debian 12 (bookworm), mmdebstrap")
            ),
        ]
    );
}

#[test]
fn stdout_and_output_file_are_identical_and_stable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("haproxy.ovf");
    std::fs::write(&file, "old content").unwrap();
    let mut args = vec!["descriptor", "-o", file.to_str().unwrap()];
    args.extend_from_slice(REALISTIC);
    stdout_of(&args);
    let mut stdout_args = vec!["descriptor"];
    stdout_args.extend_from_slice(REALISTIC);
    let printed = stdout_of(&stdout_args);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), printed);
    assert_eq!(stdout_of(&stdout_args), printed, "two runs differ");
    // No temporary left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["haproxy.ovf"]);
}

#[test]
fn written_descriptor_round_trips_byte_identically() {
    let mut args = vec!["descriptor"];
    args.extend_from_slice(REALISTIC);
    let xml = stdout_of(&args);
    let env = ovf::read(&xml).unwrap();
    assert_eq!(ovf::write(&env), xml);
    // And the model read equals the model the builder produced.
    let def = builder::appliance::definition::builtin_definition().unwrap();
    let facts = ovf::BuildFacts {
        disk: ovf::DiskFacts {
            file_name: Some("haproxy-v1.2.3-disk1.vmdk".into()),
            file_size: Some(162_529_280),
            capacity: Some(2_147_483_648),
            populated_size: Some(428_867_584),
        },
        version: Some("1.2.3".into()),
        build_date: Some("2026-11-21T22:00:00Z".into()),
        base_image: Some("Debian 12 (bookworm), mmdebstrap".into()),
        full_version: None,
    };
    assert_eq!(env, def.to_envelope(&facts));
}

/// One row of the property table of `docs/properties.md`, written here by hand from that
/// page (not from the definition file).
struct Row {
    key: &'static str,
    type_name: &'static str,
    /// `None` = no default ("—"), `Some("")` = empty.
    default: Option<&'static str>,
    qualifiers: Option<&'static str>,
    password: bool,
    category: &'static str,
    frontend_only: bool,
}

const fn row(
    key: &'static str,
    type_name: &'static str,
    default: Option<&'static str>,
    qualifiers: Option<&'static str>,
    password: bool,
    category: &'static str,
    frontend_only: bool,
) -> Row {
    Row {
        key,
        type_name,
        default,
        qualifiers,
        password,
        category,
        frontend_only,
    }
}

const APPLIANCE: &str = "1. Appliance Configuration";
const NETWORK: &str = "2. Network Config";
const LOADBALANCE: &str = "3. Load Balancing";
const HA: &str = "4. High Availability (optional)";
const PWD: Option<&str> = Some("MinLen(6) MaxLen(128)");

#[rustfmt::skip]
const TABLE: &[Row] = &[
    row("appliance.root_pwd", "string", None, PWD, true, APPLIANCE, false),
    row("appliance.permit_root_login", "boolean", Some("true"), None, false, APPLIANCE, false),
    row("appliance.ca_cert", "string", Some(""), Some("MaxLen(65535)"), false, APPLIANCE, false),
    row("appliance.ca_cert_key", "string", Some(""), Some("MaxLen(65535)"), false, APPLIANCE, false),
    row("network.hostname", "string", Some("haproxy.local"), None, false, NETWORK, false),
    row("network.nameservers", "string", Some("1.1.1.1, 1.0.0.1"), None, false, NETWORK, false),
    row("network.management_ip", "string", None, None, false, NETWORK, false),
    row("network.management_gateway", "string", None, None, false, NETWORK, false),
    row("network.workload_ip", "string", None, None, false, NETWORK, false),
    row("network.workload_gateway", "string", None, None, false, NETWORK, false),
    row("network.additional_workload_networks", "string", Some(""), None, false, NETWORK, false),
    row("network.frontend_ip", "string", None, None, false, NETWORK, true),
    row("network.frontend_gateway", "string", None, None, false, NETWORK, true),
    row("loadbalance.service_ip_range", "string", None, None, false, LOADBALANCE, false),
    row("loadbalance.dataplane_port", "int", Some("5556"), Some("MinValue(1) MaxValue(65535)"), false, LOADBALANCE, false),
    row("loadbalance.haproxy_user", "string", Some("admin"), None, false, LOADBALANCE, false),
    row("loadbalance.haproxy_pwd", "string", None, PWD, true, LOADBALANCE, false),
    row("ha.peer_ip", "string", Some(""), None, false, HA, false),
    row("ha.management_vip", "string", Some(""), None, false, HA, false),
    row("ha.router_id", "int", Some("51"), Some("MinValue(1) MaxValue(255)"), false, HA, false),
    row("ha.role", "string", Some("primary"), Some("ValueMap{\"primary\",\"secondary\"}"), false, HA, false),
    row("ha.shared_secret", "string", Some(""), Some("MaxLen(128)"), true, HA, false),
];

fn builtin_envelope() -> (String, Envelope) {
    let xml = stdout_of(&["descriptor"]);
    let env = ovf::read(&xml).unwrap();
    (xml, env)
}

#[test]
fn property_table_of_appliance_md_matches_the_parsed_descriptor() {
    let (_, env) = builtin_envelope();
    let props = env.properties();
    let configurable: Vec<_> = props
        .iter()
        .filter(|(_, _, p)| p.user_configurable == Some(true))
        .collect();
    let keys: Vec<&str> = configurable.iter().map(|(k, _, _)| k.as_str()).collect();
    let expected: Vec<&str> = TABLE.iter().map(|r| r.key).collect();
    assert_eq!(keys, expected, "user-configurable keys, in wizard order");

    for ((key, category, p), row) in configurable.iter().zip(TABLE) {
        let what = format!("property {key}");
        assert_eq!(p.type_name, row.type_name, "{what}: type");
        assert_eq!(p.value.as_deref(), row.default, "{what}: default");
        assert_eq!(
            p.qualifiers.as_deref(),
            row.qualifiers,
            "{what}: qualifiers"
        );
        assert_eq!(
            p.password.unwrap_or(false),
            row.password,
            "{what}: password"
        );
        assert_eq!(*category, Some(row.category), "{what}: category");
        let gate = if row.frontend_only {
            Some("frontend")
        } else {
            None
        };
        assert_eq!(p.configuration.as_deref(), gate, "{what}: configuration");
        assert!(p.values.is_empty(), "{what}: no per-configuration values");
        let label = p.label.as_deref().unwrap_or_default();
        let description = p.description.as_deref().unwrap_or_default();
        assert!(
            !label.is_empty() && !description.is_empty(),
            "{what}: label and description"
        );
    }

    // The classes are the ProductSection classes, one per category, in order.
    let vs = env.virtual_system.as_ref().unwrap();
    let classes: Vec<Option<&str>> = vs
        .product_sections
        .iter()
        .map(|s| s.class.as_deref())
        .collect();
    assert_eq!(
        classes,
        [
            None,
            Some("appliance"),
            Some("network"),
            Some("loadbalance"),
            Some("ha")
        ]
    );
    // The wizard tells users about base64 for the CA certificate.
    let ca = props
        .iter()
        .find(|(k, _, _)| k == "appliance.ca_cert")
        .unwrap();
    assert!(ca.2.description.as_deref().unwrap().contains("Base64"));
}

/// The NICs present in a deployment option, as `(name, network, PCI slot)`.
fn nics_in(env: &Envelope, config: &str) -> Vec<(String, String, String)> {
    let hw = &env
        .virtual_system
        .as_ref()
        .unwrap()
        .virtual_hardware_sections[0];
    hw.items
        .iter()
        .filter(|i| i.resource_type_code() == Some(resource_type::ETHERNET_ADAPTER))
        .filter(|i| {
            i.configuration
                .as_deref()
                .is_none_or(|c| c.split_whitespace().any(|id| id == config))
        })
        .map(|i| {
            assert_eq!(i.resource_sub_type.as_deref(), Some("VmxNet3"));
            (
                i.element_name.clone(),
                i.connections.join(","),
                i.vmw_config_value("slotInfo.pciSlotNumber")
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn default_has_two_nics_and_frontend_three() {
    let (_, env) = builtin_envelope();
    let options = env.deployment_option_section.as_ref().unwrap();
    let ids: Vec<(&str, Option<bool>, &str)> = options
        .configurations
        .iter()
        .map(|c| (c.id.as_str(), c.default, c.label.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("default", Some(true), "Default"),
            ("frontend", None, "Frontend Network")
        ]
    );
    let t = |n: &str, net: &str, slot: &str| (n.to_string(), net.to_string(), slot.to_string());
    assert_eq!(
        nics_in(&env, "default"),
        [
            t("management", "Management", "160"),
            t("workload", "Workload", "192")
        ]
    );
    assert_eq!(
        nics_in(&env, "frontend"),
        [
            t("management", "Management", "160"),
            t("workload", "Workload", "192"),
            t("frontend", "Frontend", "224")
        ]
    );
    let networks: Vec<(&str, Option<&str>, bool)> = env
        .network_section
        .as_ref()
        .unwrap()
        .networks
        .iter()
        .map(|n| {
            (
                n.name.as_str(),
                n.configuration.as_deref(),
                n.description.as_deref().is_some_and(|d| !d.is_empty()),
            )
        })
        .collect();
    assert_eq!(
        networks,
        [
            ("Management", None, true),
            ("Workload", None, true),
            ("Frontend", Some("frontend"), true)
        ]
    );
}

fn item_of(items: &[Item], kind: u16) -> &Item {
    let found: Vec<&Item> = items
        .iter()
        .filter(|i| i.resource_type_code() == Some(kind))
        .collect();
    assert_eq!(found.len(), 1, "exactly one item of resource type {kind}");
    found[0]
}

#[test]
fn hardware_matches_the_cloud_kernel_and_vsphere_rules() {
    let (xml, env) = builtin_envelope();
    let vs = env.virtual_system.as_ref().unwrap();
    assert_eq!(vs.virtual_hardware_sections.len(), 1);
    let hw = &vs.virtual_hardware_sections[0];
    assert_eq!(hw.transport.as_deref(), Some("com.vmware.guestInfo"));
    let cpu = item_of(&hw.items, resource_type::PROCESSOR);
    assert_eq!(cpu.virtual_quantity.as_deref(), Some("2"));
    let memory = item_of(&hw.items, resource_type::MEMORY);
    assert_eq!(memory.virtual_quantity.as_deref(), Some("4096"));
    assert_eq!(memory.allocation_units.as_deref(), Some("byte * 2^20"));
    // linux-image-cloud-amd64 has vmw_pvscsi but no LSI Logic driver.
    let scsi = item_of(&hw.items, resource_type::SCSI_CONTROLLER);
    assert_eq!(scsi.resource_sub_type.as_deref(), Some("VirtualSCSI"));
    let disk = item_of(&hw.items, resource_type::DISK_DRIVE);
    assert_eq!(disk.parent.as_deref(), Some(scsi.instance_id.as_str()));
    assert_eq!(disk.host_resources, ["ovf:/disk/vmdisk1"]);
    let ide = item_of(&hw.items, resource_type::IDE_CONTROLLER);
    let cdrom = item_of(&hw.items, resource_type::CD_DRIVE);
    assert_eq!(cdrom.parent.as_deref(), Some(ide.instance_id.as_str()));
    // Instance ids are unique.
    let mut ids: Vec<&str> = hw.items.iter().map(|i| i.instance_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), hw.items.len());

    let config: Vec<(&str, &str)> = hw
        .vmw_config
        .iter()
        .map(|c| (c.key.as_str(), c.value.as_str()))
        .collect();
    assert_eq!(config, [("firmware", "bios")]);
    let extra: Vec<(&str, &str)> = hw
        .vmw_extra_config
        .iter()
        .map(|c| (c.key.as_str(), c.value.as_str()))
        .collect();
    assert_eq!(extra, [("guest_rpc.auth.cloud-init.set", "FALSE")]);
    assert_eq!(
        hw.system.as_ref().unwrap().virtual_system_type.as_deref(),
        Some("vmx-13")
    );
    // The VMDK must say lsilogic for a disk on PVSCSI.
    let def = builder::appliance::definition::builtin_definition().unwrap();
    assert_eq!(
        builder::package::vmdk_adapter_type(def.hardware().disk_controller),
        image::AdapterType::LsiLogic
    );

    // Strict DMTF validation must pass: no VMware storage sections, nothing unknown.
    assert!(env.unknown_sections.is_empty() && vs.unknown_sections.is_empty());
    assert!(!xml.contains("StorageSection") && !xml.contains("StorageGroupSection"));
    // The EULA is the repository's file.
    let eula =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("appliance/eula.txt"))
            .unwrap();
    assert_eq!(vs.eula_sections[0].license, eula);
    assert_eq!(vs.operating_system_section.as_ref().unwrap().id, 96);
}

#[test]
fn a_bad_definition_is_reported_with_its_position_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let def = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("appliance/haproxy.toml"),
    )
    .unwrap()
    .replace("type = \"int\"", "type = \"integer\"");
    std::fs::write(dir.path().join("eula.txt"), "EULA").unwrap();
    std::fs::write(&def, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l == "type = \"integer\"")
        .unwrap()
        + 1;
    let out_file = dir.path().join("out.ovf");
    let out = ova_builder(&[
        "descriptor",
        "--definition",
        def.to_str().unwrap(),
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: {}:{line}:8: property `loadbalance.dataplane_port` has unknown type \
             `integer`; expected one of: string, boolean, int, real, uint8, sint8, uint16, \
             sint16, uint32, sint32, uint64, sint64, real32, real64",
            def.display()
        )
    );
    assert!(out.stdout.is_empty());
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["bad.toml", "eula.txt"],
        "no output file, no temporary"
    );
}

#[test]
fn another_definition_file_is_used_with_its_eula() {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("appliance");
    let text = std::fs::read_to_string(source.join("haproxy.toml"))
        .unwrap()
        .replace("id = \"haproxy\"", "id = \"other\"");
    std::fs::write(dir.path().join("other.toml"), text).unwrap();
    std::fs::write(dir.path().join("eula.txt"), "Other terms & <conditions>.\n").unwrap();
    let xml = stdout_of(&[
        "descriptor",
        "--definition",
        dir.path().join("other.toml").to_str().unwrap(),
    ]);
    let env = ovf::read(&xml).unwrap();
    let vs = env.virtual_system.unwrap();
    assert_eq!(vs.id, "other");
    assert_eq!(vs.eula_sections[0].license, "Other terms & <conditions>.\n");
    assert_eq!(env.references[0].href, "other-disk1.vmdk");
}

#[test]
fn disk_file_must_be_a_bare_name() {
    let out = ova_builder(&["descriptor", "--disk-file", "dir/disk.vmdk"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must be a bare file name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn help_has_examples() {
    let help = stdout_of(&["descriptor", "--help"]);
    assert!(help.contains("Examples:"));
    assert!(help.contains("ova-builder descriptor -o haproxy.ovf"));
}
