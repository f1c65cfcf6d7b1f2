//! The validated appliance definition: what a definition file describes, as types.

use crate::names::named_enum;
use crate::qualifiers::{PropertyType, Qualifier};

/// A validated appliance definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub(super) origin: String,
    pub(super) virtual_system: VirtualSystemInfo,
    pub(super) product: ProductInfo,
    pub(super) eula: Option<Eula>,
    pub(super) operating_system: OperatingSystem,
    pub(super) hardware: Hardware,
    pub(super) deployment_options: Vec<DeploymentOption>,
    pub(super) networks: Vec<NetworkDef>,
    pub(super) nics: Vec<Nic>,
    pub(super) categories: Vec<Category>,
}

/// Identity of the virtual system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualSystemInfo {
    /// `ovf:id` of the VirtualSystem (and the default VM name in some tools).
    pub id: String,
    /// `<Name>`: the display name.
    pub name: String,
    pub info: String,
    pub annotation: Option<String>,
}

/// The product information of the main (class-less) ProductSection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductInfo {
    pub info: String,
    pub product: String,
    pub vendor: String,
    /// The version written when the build gives none.
    pub version: String,
    pub full_version: Option<String>,
    pub product_url: Option<String>,
    pub vendor_url: Option<String>,
    pub app_url: Option<String>,
}

/// The EULA: the file named in the definition and, when loaded, its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eula {
    /// The path as written in the definition (relative to the definition file).
    pub file: String,
    pub info: String,
    /// The license text; `None` when the definition was parsed without file access
    /// ([`Definition::parse`]).
    pub text: Option<String>,
}

/// The guest operating system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatingSystem {
    /// CIM OS type (96 = Debian 64-bit).
    pub id: u16,
    pub version: Option<String>,
    pub description: Option<String>,
    /// `vmw:osType`.
    pub vmw_os_type: Option<String>,
}

/// Firmware of the virtual machine; its name is the value of VMware's `firmware` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Efi,
}

named_enum!(Firmware, "firmware", { Bios => "bios", Efi => "efi" });

/// The controller the system disk hangs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskController {
    /// VMware Paravirtual SCSI (Linux `vmw_pvscsi`).
    Pvscsi,
    /// LSI Logic parallel SCSI (Linux `mptspi`).
    LsiLogic,
    /// LSI Logic SAS (Linux `mptsas`).
    LsiLogicSas,
    /// BusLogic parallel SCSI.
    BusLogic,
}

named_enum!(DiskController, "disk controller", {
    Pvscsi => "pvscsi",
    LsiLogic => "lsilogic",
    LsiLogicSas => "lsilogicsas",
    BusLogic => "buslogic",
});

impl DiskController {
    /// `rasd:ResourceSubType` of the controller item.
    pub fn resource_sub_type(self) -> &'static str {
        match self {
            DiskController::Pvscsi => "VirtualSCSI",
            DiskController::LsiLogic => "lsilogic",
            DiskController::LsiLogicSas => "lsilogicsas",
            DiskController::BusLogic => "buslogic",
        }
    }
}

/// Virtual hardware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardware {
    /// `vssd:VirtualSystemType`, e.g. `vmx-13`.
    pub virtual_system_type: String,
    pub cpus: u32,
    pub cores_per_socket: Option<u32>,
    pub memory_mib: u64,
    pub firmware: Firmware,
    pub disk_controller: DiskController,
    /// Whether the VM has an IDE CD-ROM drive.
    pub cdrom: bool,
    /// OVF environment transports (`com.vmware.guestInfo`, `iso`).
    pub transport: Vec<String>,
    /// `vmw:ExtraConfig` key/value pairs, in order.
    pub extra_config: Vec<(String, String)>,
}

/// A deployment option (`<Configuration>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentOption {
    pub id: String,
    pub label: String,
    pub description: String,
    pub default: bool,
}

/// A logical network (`<Network>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkDef {
    pub name: String,
    pub description: Option<String>,
    /// Deployment option ids this network exists in; empty = all.
    pub configurations: Vec<String>,
}

/// NIC adapter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicAdapter {
    VmxNet3,
    E1000,
    E1000e,
}

named_enum!(NicAdapter, "adapter", {
    VmxNet3 => "vmxnet3",
    E1000 => "e1000",
    E1000e => "e1000e",
});

impl NicAdapter {
    /// `rasd:ResourceSubType` of the NIC item.
    pub fn resource_sub_type(self) -> &'static str {
        match self {
            NicAdapter::VmxNet3 => "VmxNet3",
            NicAdapter::E1000 => "E1000",
            NicAdapter::E1000e => "E1000e",
        }
    }
}

/// A network adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    /// Name of the NIC (the guest interface name, and the item's ElementName).
    pub name: String,
    /// The network it connects to.
    pub network: String,
    pub adapter: NicAdapter,
    /// PCI slot number (`slotInfo.pciSlotNumber`), which fixes the guest's PCI path.
    pub pci_slot: Option<u32>,
    /// Deployment option ids this NIC exists in; empty = all.
    pub configurations: Vec<String>,
}

impl Nic {
    /// Whether this NIC exists in the deployment option `id`.
    pub fn in_configuration(&self, id: &str) -> bool {
        self.configurations.is_empty() || self.configurations.iter().any(|c| c == id)
    }
}

/// A property category: one `ProductSection` with an `ovf:class` and a `<Category>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    pub class: String,
    pub label: String,
    pub info: String,
    pub properties: Vec<PropertyDef>,
}

/// Build facts a property can be filled from (non-configurable provenance properties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    Version,
    BuildDate,
    BaseImage,
}

named_enum!(Fill, "fill", {
    Version => "version",
    BuildDate => "build_date",
    BaseImage => "base_image",
});

/// A vApp property.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyDef {
    /// The ProductSection class (`network`).
    pub class: String,
    /// The key within the class (`hostname`).
    pub key: String,
    pub kind: PropertyType,
    /// The qualifiers as written (`MinLen(6) MaxLen(128)`), empty when none.
    pub qualifiers_text: String,
    pub qualifiers: Vec<Qualifier>,
    /// The default value (`ovf:value`); `None` = no default.
    pub default: Option<String>,
    pub password: bool,
    pub user_configurable: bool,
    /// Deployment option ids the property applies to; empty = all.
    pub configurations: Vec<String>,
    pub label: String,
    pub description: String,
    /// The label of the category the property is shown under.
    pub category: String,
    /// Filled from a build fact instead of the default.
    pub fill: Option<Fill>,
}

impl PropertyDef {
    /// `class.key`, as the OVF environment and PowerCLI name it (`network.hostname`).
    pub fn full_key(&self) -> String {
        format!("{}.{}", self.class, self.key)
    }

    /// The default, or `None` when it is missing or empty.
    pub fn default(&self) -> Option<&str> {
        self.default.as_deref().filter(|d| !d.is_empty())
    }

    /// The `ovf:configuration` of the property (first configuration), if gated.
    pub fn configuration(&self) -> Option<&str> {
        self.configurations.first().map(String::as_str)
    }

    /// Whether the property applies in the deployment option `id`.
    pub fn in_configuration(&self, id: &str) -> bool {
        self.configurations.is_empty() || self.configurations.iter().any(|c| c == id)
    }
}

impl Definition {
    /// Where the definition came from (file name, for messages).
    pub fn origin(&self) -> &str {
        &self.origin
    }
    pub fn virtual_system(&self) -> &VirtualSystemInfo {
        &self.virtual_system
    }
    pub fn product(&self) -> &ProductInfo {
        &self.product
    }
    pub fn eula(&self) -> Option<&Eula> {
        self.eula.as_ref()
    }
    pub fn operating_system(&self) -> &OperatingSystem {
        &self.operating_system
    }
    pub fn hardware(&self) -> &Hardware {
        &self.hardware
    }
    pub fn deployment_options(&self) -> &[DeploymentOption] {
        &self.deployment_options
    }
    /// The id of the default deployment option (the one marked default, else the first).
    pub fn default_deployment_option(&self) -> Option<&str> {
        self.deployment_options
            .iter()
            .find(|o| o.default)
            .or(self.deployment_options.first())
            .map(|o| o.id.as_str())
    }
    pub fn networks(&self) -> &[NetworkDef] {
        &self.networks
    }
    /// All NICs, in definition order.
    pub fn nics(&self) -> &[Nic] {
        &self.nics
    }
    /// The NICs present in deployment option `id`.
    pub fn nics_in(&self, id: &str) -> Vec<&Nic> {
        self.nics
            .iter()
            .filter(|n| n.in_configuration(id))
            .collect()
    }
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }
    /// All properties, in definition order.
    pub fn properties(&self) -> impl Iterator<Item = &PropertyDef> {
        self.categories.iter().flat_map(|c| c.properties.iter())
    }
    /// The property with this full key (`network.hostname`).
    pub fn property(&self, full_key: &str) -> Option<&PropertyDef> {
        let (class, key) = full_key.split_once('.')?;
        self.properties().find(|p| p.class == class && p.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name parses to the value whose `as_str` (and `Display`) is that name.
    fn round_trips<T>(names: &[&str])
    where
        T: std::str::FromStr + std::fmt::Display,
        T::Err: std::fmt::Debug,
    {
        for name in names {
            let parsed = name.parse::<T>().map(|v| v.to_string());
            assert_eq!(parsed.as_deref().ok(), Some(*name), "{name}");
        }
    }

    #[test]
    fn definition_enums_round_trip_their_names() {
        round_trips::<Firmware>(Firmware::NAMES);
        round_trips::<DiskController>(DiskController::NAMES);
        round_trips::<NicAdapter>(NicAdapter::NAMES);
        round_trips::<Fill>(Fill::NAMES);
        round_trips::<crate::PropertyType>(crate::PropertyType::NAMES);
        assert_eq!(DiskController::LsiLogicSas.as_str(), "lsilogicsas");
        assert_eq!("e1000e".parse(), Ok(NicAdapter::E1000e));
        assert_eq!("build_date".parse(), Ok(Fill::BuildDate));
        assert_eq!(Firmware::Efi.to_string(), "efi");
    }
}
