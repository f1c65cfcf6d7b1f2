//! `haproxy-dataplaneapi`: the appliance's HAProxy Data Plane API v2 server.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use dataplane::api::{self, App};
use dataplane::auth::Authenticator;
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
  curl --cacert ca.crt -u admin:PASSWORD https://192.168.0.2:5556/v2/services/haproxy/configuration/frontends";

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
        default_value = "/etc/haproxy/dataplaneapi.yaml"
    )]
    config: PathBuf,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("haproxy-dataplaneapi: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
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
    runtime.block_on(async {
        let app = Arc::new(App {
            store,
            transactions,
            reloader: Reloader::new(settings.reload.clone()),
            auth: Authenticator::default(),
        });
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
