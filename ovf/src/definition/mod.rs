//! Appliance definitions: one TOML file that describes an appliance completely (product,
//! hardware, deployment options, networks, NICs, vApp properties, EULA), validated with
//! positions, and turned into an OVF [`Envelope`](crate::Envelope) by
//! [`Definition::to_envelope`].
//!
//! Nothing here knows a particular appliance; the HAProxy appliance is the data file
//! `builder/appliance/haproxy.toml`, which is also the worked example of the format.
//!
//! # Format
//!
//! ```toml
//! [virtual_system]      # id (VirtualSystem ovf:id, no spaces), name, info?, annotation?
//! [product]             # product, vendor, version (default when the build gives none),
//!                       # info?, full_version?, product_url?, vendor_url?, app_url?
//! [eula]                # file (relative to the definition file), info?      — optional
//! [operating_system]    # id (CIM OS type, 96 = Debian 64-bit), version?, description?,
//!                       # vmw_os_type?
//! [hardware]            # virtual_system_type ("vmx-13"), cpus, cores_per_socket?,
//!                       # memory_mib, firmware ("bios" | "efi"),
//!                       # disk_controller ("pvscsi" | "lsilogic" | "lsilogicsas" | "buslogic"),
//!                       # cdrom? (IDE CD-ROM), transport? (["com.vmware.guestInfo", "iso"]),
//!                       # extra_config? ([{ key, value }] → vmw:ExtraConfig)
//! [[deployment_options]] # id, label, description, default? (at most one true)
//! [[networks]]          # name, description?, configuration? (space-separated option ids)
//! [[nics]]              # name, network (declared above), adapter ("vmxnet3" | "e1000" |
//!                       # "e1000e"), pci_slot? (unique), configuration?
//! [[categories]]        # class (ProductSection ovf:class), label (<Category>), info?
//! [[categories.properties]]
//!                       # key, type (string, boolean, int, real, uint8 … sint64, real32,
//!                       # real64), label, description, qualifiers? ("MinLen(6) MaxLen(128)",
//!                       # "MinValue(1) MaxValue(65535)", 'ValueMap{"a","b"}'), default?
//!                       # (string, integer or boolean; checked against type and qualifiers),
//!                       # password?, user_configurable? (default true), configuration?,
//!                       # fill? ("version" | "build_date" | "base_image": the value comes from
//!                       # the build; needs user_configurable = false)
//! ```
//!
//! Unknown fields are errors. Every error names the file, line and column.

mod descriptor;
mod error;
mod raw;
mod types;
mod validate;

pub use descriptor::{BuildFacts, DiskFacts};
pub use error::{DefinitionError, Location};
pub use types::{
    Category, Definition, DeploymentOption, DiskController, Eula, Fill, Firmware, Hardware,
    NetworkDef, Nic, NicAdapter, OperatingSystem, ProductInfo, PropertyDef, VirtualSystemInfo,
};
