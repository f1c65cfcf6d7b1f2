//! The appliance's HAProxy Data Plane API v2 server: haproxy.cfg edited over REST.
//!
//! The data flows one way: a request (`api`) → the configuration model (`cfg`) → a candidate
//! file checked by `haproxy -c` and renamed into place (`store`; `transactions` keep working
//! copies) → a reload (`reload`). `settings` reads the Data Plane API's own YAML configuration,
//! `auth` checks credentials against the userlist, `server` is the TLS listener, and `ha`
//! is this node's half of an HA pair (role, replication to the peer, keepalived's subcommands).
//!
//! Without the default feature `server` the crate is only `cfg`, the haproxy.cfg model that
//! haproxy-firstboot uses too.

#[cfg(feature = "server")]
pub mod api;
#[cfg(feature = "server")]
pub mod auth;
pub mod cfg;
#[cfg(feature = "server")]
pub mod ha;
#[cfg(feature = "server")]
pub mod reload;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod settings;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod transactions;

/// What `--version` and `GET /v2/info` say (the build report and the OVF name the server by it).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (HAProxy Data Plane API v2)");
