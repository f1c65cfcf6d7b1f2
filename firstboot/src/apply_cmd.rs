//! `haproxy-firstboot apply`: find and validate the OVF environment (as `check`), then render
//! and atomically apply the appliance's configuration under `--root`.
//!
//! The last line is a marker the boot test and administrators grep for:
//! `haproxy-firstboot: applied configuration <fingerprint> (<n> files changed)` on success
//! (the fingerprint of the validated configuration, as in the status record),
//! `haproxy-firstboot: FAILED (exit <n>): <reason>` otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use base64::Engine as _;
use firstboot::apply::{self, ApplyOptions, Recovery};
#[cfg(feature = "fault-injection")]
use firstboot::apply::{ApplyError, TxnError};
use firstboot::source::{self, CACERT_KEY, STATUS_KEY};
use firstboot::{LoadOptions, Loaded, load};

/// Environment variable of the crash tests: abort the process (as a crash would) when the
/// file operation after this many would run. Only in builds with the `fault-injection` feature
/// (`scripts/test` builds one for `tests/crash_apply.rs`); the shipped binary ignores it.
#[cfg(feature = "fault-injection")]
const FAULT_ENV: &str = "HAPROXY_FIRSTBOOT_FAULT_AFTER";

/// Options of `haproxy-firstboot apply`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Exit status: 0 applied (or nothing to change); 1 invalid configuration (every problem is listed,
nothing on disk is changed); 2 no environment found, unreadable, or not well-formed XML; 3 the
configuration could not be written (the previous one stays in place).

Examples:
  haproxy-firstboot apply                                  # at boot, as the systemd unit runs it
  haproxy-firstboot apply --env ovf-env.xml --root /tmp/r  # render into a scratch root
  haproxy-firstboot apply --env ovf-env.xml --root /tmp/r --deployment frontend")]
pub struct Args {
    #[command(flatten)]
    source: crate::env_args::EnvArgs,
    /// Root directory to write the configuration under.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// How long to wait for another `apply` on the same root to finish (the boot unit's, say)
    /// before giving up with exit status 3.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    lock_wait: u64,
}

pub fn run(args: Args) -> ExitCode {
    let live = args.root == Path::new("/");
    let loaded = match load_environment(args.source.load_options(), live) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let opts = ApplyOptions {
        root: args.root.clone(),
        #[cfg(feature = "fault-injection")]
        fault_after: std::env::var(FAULT_ENV).ok().and_then(|v| v.parse().ok()),
        on_recovery: report_recovery,
    };
    // Held until this process exits: the live effects below belong to the same transaction.
    let lock = match lock_root(&args.root, args.lock_wait) {
        Ok(l) => l,
        Err(e) => return fail(live, 3, &format!("cannot apply the configuration: {e}")),
    };
    let report = match apply::apply(&loaded.config, &opts, &lock) {
        Ok(r) => r,
        #[cfg(feature = "fault-injection")]
        Err(ApplyError::Txn(TxnError::InjectedFault(n))) => {
            eprintln!("haproxy-firstboot: injected crash after {n} file operations");
            std::process::abort();
        }
        Err(e) => {
            eprintln!("haproxy-firstboot: {e}");
            return fail(live, 3, &format!("cannot apply the configuration: {e}"));
        }
    };
    report_changes(&report);
    if live {
        live_effects(&loaded.config, &report);
    }
    let line = format!(
        "applied configuration {} ({} files changed)",
        report.config_fingerprint,
        report.changed.len()
    );
    if live {
        publish(STATUS_KEY, &line);
    }
    println!("haproxy-firstboot: {line}");
    ExitCode::SUCCESS
}

/// Finds, parses and validates the environment and says where it came from; on failure it
/// reports every problem and returns the exit status.
fn load_environment(options: LoadOptions, live: bool) -> Result<Loaded, ExitCode> {
    let loaded = match load(&options) {
        Ok(l) => l,
        Err(e) => {
            crate::env_args::report_load_error(&e);
            eprintln!("haproxy-firstboot: nothing was changed");
            return Err(fail(live, e.exit_code(), &e.status_line()));
        }
    };
    eprintln!(
        "haproxy-firstboot: OVF environment from {} ({} deployment: {})",
        loaded.source,
        loaded.config.deployment().id(),
        loaded.deployment_reason
    );
    for w in &loaded.warnings {
        eprintln!("haproxy-firstboot: warning: {w}");
    }
    Ok(loaded)
}

/// Takes the root's lock, saying so while it waits for another run.
fn lock_root(root: &Path, lock_wait: u64) -> Result<apply::RootLock, apply::LockError> {
    apply::lock_root(root, Duration::from_secs(lock_wait), |path| {
        eprintln!(
            "haproxy-firstboot: waiting for another haproxy-firstboot run to finish (it holds {}; up to {} s)",
            path.display(),
            lock_wait
        )
    })
    .inspect_err(|e| eprintln!("haproxy-firstboot: {e}"))
}

/// Lists the notes and every file written or removed.
fn report_changes(report: &apply::Report) {
    for n in &report.notes {
        eprintln!("haproxy-firstboot: note: {n}");
    }
    for c in &report.changed {
        let verb = if report.removed.contains(c) {
            "removed"
        } else {
            "wrote"
        };
        eprintln!("haproxy-firstboot: {verb} /{c}");
    }
}

/// What only makes sense on the running appliance: publish the CA, set the running host name,
/// let udev rename NICs whose `.link` files just appeared, and the HA pair's runtime effects.
fn live_effects(cfg: &firstboot::config::ValidatedConfig, report: &apply::Report) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(report.ca_cert_pem.as_bytes());
    publish(CACERT_KEY, &b64);
    let current = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    if current.trim() != cfg.hostname()
        && let Err(e) = std::fs::write("/proc/sys/kernel/hostname", cfg.hostname())
    {
        eprintln!("haproxy-firstboot: cannot set the running host name: {e}");
    }
    if report.changed.iter().any(|c| c.ends_with(".link")) {
        // .link files apply when udev handles an "add" event: replay them for network devices
        // (still down: networkd starts after this unit) so they get their names now.
        for args in [
            &["trigger", "--action=add", "--subsystem-match=net"][..],
            &["settle", "--timeout=30"][..],
        ] {
            let ok = Command::new("udevadm")
                .args(args)
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!(
                    "haproxy-firstboot: udevadm {} failed; NICs are renamed at the next boot",
                    args[0]
                );
            }
        }
    }
    ha_live_effects(cfg, report);
}

/// The HA pair on the running appliance: haproxy may bind VIPs it does not hold (the sysctl
/// file applies at the next boot; this applies it now), and keepalived runs with the
/// configuration just written: a changed drop-in is loaded, a changed configuration (re)starts
/// keepalived, or stops it when the appliance is no longer one of a pair. Without `--no-block`
/// a start would wait for this unit, which keepalived's drop-in orders it after.
fn ha_live_effects(cfg: &firstboot::config::ValidatedConfig, report: &apply::Report) {
    use firstboot::render::ha::{
        DROPINS, KEEPALIVED_CONF, KEEPALIVED_DROPIN, NONLOCAL_BIND, SYSCTL_CONF,
    };
    let changed = |path: &str| report.changed.iter().any(|c| c == path);
    let nonlocal_bind = if cfg.ha().is_some() {
        Some("1")
    } else if report.removed.iter().any(|r| r == SYSCTL_CONF) {
        Some("0")
    } else {
        None
    };
    if let Some(want) = nonlocal_bind {
        let current = std::fs::read_to_string(NONLOCAL_BIND).unwrap_or_default();
        if current.trim() != want
            && let Err(e) = std::fs::write(NONLOCAL_BIND, want)
        {
            eprintln!("haproxy-firstboot: cannot set {NONLOCAL_BIND} to {want}: {e}");
        }
    }
    if DROPINS.iter().any(|d| changed(d)) {
        systemctl(&["daemon-reload"]);
    }
    if changed(KEEPALIVED_CONF) || changed(KEEPALIVED_DROPIN) {
        let action = if cfg.ha().is_some() {
            "restart"
        } else {
            "stop"
        };
        systemctl(&["--no-block", action, "keepalived.service"]);
    }
}

/// Runs `systemctl ARGS`, saying so when it fails.
fn systemctl(args: &[&str]) {
    let ok = Command::new("systemctl")
        .args(args)
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("haproxy-firstboot: systemctl {} failed", args.join(" "));
    }
}

/// Says what recovery of an interrupted or damaged earlier run did.
fn report_recovery(recovery: &Recovery) {
    match recovery {
        Recovery::Clean => {}
        Recovery::RolledForward => {
            eprintln!(
                "haproxy-firstboot: completed the configuration change an earlier run was interrupted in"
            )
        }
        Recovery::RolledBack => {
            eprintln!(
                "haproxy-firstboot: discarded the unfinished configuration change of an interrupted run"
            )
        }
        Recovery::DamagedJournal(why) => {
            eprintln!(
                "haproxy-firstboot: warning: ignored a damaged transaction journal ({why}); \
                 discarded its staged files; this run writes every file that differs"
            )
        }
    }
}

fn publish(key: &str, value: &str) {
    match source::publish_guestinfo(key, value) {
        Ok(_) => {}
        Err(e) => eprintln!("haproxy-firstboot: cannot publish guestinfo.{key}: {e}"),
    }
}

fn fail(live: bool, code: u8, line: &str) -> ExitCode {
    if live {
        publish(STATUS_KEY, line);
    }
    println!("haproxy-firstboot: FAILED (exit {code}): {line}");
    ExitCode::from(code)
}
