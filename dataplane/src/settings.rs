//! The Data Plane API 2.x configuration file (`config_version: 2` YAML) that haproxy-firstboot
//! renders: the keys the appliance uses, read the way the real `dataplaneapi -f FILE` reads them,
//! so one file serves both servers. Unknown keys are ignored, as the real server does, except in
//! the `ha:` section, which only this server reads (docs/ha-pair.md): a typo there is an error.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: not a Data Plane API configuration: {cause}")]
    Yaml {
        path: PathBuf,
        cause: serde_yaml_ng::Error,
    },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

/// What the server needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: std::net::SocketAddr,
    pub tls_certificate: PathBuf,
    pub tls_key: PathBuf,
    /// The userlist in haproxy.cfg whose users may use the API.
    pub userlist: String,
    pub transaction_dir: PathBuf,
    pub max_open_transactions: usize,
    pub config_file: PathBuf,
    pub haproxy_bin: PathBuf,
    pub reload: ReloadSettings,
    /// The HA pair (`ha:`), when this node is one of two.
    pub ha: Option<HaSettings>,
}

/// The `ha:` section: this node and its peer in an HA pair (docs/ha-pair.md).
#[derive(Debug, Clone)]
pub struct HaSettings {
    /// This node's management IP.
    pub node_address: Ipv4Addr,
    /// The peer's management IP; its Data Plane API listens on `peer_port`.
    pub peer_address: Ipv4Addr,
    pub peer_port: u16,
    /// The management virtual IP: the node holding it is the MASTER.
    pub management_vip: Ipv4Addr,
    /// The shared secret the pair replicates with (read when the server starts, never logged).
    pub secret_file: PathBuf,
    /// The pair's CA: the peer's certificate is verified against it.
    pub ca_file: PathBuf,
    /// The VRRP virtual router id (1–255): the same on both nodes.
    pub router_id: u8,
    /// The load-balancer ranges: the same on both nodes.
    pub service_ranges: Vec<ipnetwork::Ipv4Network>,
    /// Where the VIPs in use are announced (gratuitous ARP) on takeover.
    pub vip_interface: String,
    /// Where a split-brain loser keeps the configuration it loses.
    pub split_brain_dir: PathBuf,
    /// Where the pair's state is kept (the digest both nodes last agreed on): the transaction
    /// directory's parent.
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ReloadSettings {
    /// Changes within this long share one reload.
    pub delay: Duration,
    /// How haproxy is reloaded.
    pub method: ReloadMethod,
    /// haproxy's master CLI (`haproxy -S`), when known: a reload is reported succeeded only once
    /// the master has started new workers on the new configuration, and failed when it could not.
    pub master_socket: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub enum ReloadMethod {
    /// A shell command (`systemctl reload haproxy` in the appliance).
    Command(String),
    /// `reload` on haproxy's master CLI socket.
    MasterSocket(PathBuf),
}

#[derive(Deserialize)]
struct File {
    config_version: Option<u32>,
    #[serde(default)]
    dataplaneapi: Api,
    #[serde(default)]
    haproxy: Haproxy,
    ha: Option<Ha>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ha {
    node_address: Option<String>,
    peer_address: Option<String>,
    peer_port: Option<u16>,
    management_vip: Option<String>,
    secret_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    router_id: Option<u64>,
    service_ranges: Option<Vec<String>>,
    vip_interface: Option<String>,
    split_brain_dir: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
struct Api {
    scheme: Option<Vec<String>>,
    #[serde(default)]
    tls: Tls,
    #[serde(default)]
    userlist: Userlist,
    #[serde(default)]
    transaction: Transaction,
}

#[derive(Deserialize, Default)]
struct Tls {
    tls_host: Option<String>,
    tls_port: Option<u16>,
    tls_certificate: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
struct Userlist {
    userlist: Option<String>,
}

#[derive(Deserialize, Default)]
struct Transaction {
    transaction_dir: Option<PathBuf>,
    max_open_transactions: Option<usize>,
}

#[derive(Deserialize, Default)]
struct Haproxy {
    config_file: Option<PathBuf>,
    haproxy_bin: Option<PathBuf>,
    master_runtime: Option<PathBuf>,
    #[serde(default)]
    reload: Reload,
}

#[derive(Deserialize, Default)]
struct Reload {
    reload_delay: Option<u64>,
    reload_cmd: Option<String>,
}

impl Settings {
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|cause| SettingsError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::parse(&text).map_err(|e| match e {
            Problem::Yaml(cause) => SettingsError::Yaml {
                path: path.to_path_buf(),
                cause,
            },
            Problem::Invalid(problem) => SettingsError::Invalid {
                path: path.to_path_buf(),
                problem,
            },
        })
    }

    fn parse(text: &str) -> Result<Settings, Problem> {
        let file: File = serde_yaml_ng::from_str(text).map_err(Problem::Yaml)?;
        let invalid = |s: &str| Problem::Invalid(s.to_string());
        if file.config_version != Some(2) {
            return Err(invalid(
                "expected `config_version: 2` (the Data Plane API 2.x format)",
            ));
        }
        let api = file.dataplaneapi;
        if let Some(schemes) = &api.scheme
            && schemes.iter().any(|s| s != "https")
        {
            return Err(invalid(
                "dataplaneapi.scheme: this server serves only https (TLS); remove the other schemes",
            ));
        }
        let host: IpAddr = api
            .tls
            .tls_host
            .as_deref()
            .ok_or_else(|| {
                invalid("dataplaneapi.tls.tls_host is required (the address to listen on)")
            })?
            .parse()
            .map_err(|_| invalid("dataplaneapi.tls.tls_host: expected an IP address"))?;
        let port = api
            .tls
            .tls_port
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid("dataplaneapi.tls.tls_port is required (1-65535)"))?;
        let required = |v: Option<PathBuf>, key: &str| {
            v.ok_or_else(|| Problem::Invalid(format!("{key} is required")))
        };
        let haproxy = file.haproxy;
        let master_socket = haproxy.master_runtime.clone();
        let method = match (haproxy.reload.reload_cmd, haproxy.master_runtime) {
            (Some(cmd), _) if !cmd.trim().is_empty() => ReloadMethod::Command(cmd),
            (_, Some(sock)) => ReloadMethod::MasterSocket(sock),
            _ => {
                return Err(invalid(
                    "haproxy.reload.reload_cmd or haproxy.master_runtime is required (how to reload haproxy)",
                ));
            }
        };
        let transaction_dir = api
            .transaction
            .transaction_dir
            .unwrap_or_else(|| PathBuf::from("/var/lib/dataplaneapi/transactions"));
        let ha = file
            .ha
            .map(|ha| ha.validate(port, &transaction_dir))
            .transpose()?;
        Ok(Settings {
            listen: (host, port).into(),
            tls_certificate: required(api.tls.tls_certificate, "dataplaneapi.tls.tls_certificate")?,
            tls_key: required(api.tls.tls_key, "dataplaneapi.tls.tls_key")?,
            userlist: api
                .userlist
                .userlist
                .unwrap_or_else(|| "controller".to_string()),
            transaction_dir,
            max_open_transactions: api.transaction.max_open_transactions.unwrap_or(20),
            config_file: haproxy
                .config_file
                .unwrap_or_else(|| PathBuf::from("/etc/haproxy/haproxy.cfg")),
            haproxy_bin: haproxy
                .haproxy_bin
                .unwrap_or_else(|| PathBuf::from("haproxy")),
            reload: ReloadSettings {
                delay: Duration::from_secs(haproxy.reload.reload_delay.unwrap_or(5)),
                method,
                master_socket,
            },
            ha,
        })
    }
}

impl Ha {
    /// The validated section; `port` is this server's (the peer's when `peer_port` is absent).
    fn validate(self, port: u16, transaction_dir: &Path) -> Result<HaSettings, Problem> {
        let ipv4 = |v: Option<String>, key: &str| -> Result<Ipv4Addr, Problem> {
            let v = v.ok_or_else(|| Problem::Invalid(format!("ha.{key} is required")))?;
            v.trim().parse().map_err(|_| {
                Problem::Invalid(format!("ha.{key}: expected an IPv4 address, got {v:?}"))
            })
        };
        let required = |v: Option<PathBuf>, key: &str| {
            v.filter(|p| !p.as_os_str().is_empty())
                .ok_or_else(|| Problem::Invalid(format!("ha.{key} is required")))
        };
        let node_address = ipv4(self.node_address, "node_address")?;
        let peer_address = ipv4(self.peer_address, "peer_address")?;
        let management_vip = ipv4(self.management_vip, "management_vip")?;
        let invalid = |m: String| Err(Problem::Invalid(m));
        if peer_address == node_address {
            return invalid(format!(
                "ha.peer_address: {peer_address} is this node's own address (ha.node_address)"
            ));
        }
        if management_vip == node_address || management_vip == peer_address {
            return invalid(format!(
                "ha.management_vip: {management_vip} is a node's own address; the VIP must be a third address"
            ));
        }
        let router_id = match self.router_id {
            Some(id @ 1..=255) => u8::try_from(id).unwrap_or(u8::MAX),
            Some(id) => return invalid(format!("ha.router_id: {id} is not in 1-255")),
            None => return invalid("ha.router_id is required (1-255)".into()),
        };
        let vip_interface = match self.vip_interface.map(|s| s.trim().to_string()) {
            Some(i) if !i.is_empty() && !i.contains(['/', ' ']) && i.len() < 16 => i,
            Some(i) => return invalid(format!("ha.vip_interface: {i:?} is not an interface name")),
            None => return invalid("ha.vip_interface is required".into()),
        };
        let state_dir = transaction_dir
            .parent()
            .unwrap_or(Path::new("/var/lib/dataplaneapi"))
            .to_path_buf();
        let split_brain_dir = self
            .split_brain_dir
            .unwrap_or_else(|| state_dir.join("split-brain"));
        Ok(HaSettings {
            node_address,
            peer_address,
            peer_port: self.peer_port.unwrap_or(port),
            management_vip,
            secret_file: required(self.secret_file, "secret_file")?,
            ca_file: required(self.ca_file, "ca_file")?,
            router_id,
            service_ranges: ranges(self.service_ranges)?,
            vip_interface,
            split_brain_dir,
            state_dir,
        })
    }
}

/// `service_ranges`: IPv4 CIDRs (a plain address is a /32), each once, sorted.
fn ranges(given: Option<Vec<String>>) -> Result<Vec<ipnetwork::Ipv4Network>, Problem> {
    let given = given.ok_or_else(|| {
        Problem::Invalid("ha.service_ranges is required (the load-balancer ranges)".into())
    })?;
    let mut out = Vec::with_capacity(given.len());
    for r in given {
        let net: ipnetwork::Ipv4Network = r.trim().parse().map_err(|_| {
            Problem::Invalid(format!(
                "ha.service_ranges: expected IPv4 CIDRs such as 192.168.100.0/24, got {r:?}"
            ))
        })?;
        if net.network() != net.ip() {
            return Err(Problem::Invalid(format!(
                "ha.service_ranges: {r} has host bits set (did you mean {}/{}?)",
                net.network(),
                net.prefix()
            )));
        }
        if !out.contains(&net) {
            out.push(net);
        }
    }
    out.sort();
    Ok(out)
}

enum Problem {
    Yaml(serde_yaml_ng::Error),
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPLIANCE: &str = "config_version: 2\nname: haproxy-appliance\ndataplaneapi:\n  scheme:\n  - https\n  tls:\n    tls_host: 192.168.0.2\n    tls_port: 5556\n    tls_certificate: /etc/haproxy/server.crt\n    tls_key: /etc/haproxy/server.key\n  userlist:\n    userlist: controller\n  transaction:\n    transaction_dir: /var/lib/dataplaneapi/transactions\nhaproxy:\n  config_file: /etc/haproxy/haproxy.cfg\n  haproxy_bin: /usr/sbin/haproxy\n  reload:\n    reload_delay: 5\n    reload_cmd: systemctl reload haproxy\n    restart_cmd: systemctl restart haproxy\nlog:\n  log_to: stdout\n  log_level: info\n";

    #[test]
    fn reads_the_file_firstboot_renders() {
        let s = Settings::parse(APPLIANCE).ok().expect("valid");
        assert_eq!(s.listen.to_string(), "192.168.0.2:5556");
        assert_eq!(s.userlist, "controller");
        assert_eq!(s.reload.delay, Duration::from_secs(5));
        assert!(
            matches!(s.reload.method, ReloadMethod::Command(ref c) if c == "systemctl reload haproxy")
        );
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        let http = APPLIANCE.replace("  - https", "  - http");
        let Err(Problem::Invalid(m)) = Settings::parse(&http) else {
            panic!("http accepted")
        };
        assert!(m.contains("only https"), "{m}");
        let Err(Problem::Invalid(m)) =
            Settings::parse(&APPLIANCE.replace("config_version: 2", "config_version: 1"))
        else {
            panic!("version 1 accepted")
        };
        assert!(m.contains("config_version: 2"), "{m}");
        assert!(matches!(
            Settings::parse("dataplaneapi: [\n"),
            Err(Problem::Yaml(_))
        ));
    }

    /// The `ha:` section exactly as docs/ha-pair.md shows it.
    const HA: &str = "ha:\n  node_address: 192.168.0.2      # this node's management IP\n  peer_address: 192.168.0.3\n  peer_port: 5556\n  management_vip: 192.168.0.10\n  secret_file: /etc/haproxy/ha-peer.secret\n  ca_file: /etc/haproxy/ca.crt\n  router_id: 51\n  service_ranges:\n  - 192.168.100.0/24\n  vip_interface: workload\n";

    fn ha_problem(from: &str, to: &str) -> String {
        let text = format!("{APPLIANCE}{}", HA.replace(from, to));
        match Settings::parse(&text) {
            Err(Problem::Invalid(m)) => m,
            Err(Problem::Yaml(e)) => e.to_string(),
            Ok(_) => panic!("accepted with {to:?} for {from:?}"),
        }
    }

    #[test]
    fn reads_the_ha_section() {
        assert!(Settings::parse(APPLIANCE).ok().expect("valid").ha.is_none());
        let s = Settings::parse(&format!("{APPLIANCE}{HA}"))
            .ok()
            .expect("valid");
        let ha = s.ha.expect("ha");
        assert_eq!(ha.node_address.to_string(), "192.168.0.2");
        assert_eq!(ha.peer_address.to_string(), "192.168.0.3");
        assert_eq!(ha.peer_port, 5556);
        assert_eq!(ha.management_vip.to_string(), "192.168.0.10");
        assert_eq!(ha.secret_file, PathBuf::from("/etc/haproxy/ha-peer.secret"));
        assert_eq!(ha.ca_file, PathBuf::from("/etc/haproxy/ca.crt"));
        assert_eq!(ha.router_id, 51);
        assert_eq!(ha.service_ranges.len(), 1);
        assert_eq!(ha.service_ranges[0].to_string(), "192.168.100.0/24");
        assert_eq!(ha.vip_interface, "workload");
        assert_eq!(
            ha.split_brain_dir,
            PathBuf::from("/var/lib/dataplaneapi/split-brain")
        );
    }

    #[test]
    fn refuses_a_wrong_ha_section_naming_the_key() {
        let cases = [
            (
                "node_address: 192.168.0.2",
                "node_address: 192.168.0",
                "ha.node_address: expected an IPv4 address",
            ),
            (
                "peer_address: 192.168.0.3",
                "peer_address: 192.168.0.2",
                "ha.peer_address: 192.168.0.2 is this node's own",
            ),
            (
                "management_vip: 192.168.0.10",
                "management_vip: 192.168.0.3",
                "ha.management_vip",
            ),
            (
                "  management_vip: 192.168.0.10\n",
                "",
                "ha.management_vip is required",
            ),
            (
                "router_id: 51",
                "router_id: 0",
                "ha.router_id: 0 is not in 1-255",
            ),
            (
                "router_id: 51",
                "router_id: 256",
                "ha.router_id: 256 is not in 1-255",
            ),
            ("  router_id: 51\n", "", "ha.router_id is required"),
            (
                "- 192.168.100.0/24",
                "- 192.168.100.0/33",
                "ha.service_ranges: expected IPv4 CIDRs",
            ),
            (
                "- 192.168.100.0/24",
                "- 192.168.100.1/24",
                "did you mean 192.168.100.0/24",
            ),
            (
                "vip_interface: workload",
                "vip_interface: ''",
                "ha.vip_interface",
            ),
            (
                "  secret_file: /etc/haproxy/ha-peer.secret\n",
                "",
                "ha.secret_file is required",
            ),
            (
                "  ca_file: /etc/haproxy/ca.crt\n",
                "",
                "ha.ca_file is required",
            ),
            (
                "router_id: 51",
                "router_id: 51\n  routerid: 5",
                "unknown field `routerid`",
            ),
        ];
        for (from, to, expected) in cases {
            let m = ha_problem(from, to);
            assert!(m.contains(expected), "{to:?}: {m}");
        }
    }

    #[test]
    fn an_ha_error_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dataplaneapi.yaml");
        std::fs::write(
            &path,
            format!(
                "{APPLIANCE}{}",
                HA.replace("router_id: 51", "router_id: 300")
            ),
        )
        .expect("write");
        let e = Settings::load(&path).expect_err("invalid");
        assert_eq!(
            e.to_string(),
            format!("{}: ha.router_id: 300 is not in 1-255", path.display())
        );
    }
}
