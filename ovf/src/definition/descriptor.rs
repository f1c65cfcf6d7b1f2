//! Definition → OVF envelope.

use super::{Definition, Fill, PropertyDef};
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
        let file_name = facts
            .disk
            .file_name
            .clone()
            .unwrap_or_else(|| self.default_disk_file_name());

        let references = vec![File {
            id: FILE_ID.to_string(),
            href: file_name,
            size: facts.disk.file_size,
            compression: None,
            chunk_size: None,
        }];
        let disk_section = DiskSection {
            info: "Virtual disk information".to_string(),
            required: None,
            disks: vec![Disk {
                disk_id: DISK_ID.to_string(),
                file_ref: Some(FILE_ID.to_string()),
                capacity: facts.disk.capacity.unwrap_or(0).to_string(),
                capacity_allocation_units: Some("byte".to_string()),
                format: Some(STREAM_OPTIMIZED_FORMAT.to_string()),
                populated_size: facts.disk.populated_size,
                parent_ref: None,
            }],
        };
        let network_section = NetworkSection {
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
        };
        let deployment_option_section =
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
            });

        let mut product_sections = vec![ProductSection {
            info: self.product.info.clone(),
            required: None,
            class: None,
            instance: None,
            product: Some(self.product.product.clone()),
            vendor: Some(self.product.vendor.clone()),
            version: Some(version.clone()),
            full_version: Some(
                self.product
                    .full_version
                    .clone()
                    .unwrap_or_else(|| version.clone()),
            ),
            product_url: self.product.product_url.clone(),
            vendor_url: self.product.vendor_url.clone(),
            app_url: self.product.app_url.clone(),
            items: Vec::new(),
        }];
        for category in &self.categories {
            let mut items = vec![ProductItem::Category(category.label.clone())];
            items.extend(
                category
                    .properties
                    .iter()
                    .map(|p| ProductItem::Property(property(p, facts, &version))),
            );
            product_sections.push(ProductSection {
                info: category.info.clone(),
                required: Some(false),
                class: Some(category.class.clone()),
                instance: None,
                items,
                ..ProductSection::default()
            });
        }

        let eula_sections = self
            .eula
            .iter()
            .filter_map(|e| {
                e.text.as_ref().map(|text| EulaSection {
                    info: e.info.clone(),
                    required: None,
                    license: text.clone(),
                })
            })
            .collect();

        let os = &self.operating_system;
        let operating_system_section = OperatingSystemSection {
            info: "The operating system installed".to_string(),
            required: None,
            id: os.id,
            version: os.version.clone(),
            description: os.description.clone(),
            vmw_os_type: os.vmw_os_type.clone(),
        };

        let virtual_system = VirtualSystem {
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
            product_sections,
            eula_sections,
            operating_system_section: Some(operating_system_section),
            virtual_hardware_sections: vec![self.virtual_hardware()],
            unknown_sections: Vec::new(),
        };

        Envelope {
            lang: Some("en-US".to_string()),
            references,
            disk_section: Some(disk_section),
            network_section: Some(network_section),
            deployment_option_section,
            unknown_sections: Vec::new(),
            virtual_system: Some(virtual_system),
            unknown_content: None,
            strings: Vec::new(),
        }
    }

    fn virtual_hardware(&self) -> VirtualHardwareSection {
        let hw = &self.hardware;
        let mut items = Vec::new();
        let mut next_id = 1u32;
        let mut new_id = || {
            let id = next_id;
            next_id += 1;
            id.to_string()
        };

        items.push(Item {
            allocation_units: Some("hertz * 10^6".to_string()),
            description: Some("Number of Virtual CPUs".to_string()),
            element_name: format!("{} virtual CPU(s)", hw.cpus),
            instance_id: new_id(),
            resource_type: Some(resource_type::PROCESSOR.to_string()),
            virtual_quantity: Some(hw.cpus.to_string()),
            vmw_cores_per_socket: hw.cores_per_socket.map(|c| VmwCoresPerSocket {
                required: Some(false),
                value: c.to_string(),
            }),
            ..Item::default()
        });
        items.push(Item {
            allocation_units: Some("byte * 2^20".to_string()),
            description: Some("Memory Size".to_string()),
            element_name: format!("{}MB of memory", hw.memory_mib),
            instance_id: new_id(),
            resource_type: Some(resource_type::MEMORY.to_string()),
            virtual_quantity: Some(hw.memory_mib.to_string()),
            ..Item::default()
        });
        let scsi_id = new_id();
        items.push(Item {
            address: Some("0".to_string()),
            description: Some("SCSI Controller".to_string()),
            element_name: "SCSI Controller 0".to_string(),
            instance_id: scsi_id.clone(),
            resource_sub_type: Some(hw.disk_controller.resource_sub_type().to_string()),
            resource_type: Some(resource_type::SCSI_CONTROLLER.to_string()),
            ..Item::default()
        });
        let ide_id = hw.cdrom.then(|| {
            let id = new_id();
            items.push(Item {
                address: Some("0".to_string()),
                description: Some("IDE Controller".to_string()),
                element_name: "IDE Controller 0".to_string(),
                instance_id: id.clone(),
                resource_type: Some(resource_type::IDE_CONTROLLER.to_string()),
                ..Item::default()
            });
            id
        });
        items.push(Item {
            address_on_parent: Some("0".to_string()),
            element_name: "Hard Disk 1".to_string(),
            host_resources: vec![format!("ovf:/disk/{DISK_ID}")],
            instance_id: new_id(),
            parent: Some(scsi_id),
            resource_type: Some(resource_type::DISK_DRIVE.to_string()),
            ..Item::default()
        });
        if let Some(ide_id) = ide_id {
            items.push(Item {
                required: Some(false),
                address_on_parent: Some("0".to_string()),
                automatic_allocation: Some("false".to_string()),
                description: Some("CD-ROM drive".to_string()),
                element_name: "CD-ROM 1".to_string(),
                instance_id: new_id(),
                parent: Some(ide_id),
                resource_sub_type: Some("vmware.cdrom.remotepassthrough".to_string()),
                resource_type: Some(resource_type::CD_DRIVE.to_string()),
                ..Item::default()
            });
        }
        for nic in &self.nics {
            let mut vmw_config = Vec::new();
            if let Some(slot) = nic.pci_slot {
                vmw_config.push(VmwConfig {
                    required: Some(false),
                    key: "slotInfo.pciSlotNumber".to_string(),
                    value: slot.to_string(),
                });
            }
            items.push(Item {
                configuration: join(&nic.configurations),
                automatic_allocation: Some("true".to_string()),
                connections: vec![nic.network.clone()],
                description: Some(format!(
                    "{} ethernet adapter on \"{}\"",
                    nic.adapter.resource_sub_type(),
                    nic.network
                )),
                element_name: nic.name.clone(),
                instance_id: new_id(),
                resource_sub_type: Some(nic.adapter.resource_sub_type().to_string()),
                resource_type: Some(resource_type::ETHERNET_ADAPTER.to_string()),
                vmw_config,
                ..Item::default()
            });
        }

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
            items,
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
