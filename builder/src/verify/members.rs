//! Checks of the OVA's tar headers: format, member types, names, and order.

use std::collections::HashSet;

use crate::ova::{ArchiveEnd, HeaderFormat, Member, MemberKind};

use super::package::Package;
use super::{Check, Findings};

/// Why a member name (or a `References` href) is not a bare file name, if it is not.
pub(crate) fn name_problem(name: &str) -> Option<(Check, String)> {
    if name.is_empty() {
        return Some((Check::Subdirectory, "the name is empty".into()));
    }
    if name.starts_with('/') {
        return Some((
            Check::AbsolutePath,
            "an absolute path: extracting it would write outside the package".into(),
        ));
    }
    if name.split('/').any(|c| c == "..") {
        return Some((
            Check::ParentPath,
            "the path contains `..`: extracting it would write outside the package".into(),
        ));
    }
    if name.starts_with("./") {
        return Some((
            Check::DotSlashName,
            "the name starts with `./`; vSphere expects bare names (`tar -C DIR` with explicit \
             file names, not `.`, writes them)"
                .into(),
        ));
    }
    if name.contains('/') {
        return Some((
            Check::Subdirectory,
            "the name has a directory part; package files are bare names".into(),
        ));
    }
    None
}

/// Checks every header and returns the regular members that are safe to use (first
/// occurrence of each name), in archive order.
pub(crate) fn check_headers(all: &[Member], findings: &mut Findings) -> Vec<Member> {
    let mut usable = Vec::new();
    let mut seen = HashSet::new();
    for (index, m) in all.iter().enumerate() {
        let at = format!("member {} at byte {}", index + 1, m.header_offset);
        let name = Some(m.name.as_str());
        if report_meta_record(all, index, &at, findings) {
            continue;
        }
        if m.format == HeaderFormat::Other {
            findings.error(
                Check::TarFormat,
                name,
                format!("{at} is neither a ustar nor a GNU tar header (old V7 format?)"),
            );
        }
        let mut safe = true;
        if let Some((check, message)) = kind_problem(&m.kind) {
            findings.error(check, name, format!("{at}: {message}"));
            safe = false;
        }
        if let Some((check, message)) = name_problem(&m.name) {
            findings.error(check, name, format!("{at}: {message}"));
            safe = false;
        }
        if !seen.insert(m.name.clone()) {
            findings.error(
                Check::DuplicateMember,
                name,
                format!("{at} repeats an earlier member's name; tools disagree on which copy wins"),
            );
            safe = false;
        }
        if safe {
            usable.push(m.clone());
        }
    }
    usable
}

/// Reports a PAX or GNU long-name record (a header that describes another member, not a
/// member of its own); true when `all[index]` is one.
fn report_meta_record(all: &[Member], index: usize, at: &str, findings: &mut Findings) -> bool {
    let Some(m) = all.get(index) else {
        return false;
    };
    match &m.kind {
        MemberKind::PaxHeader | MemberKind::PaxGlobalHeader => {
            let what = if m.kind == MemberKind::PaxHeader {
                "extended"
            } else {
                "global"
            };
            // An extended header describes the member after it: report it there.
            let described = match m.kind {
                MemberKind::PaxHeader => all.get(index + 1).map(|next| next.name.as_str()),
                _ => None,
            };
            findings.error(
                Check::PaxHeader,
                described,
                format!(
                    "{at} is a PAX {what} header (as Python's tarfile or `tar --format=pax` \
                     write); vSphere refuses PAX archives: write ustar headers (GNU for \
                     members over 8 GiB)"
                ),
            );
            true
        }
        MemberKind::GnuLongName => {
            findings.error(
                Check::GnuLongName,
                Some(m.name.as_str()),
                format!("{at} is a GNU long-name record; package names must fit a ustar header"),
            );
            true
        }
        _ => false,
    }
}

/// Why a member of this kind cannot be part of a package, if it cannot.
fn kind_problem(kind: &MemberKind) -> Option<(Check, String)> {
    match kind {
        MemberKind::Regular => None,
        MemberKind::Symlink(target) => Some((
            Check::LinkMember,
            format!("a symbolic link to `{target}`; a package holds regular files only"),
        )),
        MemberKind::HardLink(target) => Some((
            Check::LinkMember,
            format!("a hard link to `{target}`; a package holds regular files only"),
        )),
        MemberKind::CharDevice | MemberKind::BlockDevice | MemberKind::Fifo => Some((
            Check::SpecialMember,
            "a device or FIFO; a package holds regular files only".to_string(),
        )),
        MemberKind::Directory => Some((
            Check::DirectoryMember,
            "a directory; a package holds bare regular files only".to_string(),
        )),
        MemberKind::Other(flag) => Some((
            Check::TarFormat,
            format!("an entry of unknown type {flag}; a package holds regular files only"),
        )),
        MemberKind::PaxHeader | MemberKind::PaxGlobalHeader | MemberKind::GnuLongName => None,
    }
}

/// What follows the end-of-archive must be zeros: anything else is content some tool sees
/// and `verify` would not have checked.
pub(crate) fn check_end(end: &ArchiveEnd, findings: &mut Findings) {
    match end {
        ArchiveEnd::Clean | ArchiveEnd::Missing => {}
        ArchiveEnd::HiddenMember {
            end,
            header_offset,
            name,
        } => findings.error(
            Check::HiddenMember,
            Some(name),
            format!(
                "a tar header at byte {header_offset}, after the end-of-archive zero block at \
                 byte {end}: `tar -i` (ignore zeros) and some other readers extract this \
                 member, `tar` and this check do not; an OVA ends with zero blocks only"
            ),
        ),
        ArchiveEnd::TrailingData { end, offset } => findings.error(
            Check::TrailingData,
            None,
            format!(
                "data after the end of the archive: the end-of-archive zero blocks start at \
                 byte {end}, but byte {offset} is not zero; an OVA ends with zero blocks only"
            ),
        ),
    }
}

/// The order vSphere expects: the descriptor first; the manifest and certificate together
/// right after it (or both at the end); then the files in `References` order.
pub(crate) fn check_order(
    package: &Package,
    ovf: &str,
    manifest: Option<&str>,
    cert: Option<&str>,
    envelope: &ovf::Envelope,
    findings: &mut Findings,
) {
    let names: Vec<&str> = package.members().iter().map(|m| m.name.as_str()).collect();
    if names.first() != Some(&ovf) {
        findings.error(
            Check::MemberOrder,
            Some(ovf),
            format!(
                "the descriptor is member {} but must be the first (the first is `{}`): \
                 vSphere reads the descriptor before anything else",
                names.iter().position(|n| *n == ovf).map_or(0, |i| i + 1),
                names.first().copied().unwrap_or_default()
            ),
        );
    }
    let pos = |n: &str| names.iter().position(|m| *m == n);
    let rest: Vec<&str> = names.iter().copied().filter(|n| *n != ovf).collect();
    let block: Vec<&str> = [manifest, cert].into_iter().flatten().collect();
    if !block.is_empty() {
        let at_front = rest.starts_with(&block);
        let at_end = rest.ends_with(&block);
        if !(at_front || at_end) {
            let where_ = block
                .iter()
                .map(|n| format!("`{n}` is member {}", pos(n).map_or(0, |i| i + 1)))
                .collect::<Vec<_>>()
                .join(", ");
            findings.error(
                Check::MemberOrder,
                block.first().copied(),
                format!(
                    "{where_}: the manifest and certificate must come together (manifest \
                     first) right after the descriptor, or both at the end"
                ),
            );
        }
    }
    // The referenced files in References order.
    let referenced: Vec<&str> = envelope
        .references
        .iter()
        .map(|f| f.href.as_str())
        .filter(|h| pos(h).is_some())
        .collect();
    let in_archive: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| referenced.contains(n))
        .collect();
    if in_archive != referenced {
        findings.error(
            Check::MemberOrder,
            None,
            format!(
                "the files are in the order {} but References lists {}; vSphere streams \
                 them in References order",
                in_archive.join(", "),
                referenced.join(", ")
            ),
        );
    }
}
