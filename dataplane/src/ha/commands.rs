//! The subcommands keepalived runs: `check` (its `vrrp_script`, every second: does this node's
//! Data Plane API answer?) and `announce` (its `notify_master`: gratuitous ARP for the VIPs in
//! use, so that clients and routers move to the new MASTER at once). The MASTER's watch
//! (`replicate::watch`) runs the same announcement when its peer returns.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::cfg::Document;
use crate::settings::{HaSettings, Settings};

/// Debian's iputils-arping.
pub const ARPING: &str = "/usr/bin/arping";
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot read the TLS certificate {path}: {cause}")]
    Certificate { path: String, cause: String },
    #[error("no TLS answer from {addr} within {} ms", CHECK_TIMEOUT.as_millis())]
    Timeout { addr: SocketAddr },
    #[error("{addr}: {cause}")]
    Connect {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("{0} has no `ha:` section: this node is not one of an HA pair")]
    NotPaired(String),
    #[error("cannot read {path}: {cause}")]
    Config { path: String, cause: std::io::Error },
    #[error("{failed} of {total} announcements failed")]
    Announce { failed: usize, total: usize },
}

/// Where this node's API is reached from this node: its listen address, loopback for a
/// wildcard one.
fn local_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Succeeds iff this node's API completes a TLS handshake within a second, presenting this
/// node's own certificate (so it is our server that answers, not something else on the port).
pub async fn check(settings: &Settings) -> Result<(), CommandError> {
    let path = settings.tls_certificate.display().to_string();
    let expected = CertificateDer::from_pem_file(&settings.tls_certificate)
        .map_err(|e| CommandError::Certificate {
            path: path.clone(),
            cause: e.to_string(),
        })?
        .into_owned();
    let provider = crate::server::crypto_provider();
    let verifier = Arc::new(OwnCertificate {
        expected,
        algorithms: provider.signature_verification_algorithms,
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CommandError::Certificate {
            path,
            cause: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let addr = local_address(settings.listen);
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        connector
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await
            .map(drop)
    };
    match tokio::time::timeout(CHECK_TIMEOUT, attempt).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(cause)) => Err(CommandError::Connect { addr, cause }),
        Err(_) => Err(CommandError::Timeout { addr }),
    }
}

/// Accepts exactly one certificate (this node's own), whatever name it was reached by.
#[derive(Debug)]
struct OwnCertificate {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for OwnCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not this node's certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The VIPs in use: addresses frontends bind that lie in the pair's service ranges.
pub fn vips_in_use(doc: &Document, ha: &HaSettings) -> Vec<Ipv4Addr> {
    doc.frontend_bind_addresses()
        .into_iter()
        .filter_map(|ip| match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .filter(|ip| ha.service_ranges.iter().any(|r| r.contains(*ip)))
        .collect()
}

/// What became of one VIP's announcement: `Ok`, or why arping failed.
pub type Announced = (Ipv4Addr, Result<(), String>);

/// Sends gratuitous ARP (`arping -U -c 2 -I IFACE ADDR`) for every VIP in `vips`, all at once,
/// and waits for them (arping's two probes a second apart: about two seconds).
pub fn send_gratuitous_arp(vips: &[Ipv4Addr], iface: &str, arping: &Path) -> Vec<Announced> {
    let running: Vec<_> = vips
        .iter()
        .map(|vip| {
            let child = Command::new(arping)
                .args(["-U", "-c", "2", "-I", iface])
                .arg(vip.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn();
            (*vip, child)
        })
        .collect();
    running
        .into_iter()
        .map(|(vip, child)| {
            let result = match child.and_then(std::process::Child::wait_with_output) {
                Ok(out) if out.status.success() => Ok(()),
                Ok(out) => Err(format!(
                    "{} {}: {}",
                    arping.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(e) => Err(format!("cannot run {}: {e}", arping.display())),
            };
            (vip, result)
        })
        .collect()
}

/// Sends gratuitous ARP on `ha.vip_interface` for every VIP in use in `doc` (none: an empty
/// list): the code both keepalived's `notify_master` (`announce`) and the MASTER's watch, when
/// its peer returns, run. Blocking (about two seconds).
pub fn announce_vips_in_use(doc: &Document, ha: &HaSettings, arping: &Path) -> Vec<Announced> {
    send_gratuitous_arp(&vips_in_use(doc, ha), &ha.vip_interface, arping)
}

/// `announce`: gratuitous ARP for every VIP in use in the configuration file (keepalived's
/// `notify_master`); logs each one.
pub fn announce(settings: &Settings, arping: &Path) -> Result<(), CommandError> {
    let ha = settings
        .ha
        .as_ref()
        .ok_or_else(|| CommandError::NotPaired("the configuration".into()))?;
    let text =
        std::fs::read_to_string(&settings.config_file).map_err(|cause| CommandError::Config {
            path: settings.config_file.display().to_string(),
            cause,
        })?;
    let results = announce_vips_in_use(&Document::parse(&text), ha, arping);
    let iface = &ha.vip_interface;
    if results.is_empty() {
        log(
            INFO,
            &format!("no VIP in use in {}", settings.config_file.display()),
        );
        return Ok(());
    }
    let mut failed = 0;
    for (vip, result) in &results {
        match result {
            Ok(()) => log(INFO, &format!("{vip} on {iface} (gratuitous ARP)")),
            Err(why) => {
                failed += 1;
                log(ERR, &format!("{vip} on {iface}: {why}"));
            }
        }
    }
    if failed > 0 {
        return Err(CommandError::Announce {
            failed,
            total: results.len(),
        });
    }
    Ok(())
}

const ERR: u8 = 3;
const INFO: u8 = 6;
/// systemd-journald's native socket.
const JOURNAL: &str = "/run/systemd/journal/socket";

/// One line on stdout (stderr for an error) and in the journal: keepalived runs its notify
/// scripts with their output thrown away, so what `announce` did would be lost otherwise.
fn log(priority: u8, line: &str) {
    let line = line.replace('\n', " ");
    if priority <= ERR {
        eprintln!("haproxy-dataplaneapi announce: {line}");
    } else {
        println!("haproxy-dataplaneapi announce: {line}");
    }
    if Path::new(JOURNAL).exists() {
        let entry = format!(
            "PRIORITY={priority}\nSYSLOG_IDENTIFIER=dataplaneapi-announce\nMESSAGE={line}\n"
        );
        let _ = std::os::unix::net::UnixDatagram::unbound()
            .and_then(|s| s.send_to(entry.as_bytes(), JOURNAL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_vip_is_announced_with_its_own_outcome() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("arping");
        let calls = dir.path().join("calls");
        // Fails for 10.78.0.6 only; records every command line.
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\n[ \"$6\" != 10.78.0.6 ] || {{ echo 'no such device' >&2; exit 2; }}\n",
            calls.display()
        );
        std::fs::write(&fake, script).expect("script");
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let vips = [Ipv4Addr::new(10, 78, 0, 5), Ipv4Addr::new(10, 78, 0, 6)];
        let results = send_gratuitous_arp(&vips, "ha0", &fake);
        assert_eq!(results.len(), 2);
        assert_eq!(results[0], (vips[0], Ok(())));
        let (vip, failed) = &results[1];
        assert_eq!(*vip, vips[1]);
        assert!(
            failed
                .as_ref()
                .is_err_and(|e| e.contains("exit status: 2") && e.contains("no such device")),
            "{failed:?}"
        );
        let mut lines: Vec<String> = std::fs::read_to_string(&calls)
            .expect("calls")
            .lines()
            .map(String::from)
            .collect();
        lines.sort();
        assert_eq!(
            lines,
            ["-U -c 2 -I ha0 10.78.0.5", "-U -c 2 -I ha0 10.78.0.6"]
        );
        let missing = send_gratuitous_arp(&vips[..1], "ha0", &dir.path().join("absent"));
        assert!(
            missing[0]
                .1
                .as_ref()
                .is_err_and(|e| e.starts_with("cannot run ")),
            "{missing:?}"
        );
        assert!(send_gratuitous_arp(&[], "ha0", &fake).is_empty());
    }
}
