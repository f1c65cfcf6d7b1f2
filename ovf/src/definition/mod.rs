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
mod raw;

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;

use crate::qualifiers::{PropertyType, Qualifier, parse_qualifiers};
use crate::text::{Position, line_column};
pub use descriptor::{BuildFacts, DiskFacts};

/// A place in a definition file: `origin:line:column` (1-based; column counts characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub origin: Arc<str>,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.origin, self.line, self.column)
    }
}

/// Why a definition file was refused. Every variant that concerns the file's content says
/// where (`file:line:column`).
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("cannot read appliance definition {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, a missing or unknown field, a value of the wrong TOML type.
    #[error("{at}: {message}")]
    Syntax { at: Location, message: String },
    #[error("{at}: property `{key}` has unknown type `{found}`; expected one of: {expected}")]
    UnknownType {
        at: Location,
        key: String,
        found: String,
        expected: String,
    },
    #[error("{at}: duplicate property key `{key}` (first defined on line {first_line})")]
    DuplicateKey {
        at: Location,
        key: String,
        first_line: usize,
    },
    #[error("{at}: property `{key}` has invalid qualifiers `{qualifiers}`: {reason}")]
    BadQualifiers {
        at: Location,
        key: String,
        qualifiers: String,
        reason: String,
    },
    #[error("{at}: default {default:?} of property `{key}` is not a valid {type_name}: {reason}")]
    DefaultWrongType {
        at: Location,
        key: String,
        default: String,
        type_name: PropertyType,
        reason: String,
    },
    #[error("{at}: default {default:?} of property `{key}` violates its own qualifier {reason}")]
    DefaultViolatesQualifier {
        at: Location,
        key: String,
        default: String,
        /// The qualifier and what is wrong: `MinLen(6): 3 characters, at least 6 required`.
        reason: String,
    },
    #[error(
        "{at}: {what} uses configuration `{id}`, which no deployment option declares (declared: {declared})"
    )]
    UnknownConfiguration {
        at: Location,
        what: String,
        id: String,
        declared: String,
    },
    #[error("{at}: cannot read the EULA file {path:?}: {reason}")]
    Eula {
        at: Location,
        path: String,
        reason: String,
    },
    /// Any other inconsistency (duplicate NIC, unknown network, ...).
    #[error("{at}: {message}")]
    Invalid { at: Location, message: String },
}

impl DefinitionError {
    /// Where in the file the problem is (`None` when the file could not be read at all).
    pub fn location(&self) -> Option<&Location> {
        match self {
            DefinitionError::Read { .. } => None,
            DefinitionError::Syntax { at, .. }
            | DefinitionError::UnknownType { at, .. }
            | DefinitionError::DuplicateKey { at, .. }
            | DefinitionError::BadQualifiers { at, .. }
            | DefinitionError::DefaultWrongType { at, .. }
            | DefinitionError::DefaultViolatesQualifier { at, .. }
            | DefinitionError::UnknownConfiguration { at, .. }
            | DefinitionError::Eula { at, .. }
            | DefinitionError::Invalid { at, .. } => Some(at),
        }
    }
}

/// A validated appliance definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    origin: String,
    virtual_system: VirtualSystemInfo,
    product: ProductInfo,
    eula: Option<Eula>,
    operating_system: OperatingSystem,
    hardware: Hardware,
    deployment_options: Vec<DeploymentOption>,
    networks: Vec<NetworkDef>,
    nics: Vec<Nic>,
    categories: Vec<Category>,
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

/// Firmware of the virtual machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Efi,
}

impl Firmware {
    /// The value of VMware's `firmware` setting.
    pub fn as_str(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Efi => "efi",
        }
    }
}

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

impl DiskController {
    const NAMES: [(&'static str, DiskController); 4] = [
        ("pvscsi", DiskController::Pvscsi),
        ("lsilogic", DiskController::LsiLogic),
        ("lsilogicsas", DiskController::LsiLogicSas),
        ("buslogic", DiskController::BusLogic),
    ];

    /// The name used in definition files.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, c)| *c == self)
            .map(|(n, _)| *n)
            .unwrap_or("pvscsi")
    }

    /// `rasd:ResourceSubType` of the controller item.
    pub fn resource_sub_type(self) -> &'static str {
        match self {
            DiskController::Pvscsi => "VirtualSCSI",
            DiskController::LsiLogic => "lsilogic",
            DiskController::LsiLogicSas => "lsilogicsas",
            DiskController::BusLogic => "buslogic",
        }
    }

    /// `ddb.adapterType` for a VMDK attached to this controller. The VMDK format only knows
    /// `ide`, `buslogic`, `lsilogic` and `legacyESX`; VMware writes `lsilogic` for disks on
    /// PVSCSI and LSI Logic SAS controllers too.
    pub fn vmdk_adapter_type(self) -> &'static str {
        match self {
            DiskController::BusLogic => "buslogic",
            DiskController::Pvscsi | DiskController::LsiLogic | DiskController::LsiLogicSas => {
                "lsilogic"
            }
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

impl NicAdapter {
    const NAMES: [(&'static str, NicAdapter); 3] = [
        ("vmxnet3", NicAdapter::VmxNet3),
        ("e1000", NicAdapter::E1000),
        ("e1000e", NicAdapter::E1000e),
    ];

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

impl Fill {
    const NAMES: [(&'static str, Fill); 3] = [
        ("version", Fill::Version),
        ("build_date", Fill::BuildDate),
        ("base_image", Fill::BaseImage),
    ];
}

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
    /// Reads and validates a definition file; the EULA file is read relative to it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Definition, DefinitionError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| DefinitionError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Definition::parse_with_files(&text, &path.display().to_string(), |relative| {
            std::fs::read_to_string(dir.join(relative))
        })
    }

    /// Validates a definition without reading any other file: the EULA text stays unloaded
    /// (`Eula::text == None`) and the descriptor then has no EulaSection. For programs that
    /// only need properties and NICs (for example `haproxy-firstboot` embedding the file with
    /// `include_str!`).
    pub fn parse(text: &str, origin: &str) -> Result<Definition, DefinitionError> {
        Definition::build(text, origin, None)
    }

    /// Validates a definition; `load` returns the content of a file named in it (the EULA),
    /// given the path as written.
    pub fn parse_with_files(
        text: &str,
        origin: &str,
        mut load: impl FnMut(&str) -> std::io::Result<String>,
    ) -> Result<Definition, DefinitionError> {
        Definition::build(text, origin, Some(&mut load))
    }

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
    /// `ddb.adapterType` the VMDK of the system disk must carry.
    pub fn vmdk_adapter_type(&self) -> &'static str {
        self.hardware.disk_controller.vmdk_adapter_type()
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

    fn build(
        text: &str,
        origin: &str,
        load: Option<Loader<'_>>,
    ) -> Result<Definition, DefinitionError> {
        let ctx = Ctx {
            text,
            origin: Arc::from(origin),
        };
        let raw: raw::RawDefinition = toml::from_str(text).map_err(|e| {
            let start = e.span().map(|s| s.start).unwrap_or(0);
            DefinitionError::Syntax {
                at: ctx.at_offset(start),
                message: e.message().trim_end().to_string(),
            }
        })?;
        ctx.validate(raw, load)
    }
}

/// Reads a file named in a definition, given the path as written there.
type Loader<'a> = &'a mut dyn FnMut(&str) -> std::io::Result<String>;

struct Ctx<'a> {
    text: &'a str,
    origin: Arc<str>,
}

impl Ctx<'_> {
    fn at_offset(&self, offset: usize) -> Location {
        let Position { line, column } = line_column(self.text, offset);
        Location {
            origin: self.origin.clone(),
            line,
            column,
        }
    }

    fn at(&self, span: Range<usize>) -> Location {
        self.at_offset(span.start)
    }

    fn invalid(&self, span: Range<usize>, message: impl Into<String>) -> DefinitionError {
        DefinitionError::Invalid {
            at: self.at(span),
            message: message.into(),
        }
    }

    fn configurations(
        &self,
        value: Option<&Spanned<String>>,
        declared: &[DeploymentOption],
        what: &str,
    ) -> Result<Vec<String>, DefinitionError> {
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        let ids: Vec<String> = value
            .get_ref()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if ids.is_empty() {
            return Err(self.invalid(
                value.span(),
                format!(
                    "{what} has an empty `configuration`; omit it to mean every deployment option"
                ),
            ));
        }
        for id in &ids {
            if !declared.iter().any(|o| &o.id == id) {
                let list: Vec<&str> = declared.iter().map(|o| o.id.as_str()).collect();
                return Err(DefinitionError::UnknownConfiguration {
                    at: self.at(value.span()),
                    what: what.to_string(),
                    id: id.clone(),
                    declared: if list.is_empty() {
                        "none".to_string()
                    } else {
                        list.join(", ")
                    },
                });
            }
        }
        Ok(ids)
    }

    fn validate(
        &self,
        raw: raw::RawDefinition,
        load: Option<Loader<'_>>,
    ) -> Result<Definition, DefinitionError> {
        let vs_id = raw.virtual_system.id;
        if vs_id.get_ref().trim().is_empty() || vs_id.get_ref().contains(char::is_whitespace) {
            return Err(self.invalid(
                vs_id.span(),
                "virtual_system.id must be a non-empty name without spaces",
            ));
        }
        let virtual_system = VirtualSystemInfo {
            id: vs_id.into_inner(),
            info: raw
                .virtual_system
                .info
                .unwrap_or_else(|| "A virtual machine".to_string()),
            name: raw.virtual_system.name,
            annotation: raw.virtual_system.annotation,
        };
        let p = raw.product;
        let product = ProductInfo {
            info: p
                .info
                .unwrap_or_else(|| "Information about the installed software".to_string()),
            product: p.product,
            vendor: p.vendor,
            version: p.version,
            full_version: p.full_version,
            product_url: p.product_url,
            vendor_url: p.vendor_url,
            app_url: p.app_url,
        };

        let eula = match raw.eula {
            None => None,
            Some(e) => {
                let file = e.file.get_ref().clone();
                let text = match load {
                    None => None,
                    Some(load) => Some(load(&file).map_err(|err| DefinitionError::Eula {
                        at: self.at(e.file.span()),
                        path: file.clone(),
                        reason: err.to_string(),
                    })?),
                };
                Some(Eula {
                    file,
                    info: e
                        .info
                        .unwrap_or_else(|| "End User License Agreement".to_string()),
                    text,
                })
            }
        };

        let os = raw.operating_system;
        let operating_system = OperatingSystem {
            id: os.id,
            version: os.version,
            description: os.description,
            vmw_os_type: os.vmw_os_type,
        };

        let hardware = self.hardware(raw.hardware)?;

        // Deployment options.
        let mut deployment_options: Vec<DeploymentOption> = Vec::new();
        let mut default_seen: Option<usize> = None;
        for o in raw.deployment_options {
            let id = o.id.get_ref();
            if id.is_empty() || id.contains(char::is_whitespace) {
                return Err(self.invalid(
                    o.id.span(),
                    format!("deployment option id {id:?} must be non-empty and without spaces"),
                ));
            }
            if deployment_options.iter().any(|d| &d.id == id) {
                return Err(self.invalid(
                    o.id.span(),
                    format!("deployment option `{id}` is declared twice"),
                ));
            }
            let is_default = o.default.as_ref().is_some_and(|d| *d.get_ref());
            if let Some(d) = o.default.as_ref().filter(|_| is_default) {
                if let Some(first) = default_seen {
                    return Err(self.invalid(
                        d.span(),
                        format!(
                            "deployment option `{id}` is marked default, but `{}` already is; \
                             mark exactly one",
                            deployment_options[first].id
                        ),
                    ));
                }
                default_seen = Some(deployment_options.len());
            }
            deployment_options.push(DeploymentOption {
                id: o.id.into_inner(),
                label: o.label,
                description: o.description,
                default: is_default,
            });
        }

        // Networks.
        let mut networks: Vec<NetworkDef> = Vec::new();
        for n in raw.networks {
            let name = n.name.get_ref();
            if name.trim().is_empty() {
                return Err(self.invalid(n.name.span(), "a network needs a non-empty name"));
            }
            if networks.iter().any(|x| &x.name == name) {
                return Err(
                    self.invalid(n.name.span(), format!("network `{name}` is declared twice"))
                );
            }
            let configurations = self.configurations(
                n.configuration.as_ref(),
                &deployment_options,
                &format!("network `{name}`"),
            )?;
            networks.push(NetworkDef {
                name: n.name.into_inner(),
                description: n.description,
                configurations,
            });
        }

        // NICs.
        let mut nics: Vec<Nic> = Vec::new();
        for n in raw.nics {
            let name = n.name.get_ref().clone();
            if name.trim().is_empty() {
                return Err(self.invalid(n.name.span(), "a NIC needs a non-empty name"));
            }
            if nics.iter().any(|x| x.name == name) {
                return Err(self.invalid(n.name.span(), format!("NIC `{name}` is declared twice")));
            }
            let Some(network) = networks.iter().find(|x| &x.name == n.network.get_ref()) else {
                let list: Vec<&str> = networks.iter().map(|x| x.name.as_str()).collect();
                return Err(self.invalid(
                    n.network.span(),
                    format!(
                        "NIC `{name}` connects to network `{}`, which is not declared (declared: {})",
                        n.network.get_ref(),
                        if list.is_empty() { "none".to_string() } else { list.join(", ") }
                    ),
                ));
            };
            let Some((_, adapter)) = NicAdapter::NAMES
                .iter()
                .find(|(s, _)| s == n.adapter.get_ref())
            else {
                return Err(self.invalid(
                    n.adapter.span(),
                    format!(
                        "NIC `{name}` has unknown adapter `{}`; expected one of: vmxnet3, e1000, e1000e",
                        n.adapter.get_ref()
                    ),
                ));
            };
            if let Some(slot) = &n.pci_slot
                && let Some(other) = nics.iter().find(|x| x.pci_slot == Some(*slot.get_ref()))
            {
                return Err(self.invalid(
                    slot.span(),
                    format!(
                        "NIC `{name}` uses PCI slot {}, already used by NIC `{}`",
                        slot.get_ref(),
                        other.name
                    ),
                ));
            }
            let configurations = self.configurations(
                n.configuration.as_ref(),
                &deployment_options,
                &format!("NIC `{name}`"),
            )?;
            if !network.configurations.is_empty() {
                let outside: Vec<&str> = if configurations.is_empty() {
                    deployment_options
                        .iter()
                        .map(|o| o.id.as_str())
                        .filter(|id| !network.configurations.iter().any(|c| c == id))
                        .collect()
                } else {
                    configurations
                        .iter()
                        .map(String::as_str)
                        .filter(|id| !network.configurations.iter().any(|c| c == id))
                        .collect()
                };
                if !outside.is_empty() {
                    let span = n
                        .configuration
                        .as_ref()
                        .map(|c| c.span())
                        .unwrap_or(n.name.span());
                    return Err(self.invalid(
                        span,
                        format!(
                            "NIC `{name}` exists in configuration(s) {} where its network `{}` does not; \
                             give the NIC `configuration = \"{}\"`",
                            outside.join(", "),
                            network.name,
                            network.configurations.join(" ")
                        ),
                    ));
                }
            }
            nics.push(Nic {
                name,
                network: n.network.into_inner(),
                adapter: *adapter,
                pci_slot: n.pci_slot.map(Spanned::into_inner),
                configurations,
            });
        }

        // Properties.
        let mut categories: Vec<Category> = Vec::new();
        let mut seen_keys: HashMap<String, usize> = HashMap::new();
        for c in raw.categories {
            let class = c.class.get_ref().clone();
            if class.is_empty() || class.contains(|ch: char| ch.is_whitespace() || ch == '.') {
                return Err(self.invalid(
                    c.class.span(),
                    format!("category class {class:?} must be non-empty, without spaces or dots"),
                ));
            }
            if categories.iter().any(|x| x.class == class) {
                return Err(self.invalid(
                    c.class.span(),
                    format!("category class `{class}` is declared twice; put its properties in one [[categories]]"),
                ));
            }
            let mut properties = Vec::new();
            for rp in c.properties {
                let prop =
                    self.property(rp, &class, &c.label, &deployment_options, &mut seen_keys)?;
                properties.push(prop);
            }
            categories.push(Category {
                class,
                label: c.label,
                info: c.info.unwrap_or_else(|| "Properties".to_string()),
                properties,
            });
        }

        Ok(Definition {
            origin: self.origin.to_string(),
            virtual_system,
            product,
            eula,
            operating_system,
            hardware,
            deployment_options,
            networks,
            nics,
            categories,
        })
    }

    fn hardware(&self, h: raw::RawHardware) -> Result<Hardware, DefinitionError> {
        if *h.cpus.get_ref() == 0 {
            return Err(self.invalid(h.cpus.span(), "hardware.cpus must be at least 1"));
        }
        if *h.memory_mib.get_ref() == 0 {
            return Err(self.invalid(
                h.memory_mib.span(),
                "hardware.memory_mib must be at least 1",
            ));
        }
        if let Some(cores) = &h.cores_per_socket {
            let c = *cores.get_ref();
            if c == 0 || h.cpus.get_ref() % c != 0 {
                return Err(self.invalid(
                    cores.span(),
                    format!(
                        "hardware.cores_per_socket = {c} does not divide hardware.cpus = {}",
                        h.cpus.get_ref()
                    ),
                ));
            }
        }
        let firmware = match h.firmware.get_ref().as_str() {
            "bios" => Firmware::Bios,
            "efi" => Firmware::Efi,
            other => {
                return Err(self.invalid(
                    h.firmware.span(),
                    format!("unknown firmware `{other}`; expected `bios` or `efi`"),
                ));
            }
        };
        let Some((_, disk_controller)) = DiskController::NAMES
            .iter()
            .find(|(n, _)| n == h.disk_controller.get_ref())
        else {
            return Err(self.invalid(
                h.disk_controller.span(),
                format!(
                    "unknown disk controller `{}`; expected one of: pvscsi, lsilogic, lsilogicsas, buslogic",
                    h.disk_controller.get_ref()
                ),
            ));
        };
        let mut extra_config: Vec<(String, String)> = Vec::new();
        for kv in h.extra_config {
            if kv.key.get_ref().trim().is_empty() {
                return Err(self.invalid(kv.key.span(), "an extra_config key must not be empty"));
            }
            if extra_config.iter().any(|(k, _)| k == kv.key.get_ref()) {
                return Err(self.invalid(
                    kv.key.span(),
                    format!("extra_config key `{}` is given twice", kv.key.get_ref()),
                ));
            }
            extra_config.push((kv.key.into_inner(), kv.value));
        }
        Ok(Hardware {
            virtual_system_type: h.virtual_system_type,
            cpus: h.cpus.into_inner(),
            cores_per_socket: h.cores_per_socket.map(Spanned::into_inner),
            memory_mib: h.memory_mib.into_inner(),
            firmware,
            disk_controller: *disk_controller,
            cdrom: h.cdrom,
            transport: h.transport,
            extra_config,
        })
    }

    fn property(
        &self,
        rp: raw::RawProperty,
        class: &str,
        category: &str,
        deployment_options: &[DeploymentOption],
        seen_keys: &mut HashMap<String, usize>,
    ) -> Result<PropertyDef, DefinitionError> {
        let key = rp.key.get_ref().clone();
        let full_key = format!("{class}.{key}");
        if key.is_empty() || key.contains(|ch: char| ch.is_whitespace() || ch == '.') {
            return Err(self.invalid(
                rp.key.span(),
                format!("property key {key:?} must be non-empty, without spaces or dots"),
            ));
        }
        let line = self.at(rp.key.span()).line;
        if let Some(first_line) = seen_keys.get(&full_key) {
            return Err(DefinitionError::DuplicateKey {
                at: self.at(rp.key.span()),
                key: full_key,
                first_line: *first_line,
            });
        }
        seen_keys.insert(full_key.clone(), line);

        let Some(kind) = PropertyType::parse(rp.type_name.get_ref()) else {
            return Err(DefinitionError::UnknownType {
                at: self.at(rp.type_name.span()),
                key: full_key,
                found: rp.type_name.get_ref().clone(),
                expected: PropertyType::ALL.map(PropertyType::as_str).join(", "),
            });
        };

        let (qualifiers_text, qualifiers) = match &rp.qualifiers {
            None => (String::new(), Vec::new()),
            Some(q) => {
                let parsed = parse_qualifiers(q.get_ref()).map_err(|reason| {
                    DefinitionError::BadQualifiers {
                        at: self.at(q.span()),
                        key: full_key.clone(),
                        qualifiers: q.get_ref().clone(),
                        reason,
                    }
                })?;
                if let Some(bad) = parsed.iter().find(|x| !x.applies_to(kind)) {
                    return Err(DefinitionError::BadQualifiers {
                        at: self.at(q.span()),
                        key: full_key,
                        qualifiers: q.get_ref().clone(),
                        reason: format!("{bad} does not apply to type {kind}"),
                    });
                }
                (q.get_ref().clone(), parsed)
            }
        };

        let default = match &rp.default {
            None => None,
            Some(d) => {
                let text = match d.get_ref() {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    other => {
                        return Err(self.invalid(
                            d.span(),
                            format!(
                                "default of property `{full_key}` must be a string, integer, \
                                 boolean or number, not a {}",
                                other.type_str()
                            ),
                        ));
                    }
                };
                // An empty default of a string means "no value"; it is still checked
                // against the qualifiers (MinLen) because vSphere would show it.
                if let Err(reason) = kind.check(&text) {
                    return Err(DefinitionError::DefaultWrongType {
                        at: self.at(d.span()),
                        key: full_key,
                        default: text,
                        type_name: kind,
                        reason,
                    });
                }
                for q in &qualifiers {
                    if let Err(reason) = q.check(&text) {
                        return Err(DefinitionError::DefaultViolatesQualifier {
                            at: self.at(d.span()),
                            key: full_key,
                            default: text,
                            reason: format!("{q}: {reason}"),
                        });
                    }
                }
                Some(text)
            }
        };

        let user_configurable = rp.user_configurable.as_ref().is_none_or(|u| *u.get_ref());
        let fill = match &rp.fill {
            None => None,
            Some(f) => {
                let Some((_, fill)) = Fill::NAMES.iter().find(|(n, _)| n == f.get_ref()) else {
                    return Err(self.invalid(
                        f.span(),
                        format!(
                            "property `{full_key}` has unknown fill `{}`; expected one of: version, build_date, base_image",
                            f.get_ref()
                        ),
                    ));
                };
                if user_configurable {
                    return Err(self.invalid(
                        f.span(),
                        format!(
                            "property `{full_key}` is filled by the build, so it needs `user_configurable = false`"
                        ),
                    ));
                }
                Some(*fill)
            }
        };

        let configurations = self.configurations(
            rp.configuration.as_ref(),
            deployment_options,
            &format!("property `{full_key}`"),
        )?;

        Ok(PropertyDef {
            class: class.to_string(),
            key,
            kind,
            qualifiers_text,
            qualifiers,
            default,
            password: rp.password,
            user_configurable,
            configurations,
            label: rp.label,
            description: rp.description,
            category: category.to_string(),
            fill,
        })
    }
}
