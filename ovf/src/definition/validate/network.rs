//! `[[deployment_options]]`, `[[networks]]` and `[[nics]]`: unique names, at most one default
//! option, NICs on declared networks with known adapters and unique PCI slots, and no NIC in a
//! configuration its network is absent from.

use toml::Spanned;

use super::Ctx;
use crate::definition::raw::{RawDeploymentOption, RawNetwork, RawNic};
use crate::definition::{DefinitionError, DeploymentOption, NetworkDef, Nic, NicAdapter};

impl Ctx<'_> {
    pub(super) fn deployment_options(
        &self,
        raw: Vec<RawDeploymentOption>,
    ) -> Result<Vec<DeploymentOption>, DefinitionError> {
        let mut deployment_options: Vec<DeploymentOption> = Vec::new();
        let mut default_seen: Option<String> = None;
        for o in raw {
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
                if let Some(first) = &default_seen {
                    return Err(self.invalid(
                        d.span(),
                        format!(
                            "deployment option `{id}` is marked default, but `{first}` already \
                             is; mark exactly one"
                        ),
                    ));
                }
                default_seen = Some(id.clone());
            }
            deployment_options.push(DeploymentOption {
                id: o.id.into_inner(),
                label: o.label,
                description: o.description,
                default: is_default,
            });
        }
        Ok(deployment_options)
    }

    pub(super) fn networks(
        &self,
        raw: Vec<RawNetwork>,
        deployment_options: &[DeploymentOption],
    ) -> Result<Vec<NetworkDef>, DefinitionError> {
        let mut networks: Vec<NetworkDef> = Vec::new();
        for n in raw {
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
                deployment_options,
                &format!("network `{name}`"),
            )?;
            networks.push(NetworkDef {
                name: n.name.into_inner(),
                description: n.description,
                configurations,
            });
        }
        Ok(networks)
    }

    pub(super) fn nics(
        &self,
        raw: Vec<RawNic>,
        networks: &[NetworkDef],
        deployment_options: &[DeploymentOption],
    ) -> Result<Vec<Nic>, DefinitionError> {
        let mut nics: Vec<Nic> = Vec::new();
        for n in raw {
            let nic = self.nic(n, &nics, networks, deployment_options)?;
            nics.push(nic);
        }
        Ok(nics)
    }

    /// One NIC, checked against the NICs before it.
    fn nic(
        &self,
        n: RawNic,
        earlier: &[Nic],
        networks: &[NetworkDef],
        deployment_options: &[DeploymentOption],
    ) -> Result<Nic, DefinitionError> {
        let name = n.name.get_ref().clone();
        if name.trim().is_empty() {
            return Err(self.invalid(n.name.span(), "a NIC needs a non-empty name"));
        }
        if earlier.iter().any(|x| x.name == name) {
            return Err(self.invalid(n.name.span(), format!("NIC `{name}` is declared twice")));
        }
        let network = self.nic_network(&name, &n.network, networks)?;
        let adapter = n
            .adapter
            .get_ref()
            .parse::<NicAdapter>()
            .map_err(|e| self.invalid(n.adapter.span(), format!("NIC `{name}` has {e}")))?;
        if let Some(slot) = &n.pci_slot
            && let Some(other) = earlier.iter().find(|x| x.pci_slot == Some(*slot.get_ref()))
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
            deployment_options,
            &format!("NIC `{name}`"),
        )?;
        let span = n.configuration.as_ref().map_or(n.name.span(), |c| c.span());
        self.nic_within_network(&name, &configurations, network, deployment_options, span)?;
        Ok(Nic {
            name,
            network: n.network.into_inner(),
            adapter,
            pci_slot: n.pci_slot.map(Spanned::into_inner),
            configurations,
        })
    }

    /// The declared network a NIC connects to.
    fn nic_network<'n>(
        &self,
        nic: &str,
        network: &Spanned<String>,
        networks: &'n [NetworkDef],
    ) -> Result<&'n NetworkDef, DefinitionError> {
        networks
            .iter()
            .find(|x| &x.name == network.get_ref())
            .ok_or_else(|| {
                let list: Vec<&str> = networks.iter().map(|x| x.name.as_str()).collect();
                self.invalid(
                    network.span(),
                    format!(
                        "NIC `{nic}` connects to network `{}`, which is not declared (declared: {})",
                        network.get_ref(),
                        if list.is_empty() { "none".to_string() } else { list.join(", ") }
                    ),
                )
            })
    }

    /// A NIC exists only in deployment options its network exists in (`span`: the NIC's
    /// `configuration`, else its name).
    fn nic_within_network(
        &self,
        nic: &str,
        configurations: &[String],
        network: &NetworkDef,
        deployment_options: &[DeploymentOption],
        span: std::ops::Range<usize>,
    ) -> Result<(), DefinitionError> {
        if network.configurations.is_empty() {
            return Ok(());
        }
        let nic_options: Vec<&str> = if configurations.is_empty() {
            deployment_options.iter().map(|o| o.id.as_str()).collect()
        } else {
            configurations.iter().map(String::as_str).collect()
        };
        let outside: Vec<&str> = nic_options
            .into_iter()
            .filter(|id| !network.configurations.iter().any(|c| c == id))
            .collect();
        if outside.is_empty() {
            return Ok(());
        }
        Err(self.invalid(
            span,
            format!(
                "NIC `{nic}` exists in configuration(s) {} where its network `{}` does not; \
                 give the NIC `configuration = \"{}\"`",
                outside.join(", "),
                network.name,
                network.configurations.join(" ")
            ),
        ))
    }
}
