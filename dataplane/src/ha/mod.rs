//! The HA pair (docs/ha-pair.md): two appliances, one management VIP that keepalived gives to
//! one of them, the MASTER. This node's role is read from its addresses (MASTER exactly while the
//! VIP is on one of its interfaces); the MASTER pushes every commit's replicated sections to the
//! BACKUP (`replicate`), watches the peer every second, pushes again when it is behind and
//! announces its VIPs again when the peer returns after it was unreachable or MASTER too; a
//! node that was MASTER keeps a copy of the configuration it loses to the other's after a
//! split-brain. `commands` are the `check` and `announce` subcommands keepalived runs.

pub mod commands;
pub mod peer;
pub mod replicate;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::cfg::Document;
use crate::settings::HaSettings;
use peer::PeerClient;

/// The user name the two nodes authenticate to each other with (the password is the shared
/// secret); it is not a user of the userlist, and no API user can act as the peer.
pub const PEER_USER: &str = "ha-peer";

#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error("cannot read the HA shared secret {path}: {cause}")]
    SecretRead {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: the HA shared secret is {problem}")]
    SecretInvalid {
        path: PathBuf,
        problem: &'static str,
    },
    #[error("the pair's CA {path}: {problem}")]
    Ca { path: PathBuf, problem: String },
    #[error("cannot list this node's addresses (getifaddrs): {0}")]
    Interfaces(nix::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Master,
    Backup,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Backup => "backup",
        }
    }
}

/// The shared secret: compared in constant time, never printed.
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// What this node last learnt of its peer (MASTER only: the BACKUP does not watch).
#[derive(Debug, Default, Clone)]
pub struct PeerView {
    /// The peer's configuration version, as it last reported or confirmed it.
    pub version: Option<u64>,
    /// Whether the peer has this node's replicated sections and version (None: not known yet).
    pub in_sync: Option<bool>,
    /// Why not, when it is not.
    pub reason: Option<String>,
    /// When the peer last showed it holds the VIP while this node did too, or sent a replica
    /// while this node was MASTER.
    pub split_brain_at: Option<Instant>,
    /// The last look found the peer unreachable, unreadable or MASTER too: when it answers as
    /// BACKUP again, this node announces its VIPs again (`replicate::watch`).
    pub away: bool,
}

/// How long a sign of split-brain counts (the watch renews it every second while it lasts).
const SPLIT_BRAIN_WINDOW: Duration = Duration::from_secs(3);

/// This node's half of the pair.
#[derive(Debug)]
pub struct Pair {
    pub settings: HaSettings,
    secret: Secret,
    client: PeerClient,
    view: Mutex<PeerView>,
    /// One push at a time, so replicas reach the peer in the order of the commits.
    push: tokio::sync::Mutex<()>,
    /// One announcement of the VIPs at a time (the watch's, when the peer returns).
    announcing: tokio::sync::Mutex<()>,
    /// The digest of the replicated sections both nodes last agreed on, and the file that keeps
    /// it across restarts (read once, written when it changes).
    confirmed: Mutex<String>,
    confirmed_file: PathBuf,
    /// The last message `first_time` let through, and when.
    last_logged: Mutex<Option<(String, Instant)>>,
}

/// How long a repeated message stays out of the log.
const REPEAT_QUIET: Duration = Duration::from_secs(60);

impl fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerClient({})", self.addr())
    }
}

impl Pair {
    /// Reads the shared secret and the CA.
    pub fn new(settings: HaSettings) -> Result<Pair, HaError> {
        let secret = read_secret(&settings.secret_file)?;
        let config = peer::client_config(&settings.ca_file)?;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{PEER_USER}:{}", secret.0));
        let authorization = HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
            HaError::SecretInvalid {
                path: settings.secret_file.clone(),
                problem: "not valid in an HTTP header",
            }
        })?;
        let addr = SocketAddr::new(IpAddr::V4(settings.peer_address), settings.peer_port);
        let confirmed_file = settings.state_dir.join("ha-confirmed-digest");
        let confirmed = std::fs::read_to_string(&confirmed_file)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| digest_of(""));
        Ok(Pair {
            client: PeerClient::new(addr, config, authorization),
            secret,
            view: Mutex::default(),
            push: tokio::sync::Mutex::new(()),
            announcing: tokio::sync::Mutex::new(()),
            confirmed: Mutex::new(confirmed),
            confirmed_file,
            last_logged: Mutex::default(),
            settings,
        })
    }

    /// MASTER exactly while the management VIP is on one of this node's interfaces. A failure
    /// to list them counts as BACKUP (refusing writes is the safe side); logged once a minute
    /// (the watch asks every second).
    pub fn role(&self) -> Role {
        match holds_address(self.settings.management_vip) {
            Ok(true) => Role::Master,
            Ok(false) => Role::Backup,
            Err(e) => {
                let message = format!("haproxy-dataplaneapi: {e}; acting as BACKUP");
                if self.first_time(&message) {
                    eprintln!("{message}");
                }
                Role::Backup
            }
        }
    }

    /// Whether an `Authorization` header carries the pair's credentials (constant time).
    pub fn authorizes(&self, authorization: Option<&[u8]>) -> bool {
        let Some((user, password)) = authorization.and_then(crate::auth::basic_credentials) else {
            return false;
        };
        let password_ok: bool = Sha256::digest(password.as_bytes())
            .ct_eq(&Sha256::digest(self.secret.0.as_bytes()))
            .into();
        let user_ok: bool = user.as_bytes().ct_eq(PEER_USER.as_bytes()).into();
        password_ok & user_ok
    }

    pub fn client(&self) -> &PeerClient {
        &self.client
    }

    pub fn view(&self) -> PeerView {
        self.lock_view().clone()
    }

    fn lock_view(&self) -> std::sync::MutexGuard<'_, PeerView> {
        // Every update replaces fields whole: a poisoned lock still holds a consistent view.
        self.view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update_view(&self, f: impl FnOnce(&mut PeerView)) {
        f(&mut self.lock_view());
    }

    /// Whether `message` should be logged: not when it was the last one, less than a minute ago.
    pub fn first_time(&self, message: &str) -> bool {
        let mut last = self
            .last_logged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((m, at)) = last.as_ref()
            && m == message
            && at.elapsed() < REPEAT_QUIET
        {
            return false;
        }
        *last = Some((message.to_string(), Instant::now()));
        true
    }

    /// Marks a sign of split-brain now; returns whether it is a new episode (to log once).
    pub fn mark_split_brain(&self) -> bool {
        let mut v = self.lock_view();
        let new = v
            .split_brain_at
            .is_none_or(|t| t.elapsed() >= SPLIT_BRAIN_WINDOW);
        v.split_brain_at = Some(Instant::now());
        new
    }

    /// Whether this node is MASTER and saw signs of the peer being MASTER too just now.
    pub fn split_brain(&self, role: Role) -> bool {
        role == Role::Master
            && self
                .lock_view()
                .split_brain_at
                .is_some_and(|t| t.elapsed() < SPLIT_BRAIN_WINDOW)
    }

    fn lock_confirmed(&self) -> std::sync::MutexGuard<'_, String> {
        // Replaced whole: a poisoned lock still holds a digest.
        self.confirmed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The digest both nodes last agreed on (that of no replicated section when none yet).
    pub fn confirmed_digest(&self) -> String {
        self.lock_confirmed().clone()
    }

    /// Records that both nodes have the replicated sections with this digest.
    pub fn confirm(&self, digest: &str) {
        let mut confirmed = self.lock_confirmed();
        if *confirmed == digest {
            return;
        }
        digest.clone_into(&mut confirmed);
        if let Err(e) = crate::store::write_atomically(&self.confirmed_file, digest.as_bytes()) {
            eprintln!("haproxy-dataplaneapi: warning: {e}");
        }
    }

    /// The message a write on the BACKUP is refused with.
    pub fn not_master_message(&self) -> String {
        let s = &self.settings;
        format!(
            "this node ({}) is the BACKUP of an HA pair and accepts no change: send it to the MASTER, {} (the peer), through the management VIP {}",
            s.node_address, s.peer_address, s.management_vip
        )
    }
}

fn read_secret(path: &Path) -> Result<Secret, HaError> {
    let text = std::fs::read_to_string(path).map_err(|cause| HaError::SecretRead {
        path: path.to_path_buf(),
        cause,
    })?;
    let secret = text.trim_end_matches(['\n', '\r']).to_string();
    let invalid = |problem| HaError::SecretInvalid {
        path: path.to_path_buf(),
        problem,
    };
    if secret.is_empty() {
        return Err(invalid("empty"));
    }
    if secret.contains('\n') {
        return Err(invalid("more than one line"));
    }
    Ok(Secret(secret))
}

/// Whether `address` is on one of this node's interfaces (getifaddrs).
pub fn holds_address(address: Ipv4Addr) -> Result<bool, HaError> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(HaError::Interfaces)?;
    Ok(addrs
        .filter_map(|a| a.address)
        .filter_map(|a| a.as_sockaddr_in().map(|s| s.ip()))
        .any(|ip| ip == address))
}

/// The SHA-256 (hex) of replicated sections' text.
pub fn digest_of(replicated_text: &str) -> String {
    Sha256::digest(replicated_text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digest of a document's replicated sections.
pub fn digest(doc: &Document) -> String {
    digest_of(&doc.replicated_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_held_and_a_test_net_address_is_not() {
        assert!(holds_address(Ipv4Addr::LOCALHOST).expect("getifaddrs"));
        assert!(!holds_address(Ipv4Addr::new(192, 0, 2, 77)).expect("getifaddrs"));
    }

    #[test]
    fn the_secret_is_one_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s");
        std::fs::write(&p, "s3cret-pass\n").expect("write");
        assert_eq!(read_secret(&p).expect("read").0, "s3cret-pass");
        assert_eq!(format!("{:?}", read_secret(&p).expect("read")), "Secret(…)");
        std::fs::write(&p, "\n").expect("write");
        assert!(matches!(
            read_secret(&p),
            Err(HaError::SecretInvalid { .. })
        ));
        std::fs::write(&p, "a\nb\n").expect("write");
        assert!(matches!(
            read_secret(&p),
            Err(HaError::SecretInvalid { .. })
        ));
    }
}
