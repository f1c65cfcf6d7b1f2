//! `haproxy-firstboot` as a library. Data flows one way:
//! environment source → properties → validated config → rendered files → atomic apply.
//!
//! - [`source`]: where the OVF environment comes from (guestinfo, CD-ROM, file).
//! - [`env`](mod@env): the OVF environment document → key/value properties (+ adapters).
//! - [`validate`]: properties → [`config::ValidatedConfig`], every problem reported together.
//!   [`pem`] repairs pasted certificates/keys, [`ranges`] turns `first-last` into CIDRs,
//!   [`deployment`] decides default/frontend from the NICs, [`definition`] holds the labels,
//!   defaults and PCI slots of `builder/appliance/haproxy.toml`.
//! - [`load()`]: the shared front half of `check` and `apply` (source → parse → deployment →
//!   validate), with [`LoadError::exit_code`] 2 (no/unusable document) or 1 (invalid).
//! - [`quote`]: how input appears in messages: a short escaped prefix with its length, and
//!   never any part of a secret property's value (secrets come from [`definition`]).
//! - [`config`]: the validated, typed configuration (the contract between validation and apply).
//! - [`render`]: validated config → the files of the appliance (askama templates).
//! - [`apply`]: staged, fsynced, renamed into place; idempotent.

pub mod apply;
pub mod config;
pub mod crypt;
pub mod definition;
pub mod deployment;
pub mod env;
pub mod load;
pub mod pem;
pub mod quote;
pub mod ranges;
pub mod render;
pub mod source;
pub mod summary;
pub mod tls;
pub mod validate;

pub use load::{LoadError, LoadOptions, Loaded, load};
