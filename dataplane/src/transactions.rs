//! Transactions: a working copy of haproxy.cfg per transaction under the state directory, so
//! they survive a restart of the server. `<dir>/<id>/haproxy.cfg` is the copy, `meta.json` (written
//! last, atomically) makes the transaction exist. A transaction started on version N is
//! outdated once the configuration has moved past N: it can no longer be committed, and it
//! lists with the spec's status `failed`. Starting one is synced to disk; each change to its copy
//! is an atomic rename without fsync (one per object the Supervisor adds), so a transaction
//! survives a restart or a crash of the server, and a power loss at worst loses its last changes.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cfg::Document;
use crate::store::{StoreError, replace_unsynced, write_atomically};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InProgress,
    Failed,
    Success,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Failed => "failed",
            Status::Success => "success",
        }
    }
}

/// What is stored of a transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transaction {
    pub id: String,
    /// The configuration version it was started on.
    #[serde(rename = "_version")]
    pub version: u64,
    pub status: Status,
    /// Why it failed (a refused commit), for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Transaction {
    /// The status as the API shows it when the configuration is at `current`.
    pub fn status_at(&self, current: u64) -> Status {
        match self.status {
            Status::InProgress if self.version != current => Status::Failed,
            s => s,
        }
    }

    pub fn is_outdated(&self, current: u64) -> bool {
        self.version != current
    }

    /// The spec's `transaction` object.
    pub fn to_json(&self, current: u64) -> serde_json::Value {
        serde_json::json!({"id": self.id, "_version": self.version, "status": self.status_at(current).as_str()})
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    #[error("transaction {0} not found")]
    NotFound(String),
    #[error(
        "cannot start a new transaction, reached the maximum amount of {0} active transactions available"
    )]
    TooMany(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("transaction {id}: {problem}")]
    Corrupt { id: String, problem: String },
}

pub struct Transactions {
    dir: PathBuf,
    max_open: usize,
}

const META: &str = "meta.json";
const COPY: &str = "haproxy.cfg";

/// Transaction ids are UUIDs: anything else is not one of ours (and never a path).
fn valid_id(id: &str) -> bool {
    uuid::Uuid::try_parse(id).is_ok()
}

impl Transactions {
    /// Opens the directory, creating it (0700), and removes what a crash left half-made.
    pub fn open(dir: PathBuf, max_open: usize) -> Result<Transactions, StoreError> {
        fs::create_dir_all(&dir).map_err(|cause| StoreError::Io {
            action: "create",
            path: dir.clone(),
            cause,
        })?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        }
        let t = Transactions { dir, max_open };
        for entry in fs::read_dir(&t.dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.join(META).exists() {
                let _ = fs::remove_dir_all(&path);
            }
        }
        Ok(t)
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Every stored transaction, oldest id order not guaranteed.
    pub fn list(&self) -> Vec<Transaction> {
        let mut out: Vec<Transaction> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|id| self.get(&id).ok())
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    pub fn get(&self, id: &str) -> Result<Transaction, TransactionError> {
        if !valid_id(id) {
            return Err(TransactionError::NotFound(id.to_string()));
        }
        let text = match fs::read(self.path(id).join(META)) {
            Ok(t) => t,
            Err(_) => return Err(TransactionError::NotFound(id.to_string())),
        };
        serde_json::from_slice(&text).map_err(|e| TransactionError::Corrupt {
            id: id.to_string(),
            problem: e.to_string(),
        })
    }

    /// Starts a transaction on `base` (the current configuration).
    pub fn start(&self, base: &Document) -> Result<Transaction, TransactionError> {
        let open = self
            .list()
            .iter()
            .filter(|t| t.status_at(base.version) == Status::InProgress)
            .count();
        if open >= self.max_open {
            return Err(TransactionError::TooMany(self.max_open));
        }
        let t = Transaction {
            id: uuid::Uuid::new_v4().to_string(),
            version: base.version,
            status: Status::InProgress,
            reason: None,
        };
        let dir = self.path(&t.id);
        fs::create_dir(&dir).map_err(|cause| StoreError::Io {
            action: "create",
            path: dir.clone(),
            cause,
        })?;
        write_atomically(&dir.join(COPY), base.render().as_bytes())?;
        self.save_meta(&t)?;
        Ok(t)
    }

    fn save_meta(&self, t: &Transaction) -> Result<(), TransactionError> {
        let json = serde_json::to_vec(t).map_err(|e| TransactionError::Corrupt {
            id: t.id.clone(),
            problem: e.to_string(),
        })?;
        Ok(write_atomically(&self.path(&t.id).join(META), &json)?)
    }

    /// The transaction's working copy.
    pub fn document(&self, t: &Transaction) -> Result<Document, TransactionError> {
        let path = self.path(&t.id).join(COPY);
        let text = fs::read_to_string(&path).map_err(|cause| StoreError::Io {
            action: "read",
            path,
            cause,
        })?;
        Ok(Document::parse(&text))
    }

    pub fn save_document(&self, t: &Transaction, doc: &Document) -> Result<(), TransactionError> {
        Ok(replace_unsynced(
            &self.path(&t.id).join(COPY),
            doc.render().as_bytes(),
        )?)
    }

    /// Marks a transaction failed (its commit was refused), keeping it for inspection.
    pub fn fail(&self, t: &Transaction, reason: &str) -> Result<(), TransactionError> {
        let mut failed = t.clone();
        failed.status = Status::Failed;
        failed.reason = Some(reason.chars().take(4096).collect());
        self.save_meta(&failed)
    }

    pub fn delete(&self, id: &str) -> Result<(), TransactionError> {
        self.get(id)?;
        let dir = self.path(id);
        // meta.json first: a crash midway leaves a directory that open() removes.
        let _ = fs::remove_file(dir.join(META));
        fs::remove_dir_all(&dir).map_err(|cause| {
            TransactionError::Store(StoreError::Io {
                action: "remove",
                path: dir,
                cause,
            })
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_persist_and_become_outdated() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Transactions::open(tmp.path().join("t"), 2).expect("open");
        let base = Document::parse("# _version=3\nglobal\n  daemon\n");
        let t = store.start(&base).expect("start");
        assert_eq!(t.version, 3);
        let reopened = Transactions::open(tmp.path().join("t"), 2).expect("reopen");
        let again = reopened.get(&t.id).expect("persisted");
        assert_eq!(again.status_at(3), Status::InProgress);
        assert_eq!(again.status_at(4), Status::Failed, "outdated");
        assert_eq!(reopened.document(&again).expect("copy"), base);
        reopened.start(&base).expect("second");
        assert!(matches!(
            reopened.start(&base),
            Err(TransactionError::TooMany(2))
        ));
        reopened.delete(&t.id).expect("delete");
        assert!(matches!(
            reopened.get(&t.id),
            Err(TransactionError::NotFound(_))
        ));
        assert!(matches!(
            reopened.get("../etc"),
            Err(TransactionError::NotFound(_))
        ));
    }

    #[test]
    fn a_half_made_transaction_is_removed_at_open() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t");
        fs::create_dir_all(dir.join("6f1c0b7e-4a4f-4d57-9a7c-1f2b3c4d5e6f")).expect("mkdir");
        let store = Transactions::open(dir.clone(), 20).expect("open");
        assert!(store.list().is_empty());
        assert!(!dir.join("6f1c0b7e-4a4f-4d57-9a7c-1f2b3c4d5e6f").exists());
    }
}
