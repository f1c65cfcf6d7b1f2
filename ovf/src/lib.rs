//! OVF 1.x descriptors: a typed model, a writer and a reader, and appliance definitions
//! (definition → descriptor).
//!
//! # Public API
//!
//! - Definitions ([`definition`]):
//!   - [`Definition::from_file`]`(path)` reads a TOML definition and the EULA file next to it;
//!     [`Definition::parse`]`(text, origin)` validates without touching other files (EULA text
//!     left unloaded — enough for `include_str!` users that need properties and NICs);
//!     [`Definition::parse_with_files`]`(text, origin, |relative_path| -> io::Result<String>)`.
//!     Errors: [`DefinitionError`], whose `Display` starts with `origin:line:column`.
//!   - Properties: [`Definition::properties`] (iterator of [`PropertyDef`]: `full_key()`,
//!     `default()`, `kind`, `qualifiers`, `password`, `user_configurable`, `configuration()`,
//!     `label`, `description`, `category`), [`Definition::property`]`("network.hostname")`.
//!   - NICs: [`Definition::nics`] / [`Definition::nics_in`]`("frontend")` ([`Nic`]: `name`,
//!     `network`, `pci_slot`, `configurations`); [`Definition::deployment_options`],
//!     [`Definition::default_deployment_option`], [`Definition::networks`].
//!   - Hardware: [`Definition::hardware`]. The VMDK's `ddb.adapterType` for the disk
//!     controller is the builder's business (`builder::package::vmdk_adapter_type`).
//!   - Descriptor: [`Definition::to_envelope`]`(&`[`BuildFacts`]`)` → [`Envelope`];
//!     [`BuildFacts`] holds [`DiskFacts`] (VMDK file name, file size, capacity, populated size;
//!     all optional → placeholders) and provenance (version, build date, base image, full
//!     version).
//! - Writer: [`write()`]`(&Envelope) -> String` (pretty, stable, every text escaped).
//! - Reader: [`read()`]`(&str) -> Result<Envelope, ReadError>` (namespaces by URI; unknown
//!   sections recorded and skipped; errors with line:column).
//! - [`text::line_column`]`(text, byte_offset)` → [`text::Position`] (1-based line, column in
//!   characters): the one offset → line:column rule of every error message here and in firstboot.
//! - [`qualifiers`]: property types and `MinLen(6) MaxLen(128)`-style qualifiers, usable to
//!   validate values.

pub mod definition;
pub mod model;
pub mod names;
pub mod qualifiers;
mod reader;
pub mod text;
mod writer;

pub use definition::{
    BuildFacts, Category, Definition, DefinitionError, DeploymentOption, DiskController, DiskFacts,
    Eula, Firmware, Hardware, Location, NetworkDef, Nic, NicAdapter, PropertyDef,
};
pub use model::*;
pub use qualifiers::{PropertyType, Qualifier};
pub use reader::{ReadError, read};
pub use writer::write;
