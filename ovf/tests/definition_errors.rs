//! Every kind of bad definition file gives a precise message: what is wrong, where
//! (`file:line:column`), and what is expected.
#![allow(clippy::unwrap_used)]

use ovf::{Definition, DefinitionError};

/// A small valid definition; each test appends or replaces something. 37 lines.
const BASE: &str = r#"[virtual_system]
id = "demo"
name = "Demo"

[product]
product = "Demo"
vendor = "Example"
version = "1.0"

[operating_system]
id = 96

[hardware]
virtual_system_type = "vmx-13"
cpus = 1
memory_mib = 512
firmware = "bios"
disk_controller = "pvscsi"

[[deployment_options]]
id = "small"
label = "Small"
description = "One NIC"
default = true

[[networks]]
name = "VM Network"

[[nics]]
name = "eth0"
network = "VM Network"
adapter = "vmxnet3"
pci_slot = 160

[[categories]]
class = "app"
label = "App"
"#;

/// Line numbers of the lines appended after BASE start here.
const NEXT: usize = 38;

fn parse(extra: &str) -> Result<Definition, DefinitionError> {
    assert_eq!(BASE.lines().count(), NEXT - 1);
    Definition::parse(&format!("{BASE}{extra}"), "demo.toml")
}

fn error(extra: &str) -> String {
    parse(extra).unwrap_err().to_string()
}

fn property(body: &str) -> String {
    // `[[categories.properties]]` is on line NEXT, the body starts on NEXT + 1.
    format!("[[categories.properties]]\n{body}")
}

#[test]
fn base_definition_is_valid() {
    let def = parse("").unwrap();
    assert_eq!(def.nics().len(), 1);
    let def = parse(&property(
        "key = \"name\"\ntype = \"string\"\nlabel = \"Name\"\ndescription = \"d\"\n",
    ))
    .unwrap();
    assert_eq!(def.property("app.name").unwrap().full_key(), "app.name");
}

#[test]
fn not_toml() {
    assert_eq!(
        error("[[categories.properties]\n"),
        format!("demo.toml:{NEXT}:25: unclosed array table, expected `]`"),
    );
}

#[test]
fn unknown_field() {
    let e = error(&property(
        "key = \"name\"\ntype = \"string\"\nlabel = \"Name\"\ndescription = \"d\"\ncolour = \"red\"\n",
    ));
    assert!(
        e.starts_with(&format!(
            "demo.toml:{}:1: unknown field `colour`, expected one of",
            NEXT + 5
        )),
        "{e}"
    );
}

#[test]
fn missing_field() {
    let e = error(&property(
        "key = \"name\"\ntype = \"string\"\ndescription = \"d\"\n",
    ));
    assert_eq!(e, format!("demo.toml:{NEXT}:1: missing field `label`"));
}

#[test]
fn unknown_type() {
    assert_eq!(
        error(&property(
            "key = \"name\"\ntype = \"text\"\nlabel = \"Name\"\ndescription = \"d\"\n"
        )),
        format!(
            "demo.toml:{}:8: property `app.name` has unknown type `text`; expected one of: \
             string, boolean, int, real, uint8, sint8, uint16, sint16, uint32, sint32, uint64, \
             sint64, real32, real64",
            NEXT + 2
        )
    );
}

#[test]
fn duplicate_key() {
    let one =
        property("key = \"name\"\ntype = \"string\"\nlabel = \"Name\"\ndescription = \"d\"\n");
    // The second block starts at NEXT + 5; its key line is NEXT + 6.
    assert_eq!(
        error(&format!("{one}{one}")),
        format!(
            "demo.toml:{}:7: duplicate property key `app.name` (first defined on line {})",
            NEXT + 6,
            NEXT + 1
        )
    );
}

#[test]
fn default_violates_its_own_qualifiers() {
    assert_eq!(
        error(&property(
            "key = \"pwd\"\ntype = \"string\"\nqualifiers = \"MinLen(6) MaxLen(128)\"\n\
             default = \"12345\"\nlabel = \"Password\"\ndescription = \"d\"\n"
        )),
        format!(
            "demo.toml:{}:11: default \"12345\" of property `app.pwd` violates its own qualifier \
             MinLen(6): 5 characters, at least 6 required",
            NEXT + 4
        )
    );
    assert_eq!(
        error(&property(
            "key = \"port\"\ntype = \"int\"\nqualifiers = \"MinValue(1) MaxValue(65535)\"\n\
             default = 70000\nlabel = \"Port\"\ndescription = \"d\"\n"
        )),
        format!(
            "demo.toml:{}:11: default \"70000\" of property `app.port` violates its own qualifier \
             MaxValue(65535): 70000 is above the maximum 65535",
            NEXT + 4
        )
    );
    assert_eq!(
        error(&property(
            "key = \"mode\"\ntype = \"string\"\nqualifiers = 'ValueMap{\"a\",\"b\"}'\n\
             default = \"c\"\nlabel = \"Mode\"\ndescription = \"d\"\n"
        )),
        format!(
            "demo.toml:{}:11: default \"c\" of property `app.mode` violates its own qualifier \
             ValueMap{{\"a\",\"b\"}}: not one of ValueMap{{\"a\",\"b\"}}",
            NEXT + 4
        )
    );
}

#[test]
fn default_of_the_wrong_type() {
    assert_eq!(
        error(&property(
            "key = \"on\"\ntype = \"boolean\"\ndefault = \"yes\"\nlabel = \"On\"\ndescription = \"d\"\n"
        )),
        format!(
            "demo.toml:{}:11: default \"yes\" of property `app.on` is not a valid boolean: \
             expected `true` or `false`",
            NEXT + 3
        )
    );
    assert_eq!(
        error(&property(
            "key = \"n\"\ntype = \"uint8\"\ndefault = 300\nlabel = \"N\"\ndescription = \"d\"\n"
        )),
        format!(
            "demo.toml:{}:11: default \"300\" of property `app.n` is not a valid uint8: \
             expected an integer from 0 to 255",
            NEXT + 3
        )
    );
}

#[test]
fn bad_qualifiers() {
    assert_eq!(
        error(&property(
            "key = \"pwd\"\ntype = \"string\"\nqualifiers = \"MinLength(6)\"\nlabel = \"P\"\ndescription = \"d\"\n"
        )),
        format!(
            "demo.toml:{}:14: property `app.pwd` has invalid qualifiers `MinLength(6)`: unknown \
             qualifier `MinLength`; expected MinLen, MaxLen, MinValue, MaxValue or ValueMap",
            NEXT + 3
        )
    );
    assert_eq!(
        error(&property(
            "key = \"port\"\ntype = \"int\"\nqualifiers = \"MaxLen(5)\"\nlabel = \"P\"\ndescription = \"d\"\n"
        )),
        format!(
            "demo.toml:{}:14: property `app.port` has invalid qualifiers `MaxLen(5)`: MaxLen(5) \
             does not apply to type int",
            NEXT + 3
        )
    );
}

#[test]
fn configuration_no_deployment_option_declares() {
    assert_eq!(
        error(&property(
            "key = \"ip\"\ntype = \"string\"\nconfiguration = \"large\"\nlabel = \"IP\"\ndescription = \"d\"\n"
        )),
        format!(
            "demo.toml:{}:17: property `app.ip` uses configuration `large`, which no deployment \
             option declares (declared: small)",
            NEXT + 3
        )
    );
    assert_eq!(
        error(
            "[[nics]]\nname = \"eth1\"\nnetwork = \"VM Network\"\nadapter = \"vmxnet3\"\nconfiguration = \"large\"\n"
        ),
        format!(
            "demo.toml:{}:17: NIC `eth1` uses configuration `large`, which no deployment option \
             declares (declared: small)",
            NEXT + 4
        )
    );
}

#[test]
fn nic_on_an_undeclared_network() {
    assert_eq!(
        error("[[nics]]\nname = \"eth1\"\nnetwork = \"Storage\"\nadapter = \"vmxnet3\"\n"),
        format!(
            "demo.toml:{}:11: NIC `eth1` connects to network `Storage`, which is not declared \
             (declared: VM Network)",
            NEXT + 2
        )
    );
}

#[test]
fn nic_with_a_used_pci_slot_or_unknown_adapter() {
    assert_eq!(
        error(
            "[[nics]]\nname = \"eth1\"\nnetwork = \"VM Network\"\nadapter = \"vmxnet3\"\npci_slot = 160\n"
        ),
        format!(
            "demo.toml:{}:12: NIC `eth1` uses PCI slot 160, already used by NIC `eth0`",
            NEXT + 4
        )
    );
    assert_eq!(
        error("[[nics]]\nname = \"eth1\"\nnetwork = \"VM Network\"\nadapter = \"pcnet32\"\n"),
        format!(
            "demo.toml:{}:11: NIC `eth1` has unknown adapter `pcnet32`; expected one of: \
             vmxnet3, e1000, e1000e",
            NEXT + 3
        )
    );
}

#[test]
fn two_default_deployment_options() {
    assert_eq!(
        error(
            "[[deployment_options]]\nid = \"large\"\nlabel = \"Large\"\ndescription = \"d\"\ndefault = true\n"
        ),
        format!(
            "demo.toml:{}:11: deployment option `large` is marked default, but `small` already \
             is; mark exactly one",
            NEXT + 4
        )
    );
}

#[test]
fn unknown_disk_controller() {
    let text = BASE.replace("disk_controller = \"pvscsi\"", "disk_controller = \"nvme\"");
    assert_eq!(
        Definition::parse(&text, "demo.toml")
            .unwrap_err()
            .to_string(),
        "demo.toml:18:19: unknown disk controller `nvme`; expected one of: pvscsi, lsilogic, \
         lsilogicsas, buslogic"
    );
}

#[test]
fn unknown_firmware() {
    let text = BASE.replace("firmware = \"bios\"", "firmware = \"uefi\"");
    assert_eq!(
        Definition::parse(&text, "demo.toml")
            .unwrap_err()
            .to_string(),
        "demo.toml:17:12: unknown firmware `uefi`; expected `bios` or `efi`"
    );
}

#[test]
fn unknown_fill() {
    assert_eq!(
        error(&property(
            "key = \"v\"\ntype = \"string\"\nfill = \"commit\"\nuser_configurable = false\n\
             label = \"V\"\ndescription = \"d\"\n"
        )),
        format!(
            "demo.toml:{}:8: property `app.v` has unknown fill `commit`; expected one of: \
             version, build_date, base_image",
            NEXT + 3
        )
    );
}

#[test]
fn fill_on_a_user_configurable_property() {
    assert_eq!(
        error(&property(
            "key = \"v\"\ntype = \"string\"\nfill = \"version\"\nlabel = \"V\"\ndescription = \"d\"\n"
        )),
        format!(
            "demo.toml:{}:8: property `app.v` is filled by the build, so it needs \
             `user_configurable = false`",
            NEXT + 3
        )
    );
}

#[test]
fn missing_eula_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.toml");
    std::fs::write(&path, format!("{BASE}\n[eula]\nfile = \"license.txt\"\n")).unwrap();
    let e = Definition::from_file(&path).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}:{}:8: cannot read the EULA file \"license.txt\": No such file or directory (os error 2)",
            path.display(),
            NEXT + 2
        )
    );
    std::fs::write(dir.path().join("license.txt"), "Terms.").unwrap();
    let def = Definition::from_file(&path).unwrap();
    assert_eq!(def.eula().unwrap().text.as_deref(), Some("Terms."));
}

#[test]
fn unreadable_definition_file() {
    let e = Definition::from_file("/nonexistent/demo.toml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot read appliance definition /nonexistent/demo.toml: No such file or directory (os error 2)"
    );
    assert!(e.location().is_none());
}
