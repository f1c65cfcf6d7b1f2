//! The Data Plane API 2.x configuration file (`config_version: 2` YAML) that haproxy-firstboot
//! renders: the keys the appliance uses, read the way the real `dataplaneapi -f FILE` reads them,
//! so one file serves both servers. Unknown keys are ignored, as the real server does.

use std::net::IpAddr;
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
        Ok(Settings {
            listen: (host, port).into(),
            tls_certificate: required(api.tls.tls_certificate, "dataplaneapi.tls.tls_certificate")?,
            tls_key: required(api.tls.tls_key, "dataplaneapi.tls.tls_key")?,
            userlist: api
                .userlist
                .userlist
                .unwrap_or_else(|| "controller".to_string()),
            transaction_dir: api
                .transaction
                .transaction_dir
                .unwrap_or_else(|| PathBuf::from("/var/lib/dataplaneapi/transactions")),
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
        })
    }
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
}
