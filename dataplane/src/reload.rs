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
            let master = self.settings.master_socket.as_deref();
            let before = match master {
                Some(sock) => Some(master_state(sock).await?),
                None => None,
            };
            let said = match &self.settings.method {
                ReloadMethod::Command(cmd) => run_command(cmd).await?,
                ReloadMethod::MasterSocket(path) => master_reload(path.clone()).await?,
            };
            match (master, before) {
                (Some(sock), Some(before)) => confirm(sock, before, said).await,
                _ => Ok(said),
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
    let sent = async {
        sock.write_all(b"reload\n").await?;
        sock.shutdown().await
    };
    sent.await
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

/// What haproxy's master says of its reloads (`show proc`): how many, how many failed, and
/// whether a current worker has been started since the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MasterState {
    reloads: u64,
    failed: u64,
    current_worker: bool,
}

/// `show proc` of haproxy 2.x:
/// ```text
/// #<PID>          <type>          <reloads>       <uptime>        <version>
/// 1162            master          5 [failed: 0]   0d00h02m07s     2.6.12
/// # workers
/// 1271            worker          0               0d00h00m00s     2.6.12
/// # old workers
/// 1233            worker          1               0d00h00m40s     2.6.12
/// ```
fn parse_show_proc(text: &str) -> Option<MasterState> {
    let mut state = None;
    let mut section = "";
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("# ") {
            section = title.trim();
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [_, "master", reloads, "[failed:", failed, ..] => {
                state = Some(MasterState {
                    reloads: reloads.parse().ok()?,
                    failed: failed.trim_end_matches(']').parse().ok()?,
                    current_worker: false,
                });
            }
            [_, "worker", "0", ..] if section == "workers" => {
                if let Some(s) = state.as_mut() {
                    s.current_worker = true;
                }
            }
            _ => {}
        }
    }
    state
}

/// `show proc`, asked until the master answers it: while it re-executes itself for a reload
/// its socket refuses connections or closes them unanswered.
async fn master_state(sock: &std::path::Path) -> Result<MasterState, String> {
    let start = std::time::Instant::now();
    loop {
        let mut s = connect_master(sock).await?;
        // Closing our side makes the master answer and close its side; otherwise it waits.
        let sent = async {
            s.write_all(b"show proc\n").await?;
            s.shutdown().await
        };
        let mut text = String::new();
        if sent.await.is_ok() {
            let _ = s.read_to_string(&mut text).await;
        }
        if let Some(state) = parse_show_proc(&text) {
            return Ok(state);
        }
        if start.elapsed() > MASTER_WAIT {
            return Err(format!(
                "master CLI {}: no answer to show proc within {} s (last: {text:?})",
                sock.display(),
                MASTER_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the master has counted the reload: succeeded once a new worker runs the new
/// configuration, failed when the master counts a failed reload (the old workers keep serving).
async fn confirm(
    sock: &std::path::Path,
    before: MasterState,
    said: String,
) -> Result<String, String> {
    let start = std::time::Instant::now();
    loop {
        let now = master_state(sock).await?;
        if now.failed > before.failed {
            return Err(format!(
                "haproxy could not start workers on the new configuration (the master counts {} failed reloads); the previous workers keep serving: see its log (journalctl -u haproxy){}",
                now.failed,
                if said.is_empty() {
                    String::new()
                } else {
                    format!("; {said}")
                }
            ));
        }
        if now.reloads > before.reloads && now.current_worker {
            return Ok(said);
        }
        if start.elapsed() > MASTER_WAIT {
            return Err(format!(
                "haproxy's master did not report the reload within {} s",
                MASTER_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_show_proc() {
        let text = "#<PID>          <type>          <reloads>       <uptime>        <version>\n1162            master          5 [failed: 1]   0d00h02m07s     2.6.12\n# workers\n1271            worker          0               0d00h00m00s     2.6.12\n# old workers\n1233            worker          1               0d00h00m40s     2.6.12\n# programs\n\n";
        assert_eq!(
            parse_show_proc(text),
            Some(MasterState {
                reloads: 5,
                failed: 1,
                current_worker: true
            })
        );
        let starting = "#<PID> <type> <reloads> <uptime> <version>\n1162 master 6 [failed: 1] 0d00h02m07s 2.6.12\n# workers\n# old workers\n1271 worker 1 0d00h00m09s 2.6.12\n";
        assert_eq!(
            parse_show_proc(starting),
            Some(MasterState {
                reloads: 6,
                failed: 1,
                current_worker: false
            })
        );
        assert_eq!(parse_show_proc("Unknown command"), None);
    }
}
