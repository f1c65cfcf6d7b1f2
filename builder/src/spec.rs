//! `spec`: what a deployer needs to know about an OVA — its deployment options, networks and
//! properties — as a table for people or as the options JSON of `govc import.spec`, ready to
//! be edited and fed to `govc import.ova -options FILE`.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ovf::Envelope;

use crate::ova::{self, PackageFile};

/// The largest descriptor read into memory (as `verify`'s limit).
const DESCRIPTOR_LIMIT: u64 = ova::SMALL_FILE_LIMIT;

/// Why the descriptor could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is neither an OVF descriptor nor a readable OVA: {source}")]
    NotAPackage {
        path: PathBuf,
        source: ova::ScanError,
    },
    #[error("{path} has no .ovf member")]
    NoDescriptor { path: PathBuf },
    #[error(
        "the descriptor {name} in {path} is too large ({size} bytes; at most {DESCRIPTOR_LIMIT})"
    )]
    TooLarge {
        path: PathBuf,
        name: String,
        size: u64,
    },
    #[error("the descriptor in {path} does not parse: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("unknown deployment option `{given}` (the package has: {known})")]
    UnknownDeployment { given: String, known: String },
}

/// A deployment option.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeploymentSpec {
    pub id: String,
    pub label: String,
    pub description: String,
    pub default: bool,
}

/// A network the deployer maps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NetworkSpec {
    pub name: String,
    pub description: String,
    /// The deployment options that use it (empty: all).
    pub configurations: Vec<String>,
}

/// A property the deployer may fill in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PropertySpec {
    /// `class.key` (`.instance` appended when the section has one).
    pub key: String,
    pub type_name: String,
    pub qualifiers: Option<String>,
    pub default: Option<String>,
    pub label: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub password: bool,
    pub user_configurable: bool,
    /// The deployment options that show it (empty: all).
    pub configurations: Vec<String>,
}

/// Everything a deployer needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Spec {
    pub name: Option<String>,
    /// The virtual system's annotation (vSphere shows it as the VM's notes).
    pub annotation: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
    pub deployment_options: Vec<DeploymentSpec>,
    pub networks: Vec<NetworkSpec>,
    pub properties: Vec<PropertySpec>,
}

fn list(configuration: Option<&str>) -> Vec<String> {
    configuration
        .map(|c| c.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

impl Spec {
    /// The spec of a descriptor.
    pub fn from_envelope(envelope: &Envelope) -> Spec {
        let deployment_options = envelope
            .deployment_option_section
            .iter()
            .flat_map(|s| s.configurations.iter())
            .map(|c| DeploymentSpec {
                id: c.id.clone(),
                label: c.label.clone(),
                description: c.description.clone(),
                default: c.default == Some(true),
            })
            .collect();
        let networks = envelope
            .network_section
            .iter()
            .flat_map(|s| s.networks.iter())
            .map(|n| NetworkSpec {
                name: n.name.clone(),
                description: n.description.clone().unwrap_or_default(),
                configurations: list(n.configuration.as_deref()),
            })
            .collect();
        let mut properties = Vec::new();
        let (mut name, mut product, mut version, mut annotation) = (None, None, None, None);
        if let Some(vs) = &envelope.virtual_system {
            name = vs.name.clone();
            annotation = vs.annotation_section.as_ref().map(|a| a.annotation.clone());
            for section in &vs.product_sections {
                if product.is_none() {
                    product = section.product.clone();
                    version = section.version.clone();
                }
                for (category, p) in section.properties_with_category() {
                    let mut key = section.full_key(p);
                    if let Some(instance) = section.instance.as_deref().filter(|i| !i.is_empty()) {
                        key = format!("{key}.{instance}");
                    }
                    properties.push(PropertySpec {
                        key,
                        type_name: p.type_name.clone(),
                        qualifiers: p.qualifiers.clone(),
                        default: p.value.clone(),
                        label: p.label.clone(),
                        description: p.description.clone(),
                        category: category.map(str::to_string),
                        password: p.password == Some(true),
                        user_configurable: p.user_configurable == Some(true),
                        configurations: list(p.configuration.as_deref()),
                    });
                }
            }
        }
        Spec {
            name,
            annotation,
            product,
            version,
            deployment_options,
            networks,
            properties,
        }
    }

    /// The default deployment option: the one marked default, else the first.
    pub fn default_deployment(&self) -> Option<&str> {
        self.deployment_options
            .iter()
            .find(|d| d.default)
            .or(self.deployment_options.first())
            .map(|d| d.id.as_str())
    }

    /// The options JSON of `govc import.spec` (field names and order as govc writes them):
    /// the default (or given) deployment option, govc's default provisioning and IP policy,
    /// one `PropertyMapping` entry per user-configurable property with its default (booleans
    /// as `True`/`False`, as govc writes them), and one `NetworkMapping` per network with
    /// the target network left empty for the deployer to fill in.
    pub fn govc_options(&self, deployment: Option<&str>) -> Result<GovcOptions, SpecError> {
        let deployment = match deployment {
            Some(given) => {
                if !self.deployment_options.iter().any(|d| d.id == given) {
                    return Err(SpecError::UnknownDeployment {
                        given: given.to_string(),
                        known: self
                            .deployment_options
                            .iter()
                            .map(|d| d.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
                Some(given.to_string())
            }
            None => self.default_deployment().map(str::to_string),
        };
        let property_mapping = self
            .properties
            .iter()
            .filter(|p| p.user_configurable)
            .map(|p| {
                let mut value = p.default.clone().unwrap_or_default();
                if p.type_name == "boolean" {
                    value = match value.to_ascii_lowercase().as_str() {
                        "true" => "True".into(),
                        "false" => "False".into(),
                        _ => value,
                    };
                }
                KeyValue {
                    key: p.key.clone(),
                    value,
                }
            })
            .collect();
        let network_mapping = self
            .networks
            .iter()
            .map(|n| NetworkMapping {
                name: n.name.clone(),
                network: String::new(),
            })
            .collect();
        Ok(GovcOptions {
            deployment,
            disk_provisioning: "flat".into(),
            ip_allocation_policy: "dhcpPolicy".into(),
            ip_protocol: "IPv4".into(),
            property_mapping,
            network_mapping,
            annotation: self.annotation.clone().filter(|a| !a.is_empty()),
            mark_as_template: false,
            power_on: false,
            inject_ovf_env: false,
            wait_for_ip: false,
            name: None,
        })
    }

    /// A plain-text table: deployment options, networks, then properties by category.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        if let Some(name) = &self.name {
            out.push_str(name);
            if let Some(v) = &self.version {
                out.push_str(&format!(" {v}"));
            }
            out.push_str("\n\n");
        }
        out.push_str("Deployment options:\n");
        let rows: Vec<Vec<String>> = self
            .deployment_options
            .iter()
            .map(|d| {
                vec![
                    d.id.clone(),
                    if d.default { "yes" } else { "no" }.into(),
                    d.label.clone(),
                ]
            })
            .collect();
        out.push_str(&table(&["ID", "DEFAULT", "LABEL"], &rows));
        out.push_str("\nNetworks:\n");
        let rows: Vec<Vec<String>> = self
            .networks
            .iter()
            .map(|n| {
                vec![
                    n.name.clone(),
                    shown_in(&n.configurations),
                    one_line(&n.description),
                ]
            })
            .collect();
        out.push_str(&table(&["NAME", "CONFIGURATIONS", "DESCRIPTION"], &rows));
        out.push_str("\nProperties:\n");
        let rows: Vec<Vec<String>> = self
            .properties
            .iter()
            .map(|p| {
                let mut ty = p.type_name.clone();
                if let Some(q) = &p.qualifiers {
                    ty.push_str(&format!(" {q}"));
                }
                if p.password {
                    ty.push_str(" password");
                }
                if !p.user_configurable {
                    ty.push_str(" (fixed)");
                }
                let default = match (&p.default, p.password) {
                    (Some(_), true) => "(hidden)".to_string(),
                    (Some(d), false) => format!("{d:?}"),
                    (None, _) => "-".to_string(),
                };
                vec![
                    p.key.clone(),
                    ty,
                    default,
                    p.label.clone().unwrap_or_default(),
                    shown_in(&p.configurations),
                    p.category.clone().unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "KEY",
                "TYPE",
                "DEFAULT",
                "LABEL",
                "CONFIGURATIONS",
                "CATEGORY",
            ],
            &rows,
        ));
        out
    }
}

fn shown_in(configurations: &[String]) -> String {
    if configurations.is_empty() {
        "all".into()
    } else {
        configurations.join(" ")
    }
}

fn one_line(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 70 {
        format!("{}…", flat.chars().take(69).collect::<String>())
    } else {
        flat
    }
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from("  ");
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `{"Key": ..., "Value": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// `{"Name": ..., "Network": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkMapping {
    pub name: String,
    pub network: String,
}

/// The options document of `govc import.spec` / `govc import.ova -options`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GovcOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    pub disk_provisioning: String,
    #[serde(rename = "IPAllocationPolicy")]
    pub ip_allocation_policy: String,
    #[serde(rename = "IPProtocol")]
    pub ip_protocol: String,
    pub property_mapping: Vec<KeyValue>,
    pub network_mapping: Vec<NetworkMapping>,
    /// As govc: present only when the descriptor has a non-empty annotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
    pub mark_as_template: bool,
    pub power_on: bool,
    pub inject_ovf_env: bool,
    #[serde(rename = "WaitForIP")]
    pub wait_for_ip: bool,
    pub name: Option<String>,
}

/// Reads the descriptor of an OVA (its first `.ovf` member) or an `.ovf` file; returns the
/// member or file name and the text.
pub fn read_descriptor(path: &Path) -> Result<(String, String), SpecError> {
    let err = |source| SpecError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (name, bytes) = match ova::open_package(path).map_err(err)? {
        PackageFile::Descriptor { len, name, .. } => {
            if len > DESCRIPTOR_LIMIT {
                return Err(SpecError::TooLarge {
                    path: path.to_path_buf(),
                    name,
                    size: len,
                });
            }
            (name, std::fs::read(path).map_err(err)?)
        }
        PackageFile::Archive { mut file, len } => {
            let members = ova::scan(&mut file, len).map_err(|source| SpecError::NotAPackage {
                path: path.to_path_buf(),
                source,
            })?;
            let member = members
                .iter()
                .find(|m| m.kind == ova::MemberKind::Regular && m.name.ends_with(".ovf"))
                .ok_or_else(|| SpecError::NoDescriptor {
                    path: path.to_path_buf(),
                })?;
            if member.size > DESCRIPTOR_LIMIT {
                return Err(SpecError::TooLarge {
                    path: path.to_path_buf(),
                    name: member.name.clone(),
                    size: member.size,
                });
            }
            let mut buf = vec![0u8; member.size as usize];
            file.read_exact_at(&mut buf, member.data_offset)
                .map_err(err)?;
            (member.name.clone(), buf)
        }
    };
    let text = String::from_utf8(bytes).map_err(|e| SpecError::Parse {
        path: path.to_path_buf(),
        message: format!("not UTF-8 ({e})"),
    })?;
    Ok((name, text))
}

/// The spec of the package at `path`.
pub fn spec_of(path: &Path) -> Result<Spec, SpecError> {
    let (_, text) = read_descriptor(path)?;
    let envelope = ovf::read(&text).map_err(|e| SpecError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(Spec::from_envelope(&envelope))
}
