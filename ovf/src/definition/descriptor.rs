//! Definition → OVF envelope.

use super::{Category, Definition, DiskController, Fill, Hardware, Nic, PropertyDef};
use crate::model::{
    AnnotationSection, Configuration, DeploymentOptionSection, Disk, DiskSection, Envelope,
    EulaSection, File, Item, Network, NetworkSection, OperatingSystemSection, ProductItem,
    ProductSection, Property, System, VirtualHardwareSection, VirtualSystem, VmwConfig,
    VmwCoresPerSocket, resource_type,
};

/// Facts about the disk image the descriptor refers to. Every field is optional: missing ones
/// become placeholders so that a descriptor can be inspected before any disk exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskFacts {
    /// File name of the VMDK in the package (default: `<virtual system id>-disk1.vmdk`).
    pub file_name: Option<String>,
    /// Exact byte length of the VMDK file (`File ovf:size`; omitted when unknown).
    pub file_size: Option<u64>,
    /// Virtual size of the disk in bytes (`Disk ovf:capacity`; `0` when unknown).
    pub capacity: Option<u64>,
    /// Bytes of the disk actually in use (`Disk ovf:populatedSize`; omitted when unknown).
    pub populated_size: Option<u64>,
}

/// Facts of one build: the disk and the provenance values of non-configurable properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildFacts {
    pub disk: DiskFacts,
    /// Release version (default: the definition's `product.version`).
    pub version: Option<String>,
    /// Build date, e.g. RFC 3339 (default: `unknown`).
    pub build_date: Option<String>,
    /// Where the base image came from (default: `unknown`).
    pub base_image: Option<String>,
    /// `FullVersion` of the product, e.g. the release and what it carries (default: the
    /// definition's `product.full_version`, else the release version).
    pub full_version: Option<String>,
}

/// The `ovf:format` of streamOptimized VMDKs.
pub const STREAM_OPTIMIZED_FORMAT: &str =
    "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";

const FILE_ID: &str = "file1";
const DISK_ID: &str = "vmdisk1";

impl Definition {
    /// The file name used for the VMDK when the build does not give one.
    pub fn default_disk_file_name(&self) -> String {
        format!("{}-disk1.vmdk", self.virtual_system.id)
    }

    /// The OVF descriptor of this appliance for one build.
    pub fn to_envelope(&self, facts: &BuildFacts) -> Envelope {
        let version = facts
            .version
            .clone()
            .unwrap_or_else(|| self.product.version.clone());
        Envelope {
            lang: Some("en-US".to_string()),
            references: vec![self.disk_file(&facts.disk)],
            disk_section: Some(disk_section(&facts.disk)),
            network_section: Some(self.network_section()),
            deployment_option_section: self.deployment_option_section(),
            unknown_sections: Vec::new(),
            virtual_system: Some(self.virtual_system_element(facts, &version)),
            unknown_content: None,
            strings: Vec::new(),
        }
    }

    /// The `<File>` of the VMDK in `<References>`.
    fn disk_file(&self, disk: &DiskFacts) -> File {
        File {
            id: FILE_ID.to_string(),
            href: disk
                .file_name
                .clone()
                .unwrap_or_else(|| self.default_disk_file_name()),
            size: disk.file_size,
            compression: None,
            chunk_size: None,
        }
    }

    fn network_section(&self) -> NetworkSection {
        NetworkSection {
            info: "The list of logical networks".to_string(),
            required: None,
            networks: self
                .networks
                .iter()
                .map(|n| Network {
                    name: n.name.clone(),
                    description: n.description.clone(),
                    configuration: join(&n.configurations),
                })
                .collect(),
        }
    }

    /// `None` when the definition declares no deployment option.
    fn deployment_option_section(&self) -> Option<DeploymentOptionSection> {
        (!self.deployment_options.is_empty()).then(|| DeploymentOptionSection {
            info: "Deployment configuration options".to_string(),
            required: None,
            configurations: self
                .deployment_options
                .iter()
                .map(|o| Configuration {
                    id: o.id.clone(),
                    default: o.default.then_some(true),
                    label: o.label.clone(),
                    description: o.description.clone(),
                })
                .collect(),
        })
    }

    fn virtual_system_element(&self, facts: &BuildFacts, version: &str) -> VirtualSystem {
        VirtualSystem {
            id: self.virtual_system.id.clone(),
            info: self.virtual_system.info.clone(),
            name: Some(self.virtual_system.name.clone()),
            annotation_section: self.virtual_system.annotation.as_ref().map(|a| {
                AnnotationSection {
                    info: "A human-readable annotation".to_string(),
                    required: None,
                    annotation: a.clone(),
                }
            }),
            product_sections: self.product_sections(facts, version),
            eula_sections: self.eula_sections(),
            operating_system_section: Some(self.operating_system_section()),
            virtual_hardware_sections: vec![self.virtual_hardware()],
            unknown_sections: Vec::new(),
        }
    }

    /// The product's own section, then one section per property category.
    fn product_sections(&self, facts: &BuildFacts, version: &str) -> Vec<ProductSection> {
        let mut sections = vec![ProductSection {
            info: self.product.info.clone(),
            required: None,
            class: None,
            instance: None,
            product: Some(self.product.product.clone()),
            vendor: Some(self.product.vendor.clone()),
            version: Some(version.to_string()),
            full_version: Some(
                facts
                    .full_version
                    .clone()
                    .or_else(|| self.product.full_version.clone())
                    .unwrap_or_else(|| version.to_string()),
            ),
            product_url: self.product.product_url.clone(),
            vendor_url: self.product.vendor_url.clone(),
            app_url: self.product.app_url.clone(),
            items: Vec::new(),
        }];
        sections.extend(
            self.categories
                .iter()
                .map(|category| category_section(category, facts, version)),
        );
        sections
    }

    /// The EULA, when its text was loaded.
    fn eula_sections(&self) -> Vec<EulaSection> {
        self.eula
            .iter()
            .filter_map(|e| {
                e.text.as_ref().map(|text| EulaSection {
                    info: e.info.clone(),
                    required: None,
                    license: text.clone(),
                })
            })
            .collect()
    }

    fn operating_system_section(&self) -> OperatingSystemSection {
        let os = &self.operating_system;
        OperatingSystemSection {
            info: "The operating system installed".to_string(),
            required: None,
            id: os.id,
            version: os.version.clone(),
            description: os.description.clone(),
            vmw_os_type: os.vmw_os_type.clone(),
        }
    }

    fn virtual_hardware(&self) -> VirtualHardwareSection {
        let hw = &self.hardware;
        VirtualHardwareSection {
            info: "Virtual hardware requirements".to_string(),
            required: None,
            id: None,
            transport: (!hw.transport.is_empty()).then(|| hw.transport.join(" ")),
            system: Some(System {
                description: None,
                element_name: "Virtual Hardware Family".to_string(),
                instance_id: "0".to_string(),
                virtual_system_identifier: Some(self.virtual_system.id.clone()),
                virtual_system_type: Some(hw.virtual_system_type.clone()),
            }),
            items: self.hardware_items(),
            vmw_config: vec![VmwConfig {
                required: Some(false),
                key: "firmware".to_string(),
                value: hw.firmware.as_str().to_string(),
            }],
            vmw_extra_config: hw
                .extra_config
                .iter()
                .map(|(k, v)| VmwConfig {
                    required: Some(false),
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        }
    }

    /// The `<Item>`s, numbered in this order: CPU, memory, SCSI controller, IDE controller
    /// (with a CD-ROM), disk, CD-ROM, NICs.
    fn hardware_items(&self) -> Vec<Item> {
        let hw = &self.hardware;
        let mut ids = InstanceIds::default();
        let mut items = vec![cpu_item(hw, ids.next()), memory_item(hw, ids.next())];
        let scsi_id = ids.next();
        items.push(scsi_controller_item(hw.disk_controller, scsi_id.clone()));
        let ide_id = hw.cdrom.then(|| {
            let id = ids.next();
            items.push(ide_controller_item(id.clone()));
            id
        });
        items.push(disk_item(ids.next(), scsi_id));
        if let Some(ide_id) = ide_id {
            items.push(cdrom_item(ids.next(), ide_id));
        }
        for nic in &self.nics {
            items.push(nic_item(nic, ids.next()));
        }
        items
    }
}

/// `rasd:InstanceID`s of the hardware items: 1, 2, 3, ...
#[derive(Default)]
struct InstanceIds {
    last: u32,
}

impl InstanceIds {
    fn next(&mut self) -> String {
        self.last += 1;
        self.last.to_string()
    }
}

fn cpu_item(hw: &Hardware, instance_id: String) -> Item {
    Item {
        allocation_units: Some("hertz * 10^6".to_string()),
        description: Some("Number of Virtual CPUs".to_string()),
        element_name: format!("{} virtual CPU(s)", hw.cpus),
        instance_id,
        resource_type: Some(resource_type::PROCESSOR.to_string()),
        virtual_quantity: Some(hw.cpus.to_string()),
        vmw_cores_per_socket: hw.cores_per_socket.map(|c| VmwCoresPerSocket {
            required: Some(false),
            value: c.to_string(),
        }),
        ..Item::default()
    }
}

fn memory_item(hw: &Hardware, instance_id: String) -> Item {
    Item {
        allocation_units: Some("byte * 2^20".to_string()),
        description: Some("Memory Size".to_string()),
        element_name: format!("{}MB of memory", hw.memory_mib),
        instance_id,
        resource_type: Some(resource_type::MEMORY.to_string()),
        virtual_quantity: Some(hw.memory_mib.to_string()),
        ..Item::default()
    }
}

fn scsi_controller_item(controller: DiskController, instance_id: String) -> Item {
    Item {
        address: Some("0".to_string()),
        description: Some("SCSI Controller".to_string()),
        element_name: "SCSI Controller 0".to_string(),
        instance_id,
        resource_sub_type: Some(controller.resource_sub_type().to_string()),
        resource_type: Some(resource_type::SCSI_CONTROLLER.to_string()),
        ..Item::default()
    }
}

fn ide_controller_item(instance_id: String) -> Item {
    Item {
        address: Some("0".to_string()),
        description: Some("IDE Controller".to_string()),
        element_name: "IDE Controller 0".to_string(),
        instance_id,
        resource_type: Some(resource_type::IDE_CONTROLLER.to_string()),
        ..Item::default()
    }
}

fn disk_item(instance_id: String, controller_id: String) -> Item {
    Item {
        address_on_parent: Some("0".to_string()),
        element_name: "Hard Disk 1".to_string(),
        host_resources: vec![format!("ovf:/disk/{DISK_ID}")],
        instance_id,
        parent: Some(controller_id),
        resource_type: Some(resource_type::DISK_DRIVE.to_string()),
        ..Item::default()
    }
}

fn cdrom_item(instance_id: String, controller_id: String) -> Item {
    Item {
        required: Some(false),
        address_on_parent: Some("0".to_string()),
        automatic_allocation: Some("false".to_string()),
        description: Some("CD-ROM drive".to_string()),
        element_name: "CD-ROM 1".to_string(),
        instance_id,
        parent: Some(controller_id),
        resource_sub_type: Some("vmware.cdrom.remotepassthrough".to_string()),
        resource_type: Some(resource_type::CD_DRIVE.to_string()),
        ..Item::default()
    }
}

fn nic_item(nic: &Nic, instance_id: String) -> Item {
    let vmw_config = nic
        .pci_slot
        .map(|slot| VmwConfig {
            required: Some(false),
            key: "slotInfo.pciSlotNumber".to_string(),
            value: slot.to_string(),
        })
        .into_iter()
        .collect();
    Item {
        configuration: join(&nic.configurations),
        automatic_allocation: Some("true".to_string()),
        connections: vec![nic.network.clone()],
        description: Some(format!(
            "{} ethernet adapter on \"{}\"",
            nic.adapter.resource_sub_type(),
            nic.network
        )),
        element_name: nic.name.clone(),
        instance_id,
        resource_sub_type: Some(nic.adapter.resource_sub_type().to_string()),
        resource_type: Some(resource_type::ETHERNET_ADAPTER.to_string()),
        vmw_config,
        ..Item::default()
    }
}

fn disk_section(disk: &DiskFacts) -> DiskSection {
    DiskSection {
        info: "Virtual disk information".to_string(),
        required: None,
        disks: vec![Disk {
            disk_id: DISK_ID.to_string(),
            file_ref: Some(FILE_ID.to_string()),
            capacity: disk.capacity.unwrap_or(0).to_string(),
            capacity_allocation_units: Some("byte".to_string()),
            format: Some(STREAM_OPTIMIZED_FORMAT.to_string()),
            populated_size: disk.populated_size,
            parent_ref: None,
        }],
    }
}

/// One property category: a ProductSection with a class, its `<Category>` and properties.
fn category_section(category: &Category, facts: &BuildFacts, version: &str) -> ProductSection {
    let mut items = vec![ProductItem::Category(category.label.clone())];
    items.extend(
        category
            .properties
            .iter()
            .map(|p| ProductItem::Property(property(p, facts, version))),
    );
    ProductSection {
        info: category.info.clone(),
        required: Some(false),
        class: Some(category.class.clone()),
        instance: None,
        items,
        ..ProductSection::default()
    }
}

fn property(p: &PropertyDef, facts: &BuildFacts, version: &str) -> Property {
    let value = match p.fill {
        Some(Fill::Version) => Some(version.to_string()),
        Some(Fill::BuildDate) => Some(
            facts
                .build_date
                .clone()
                .unwrap_or_else(|| "unknown".to_string()),
        ),
        Some(Fill::BaseImage) => Some(
            facts
                .base_image
                .clone()
                .unwrap_or_else(|| "unknown".to_string()),
        ),
        None => p.default.clone(),
    };
    Property {
        key: p.key.clone(),
        type_name: p.kind.as_str().to_string(),
        qualifiers: (!p.qualifiers_text.is_empty()).then(|| p.qualifiers_text.clone()),
        value,
        user_configurable: Some(p.user_configurable),
        password: p.password.then_some(true),
        configuration: join(&p.configurations),
        label: Some(p.label.clone()),
        description: Some(p.description.clone()),
        values: Vec::new(),
    }
}

fn join(ids: &[String]) -> Option<String> {
    (!ids.is_empty()).then(|| ids.join(" "))
}
