//! What first boot takes from the appliance definition (`builder/appliance/haproxy.toml`, the
//! one source of truth the OVF descriptor is generated from): the wizard labels, defaults, types
//! and qualifiers of the vApp properties, and the PCI slots of the NICs.
//!
//! [`appliance`] is the built-in definition; only the entry points (loading, `check`) pick it.
//! Validation, messages and rendering get an [`ApplianceFacts`] as an argument, so a test can
//! hand them another definition.

use std::sync::OnceLock;

use ovf::{PropertyType, Qualifier};

/// The appliance definition, embedded at build time.
pub const DEFINITION_TOML: &str = include_str!("../../builder/appliance/haproxy.toml");

/// One vApp property of the definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertySpec {
    /// `class.key`, as in the OVF environment.
    pub key: String,
    /// The wizard label as declared (e.g. `2.5. Workload IP`).
    pub label: String,
    /// OVF type (`string`, `boolean`, `int`, …).
    pub kind: PropertyType,
    /// The qualifiers (`MinLen(6) MaxLen(128)`, `MinValue(1) MaxValue(65535)`, …): first boot
    /// enforces exactly these, as vSphere's wizard does.
    pub qualifiers: Vec<Qualifier>,
    /// Default value as the descriptor writes it (`ovf:value`), if any.
    pub default: Option<String>,
    pub user_configurable: bool,
    pub password: bool,
    /// The value must never be shown anywhere (messages, logs, status): a password, or a
    /// property of [`KEY_MATERIAL`]. See [`ApplianceFacts::is_secret`].
    pub secret: bool,
    /// Deployment option the property belongs to (`frontend`), if restricted.
    pub configuration: Option<String>,
}

impl PropertySpec {
    /// The label without its numbering and explanations: `2.5. Workload IP` → `Workload IP`,
    /// `3.1. Load Balancer IP Ranges, comma-separated …` → `Load Balancer IP Ranges`.
    pub fn short_label(&self) -> String {
        short_label(&self.label)
    }

    /// The allowed length in characters, from `MinLen`/`MaxLen`: (minimum, maximum if any).
    /// `None` when the definition sets neither.
    pub fn length_range(&self) -> Option<(u64, Option<u64>)> {
        let mut min = None;
        let mut max = None;
        for q in &self.qualifiers {
            match q {
                Qualifier::MinLen(n) => min = Some(*n),
                Qualifier::MaxLen(n) => max = Some(*n),
                _ => {}
            }
        }
        (min.is_some() || max.is_some()).then(|| (min.unwrap_or(0), max))
    }

    /// The allowed integers: the type's range narrowed by `MinValue`/`MaxValue`. `None` for a
    /// property that is not of an integer type.
    pub fn integer_range(&self) -> Option<(i128, i128)> {
        let (mut min, mut max) = self.kind.integer_range()?;
        for q in &self.qualifiers {
            match q {
                Qualifier::MinValue(n) => min = min.max(*n),
                Qualifier::MaxValue(n) => max = max.min(*n),
                _ => {}
            }
        }
        Some((min, max))
    }

    /// The values of a `ValueMap{…}` qualifier, if the property has one.
    pub fn allowed_values(&self) -> Option<&[String]> {
        self.qualifiers.iter().find_map(|q| match q {
            Qualifier::ValueMap(values) => Some(values.as_slice()),
            _ => None,
        })
    }
}

/// One NIC of the definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicSpec {
    /// Name in the guest (`management`, `workload`, `frontend`).
    pub name: String,
    pub pci_slot: u32,
    pub configuration: Option<String>,
}

/// The facts of an appliance definition first boot needs (not to be confused with
/// [`ovf::Definition`], the whole definition the descriptor is generated from).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplianceFacts {
    pub properties: Vec<PropertySpec>,
    pub nics: Vec<NicSpec>,
}

impl ApplianceFacts {
    pub fn property(&self, key: &str) -> Option<&PropertySpec> {
        self.properties.iter().find(|p| p.key == key)
    }

    pub fn nic(&self, name: &str) -> Option<&NicSpec> {
        self.nics.iter().find(|n| n.name == name)
    }

    /// `Label (key)` for messages; falls back to the key alone for unknown keys.
    pub fn label(&self, key: &str) -> String {
        self.property(key)
            .map(PropertySpec::short_label)
            .unwrap_or_else(|| key.to_owned())
    }

    /// Whether the value of `key` is a secret: never printed, logged or published, not even in
    /// part. Unknown keys are not secrets (their values are never shown either).
    pub fn is_secret(&self, key: &str) -> bool {
        self.property(key).is_some_and(|p| p.secret)
    }

    /// The keys of every secret property, in definition order.
    pub fn secret_keys(&self) -> impl Iterator<Item = &str> {
        self.properties
            .iter()
            .filter(|p| p.secret)
            .map(|p| p.key.as_str())
    }

    pub fn default(&self, key: &str) -> Option<&str> {
        self.property(key).and_then(|p| p.default.as_deref())
    }
}

/// Properties holding private keys. They are secrets like the `password = true` ones, but are
/// not declared as passwords in the descriptor: vSphere shows password properties as masked
/// one-line fields, in which a pasted PEM key could not be checked by the administrator.
pub const KEY_MATERIAL: &[&str] = &["appliance.ca_cert_key"];

/// The embedded definition, parsed once.
///
/// # Panics
/// Never at run time in a tested build: the embedded file is parsed by the unit test
/// `definition::tests::embedded_definition_parses`; a broken file fails the build's tests.
pub fn appliance() -> &'static ApplianceFacts {
    static DEF: OnceLock<ApplianceFacts> = OnceLock::new();
    DEF.get_or_init(|| match parse(DEFINITION_TOML) {
        Ok(def) => def,
        Err(e) => panic!("embedded appliance definition is invalid: {e}"),
    })
}

/// Read the facts first boot needs from a definition, parsed and validated by
/// `ovf::definition` (the same code `ova-builder` generates the descriptor with).
pub fn parse(text: &str) -> Result<ApplianceFacts, ovf::DefinitionError> {
    let def = ovf::definition::Definition::parse(text, "builder/appliance/haproxy.toml")?;
    let properties = def
        .properties()
        .map(|p| PropertySpec {
            key: p.full_key(),
            label: p.label.clone(),
            kind: p.kind,
            qualifiers: p.qualifiers.clone(),
            default: p.default().map(str::to_owned),
            user_configurable: p.user_configurable,
            password: p.password,
            secret: p.password || KEY_MATERIAL.contains(&p.full_key().as_str()),
            configuration: p.configuration().map(str::to_owned),
        })
        .collect();
    let nics = def
        .nics()
        .iter()
        .filter_map(|n| {
            Some(NicSpec {
                name: n.name.clone(),
                pci_slot: n.pci_slot?,
                configuration: n.configurations.first().cloned(),
            })
        })
        .collect();
    Ok(ApplianceFacts { properties, nics })
}

/// The guest PCI address (`0000:BB:DD.0`) of a VMware `slotInfo.pciSlotNumber`.
///
/// VMware encodes the slot as bits `FFF.BBBBB.DDDDD` (Broadcom KB 2047927, "Mapping PCI slot
/// numbers to guest-visible PCI bus topology"): `BBBBB - 1` is the PCI bridge, `FFF` its
/// function, `DDDDD` the device on the bridge's secondary bus. The PCIe root ports
/// `pciBridge4`–`pciBridge7` (B = 5–8) have 8 functions each, and the guest's firmware numbers
/// their secondary buses from 3 in order: bus = 3 + 8·(B − 5) + F. So slot 160 (B=5) → bus
/// 0x03, 192 (B=6) → 0x0b, 224 (B=7) → 0x13, 1184 (F=1, B=5) → 0x04. Slots outside the root
/// ports are not used by this appliance: `None`.
pub fn pci_address(slot: u32) -> Option<String> {
    let function = (slot >> 10) & 0x7;
    let bridge_plus_one = (slot >> 5) & 0x1f;
    let device = slot & 0x1f;
    if slot >> 13 != 0 || !(5..=8).contains(&bridge_plus_one) {
        return None;
    }
    let bus = 3 + 8 * (bridge_plus_one - 5) + function;
    Some(format!("0000:{bus:02x}:{device:02x}.0"))
}

/// Remove the `N.M. ` numbering and anything after the first `, ` or ` (`.
pub fn short_label(label: &str) -> String {
    let mut rest = label.trim();
    // Leading "1.", "2.5.", "3.1." numbering.
    let numbering_end = rest
        .char_indices()
        .take_while(|(_, c)| c.is_ascii_digit() || *c == '.')
        .map(|(i, c)| i + c.len_utf8())
        .last();
    if let Some(end) = numbering_end
        && rest[..end].ends_with('.')
    {
        rest = rest[end..].trim_start();
    }
    let cut = [rest.find(", "), rest.find(" (")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    rest[..cut].trim().to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn embedded_definition_parses() {
        let def = parse(DEFINITION_TOML).unwrap();
        assert!(def.property("network.workload_ip").is_some());
        assert_eq!(def.nic("frontend").unwrap().pci_slot, 224);
    }

    #[test]
    fn secrets_are_the_passwords_and_the_key_material() {
        let def = parse(DEFINITION_TOML).unwrap();
        let secrets: Vec<&str> = def.secret_keys().collect();
        assert_eq!(
            secrets,
            [
                "appliance.root_pwd",
                "appliance.ca_cert_key",
                "loadbalance.haproxy_pwd",
                "ha.shared_secret"
            ]
        );
        assert!(KEY_MATERIAL.iter().all(|k| def.property(k).is_some()));
        assert!(!def.is_secret("network.hostname"));
        assert!(!def.is_secret("no.such_key"));
    }

    #[test]
    fn qualifiers_and_types_are_carried_through() {
        let def = parse(DEFINITION_TOML).unwrap();
        let root = def.property("appliance.root_pwd").unwrap();
        assert_eq!(root.kind, PropertyType::String);
        assert_eq!(root.length_range(), Some((6, Some(128))));
        assert_eq!(root.integer_range(), None);
        let port = def.property("loadbalance.dataplane_port").unwrap();
        assert_eq!(port.kind, PropertyType::Int);
        assert_eq!(port.integer_range(), Some((1, 65535)));
        assert_eq!(port.length_range(), None);
        let ca = def.property("appliance.ca_cert").unwrap();
        assert_eq!(ca.length_range(), Some((0, Some(65535))));
        assert_eq!(
            def.property("network.hostname").unwrap().length_range(),
            None
        );
    }

    #[test]
    fn pci_addresses_of_the_appliance_slots() {
        assert_eq!(pci_address(160).as_deref(), Some("0000:03:00.0"));
        assert_eq!(pci_address(192).as_deref(), Some("0000:0b:00.0"));
        assert_eq!(pci_address(224).as_deref(), Some("0000:13:00.0"));
        assert_eq!(pci_address(161).as_deref(), Some("0000:03:01.0"));
        assert_eq!(pci_address(256).as_deref(), Some("0000:1b:00.0"));
        assert_eq!(pci_address(1184).as_deref(), Some("0000:04:00.0"));
        assert_eq!(pci_address(1216).as_deref(), Some("0000:0c:00.0"));
        assert_eq!(pci_address(33), None);
        assert_eq!(pci_address(17), None);
    }

    #[test]
    fn short_labels() {
        assert_eq!(short_label("2.5. Workload IP"), "Workload IP");
        assert_eq!(
            short_label(
                "3.1. Load Balancer IP Ranges, comma-separated in CIDR format (e.g. 1.2.3.4/28)"
            ),
            "Load Balancer IP Ranges"
        );
        assert_eq!(
            short_label("1.3. TLS Certificate Authority Certificate (ca.crt)"),
            "TLS Certificate Authority Certificate"
        );
        assert_eq!(short_label("Build date"), "Build date");
    }
}
