//! The typed model of the OVF 1.x envelope parts an appliance needs.
//!
//! Text fields hold the text as it appears after XML unescaping. Optional attributes are
//! `Option`s so that "absent" and "present but empty" stay distinct: reading what the writer
//! wrote gives back the same model. RASD/VSSD values are kept as strings (exactly as written)
//! because third-party descriptors put surprising things there; helpers parse them on demand.

/// XML namespace of OVF 1.x envelopes (DSP8023).
pub const NS_OVF: &str = "http://schemas.dmtf.org/ovf/envelope/1";
/// XML namespace of CIM_ResourceAllocationSettingData (hardware items).
pub const NS_RASD: &str =
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData";
/// XML namespace of CIM_VirtualSystemSettingData (the `System` element).
pub const NS_VSSD: &str =
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData";
/// XML namespace of VMware's OVF extensions (`vmw:Config`, `vmw:ExtraConfig`, ...).
pub const NS_VMW: &str = "http://www.vmware.com/schema/ovf";
/// XML namespace of the CIM common types (`cim:` prefix).
pub const NS_CIM: &str = "http://schemas.dmtf.org/wbem/wscim/1/common";
/// The XML namespace (`xml:lang`).
pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// `<Envelope>`: the root of a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// `xml:lang` of the envelope, if given.
    pub lang: Option<String>,
    /// `<References>`: the files of the package, in package order.
    pub references: Vec<File>,
    pub disk_section: Option<DiskSection>,
    pub network_section: Option<NetworkSection>,
    pub deployment_option_section: Option<DeploymentOptionSection>,
    /// Envelope-level sections this model does not know (read only; never written).
    pub unknown_sections: Vec<UnknownSection>,
    /// The single `<VirtualSystem>`; `None` when the content is something else (for example a
    /// `VirtualSystemCollection`, recorded in `unknown_content`).
    pub virtual_system: Option<VirtualSystem>,
    /// Content element that is not a `VirtualSystem` (read only; never written).
    pub unknown_content: Option<UnknownSection>,
    /// `<Strings>` bundles (localised messages).
    pub strings: Vec<Strings>,
}

/// `<File>` in `<References>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct File {
    pub id: String,
    pub href: String,
    /// Exact byte length of the file.
    pub size: Option<u64>,
    pub compression: Option<String>,
    pub chunk_size: Option<i64>,
}

/// `<DiskSection>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskSection {
    pub info: String,
    pub required: Option<bool>,
    pub disks: Vec<Disk>,
}

/// `<Disk>`: a virtual disk backed by a `File`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disk {
    pub disk_id: String,
    pub file_ref: Option<String>,
    /// Virtual size, in `capacity_allocation_units` (bytes when absent).
    pub capacity: String,
    pub capacity_allocation_units: Option<String>,
    pub format: Option<String>,
    pub populated_size: Option<u64>,
    pub parent_ref: Option<String>,
}

/// `<NetworkSection>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkSection {
    pub info: String,
    pub required: Option<bool>,
    pub networks: Vec<Network>,
}

/// `<Network>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Network {
    pub name: String,
    pub description: Option<String>,
    /// `ovf:configuration`: the deployment options this network is used in (space-separated).
    pub configuration: Option<String>,
}

/// `<DeploymentOptionSection>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentOptionSection {
    pub info: String,
    pub required: Option<bool>,
    pub configurations: Vec<Configuration>,
}

/// `<Configuration>`: one deployment option.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Configuration {
    pub id: String,
    pub default: Option<bool>,
    pub label: String,
    pub description: String,
}

/// `<VirtualSystem>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VirtualSystem {
    pub id: String,
    pub info: String,
    pub name: Option<String>,
    pub annotation_section: Option<AnnotationSection>,
    pub product_sections: Vec<ProductSection>,
    pub eula_sections: Vec<EulaSection>,
    pub operating_system_section: Option<OperatingSystemSection>,
    pub virtual_hardware_sections: Vec<VirtualHardwareSection>,
    /// Sections this model does not know (read only; never written).
    pub unknown_sections: Vec<UnknownSection>,
}

/// A section (or content element) the model does not know: recorded so that tools can report
/// it (and whether the deployer must understand it), but its content is skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnknownSection {
    /// Namespace URI of the element (empty when none).
    pub namespace: String,
    pub local_name: String,
    /// `ovf:required` of the element, when given (OVF's default is `true`).
    pub required: Option<bool>,
    /// Its `<Info>` text, when it has one.
    pub info: Option<String>,
    /// 1-based line of the element in the document.
    pub line: usize,
}

/// `<AnnotationSection>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnnotationSection {
    pub info: String,
    pub required: Option<bool>,
    pub annotation: String,
}

/// `<ProductSection>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProductSection {
    pub info: String,
    pub required: Option<bool>,
    /// `ovf:class`: the prefix of the property keys (`class.key`).
    pub class: Option<String>,
    pub instance: Option<String>,
    pub product: Option<String>,
    pub vendor: Option<String>,
    pub version: Option<String>,
    pub full_version: Option<String>,
    pub product_url: Option<String>,
    pub vendor_url: Option<String>,
    pub app_url: Option<String>,
    /// `<Category>` and `<Property>` elements, in document order.
    pub items: Vec<ProductItem>,
}

impl ProductSection {
    /// The properties of this section, in document order.
    pub fn properties(&self) -> impl Iterator<Item = &Property> {
        self.items.iter().filter_map(|item| match item {
            ProductItem::Property(p) => Some(p),
            ProductItem::Category(_) => None,
        })
    }

    /// The properties with the category each belongs to (the last `<Category>` before it).
    pub fn properties_with_category(&self) -> Vec<(Option<&str>, &Property)> {
        let mut category = None;
        let mut out = Vec::new();
        for item in &self.items {
            match item {
                ProductItem::Category(c) => category = Some(c.as_str()),
                ProductItem::Property(p) => out.push((category, p)),
            }
        }
        out
    }

    /// The full key of a property of this section: `class.key`, or `key` without a class.
    pub fn full_key(&self, property: &Property) -> String {
        match self.class.as_deref() {
            Some(class) if !class.is_empty() => format!("{class}.{}", property.key),
            _ => property.key.clone(),
        }
    }
}

/// An entry of a `ProductSection` after the product information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductItem {
    /// `<Category>`: a heading for the properties after it.
    Category(String),
    Property(Property),
}

/// `<Property>`: a vApp property.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Property {
    pub key: String,
    /// `ovf:type` (`string`, `boolean`, `int`, `uint16`, ...).
    pub type_name: String,
    /// `ovf:qualifiers`, e.g. `MinLen(6) MaxLen(128)`.
    pub qualifiers: Option<String>,
    /// `ovf:value`: the default value.
    pub value: Option<String>,
    pub user_configurable: Option<bool>,
    pub password: Option<bool>,
    /// `ovf:configuration`: the deployment options the property applies to (space-separated).
    pub configuration: Option<String>,
    pub label: Option<String>,
    pub description: Option<String>,
    /// `<Value>` children: per-configuration values.
    pub values: Vec<PropertyValue>,
}

/// `<Value>` of a `Property`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PropertyValue {
    pub value: String,
    pub configuration: Option<String>,
}

/// `<EulaSection>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EulaSection {
    pub info: String,
    pub required: Option<bool>,
    pub license: String,
}

/// `<OperatingSystemSection>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OperatingSystemSection {
    pub info: String,
    pub required: Option<bool>,
    /// CIM operating system type (e.g. 96 = Debian 64-bit).
    pub id: u16,
    pub version: Option<String>,
    pub description: Option<String>,
    /// `vmw:osType` (e.g. `debian10_64Guest`).
    pub vmw_os_type: Option<String>,
}

/// `<VirtualHardwareSection>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VirtualHardwareSection {
    pub info: String,
    pub required: Option<bool>,
    pub id: Option<String>,
    /// `ovf:transport`: space-separated OVF environment transports (`com.vmware.guestInfo`, `iso`).
    pub transport: Option<String>,
    pub system: Option<System>,
    pub items: Vec<Item>,
    /// `vmw:Config` children of the section (e.g. `firmware`).
    pub vmw_config: Vec<VmwConfig>,
    /// `vmw:ExtraConfig` children of the section (VMX options).
    pub vmw_extra_config: Vec<VmwConfig>,
}

/// `<System>`: CIM_VirtualSystemSettingData. Fields in the schema's (alphabetical) order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct System {
    pub description: Option<String>,
    pub element_name: String,
    pub instance_id: String,
    pub virtual_system_identifier: Option<String>,
    /// e.g. `vmx-13`.
    pub virtual_system_type: Option<String>,
}

/// `<Item>`: CIM_ResourceAllocationSettingData. Fields in the schema's (alphabetical) order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Item {
    /// `ovf:required` (OVF's default is `true`).
    pub required: Option<bool>,
    /// `ovf:configuration`: the deployment options this item exists in (space-separated).
    pub configuration: Option<String>,
    /// `ovf:bound` (`min`, `max`, `normal`).
    pub bound: Option<String>,
    pub address: Option<String>,
    pub address_on_parent: Option<String>,
    pub allocation_units: Option<String>,
    pub automatic_allocation: Option<String>,
    pub automatic_deallocation: Option<String>,
    pub caption: Option<String>,
    pub connections: Vec<String>,
    pub consumer_visibility: Option<String>,
    pub description: Option<String>,
    pub element_name: String,
    pub host_resources: Vec<String>,
    pub instance_id: String,
    pub limit: Option<String>,
    pub mapping_behavior: Option<String>,
    pub other_resource_type: Option<String>,
    pub parent: Option<String>,
    pub pool_id: Option<String>,
    pub reservation: Option<String>,
    pub resource_sub_type: Option<String>,
    pub resource_type: Option<String>,
    pub virtual_quantity: Option<String>,
    pub virtual_quantity_units: Option<String>,
    pub weight: Option<String>,
    /// `vmw:CoresPerSocket` (on the CPU item).
    pub vmw_cores_per_socket: Option<VmwCoresPerSocket>,
    /// `vmw:Config` children (e.g. `slotInfo.pciSlotNumber`).
    pub vmw_config: Vec<VmwConfig>,
}

impl Item {
    /// The CIM resource type as a number, when it is one.
    pub fn resource_type_code(&self) -> Option<u16> {
        self.resource_type.as_deref()?.trim().parse().ok()
    }

    /// The value of the `vmw:Config` with this key, if any.
    pub fn vmw_config_value(&self, key: &str) -> Option<&str> {
        self.vmw_config
            .iter()
            .find(|c| c.key == key)
            .map(|c| c.value.as_str())
    }
}

/// CIM resource types used by appliances (values of `rasd:ResourceType`).
pub mod resource_type {
    pub const PROCESSOR: u16 = 3;
    pub const MEMORY: u16 = 4;
    pub const IDE_CONTROLLER: u16 = 5;
    pub const SCSI_CONTROLLER: u16 = 6;
    pub const ETHERNET_ADAPTER: u16 = 10;
    pub const CD_DRIVE: u16 = 15;
    pub const DISK_DRIVE: u16 = 17;
    pub const SATA_CONTROLLER: u16 = 20;
}

/// `vmw:Config` / `vmw:ExtraConfig`: a key/value pair.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmwConfig {
    /// `ovf:required` (OVF's default is `true`).
    pub required: Option<bool>,
    pub key: String,
    pub value: String,
}

/// `vmw:CoresPerSocket`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmwCoresPerSocket {
    pub required: Option<bool>,
    pub value: String,
}

/// `<Strings>`: localised messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Strings {
    pub lang: Option<String>,
    pub file_ref: Option<String>,
    /// `(msgid, text)` pairs.
    pub messages: Vec<(String, String)>,
}

impl Envelope {
    /// All properties of all product sections of the virtual system, as
    /// `(full key, category, property)`.
    pub fn properties(&self) -> Vec<(String, Option<&str>, &Property)> {
        let mut out = Vec::new();
        if let Some(vs) = &self.virtual_system {
            for section in &vs.product_sections {
                for (category, property) in section.properties_with_category() {
                    out.push((section.full_key(property), category, property));
                }
            }
        }
        out
    }
}
