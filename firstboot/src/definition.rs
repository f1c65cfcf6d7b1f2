//! What first boot takes from the appliance definition (`builder/appliance/haproxy.toml`, the
//! one source of truth the OVF descriptor is generated from): the wizard labels and defaults of
//! the vApp properties, and the PCI slots of the NICs.

use std::sync::OnceLock;

/// The appliance definition, embedded at build time.
pub const DEFINITION_TOML: &str = include_str!("../../builder/appliance/haproxy.toml");

/// One vApp property of the definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertySpec {
    /// `class.key`, as in the OVF environment.
    pub key: String,
    /// The wizard label as declared (e.g. `2.5. Workload IP`).
    pub label: String,
    /// OVF type (`string`, `boolean`, `int`).
    pub kind: String,
    /// Default value as the descriptor writes it (`ovf:value`), if any.
    pub default: Option<String>,
    pub user_configurable: bool,
    pub password: bool,
    /// Deployment option the property belongs to (`frontend`), if restricted.
    pub configuration: Option<String>,
}

impl PropertySpec {
    /// The label without its numbering and explanations: `2.5. Workload IP` → `Workload IP`,
    /// `3.1. Load Balancer IP Ranges, comma-separated …` → `Load Balancer IP Ranges`.
    pub fn short_label(&self) -> String {
        short_label(&self.label)
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

/// The facts first boot needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    pub properties: Vec<PropertySpec>,
    pub nics: Vec<NicSpec>,
}

impl Definition {
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

    pub fn default(&self, key: &str) -> Option<&str> {
        self.property(key).and_then(|p| p.default.as_deref())
    }
}

/// The embedded definition, parsed once.
///
/// # Panics
/// Never at run time in a tested build: the embedded file is parsed by the unit test
/// `definition::tests::embedded_definition_parses`; a broken file fails the build's tests.
pub fn appliance() -> &'static Definition {
    static DEF: OnceLock<Definition> = OnceLock::new();
    DEF.get_or_init(|| match parse(DEFINITION_TOML) {
        Ok(def) => def,
        Err(e) => panic!("embedded appliance definition is invalid: {e}"),
    })
}

/// Read the facts first boot needs from a definition, parsed and validated by
/// `ovf::definition` (the same code `ova-builder` generates the descriptor with).
pub fn parse(text: &str) -> Result<Definition, ovf::definition::DefinitionError> {
    let def = ovf::definition::Definition::parse(text, "builder/appliance/haproxy.toml")?;
    let properties = def
        .properties()
        .map(|p| PropertySpec {
            key: p.full_key(),
            label: p.label.clone(),
            kind: p.kind.as_str().to_owned(),
            default: p.default().map(str::to_owned),
            user_configurable: p.user_configurable,
            password: p.password,
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
    Ok(Definition { properties, nics })
}

/// The PCI address of a NIC in a VMware guest from its `pciSlotNumber`.
///
/// Slots from 160 up sit behind VMware's PCIe root ports: `pciBridge4` (slots 160–167),
/// `pciBridge5` (192–199), `pciBridge6` (224–231), `pciBridge7` (256–263), each port with its
/// own bus: bridge 4 has buses 0x03–0x0a, bridge 5 0x0b–0x12, … So slot 160 → `0000:03:00.0`,
/// 192 → `0000:0b:00.0`, 224 → `0000:13:00.0` (the numbers of `appliance.md`).
pub fn pci_address(slot: u32) -> Option<String> {
    if slot < 160 {
        return None;
    }
    let bridge = (slot - 160) / 32;
    let function = (slot - 160) % 32;
    if bridge > 3 || function > 7 {
        return None;
    }
    let bus = 3 + bridge * 8 + function;
    Some(format!("0000:{bus:02x}:00.0"))
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
    fn pci_addresses_of_the_appliance_slots() {
        assert_eq!(pci_address(160).as_deref(), Some("0000:03:00.0"));
        assert_eq!(pci_address(192).as_deref(), Some("0000:0b:00.0"));
        assert_eq!(pci_address(224).as_deref(), Some("0000:13:00.0"));
        assert_eq!(pci_address(161).as_deref(), Some("0000:04:00.0"));
        assert_eq!(pci_address(33), None);
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
