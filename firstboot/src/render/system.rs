//! Host name, `/etc/hosts`, sshd's `PermitRootLogin`, and root's entry in `/etc/shadow`.

use askama::Template;

use super::{Inputs, RenderedFile};
use crate::config::{Addressing, ValidatedConfig};

pub const HOSTNAME: &str = "etc/hostname";
pub const HOSTS: &str = "etc/hosts";
/// A drop-in: Debian's sshd_config includes `/etc/ssh/sshd_config.d/*.conf` first, and the
/// first value sshd reads for a keyword wins.
pub const SSHD_DROPIN: &str = "etc/ssh/sshd_config.d/50-haproxy-firstboot.conf";
pub const SHADOW: &str = "etc/shadow";

#[derive(Template)]
#[template(path = "hosts", escape = "none")]
struct Hosts<'a> {
    host_ip: String,
    names: &'a str,
}

#[derive(Template)]
#[template(path = "sshd.conf", escape = "none")]
struct Sshd {
    permit_root_login: bool,
}

pub(super) fn render(
    cfg: &ValidatedConfig,
    inputs: &Inputs<'_>,
    out: &mut Vec<RenderedFile>,
) -> Result<(), askama::Error> {
    let hostname = cfg.hostname();
    out.push(RenderedFile::text(HOSTNAME, format!("{hostname}\n"), 0o644));
    let names = match hostname.split_once('.') {
        Some((short, _)) => format!("{hostname} {short}"),
        None => hostname.to_string(),
    };
    // The host name resolves to the management IP when it is static; else to 127.0.1.1, as
    // Debian does for hosts without a permanent address.
    let host_ip = match cfg.management() {
        Addressing::Static { address, .. } => address.ip().to_string(),
        Addressing::Dhcp => "127.0.1.1".to_string(),
    };
    let hosts = Hosts {
        host_ip,
        names: &names,
    };
    out.push(RenderedFile::text(HOSTS, hosts.render()?, 0o644));
    let sshd = Sshd {
        permit_root_login: cfg.permit_root_login(),
    };
    out.push(RenderedFile::text(SSHD_DROPIN, sshd.render()?, 0o644));
    if let Some((hash, day)) = inputs.root_password {
        out.push(RenderedFile::text(
            SHADOW,
            shadow_with_root(inputs.existing_shadow, hash, day),
            0o640,
        ));
    }
    Ok(())
}

/// `/etc/shadow` with root's password hash and last-change day replaced (or a root entry
/// added); every other line is kept byte for byte. Any line whose name field is `root` is
/// root's entry, however malformed: the first becomes a complete entry (its remaining fields
/// kept, missing ones filled with Debian's defaults), later ones are dropped — PAM reads only
/// the first, so a second root entry is at best dead and at worst confusing.
fn shadow_with_root(existing: Option<&str>, hash: &str, day: u64) -> String {
    let mut out = String::new();
    let mut found = false;
    for line in existing.unwrap_or("").lines() {
        if line.split(':').next() != Some("root") {
            out.push_str(line);
            out.push('\n');
        } else if !found {
            found = true;
            out.push_str(&root_entry(line, hash, day));
            out.push('\n');
        }
    }
    if !found {
        out.insert_str(0, &format!("{}\n", root_entry("root", hash, day)));
    }
    out
}

/// `line` (root's entry) with the hash and day set and all nine fields present.
fn root_entry(line: &str, hash: &str, day: u64) -> String {
    // name:hash:last change:min:max:warn:inactive:expire:reserved
    const DEFAULTS: [&str; 9] = ["root", "", "", "0", "99999", "7", "", "", ""];
    let day = day.to_string();
    let given: Vec<&str> = line.split(':').collect();
    let fields: Vec<&str> = DEFAULTS
        .iter()
        .enumerate()
        .map(|(i, default)| match i {
            1 => hash,
            2 => &day,
            _ => given.get(i).copied().unwrap_or(default),
        })
        .collect();
    fields.join(":")
}

/// root's password hash in an `/etc/shadow` text.
pub fn shadow_root_hash(shadow: &str) -> Option<&str> {
    shadow.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next() == Some("root")).then(|| f.next()).flatten()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_root() {
        let old = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nuser:$6$x$y:19001:0:99999:7:::\n";
        let new = shadow_with_root(Some(old), "$6$s$h", 20000);
        assert_eq!(
            new,
            "root:$6$s$h:20000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nuser:$6$x$y:19001:0:99999:7:::\n"
        );
        assert_eq!(shadow_root_hash(&new), Some("$6$s$h"));
    }

    #[test]
    fn a_malformed_root_entry_is_replaced_not_duplicated() {
        for old in ["root\n", "root:\n", "root:*\n", "root:*:19000:0\n"] {
            let shadow = format!("{old}daemon:*:1:0:99999:7:::\nroot:!:3:0:99999:7:::\n");
            let new = shadow_with_root(Some(&shadow), "$6$s$h", 5);
            let roots: Vec<_> = new.lines().filter(|l| l.starts_with("root:")).collect();
            assert_eq!(roots.len(), 1, "{old:?} -> {new}");
            assert_eq!(roots[0].split(':').count(), 9, "{old:?} -> {new}");
            assert!(roots[0].starts_with("root:$6$s$h:5:"), "{old:?} -> {new}");
            assert!(new.contains("daemon:*:1:0:99999:7:::\n"), "{new}");
            assert_eq!(shadow_root_hash(&new), Some("$6$s$h"));
        }
    }

    #[test]
    fn adds_a_missing_root() {
        assert_eq!(
            shadow_with_root(Some("daemon:*:1:0:99999:7:::\n"), "$6$s$h", 5),
            "root:$6$s$h:5:0:99999:7:::\ndaemon:*:1:0:99999:7:::\n"
        );
        assert_eq!(
            shadow_with_root(None, "$6$s$h", 5),
            "root:$6$s$h:5:0:99999:7:::\n"
        );
    }
}
