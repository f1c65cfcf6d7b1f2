//! `haproxy-dataplaneapi`: the appliance's HAProxy Data Plane API v2 server.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use dataplane::api::{self, App};
use dataplane::auth::Authenticator;
use dataplane::ha::{Pair, commands};
use dataplane::reload::Reloader;
use dataplane::settings::Settings;
use dataplane::store::Store;
use dataplane::transactions::Transactions;

const EXAMPLES: &str = "\
Examples:
  # As the appliance runs it (dataplaneapi.service), with the file haproxy-firstboot writes:
  haproxy-dataplaneapi -f /etc/haproxy/dataplaneapi.yaml

  # Then, from the management network:
  curl --cacert ca.crt -u admin:PASSWORD https://192.168.0.2:5556/v2/info
  curl --cacert ca.crt -u admin:PASSWORD https://192.168.0.2:5556/v2/services/haproxy/configuration/frontends

  # In an HA pair (an `ha:` section in the file), which node is MASTER and is the peer in sync:
  curl --cacert ca.crt -u admin:PASSWORD https://192.168.0.10:5556/ha/status

  # What keepalived runs (vrrp_script every second; notify_master on takeover):
  haproxy-dataplaneapi check -f /etc/haproxy/dataplaneapi.yaml
  haproxy-dataplaneapi announce -f /etc/haproxy/dataplaneapi.yaml";

/// The HAProxy Data Plane API v2 (the API the vSphere Supervisor programs the appliance with):
/// haproxy.cfg edited over HTTPS, with basic auth against the configuration's userlist,
/// transactions, `haproxy -c` before every change and a seamless reload after it.
#[derive(Parser)]
#[command(name = "haproxy-dataplaneapi", version = dataplane::VERSION, after_help = EXAMPLES)]
struct Args {
    /// The Data Plane API 2.x configuration file (`config_version: 2` YAML).
    #[arg(
        short = 'f',
        long = "config",
        value_name = "FILE",
        default_value = "/etc/haproxy/dataplaneapi.yaml",
        global = true
    )]
    config: PathBuf,
    /// Without a subcommand: serve the API.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Exit 0 iff this node's API completes a TLS handshake on its port within a second
    /// (keepalived's health check; prints nothing when it succeeds).
    Check,
    /// Send gratuitous ARP (/usr/bin/arping -U) on the `ha.vip_interface` for every VIP in use:
    /// the frontends' bind addresses in `ha.service_ranges` (keepalived's notify_master).
    Announce,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result = match args.command {
        None => run(&args),
        Some(Command::Check) => check(&args),
        Some(Command::Announce) => Settings::load(&args.config)
            .map_err(anyhow::Error::from)
            .and_then(|s| {
                Ok(commands::announce(
                    &s,
                    std::path::Path::new(commands::ARPING),
                )?)
            }),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("haproxy-dataplaneapi: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn check(args: &Args) -> anyhow::Result<()> {
    let settings = Settings::load(&args.config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(commands::check(&settings))?)
}

fn run(args: &Args) -> anyhow::Result<()> {
    let settings = Settings::load(&args.config)?;
    let tls = dataplane::server::tls_config(&settings.tls_certificate, &settings.tls_key)?;
    let store = Store::new(
        settings.config_file.clone(),
        settings.haproxy_bin.clone(),
        settings.userlist.clone(),
    );
    store.remove_stale_candidate();
    let snap = store.current()?;
    if snap.users.is_empty() {
        eprintln!(
            "haproxy-dataplaneapi: warning: {} has no user in 'userlist {}': every request will get 401",
            settings.config_file.display(),
            settings.userlist
        );
    }
    let transactions = Transactions::open(
        settings.transaction_dir.clone(),
        settings.max_open_transactions,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let ha = match settings.ha.clone() {
        Some(ha) => {
            // The role is read from the addresses at every write: fail now, loudly, if they
            // cannot be listed (getifaddrs needs netlink), rather than refuse every write later.
            dataplane::ha::holds_address(ha.management_vip).context(
                "an HA node must list its addresses to know its role (a systemd sandbox must allow AF_NETLINK)",
            )?;
            Some(Pair::new(ha)?)
        }
        None => None,
    };
    runtime.block_on(async {
        let app = Arc::new(App {
            store,
            transactions,
            reloader: Reloader::new(settings.reload.clone()),
            auth: Authenticator::default(),
            ha,
        });
        if let Some(pair) = &app.ha {
            let s = &pair.settings;
            println!(
                "haproxy-dataplaneapi: HA pair: this node {}, peer {}:{}, management VIP {}: {}",
                s.node_address,
                s.peer_address,
                s.peer_port,
                s.management_vip,
                pair.role().as_str().to_uppercase()
            );
            tokio::spawn(dataplane::ha::replicate::watch(app.clone()));
        }
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        println!(
            "haproxy-dataplaneapi: serving https://{} for {} (version {})",
            settings.listen,
            settings.config_file.display(),
            snap.version()
        );
        dataplane::server::serve(listener, tls, api::router(app)).await
    })
}
