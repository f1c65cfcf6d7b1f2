//! One source of truth: every user-configurable property the OVF descriptor declares is
//! understood by first boot, and first boot's defaults are the descriptor's.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod env_support;

use std::collections::BTreeSet;

use env_support::*;
use firstboot::config::Deployment;
use firstboot::definition::{self, DEFINITION_TOML};
use firstboot::validate::{keys, validate};
use ovf::PropertyType;
use ovf::model::ProductItem;

/// (key, label, default) of every user-configurable property of the generated descriptor.
fn descriptor_properties() -> Vec<(String, String, Option<String>)> {
    let def = ovf::definition::Definition::parse(DEFINITION_TOML, "haproxy.toml").unwrap();
    let xml = ovf::write(&def.to_envelope(&Default::default()));
    let envelope = ovf::read(&xml).unwrap();
    let vs = envelope.virtual_system.unwrap();
    let mut out = Vec::new();
    for section in &vs.product_sections {
        for item in &section.items {
            if let ProductItem::Property(p) = item {
                if p.user_configurable != Some(true) {
                    continue;
                }
                let key = match &section.class {
                    Some(class) => format!("{class}.{}", p.key),
                    None => p.key.clone(),
                };
                out.push((key, p.label.clone().unwrap_or_default(), p.value.clone()));
            }
        }
    }
    out
}

#[test]
fn every_configurable_property_is_understood_and_nothing_else() {
    let declared: BTreeSet<String> = descriptor_properties()
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    let understood: BTreeSet<String> = keys::ALL.iter().map(|k| (*k).to_owned()).collect();
    assert_eq!(declared, understood);
}

#[test]
fn messages_use_the_wizard_labels() {
    for (key, label, _) in descriptor_properties() {
        let short = definition::appliance().label(&key);
        assert!(
            !short.is_empty() && label.contains(&short),
            "{key}: {short:?} not in {label:?}"
        );
    }
}

#[test]
fn defaults_agree_with_the_descriptor() {
    let props = descriptor_properties();
    let mut with_defaults = 0;
    for (key, _, default) in &props {
        let Some(default) = default.as_deref() else {
            continue;
        };
        // vSphere sends the default when the administrator leaves the field alone; an
        // environment without the property at all must mean exactly the same.
        for deployment in [Deployment::Default, Deployment::Frontend] {
            let base = if deployment == Deployment::Frontend {
                base_frontend()
            } else {
                base()
            };
            let sent = with(base.clone(), &[(key.as_str(), Some(default))]);
            let absent = with(base, &[(key.as_str(), None)]);
            let sent = validate(&env(&sent, None), deployment, definition::appliance())
                .unwrap_or_else(|e| panic!("{key} = {default:?}: {e}"));
            let absent = validate(&env(&absent, None), deployment, definition::appliance())
                .unwrap_or_else(|e| panic!("{key} absent: {e}"));
            assert_eq!(sent.config, absent.config, "{key}");
        }
        with_defaults += 1;
    }
    assert!(with_defaults >= 5, "only {with_defaults} defaults");

    // And the values first boot falls back to are the documented ones.
    let absent_all = with(
        base(),
        &[
            ("network.hostname", None),
            ("network.nameservers", None),
            ("loadbalance.dataplane_port", None),
            ("loadbalance.haproxy_user", None),
            ("appliance.permit_root_login", None),
        ],
    );
    let c = validate(
        &env(&absent_all, None),
        Deployment::Default,
        definition::appliance(),
    )
    .unwrap()
    .config;
    let default_of = |k: &str| {
        props
            .iter()
            .find(|(key, _, _)| key == k)
            .and_then(|(_, _, d)| d.clone())
            .unwrap()
    };
    assert_eq!(c.hostname(), default_of("network.hostname"));
    assert_eq!(
        c.nameservers()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        default_of("network.nameservers")
    );
    assert_eq!(
        c.dataplane_port().to_string(),
        default_of("loadbalance.dataplane_port")
    );
    assert_eq!(c.haproxy_user(), default_of("loadbalance.haproxy_user"));
    assert_eq!(
        c.permit_root_login().to_string(),
        default_of("appliance.permit_root_login")
    );
}

#[test]
fn nic_slots_come_from_the_definition() {
    let def = definition::appliance();
    let slot = |n: &str| def.nic(n).unwrap().pci_slot;
    assert_eq!(
        definition::pci_address(slot("management")).unwrap(),
        "0000:03:00.0"
    );
    assert_eq!(
        definition::pci_address(slot("workload")).unwrap(),
        "0000:0b:00.0"
    );
    assert_eq!(
        definition::pci_address(slot("frontend")).unwrap(),
        "0000:13:00.0"
    );
    assert_eq!(
        def.nic("frontend").unwrap().configuration.as_deref(),
        Some("frontend")
    );
}

/// The definition is the only place the property rules live: a definition with other
/// qualifiers gives another verdict on the same environment, with no change to first boot.
#[test]
fn changed_qualifiers_in_the_definition_change_the_verdict() {
    let root_pwd = "qualifiers = \"MinLen(6) MaxLen(128)\"\npassword = true\nlabel = \"1.1.";
    assert!(DEFINITION_TOML.contains(root_pwd));
    assert!(DEFINITION_TOML.contains("MinValue(1) MaxValue(65535)"));
    assert!(DEFINITION_TOML.contains("key = \"haproxy_user\"\ntype = \"string\"\n"));
    let changed = DEFINITION_TOML
        .replace(root_pwd, &root_pwd.replace("MinLen(6)", "MinLen(10)"))
        .replace(
            "MinValue(1) MaxValue(65535)",
            "MinValue(1024) MaxValue(9999)",
        )
        .replace(
            "key = \"haproxy_user\"\ntype = \"string\"\n",
            "key = \"haproxy_user\"\ntype = \"string\"\nqualifiers = \"MaxLen(5)\"\n",
        );
    let changed = definition::parse(&changed).unwrap();
    let builtin = definition::appliance();

    let props = with(
        base(),
        &[
            ("appliance.root_pwd", Some("seven77")),
            ("loadbalance.dataplane_port", Some("10000")),
            ("loadbalance.haproxy_user", Some("lbadmin")),
        ],
    );
    let environment = env(&props, None);
    assert!(validate(&environment, Deployment::Default, builtin).is_ok());
    let invalid = validate(&environment, Deployment::Default, &changed).unwrap_err();
    let got: Vec<String> = invalid.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "Root Password (appliance.root_pwd): is 7 characters long; expected 10 to 128 \
             characters",
            // 22 (SSH's port) is outside the range now: no need to exclude it.
            "Dataplane API Management Port (loadbalance.dataplane_port): \"10000\" is out of \
             range; expected an integer from 1024 to 9999",
            "HAProxy User ID (loadbalance.haproxy_user): is 7 characters long; expected at most \
             5 characters",
        ]
    );

    // The "not set" message states the definition's rule too.
    let unset = with(base(), &[("appliance.root_pwd", None)]);
    let invalid = validate(&env(&unset, None), Deployment::Default, &changed).unwrap_err();
    assert_eq!(
        invalid.problems[0].to_string(),
        "Root Password (appliance.root_pwd): not set; expected a password of 10 to 128 characters"
    );
}

/// First boot parses `permit_root_login` as a boolean and the port as an integer (of any
/// integer type: its range is the type's, narrowed by the qualifiers): the definition must
/// declare them so, and every other property first boot reads as a string.
#[test]
fn first_boot_reads_each_property_as_its_declared_type() {
    let def = definition::appliance();
    for key in keys::ALL {
        let kind = def.property(key).unwrap().kind;
        match *key {
            keys::PERMIT_ROOT_LOGIN => assert_eq!(kind, PropertyType::Boolean, "{key}"),
            keys::DATAPLANE_PORT | keys::HA_ROUTER_ID => {
                assert!(kind.integer_range().is_some(), "{key}: {kind}")
            }
            _ => assert_eq!(kind, PropertyType::String, "{key}"),
        }
    }
}
