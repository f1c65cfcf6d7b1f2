//! Reloading haproxy after a commit. Changes within `reload_delay` share one reload (the real
//! Data Plane API's behaviour: the Supervisor commits in bursts); `force_reload` reloads at once.
//! haproxy runs in master-worker mode, so a reload starts new workers on the listening sockets
//! of the old ones and no connection is refused. Every reload is kept in a bounded history with
//! its outcome and haproxy's message, for `GET /services/haproxy/reloads[/{id}]`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::settings::{ReloadMethod, ReloadSettings};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    InProgress,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub outcome: Outcome,
    pub response: String,
    pub timestamp: i64,
}

impl Record {
    pub fn to_json(&self) -> Value {
        let status = match self.outcome {
            Outcome::InProgress => "in_progress",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
        };
        let mut v = json!({"id": self.id, "status": status, "reload_timestamp": self.timestamp});
        if !self.response.is_empty() {
            v["response"] = json!(self.response);
        }
        v
    }
}

const HISTORY: usize = 200;
const RELOAD_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Default)]
struct State {
    records: VecDeque<Record>,
    /// The reload that is waiting for its delay to pass.
    pending: Option<String>,
    /// Per-day counter of the ids (`YYYY-MM-DD-N`, the spec's pattern).
    day: String,
    counter: u64,
}

#[derive(Clone)]
pub struct Reloader {
    settings: ReloadSettings,
    state: Arc<Mutex<State>>,
    /// One reload at a time.
    running: Arc<tokio::sync::Mutex<()>>,
}

impl Reloader {
    pub fn new(settings: ReloadSettings) -> Reloader {
        Reloader {
            settings,
            state: Arc::default(),
            running: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update replaces whole fields: a poisoned lock still holds a consistent state.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks for a reload after the delay; returns its id (shared with changes made meanwhile).
    pub fn request(&self) -> String {
        let mut st = self.lock();
        if let Some(id) = &st.pending {
            return id.clone();
        }
        let id = new_record(&mut st);
        st.pending = Some(id.clone());
        drop(st);
        let this = self.clone();
        let delay = self.settings.delay;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _running = this.running.lock().await;
            let id = this.lock().pending.take();
            if let Some(id) = id {
                let result = this.run().await;
                this.finish(&id, result);
            }
        });
        id
    }

    /// Reloads now and waits for the outcome (`force_reload=true`); a pending reload is taken
    /// along, since this one includes its changes.
    pub async fn force(&self) -> Result<String, String> {
        let _running = self.running.lock().await;
        let (id, pending) = {
            let mut st = self.lock();
            let pending = st.pending.take();
            (new_record(&mut st), pending)
        };
        let result = self.run().await;
        if let Some(p) = pending {
            self.finish(&p, result.clone());
        }
        self.finish(&id, result.clone());
        result.map(|_| id)
    }

    fn finish(&self, id: &str, result: Result<String, String>) {
        let mut st = self.lock();
        if let Some(r) = st.records.iter_mut().find(|r| r.id == id) {
            let (outcome, response) = match result {
                Ok(m) => (Outcome::Succeeded, m),
                Err(m) => (Outcome::Failed, m),
            };
            r.outcome = outcome;
            r.response = response;
        }
        if outcome_failed(st.records.iter().find(|r| r.id == id)) {
            eprintln!("haproxy-dataplaneapi: reload {id} failed");
        }
    }

    pub fn get(&self, id: &str) -> Option<Record> {
        self.lock().records.iter().find(|r| r.id == id).cloned()
    }

    pub fn list(&self) -> Vec<Record> {
        self.lock().records.iter().cloned().collect()
    }

    async fn run(&self) -> Result<String, String> {
        let work = async {
            match &self.settings.method {
                ReloadMethod::Command(cmd) => run_command(cmd).await,
                ReloadMethod::MasterSocket(path) => master_reload(path.clone()).await,
            }
        };
        match tokio::time::timeout(RELOAD_TIMEOUT, work).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} s", RELOAD_TIMEOUT.as_secs())),
        }
    }
}

fn outcome_failed(r: Option<&Record>) -> bool {
    r.is_some_and(|r| r.outcome == Outcome::Failed)
}

fn new_record(st: &mut State) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let day = time::OffsetDateTime::from_unix_timestamp(now)
        .map(|t| {
            let d = t.date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        })
        .unwrap_or_else(|_| "1970-01-01".into());
    if st.day != day {
        st.day = day.clone();
        st.counter = 0;
    }
    st.counter += 1;
    let id = format!("{day}-{}", st.counter);
    st.records.push_back(Record {
        id: id.clone(),
        outcome: Outcome::InProgress,
        response: String::new(),
        timestamp: now,
    });
    while st.records.len() > HISTORY {
        st.records.pop_front();
    }
    id
}

/// Runs the configured command with `sh -c`, as the real server does.
async fn run_command(cmd: &str) -> Result<String, String> {
    let out = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let text = text.trim().to_string();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{cmd:?} failed ({}): {text}", out.status))
    }
}

/// `reload` on haproxy's master CLI. haproxy 2.7 and later answer `Success=0|1` with the new
/// worker's startup messages; older ones close the connection without a word. The master
/// re-executes itself to reload, and its socket refuses connections meanwhile: wait for it
/// before (a previous reload) and after (this one), so the next reload finds it ready.
async fn master_reload(path: PathBuf) -> Result<String, String> {
    let mut sock = connect_master(&path).await?;
    sock.write_all(b"reload\n")
        .await
        .map_err(|e| format!("master CLI {}: {e}", path.display()))?;
    let mut answer = String::new();
    let _ = sock.read_to_string(&mut answer).await;
    drop(sock);
    connect_master(&path).await?;
    let answer = answer.trim().to_string();
    if answer.contains("Success=0") {
        Err(answer)
    } else {
        Ok(answer)
    }
}

const MASTER_WAIT: Duration = Duration::from_secs(30);

async fn connect_master(path: &std::path::Path) -> Result<tokio::net::UnixStream, String> {
    let start = std::time::Instant::now();
    loop {
        match tokio::net::UnixStream::connect(path).await {
            Ok(s) => return Ok(s),
            Err(e) if start.elapsed() > MASTER_WAIT => {
                return Err(format!(
                    "cannot connect to the master CLI {}: {e}",
                    path.display()
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
