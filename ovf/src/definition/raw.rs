//! The definition file as written (TOML), before validation. Spans are kept on every value a
//! semantic error can point at.

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefinition {
    pub virtual_system: RawVirtualSystem,
    pub product: RawProduct,
    pub eula: Option<RawEula>,
    pub operating_system: RawOperatingSystem,
    pub hardware: RawHardware,
    #[serde(default)]
    pub deployment_options: Vec<RawDeploymentOption>,
    #[serde(default)]
    pub networks: Vec<RawNetwork>,
    #[serde(default)]
    pub nics: Vec<RawNic>,
    #[serde(default)]
    pub categories: Vec<RawCategory>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVirtualSystem {
    pub id: Spanned<String>,
    pub name: String,
    pub info: Option<String>,
    pub annotation: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProduct {
    pub info: Option<String>,
    pub product: String,
    pub vendor: String,
    pub version: String,
    pub full_version: Option<String>,
    pub product_url: Option<String>,
    pub vendor_url: Option<String>,
    pub app_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEula {
    pub file: Spanned<String>,
    pub info: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOperatingSystem {
    pub id: u16,
    pub version: Option<String>,
    pub description: Option<String>,
    pub vmw_os_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHardware {
    pub virtual_system_type: String,
    pub cpus: Spanned<u32>,
    pub cores_per_socket: Option<Spanned<u32>>,
    pub memory_mib: Spanned<u64>,
    pub firmware: Spanned<String>,
    pub disk_controller: Spanned<String>,
    #[serde(default)]
    pub cdrom: bool,
    #[serde(default)]
    pub transport: Vec<String>,
    #[serde(default)]
    pub extra_config: Vec<RawKeyValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeyValue {
    pub key: Spanned<String>,
    pub value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeploymentOption {
    pub id: Spanned<String>,
    pub label: String,
    pub description: String,
    pub default: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub configuration: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNic {
    pub name: Spanned<String>,
    pub network: Spanned<String>,
    pub adapter: Spanned<String>,
    pub pci_slot: Option<Spanned<u32>>,
    pub configuration: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCategory {
    pub class: Spanned<String>,
    pub label: String,
    pub info: Option<String>,
    #[serde(default)]
    pub properties: Vec<RawProperty>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProperty {
    pub key: Spanned<String>,
    #[serde(rename = "type")]
    pub type_name: Spanned<String>,
    pub qualifiers: Option<Spanned<String>>,
    pub default: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub password: bool,
    pub user_configurable: Option<Spanned<bool>>,
    pub configuration: Option<Spanned<String>>,
    pub label: String,
    pub description: String,
    pub fill: Option<Spanned<String>>,
}
