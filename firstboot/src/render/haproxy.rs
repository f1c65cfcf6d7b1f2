//! `/etc/haproxy/haproxy.cfg`, the Data Plane API's configuration file and its unit.
//!
//! haproxy.cfg has two writers: first boot owns `global`, the unnamed `defaults` and `userlist
//! controller`; the Data Plane API adds the Supervisor's frontends and backends at run time.
//! A re-run rewrites only first boot's sections and keeps the others verbatim (and the Data
//! Plane API's `# _version=` line), so a reboot never drops the virtual services. The sections
//! are read with the Data Plane API's own model of haproxy.cfg (`dataplane::cfg`), so both
//! programs agree on where a section starts and ends.

use std::net::Ipv4Addr;

use askama::Template;
use dataplane::cfg::Document;
use dataplane::cfg::userlist::{Secret, users};

use super::ha::HaYaml;
use super::{Inputs, RenderedFile, SERVER_CERT, SERVER_KEY};
use crate::config::{Addressing, ValidatedConfig};

pub const HAPROXY_CFG: &str = "etc/haproxy/haproxy.cfg";
/// The Data Plane API 2.x configuration (`dataplaneapi -f`), read by the appliance's own server
/// and by the Go dataplaneapi alike.
pub const DATAPLANEAPI_YAML: &str = "etc/haproxy/dataplaneapi.yaml";
/// The environment file earlier releases wrote for the unit; removed when found.
pub const OBSOLETE_DATAPLANEAPI_CFG: &str = "etc/haproxy/dataplaneapi.cfg";
pub const DATAPLANEAPI_UNIT: &str = "etc/systemd/system/dataplaneapi.service";

/// The unit file, shared with the image build (`firstboot/systemd/dataplaneapi.service`).
const DATAPLANEAPI_SERVICE: &str = include_str!("../../systemd/dataplaneapi.service");

/// The name of the userlist the Data Plane API authenticates against.
pub const USERLIST: &str = dataplane::cfg::ownership::FIRST_BOOT_USERLIST;

#[derive(Template)]
#[template(path = "haproxy.cfg", escape = "none")]
struct HaproxyCfg<'a> {
    user: &'a str,
    password_hash: &'a str,
}

/// Every value is an IPv4 address, a port or one of this crate's fixed paths and names, none
/// of which YAML would read as anything but the plain scalar it is (the golden files show it).
#[derive(Template)]
#[template(path = "dataplaneapi.yaml", escape = "none")]
struct DataplaneYaml<'a> {
    tls_host: Ipv4Addr,
    port: u16,
    certificate: &'a str,
    key: &'a str,
    userlist: &'a str,
    haproxy_cfg: &'a str,
    /// The HA pair's section, when this node is one of two.
    ha: Option<HaYaml>,
}

pub(super) fn render(
    cfg: &ValidatedConfig,
    inputs: &Inputs<'_>,
    out: &mut Vec<RenderedFile>,
) -> Result<(), askama::Error> {
    let ours = HaproxyCfg {
        user: cfg.haproxy_user(),
        password_hash: inputs.haproxy_password_hash,
    }
    .render()?;
    let kept = inputs.existing_haproxy_cfg.map(split).unwrap_or_default();
    let mut body = ours;
    if !body.ends_with('\n') {
        body.push('\n');
    }
    for section in &kept.foreign_sections {
        body.push('\n');
        body.push_str(section.trim_end_matches('\n'));
        body.push('\n');
    }
    let text = with_version(inputs.existing_haproxy_cfg, &kept, body);
    // Secret-bearing (a password hash): readable by root only; haproxy reads it as root
    // before dropping privileges.
    out.push(RenderedFile::text(HAPROXY_CFG, text, 0o600));

    // The Data Plane API listens on the management IP; with DHCP it is not known before the
    // network starts, and in an HA pair it answers on the management VIP too (which only the
    // MASTER holds), so it listens on every address. nftables keeps the port closed on every
    // NIC but management.
    let tls_host = match cfg.management() {
        Addressing::Static { address, .. } if cfg.ha().is_none() => address.ip(),
        _ => Ipv4Addr::UNSPECIFIED,
    };
    let (certificate, key, haproxy_cfg) = (
        format!("/{SERVER_CERT}"),
        format!("/{SERVER_KEY}"),
        format!("/{HAPROXY_CFG}"),
    );
    let dp = DataplaneYaml {
        tls_host,
        port: cfg.dataplane_port(),
        certificate: &certificate,
        key: &key,
        userlist: USERLIST,
        haproxy_cfg: &haproxy_cfg,
        ha: cfg.ha().map(|ha| HaYaml::of(cfg, ha)),
    };
    out.push(RenderedFile::text(DATAPLANEAPI_YAML, dp.render()?, 0o644));
    out.push(RenderedFile::text(
        DATAPLANEAPI_UNIT,
        DATAPLANEAPI_SERVICE,
        0o644,
    ));
    Ok(())
}

/// The file's text: `body` under the Data Plane API's `# _version=N` line. A change of the file
/// is a new version (N + 1), so the API's clients see that the configuration moved on and a
/// transaction started before it can no longer be committed over the new sections; an
/// unchanged file keeps its version. A first boot writes no version line (the API counts 1).
fn with_version(existing: Option<&str>, kept: &Kept, body: String) -> String {
    let Some(existing) = existing else {
        return body;
    };
    let version: u64 = kept
        .version_line
        .as_deref()
        .and_then(|l| l.strip_prefix(VERSION_PREFIX))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(1);
    let existing_body = match existing.split_once('\n') {
        Some((first, rest)) if first.starts_with(VERSION_PREFIX) => rest,
        _ => existing,
    };
    if existing_body == body {
        return existing.to_string();
    }
    format!("{VERSION_PREFIX}{}\n{body}", version + 1)
}

const VERSION_PREFIX: &str = "# _version=";

#[derive(Default)]
struct Kept {
    version_line: Option<String>,
    foreign_sections: Vec<String>,
}

/// The version line and every section that is not first boot's, as the Data Plane API's own
/// model of the file reads them (one parser for the file both programs write).
fn split(existing: &str) -> Kept {
    let doc = Document::parse(existing);
    Kept {
        version_line: existing
            .lines()
            .next()
            .filter(|l| l.starts_with(VERSION_PREFIX))
            .map(String::from),
        // Which sections are first boot's is the Data Plane API's rule too (an HA pair
        // replicates exactly the others): one definition, `dataplane::cfg::ownership`.
        foreign_sections: doc.replicated_sections().map(|s| s.text()).collect(),
    }
}

/// The password hash of `user` in `userlist controller` of an existing haproxy.cfg.
pub fn userlist_hash(existing: &str, user: &str) -> Option<String> {
    users(&Document::parse(existing), USERLIST)
        .into_iter()
        .find_map(|u| match u.secret {
            Secret::Hash(hash) if u.name == user => Some(hash),
            _ => None,
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const EXISTING: &str = "# _version=7\nglobal\n  daemon\n\ndefaults\n  mode tcp\n\nuserlist controller\n  user admin password $6$abc$def\n\nfrontend vip1\n  bind 10.0.0.1:443\n  default_backend b1\n\nbackend b1\n  server s1 10.1.0.1:443\n";

    #[test]
    fn keeps_foreign_sections_and_version() {
        let k = split(EXISTING);
        assert_eq!(k.version_line.as_deref(), Some("# _version=7"));
        assert_eq!(k.foreign_sections.len(), 2);
        assert!(k.foreign_sections[0].starts_with("frontend vip1\n"));
        assert!(k.foreign_sections[1].contains("server s1"));
    }

    #[test]
    fn a_changed_file_is_a_new_version_and_an_unchanged_one_is_not() {
        let kept = split(EXISTING);
        let unchanged = EXISTING.split_once('\n').unwrap().1.to_string();
        assert_eq!(
            with_version(Some(EXISTING), &kept, unchanged.clone()),
            EXISTING
        );
        let changed = unchanged.replace("$6$abc$def", "$6$new$hash");
        let text = with_version(Some(EXISTING), &kept, changed);
        assert!(text.starts_with("# _version=8\nglobal\n"), "{text}");
        let no_line = with_version(
            Some("global\n  daemon\n"),
            &split("global\n  daemon\n"),
            "global\n  maxconn 1\n".into(),
        );
        assert!(no_line.starts_with("# _version=2\n"), "{no_line}");
        assert_eq!(
            with_version(None, &Kept::default(), "global\n".into()),
            "global\n"
        );
    }

    #[test]
    fn finds_the_userlist_hash() {
        assert_eq!(
            userlist_hash(EXISTING, "admin").as_deref(),
            Some("$6$abc$def")
        );
        assert_eq!(userlist_hash(EXISTING, "other"), None);
    }
}
