//! Network namespaces a test creates for itself: every address a test uses lives in one, and
//! nothing is sent from or to the machine's own namespace (loopback aside).

use std::process::Command;

use crate::run;

/// A network namespace named `<tag><pid>-<role>`, with loopback up; deleted when dropped
/// (also when the test fails: the panic unwinds through the drop).
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace. Namespaces of the same `tag` that a killed earlier run left
    /// behind (their process is gone) are deleted first.
    pub fn create(tag: &str, role: &str) -> Netns {
        remove_stale(tag);
        let name = format!("{tag}{}-{role}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <name> ARGS`; fails the test when `ip` fails. Returns its stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// `program` to be run inside the namespace (`ip netns exec`, which execs it: the child's
    /// PID is the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `f` on a thread that has entered the namespace: the sockets it opens live there.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns =
                    std::fs::File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("entering {path}: {e}"));
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Deletes `<tag><pid>-*` namespaces whose process no longer exists (a SIGKILLed test cannot
/// clean up after itself).
fn remove_stale(tag: &str) {
    let Ok(list) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    let list = String::from_utf8_lossy(&list.stdout);
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix(tag)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !alive(pid) {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// Whether process `pid` exists and is not a zombie (a killed test whose parent has not
/// reaped it yet, e.g. one reparented to an init that reaps late, is gone all the same).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name, which is in parentheses and may contain any.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}
