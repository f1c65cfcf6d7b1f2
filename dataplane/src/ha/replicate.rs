//! Push replication (docs/ha-pair.md): the MASTER sends the peer its replicated sections after
//! every commit and whenever the peer's digest differs; the peer lays them over its own file and
//! commits them through the same pipeline as any change (`haproxy -c`, rename, reload). The
//! MASTER's watch also announces its VIPs again when the peer returns (`announce_again`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::{Pair, Role, commands, digest, digest_of};
use crate::api::{ApiError, App};
use crate::cfg::Document;
use crate::store::{Store, StoreError};

/// How long the MASTER waits for the peer to take a replica (its `haproxy -c` included).
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a status request to the peer may take (the watch asks every second).
const STATUS_TIMEOUT: Duration = Duration::from_millis(900);

/// What one node sends the other: `PUT /ha/replica`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Replica {
    /// The sender's management IP.
    pub node: String,
    pub version: u64,
    /// SHA-256 of `sections`.
    pub digest: String,
    pub router_id: u8,
    pub service_ranges: Vec<String>,
    /// The replicated sections, exactly as in the sender's file.
    pub sections: String,
}

/// `GET /ha/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Status {
    pub role: String,
    pub node: String,
    pub peer: String,
    pub management_vip: String,
    pub version: u64,
    pub digest: String,
    pub peer_in_sync: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_reason: Option<String>,
    pub split_brain: bool,
}

/// Whether the peer has this node's configuration after a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    InSync,
    PeerBehind(String),
}

impl Replication {
    /// The `X-Ha-Replication` header's value (printable ASCII, bounded).
    pub fn header_value(&self) -> String {
        match self {
            Replication::InSync => "in-sync".into(),
            Replication::PeerBehind(reason) => {
                let clean: String = reason
                    .chars()
                    .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
                    .take(300)
                    .collect();
                format!("peer-behind; {clean}")
            }
        }
    }
}

impl Pair {
    pub fn replica_of(&self, doc: &Document) -> Replica {
        let sections = doc.replicated_text();
        Replica {
            node: self.settings.node_address.to_string(),
            version: doc.version,
            digest: digest_of(&sections),
            router_id: self.settings.router_id,
            service_ranges: self.ranges(),
            sections,
        }
    }

    pub fn ranges(&self) -> Vec<String> {
        let r = &self.settings.service_ranges;
        r.iter().map(ToString::to_string).collect()
    }

    /// Sends the peer the current configuration and waits for its answer. The commit stands
    /// either way; a peer that does not confirm is reported behind and logged (after a commit
    /// always, from the watch when the reason changes). After a commit, a peer the watch last
    /// found away (unreachable, unreadable or MASTER too) is not sent anything: a powered-off
    /// peer would make every write wait `PUSH_TIMEOUT`, and the watch, looking every second,
    /// pushes as soon as the peer answers as BACKUP.
    pub async fn push(&self, store: &Store, after_commit: bool) -> Replication {
        let _one = self.push.lock().await;
        if after_commit {
            let view = self.view();
            if view.away {
                let why = view.reason.unwrap_or_else(|| "away".into());
                let reason =
                    format!("not sent: {why}; the watch sends it when the peer answers as BACKUP");
                eprintln!(
                    "haproxy-dataplaneapi: warning: HA peer {} is behind: {reason}",
                    self.settings.peer_address
                );
                return Replication::PeerBehind(reason);
            }
        }
        let outcome = match store.current() {
            Ok(snap) => self.send(&snap.doc).await,
            Err(e) => Replication::PeerBehind(format!("cannot read the configuration: {e}")),
        };
        match &outcome {
            Replication::InSync => self.update_view(|v| {
                v.in_sync = Some(true);
                v.reason = None;
            }),
            Replication::PeerBehind(reason) => {
                if after_commit || self.view().reason.as_ref() != Some(reason) {
                    eprintln!(
                        "haproxy-dataplaneapi: warning: HA peer {} is behind: {reason}",
                        self.settings.peer_address
                    );
                }
                self.update_view(|v| {
                    v.in_sync = Some(false);
                    v.reason = Some(reason.clone());
                });
            }
        }
        outcome
    }

    async fn send(&self, doc: &Document) -> Replication {
        let replica = self.replica_of(doc);
        let body = match serde_json::to_vec(&replica) {
            Ok(b) => b,
            Err(e) => return Replication::PeerBehind(e.to_string()),
        };
        let answer = self
            .client()
            .request(Method::PUT, "/ha/replica", Some(body), PUSH_TIMEOUT)
            .await;
        let (status, body) = match answer {
            Ok(a) => a,
            Err(e) => {
                // Unreachable, as the watch would find it: the next commit does not wait for it.
                self.update_view(|v| v.away = true);
                return Replication::PeerBehind(e.to_string());
            }
        };
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if status == StatusCode::OK && value["digest"] == replica.digest.as_str() {
            self.confirm(&replica.digest);
            self.update_view(|v| v.version = Some(replica.version));
            return Replication::InSync;
        }
        let message = value["message"]
            .as_str()
            .unwrap_or("no message")
            .to_string();
        if status == StatusCode::CONFLICT && self.mark_split_brain() {
            eprintln!(
                "haproxy-dataplaneapi: split-brain: the peer {} holds the management VIP {} too and refused the replica: {message}",
                self.settings.peer_address, self.settings.management_vip
            );
        }
        Replication::PeerBehind(format!(
            "the peer refused the replica ({}): {message}",
            status.as_u16()
        ))
    }

    /// This node's status (`GET /ha/status`).
    pub fn status(&self, doc: &Document) -> Status {
        let role = self.role();
        let view = self.view();
        let s = &self.settings;
        Status {
            role: role.as_str().into(),
            node: s.node_address.to_string(),
            peer: s.peer_address.to_string(),
            management_vip: s.management_vip.to_string(),
            version: doc.version,
            digest: digest(doc),
            peer_in_sync: if role == Role::Master {
                view.in_sync
            } else {
                None
            },
            peer_version: view.version.filter(|_| role == Role::Master),
            peer_reason: view.reason.filter(|_| role == Role::Master),
            split_brain: self.split_brain(role),
        }
    }

    /// One look at the peer (MASTER only): its status when it answers as BACKUP, with whether
    /// it returns (the look before found it unreachable, unreadable or MASTER too); None
    /// otherwise (logged when the reason changes; split-brain when it is MASTER too).
    async fn look(&self) -> Option<(Status, bool)> {
        let answer = self
            .client()
            .request(Method::GET, "/ha/status", None, STATUS_TIMEOUT)
            .await;
        let peer: Status = match answer {
            Ok((StatusCode::OK, body)) => match serde_json::from_slice(&body) {
                Ok(s) => s,
                Err(e) => {
                    self.peer_unknown(format!("its status is unreadable: {e}"));
                    return None;
                }
            },
            Ok((code, _)) => {
                self.peer_unknown(format!("its status answered {code}"));
                return None;
            }
            Err(e) => {
                self.peer_unknown(e.to_string());
                return None;
            }
        };
        if peer.role == Role::Master.as_str() {
            if self.mark_split_brain() {
                eprintln!(
                    "haproxy-dataplaneapi: split-brain: the peer {} holds the management VIP {} too; both nodes are MASTER and accept changes; replication stops until one of them gives the VIP up",
                    self.settings.peer_address, self.settings.management_vip
                );
            }
            self.peer_unknown("the peer is MASTER too (split-brain)".into());
            return None;
        }
        let mut returned = false;
        self.update_view(|v| {
            v.version = Some(peer.version);
            returned = std::mem::replace(&mut v.away, false);
        });
        Some((peer, returned))
    }

    /// Pushes when the peer's configuration (a BACKUP's status) differs from this node's. The
    /// comparison holds the push lock: a commit's push cannot confirm a newer digest between it
    /// and the confirmation of the older one.
    async fn catch_up(&self, store: &Store, peer: &Status) {
        let one = self.push.lock().await;
        let Ok(snap) = store.current() else {
            return;
        };
        if peer.digest != digest(&snap.doc) || peer.version != snap.version() {
            drop(one);
            let was = self.view().in_sync;
            if self.push(store, false).await == Replication::InSync && was != Some(true) {
                eprintln!(
                    "haproxy-dataplaneapi: HA peer {} caught up: version {}",
                    self.settings.peer_address,
                    snap.version()
                );
            }
        } else {
            self.confirm(&peer.digest);
            self.update_view(|v| {
                v.in_sync = Some(true);
                v.reason = None;
            });
        }
    }

    fn peer_unknown(&self, reason: String) {
        if self.view().reason.as_ref() != Some(&reason) {
            eprintln!(
                "haproxy-dataplaneapi: HA peer {}: {reason}",
                self.settings.peer_address
            );
        }
        self.update_view(|v| {
            v.in_sync = Some(false);
            v.reason = Some(reason);
            v.away = true;
        });
    }
}

/// The MASTER's watch of its peer, every second, for as long as the server runs: a push when
/// the peer is behind, and the VIPs announced again when it returns.
pub async fn watch(app: Arc<App>) {
    let Some(pair) = app.ha.as_ref() else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pair.role() != Role::Master {
            pair.update_view(|v| *v = super::PeerView::default());
            continue;
        }
        let Some((peer, returned)) = pair.look().await else {
            continue;
        };
        if returned {
            // In the background: arping takes two seconds, the catch-up must not wait for it.
            tokio::spawn(announce_again(app.clone()));
        }
        pair.catch_up(&app.store, &peer).await;
    }
}

/// The peer answers as BACKUP again after it was unreachable or MASTER too. Meanwhile it may
/// have held the VIPs and announced them (a split-brain: the router then sends their traffic to
/// its MAC), and this node, MASTER all along, makes no transition, so keepalived runs no
/// `notify_master`: the VIPs in use are announced again here, with the same code as `announce`
/// (a gratuitous ARP changes nothing where the router already had this node's MAC). One at a
/// time, and only while this node is still MASTER.
async fn announce_again(app: Arc<App>) {
    let Some(pair) = app.ha.as_ref() else {
        return;
    };
    let _one = pair.announcing.lock().await;
    if pair.role() != Role::Master {
        return;
    }
    let peer = pair.settings.peer_address;
    let snap = match app.store.current() {
        Ok(snap) => snap,
        Err(e) => {
            eprintln!(
                "haproxy-dataplaneapi: error: HA peer {peer} returned; cannot announce the VIPs in use again: {e}"
            );
            return;
        }
    };
    let ha = pair.settings.clone();
    let iface = ha.vip_interface.clone();
    let arping = Path::new(commands::ARPING);
    let sent =
        tokio::task::spawn_blocking(move || commands::announce_vips_in_use(&snap.doc, &ha, arping))
            .await;
    let results = match sent {
        Ok(results) => results,
        Err(e) => {
            eprintln!("haproxy-dataplaneapi: error: announcing the VIPs in use failed: {e}");
            return;
        }
    };
    let done: Vec<String> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(vip, _)| vip.to_string())
        .collect();
    let why = "it may have announced this node's VIPs while it was unreachable or MASTER too";
    if results.is_empty() {
        println!(
            "haproxy-dataplaneapi: HA peer {peer} returned as BACKUP; no VIP in use to announce"
        );
    } else if !done.is_empty() {
        println!(
            "haproxy-dataplaneapi: HA peer {peer} returned as BACKUP; {why}: announced again on {iface} (gratuitous ARP): {}",
            done.join(", ")
        );
    }
    for (vip, result) in results {
        if let Err(e) = result {
            eprintln!("haproxy-dataplaneapi: error: cannot announce {vip} on {iface}: {e}");
        }
    }
}

/// A replica's refusal, logged unless it is the one logged last within a minute (the MASTER's
/// watch pushes every second).
fn refuse(pair: &Pair, status: StatusCode, message: String) -> ApiError {
    if pair.first_time(&message) {
        eprintln!("haproxy-dataplaneapi: replica refused ({status}): {message}");
    }
    ApiError::new(status, message)
}

/// What the receiving node answers for a replica: its version and digest once it has it.
pub async fn receive(app: &App, pair: &Pair, replica: Replica) -> Result<(u64, String), ApiError> {
    let s = &pair.settings;
    if pair.role() == Role::Master {
        pair.mark_split_brain();
        eprintln!(
            "haproxy-dataplaneapi: split-brain: {} sent a replica (version {}) while this node holds the management VIP {}; refused",
            replica.node, replica.version, s.management_vip
        );
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "split-brain: {} is MASTER too (it holds the management VIP {}); replica refused",
                s.node_address, s.management_vip
            ),
        ));
    }
    mismatch(pair, &replica).map_or(Ok(()), |m| {
        Err(refuse(pair, StatusCode::UNPROCESSABLE_ENTITY, m))
    })?;
    let sections = Document::parse(&replica.sections);
    if let Some(problem) = foreign(&sections, &replica) {
        return Err(refuse(pair, StatusCode::BAD_REQUEST, problem));
    }
    let guard = app.store.lock().await;
    let snap = app
        .store
        .current()
        .map_err(|e| refuse(pair, StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let current = digest(&snap.doc);
    if current == replica.digest && snap.version() == replica.version {
        pair.confirm(&current);
        return Ok((snap.version(), current));
    }
    if current != replica.digest && current != pair.confirmed_digest() {
        keep_loser_copy(pair, &snap.doc, &replica);
    }
    let mut doc = snap.doc.with_replicated(sections.sections);
    doc.version = replica.version;
    let committed = app.store.commit(&guard, doc).await.map_err(|e| match e {
        StoreError::Invalid(m) => refuse(pair, StatusCode::UNPROCESSABLE_ENTITY, m),
        other => refuse(pair, StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    })?;
    drop(guard);
    let reload = app.reloader.request();
    let digest = digest(&committed.doc);
    pair.confirm(&digest);
    println!(
        "haproxy-dataplaneapi: replica from {}: version {} (was {}), reload {reload}",
        replica.node,
        committed.version(),
        snap.version()
    );
    Ok((committed.version(), digest))
}

/// The difference in router id or service ranges, when there is one.
fn mismatch(pair: &Pair, replica: &Replica) -> Option<String> {
    let s = &pair.settings;
    let mut problems = Vec::new();
    if replica.router_id != s.router_id {
        problems.push(format!(
            "router_id differs: {} has {}, {} has {}",
            replica.node, replica.router_id, s.node_address, s.router_id
        ));
    }
    let mut theirs = replica.service_ranges.clone();
    theirs.sort();
    let mut mine = pair.ranges();
    mine.sort();
    if theirs != mine {
        let only = |a: &[String], b: &[String]| {
            let v: Vec<&str> = a
                .iter()
                .filter(|r| !b.contains(r))
                .map(String::as_str)
                .collect();
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        problems.push(format!(
            "service_ranges differ: only {} has {}; only {} has {}",
            replica.node,
            only(&theirs, &mine),
            s.node_address,
            only(&mine, &theirs)
        ));
    }
    (!problems.is_empty()).then(|| {
        format!(
            "the pair's nodes must have the same router id and load-balancer ranges: {}",
            problems.join("; ")
        )
    })
}

/// A problem with the replica's sections themselves: one first boot owns, text outside a
/// section, or a digest that is not theirs.
fn foreign(sections: &Document, replica: &Replica) -> Option<String> {
    if let Some(s) = sections.sections.iter().find(|s| s.is_first_boot()) {
        return Some(format!(
            "the replica holds '{}', which each node's first boot owns",
            s.header.trim()
        ));
    }
    if sections.preamble.iter().any(|l| !l.trim().is_empty()) {
        return Some("the replica holds text outside any section".into());
    }
    let digest = digest_of(&sections.replicated_text());
    (digest != replica.digest).then(|| {
        format!(
            "the replica's digest {} is not that of its sections ({digest})",
            replica.digest
        )
    })
}

/// Before a replica replaces changes this node accepted that the pair never agreed on (it was
/// MASTER during a split-brain, or while the peer was down), keeps a copy of its file.
fn keep_loser_copy(pair: &Pair, doc: &Document, replica: &Replica) {
    let dir = &pair.settings.split_brain_dir;
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let path = dir.join(format!("haproxy.cfg.v{}.{stamp}", doc.version));
    let saved = std::fs::create_dir_all(dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            crate::store::write_atomically(&path, doc.render().as_bytes())
                .map_err(|e| e.to_string())
        });
    match saved {
        Ok(()) => eprintln!(
            "haproxy-dataplaneapi: split-brain: this node's configuration version {} (changes the peer never confirmed) is replaced by {}'s version {}; kept in {}",
            doc.version,
            replica.node,
            replica.version,
            path.display()
        ),
        Err(e) => eprintln!(
            "haproxy-dataplaneapi: split-brain: cannot keep this node's configuration version {} in {}: {e}; it is replaced by {}'s version {}",
            doc.version,
            path.display(),
            replica.node,
            replica.version
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(sections: &str) -> Replica {
        Replica {
            node: "192.168.0.2".into(),
            version: 4,
            digest: digest_of(sections),
            router_id: 51,
            service_ranges: vec!["192.168.100.0/24".into()],
            sections: sections.into(),
        }
    }

    #[test]
    fn the_header_is_one_printable_line() {
        assert_eq!(Replication::InSync.header_value(), "in-sync");
        let h = Replication::PeerBehind("haproxy -c:\n[ALERT] bad «bind»".into()).header_value();
        assert_eq!(h, "peer-behind; haproxy -c: [ALERT] bad  bind ");
        assert!(hyper::header::HeaderValue::from_str(&h).is_ok());
        let long = Replication::PeerBehind("x".repeat(1000)).header_value();
        assert_eq!(long.len(), "peer-behind; ".len() + 300);
    }

    #[test]
    fn a_replica_holds_only_replicated_sections_with_their_digest() {
        let good = "frontend fe\n  bind 192.168.100.5:80 name vip\n\nbackend be\n  mode tcp\n";
        let r = replica(good);
        assert_eq!(foreign(&Document::parse(&r.sections), &r), None);
        let with_global = replica("global\n  daemon\nbackend be\n");
        let problem = foreign(&Document::parse(&with_global.sections), &with_global);
        assert!(problem.is_some_and(|p| p.contains("'global'")));
        let userlist = replica("userlist controller\n  user admin insecure-password x\n");
        assert!(foreign(&Document::parse(&userlist.sections), &userlist).is_some());
        let stray = replica("maxconn 5\nbackend be\n");
        assert!(foreign(&Document::parse(&stray.sections), &stray).is_some());
        let mut tampered = replica(good);
        tampered.digest = digest_of("something else");
        let problem = foreign(&Document::parse(&tampered.sections), &tampered);
        assert!(problem.is_some_and(|p| p.contains("is not that of its sections")));
    }
}
