//! Who owns which section of haproxy.cfg. haproxy-firstboot writes `global`, the unnamed
//! `defaults` and `userlist controller` on every boot from the node's own properties (its
//! addresses, its password hash); everything else is the Data Plane API's, created by the
//! Supervisor. An HA pair replicates exactly the API's sections and each node keeps its own
//! first-boot ones.

use super::document::{Document, Section};
use super::model::{self, Kind};

/// The userlist first boot writes and the API authenticates against.
pub const FIRST_BOOT_USERLIST: &str = "controller";

/// Whether the section `keyword name` is one first boot writes (`name` empty when it has none).
pub fn is_first_boot_section(keyword: &str, name: &str) -> bool {
    match keyword {
        "global" => true,
        "defaults" => name.is_empty() || name.starts_with("unnamed_defaults"),
        "userlist" => name == FIRST_BOOT_USERLIST,
        _ => false,
    }
}

impl Section {
    /// Whether first boot owns this section (see [`is_first_boot_section`]).
    pub fn is_first_boot(&self) -> bool {
        is_first_boot_section(&self.keyword, self.name.as_deref().unwrap_or(""))
    }
}

impl Document {
    /// The sections an HA pair replicates: every one first boot does not own, in file order.
    pub fn replicated_sections(&self) -> impl Iterator<Item = &Section> + '_ {
        self.sections.iter().filter(|s| !s.is_first_boot())
    }

    /// The replicated sections' text, exactly as in the file (what a digest is taken of).
    pub fn replicated_text(&self) -> String {
        self.replicated_sections().map(Section::text).collect()
    }

    /// This document's first-boot sections followed by `replicated` (which must hold none of
    /// them): the peer's API sections laid over this node's own file. The preamble is kept.
    pub fn with_replicated(&self, replicated: Vec<Section>) -> Document {
        let mut sections: Vec<Section> = self
            .sections
            .iter()
            .filter(|s| s.is_first_boot())
            .cloned()
            .collect();
        if !replicated.is_empty()
            && let Some(last) = sections.last_mut()
            && last.body.last().is_none_or(|l| !l.trim().is_empty())
        {
            last.body.push(String::new());
        }
        sections.extend(replicated);
        Document {
            version: self.version,
            preamble: self.preamble.clone(),
            sections,
        }
    }

    /// The IP addresses the frontends bind (`bind ADDRESS:PORT`), each once, in file order;
    /// binds without an address or with a name haproxy resolves are left out.
    pub fn frontend_bind_addresses(&self) -> Vec<std::net::IpAddr> {
        let mut out = Vec::new();
        for fe in self.sections_of("frontend") {
            let Some(name) = fe.name.as_deref() else {
                continue;
            };
            for bind in model::list(self, Kind::Bind, Some(name)).unwrap_or_default() {
                let address = bind["address"].as_str().unwrap_or("");
                let address = address.trim_start_matches('[').trim_end_matches(']');
                if let Ok(ip) = address.parse()
                    && !out.contains(&ip)
                {
                    out.push(ip);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# _version=9\nglobal\n  daemon\n\ndefaults\n  mode tcp\n\ndefaults named\n  mode http\n\nuserlist controller\n  user admin password $6$x$y\n\nuserlist other\n  user u insecure-password p\n\nfrontend vip1\n  bind 10.0.0.1:443 name a\n  bind 10.0.0.2:443 name b\n  bind :80 name c\n  default_backend b1\n\nfrontend vip2\n  bind 10.0.0.1:80 name a\n\nbackend b1\n  server s1 10.1.0.1:443\n";

    #[test]
    fn first_boot_owns_global_the_unnamed_defaults_and_userlist_controller() {
        assert!(is_first_boot_section("global", ""));
        assert!(is_first_boot_section("defaults", ""));
        assert!(is_first_boot_section("defaults", "unnamed_defaults_1"));
        assert!(!is_first_boot_section("defaults", "named"));
        assert!(is_first_boot_section("userlist", "controller"));
        assert!(!is_first_boot_section("userlist", "other"));
        assert!(!is_first_boot_section("frontend", "controller"));
        assert!(!is_first_boot_section("backend", ""));
        let doc = Document::parse(FILE);
        let names: Vec<String> = doc
            .replicated_sections()
            .map(|s| format!("{} {}", s.keyword, s.name.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            names,
            [
                "defaults named",
                "userlist other",
                "frontend vip1",
                "frontend vip2",
                "backend b1"
            ]
        );
    }

    #[test]
    fn the_peers_sections_are_laid_over_this_nodes_own() {
        let mine = Document::parse(
            "# _version=3\n# mine\nglobal\n  nbthread 2\nuserlist controller\n  user admin password $6$mine$\nbackend old\n  mode tcp\n",
        );
        let theirs = Document::parse(FILE);
        let merged = mine.with_replicated(theirs.replicated_sections().cloned().collect());
        assert_eq!(merged.version, 3);
        assert_eq!(merged.replicated_text(), theirs.replicated_text());
        let text = merged.render();
        assert!(
            text.starts_with("# _version=3\n# mine\nglobal\n  nbthread 2\n"),
            "{text}"
        );
        assert!(
            text.contains("user admin password $6$mine$\n\ndefaults named\n"),
            "{text}"
        );
        assert!(!text.contains("backend old"), "{text}");
        assert!(
            !text.contains("$6$x$y"),
            "the peer's userlist is not taken: {text}"
        );
    }

    #[test]
    fn bind_addresses_of_frontends() {
        let doc = Document::parse(FILE);
        let ips: Vec<String> = doc
            .frontend_bind_addresses()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ips, ["10.0.0.1", "10.0.0.2"]);
    }
}
