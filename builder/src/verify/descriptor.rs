//! Checks of the descriptor against itself and against the package's files.

use std::collections::{BTreeSet, HashSet};

use image::vmdk::StreamFinding;
use image::vmdk::header::SparseHeader;
use ovf::Envelope;

use super::members::name_problem;
use super::package::Package;
use super::{Check, Findings};

pub(crate) fn check(
    package: &Package,
    ovf_name: &str,
    envelope: &Envelope,
    findings: &mut Findings,
) {
    check_references(package, ovf_name, envelope, findings);
    check_disks(package, envelope, findings);
    check_configurations(envelope, ovf_name, findings);
    check_links(envelope, ovf_name, findings);
}

/// Every `References` file is a safe bare name, present, with its declared size; every
/// package member is referenced.
fn check_references(
    package: &Package,
    ovf_name: &str,
    envelope: &Envelope,
    findings: &mut Findings,
) {
    let mut ids = HashSet::new();
    for file in &envelope.references {
        if !ids.insert(file.id.as_str()) {
            findings.error(
                Check::DuplicateId,
                Some(ovf_name),
                format!("References declares the file id `{}` twice", file.id),
            );
        }
        if let Some((check, message)) = name_problem(&file.href) {
            findings.error(
                check,
                Some(ovf_name),
                format!(
                    "References file `{}` (id {}): {message}",
                    file.href, file.id
                ),
            );
            continue;
        }
        match package.size(&file.href) {
            None => findings.error(
                Check::MissingFile,
                Some(&file.href),
                format!(
                    "References lists `{}` (id {}) but the package has no such file",
                    file.href, file.id
                ),
            ),
            Some(actual) => match file.size {
                Some(declared) if declared != actual => findings.error(
                    Check::FileSize,
                    Some(&file.href),
                    format!(
                        "ovf:size in the descriptor is {declared} bytes but the file has \
                         {actual} bytes; ovf:size must be the exact length"
                    ),
                ),
                Some(_) => {}
                None => findings.warn(
                    Check::FileSize,
                    Some(&file.href),
                    format!("References file id {} has no ovf:size", file.id),
                ),
            },
        }
        if file.compression.as_deref().is_some_and(|c| c != "identity") {
            findings.warn(
                Check::Compression,
                Some(&file.href),
                format!(
                    "ovf:compression=\"{}\": vSphere expects uncompressed files (the VMDK is \
                     compressed already)",
                    file.compression.as_deref().unwrap_or_default()
                ),
            );
        }
    }
    let referenced: HashSet<&str> = envelope
        .references
        .iter()
        .map(|f| f.href.as_str())
        .collect();
    for m in package.members() {
        let special = m.name == ovf_name || m.name.ends_with(".mf") || m.name.ends_with(".cert");
        if !special && !referenced.contains(m.name.as_str()) {
            findings.warn(
                Check::UnreferencedFile,
                Some(&m.name),
                "the member is not listed in References; deployers ignore it",
            );
        }
    }
}

/// Bytes per allocation unit: `byte`, `byte * 2^20`, `byte * 1024`, absent = bytes.
fn unit_bytes(units: Option<&str>) -> Option<u64> {
    let Some(units) = units else { return Some(1) };
    let compact: String = units.chars().filter(|c| !c.is_whitespace()).collect();
    let rest = compact.strip_prefix("byte")?;
    if rest.is_empty() {
        return Some(1);
    }
    let factor = rest.strip_prefix('*')?;
    if let Some((base, exp)) = factor.split_once('^') {
        let base: u64 = base.parse().ok()?;
        let exp: u32 = exp.parse().ok()?;
        base.checked_pow(exp)
    } else {
        factor.parse().ok()
    }
}

/// Each disk's file exists, and its capacity equals the VMDK header's.
fn check_disks(package: &Package, envelope: &Envelope, findings: &mut Findings) {
    let Some(section) = &envelope.disk_section else {
        return;
    };
    let mut ids = HashSet::new();
    for disk in &section.disks {
        if !ids.insert(disk.disk_id.as_str()) {
            findings.error(
                Check::DuplicateId,
                None,
                format!("DiskSection declares the disk id `{}` twice", disk.disk_id),
            );
        }
        let label = format!("disk `{}`", disk.disk_id);
        let capacity = declared_capacity(disk, &label, findings);
        let Some(file_ref) = &disk.file_ref else {
            continue; // a blank disk created at deployment
        };
        let Some(file) = envelope.references.iter().find(|f| &f.id == file_ref) else {
            findings.error(
                Check::UndefinedReference,
                None,
                format!(
                    "{label} refers to file id `{file_ref}`, which References does not declare"
                ),
            );
            continue;
        };
        if package.size(&file.href).is_none() || name_problem(&file.href).is_some() {
            continue; // reported with the References checks
        }
        if let (Some(capacity), Some(populated)) = (capacity, disk.populated_size)
            && populated > capacity
        {
            findings.warn(
                Check::DiskCapacity,
                Some(&file.href),
                format!(
                    "{label}: populatedSize {populated} is larger than the capacity {capacity}"
                ),
            );
        }
        let is_vmdk = disk.format.as_deref().is_some_and(|f| f.contains("vmdk"))
            || file.href.ends_with(".vmdk");
        if is_vmdk {
            check_vmdk(package, disk, &file.href, &label, capacity, findings);
        }
    }
}

/// The disk's capacity in bytes, when it is a number this tool understands; a capacity of 0
/// is an error.
fn declared_capacity(disk: &ovf::Disk, label: &str, findings: &mut Findings) -> Option<u64> {
    let capacity = match (
        disk.capacity.trim().parse::<u64>(),
        unit_bytes(disk.capacity_allocation_units.as_deref()),
    ) {
        (Ok(c), Some(u)) => c.checked_mul(u),
        (Err(_), _) if disk.capacity.contains("${") => None,
        _ => {
            findings.warn(
                Check::DiskCapacity,
                None,
                format!(
                    "{label}: capacity `{}` with units `{}` is not a number of bytes this \
                     tool understands",
                    disk.capacity,
                    disk.capacity_allocation_units.as_deref().unwrap_or("byte")
                ),
            );
            None
        }
    };
    if capacity == Some(0) {
        findings.error(
            Check::DiskCapacity,
            None,
            format!(
                "{label}: capacity 0 (`ovf:capacity=\"{}\"`): a disk of no bytes holds \
                 nothing to boot; the capacity must be the disk's size",
                disk.capacity
            ),
        );
    }
    capacity
}

/// A VMDK disk file `href`: a sparse header whose capacity is the descriptor's `capacity`
/// (bytes); one the descriptor declares streamOptimized is checked further.
fn check_vmdk(
    package: &Package,
    disk: &ovf::Disk,
    href: &str,
    label: &str,
    capacity: Option<u64>,
    findings: &mut Findings,
) {
    let mut head = [0u8; 512];
    let n = package.read_at(href, 0, &mut head).unwrap_or(0);
    let header = match SparseHeader::parse(&head[..n]) {
        Ok(h) => h,
        Err(e) => {
            findings.error(
                Check::VmdkHeader,
                Some(href),
                format!("{label}: not a sparse (streamOptimized) VMDK: {e}"),
            );
            return;
        }
    };
    let vmdk_bytes = header.capacity.saturating_mul(512);
    if header.capacity == 0 && capacity != Some(0) {
        findings.error(
            Check::DiskCapacity,
            Some(href),
            format!("{label}: the VMDK header says capacity 0: the disk holds nothing"),
        );
    }
    if let Some(capacity) = capacity
        && capacity != vmdk_bytes
    {
        findings.error(
            Check::DiskCapacity,
            Some(href),
            format!(
                "{label}: the descriptor's capacity is {capacity} bytes but the VMDK \
                     header says {vmdk_bytes} bytes ({} sectors)",
                header.capacity
            ),
        );
    }
    let stream = disk
        .format
        .as_deref()
        .is_some_and(|f| f.ends_with("#streamOptimized"));
    if stream {
        check_stream_descriptor(package, href, &header, findings);
    }
}

/// A disk declared streamOptimized must say so in its header and embedded descriptor, and end
/// as VMware's streams do (footer marker, footer, end-of-stream marker): qemu-img's streams
/// lack that end, and vSphere content libraries reject such disks, so a release must not ship
/// one. Cheap for any disk size: `image` reads the header, descriptor and last three sectors.
fn check_stream_descriptor(
    package: &Package,
    href: &str,
    header: &SparseHeader,
    findings: &mut Findings,
) {
    let size = package.size(href).unwrap_or(0);
    let mut read_at = |offset: u64, buf: &mut [u8]| package.read_at(href, offset, buf);
    for finding in image::vmdk::check_stream_quick(header, size, &mut read_at) {
        let message = match &finding {
            StreamFinding::NotStreamOptimized { flags } => format!(
                "the descriptor declares a streamOptimized disk but the header flags {flags:#x} \
                 lack compressed grains with markers (0x30000)"
            ),
            StreamFinding::TooShortForEnd
            | StreamFinding::NoEndOfStream { .. }
            | StreamFinding::NoFooter { .. } => format!(
                "streamOptimized VMDK {href}: {finding}; vSphere content libraries reject such \
                 disks (qemu-img writes them): convert it with `ova-builder convert`"
            ),
            StreamFinding::CreateType(found) => format!(
                "the embedded VMDK descriptor says createType=\"{found}\"; the OVF declares \
                 streamOptimized"
            ),
            StreamFinding::Descriptor(e) => {
                format!("the embedded VMDK descriptor does not parse: {e}")
            }
        };
        findings.error(Check::VmdkHeader, Some(href), message);
    }
}

/// Every `ovf:configuration` names a declared deployment option.
fn check_configurations(envelope: &Envelope, ovf_name: &str, findings: &mut Findings) {
    let declared = check_declared_options(envelope, ovf_name, findings);
    for (what, list) in configuration_uses(envelope) {
        for id in list.split_whitespace() {
            if !declared.contains(&id) {
                let known = if declared.is_empty() {
                    "the descriptor declares no deployment options".to_string()
                } else {
                    format!("declared: {}", declared.join(", "))
                };
                findings.error(
                    Check::UndefinedReference,
                    Some(ovf_name),
                    format!(
                        "{what} has ovf:configuration `{id}`, which no DeploymentOption declares ({known})"
                    ),
                );
            }
        }
    }
}

/// The declared deployment option ids; a duplicate id or more than one default is a finding.
fn check_declared_options<'a>(
    envelope: &'a Envelope,
    ovf_name: &str,
    findings: &mut Findings,
) -> Vec<&'a str> {
    let declared: Vec<&str> = envelope
        .deployment_option_section
        .iter()
        .flat_map(|s| s.configurations.iter().map(|c| c.id.as_str()))
        .collect();
    let mut seen = HashSet::new();
    for id in &declared {
        if !seen.insert(*id) {
            findings.error(
                Check::DuplicateId,
                Some(ovf_name),
                format!("DeploymentOptionSection declares `{id}` twice"),
            );
        }
    }
    if let Some(section) = &envelope.deployment_option_section {
        let defaults = section
            .configurations
            .iter()
            .filter(|c| c.default == Some(true))
            .count();
        if defaults > 1 {
            findings.error(
                Check::DuplicateId,
                Some(ovf_name),
                format!("{defaults} deployment options are marked default; at most one may be"),
            );
        }
    }
    declared
}

/// Every `ovf:configuration` attribute of the descriptor, with what carries it (for messages),
/// in document order: networks, hardware items, properties and their values.
fn configuration_uses(envelope: &Envelope) -> Vec<(String, &str)> {
    let mut uses: Vec<(String, &str)> = Vec::new();
    if let Some(ns) = &envelope.network_section {
        for n in &ns.networks {
            if let Some(c) = &n.configuration {
                uses.push((format!("network `{}`", n.name), c));
            }
        }
    }
    let Some(vs) = &envelope.virtual_system else {
        return uses;
    };
    for hw in &vs.virtual_hardware_sections {
        for item in &hw.items {
            if let Some(c) = &item.configuration {
                let what = format!(
                    "hardware item `{}` (InstanceID {})",
                    item.element_name, item.instance_id
                );
                uses.push((what, c));
            }
        }
    }
    for section in &vs.product_sections {
        for p in section.properties() {
            let key = section.full_key(p);
            if let Some(c) = &p.configuration {
                uses.push((format!("property `{key}`"), c));
            }
            for v in &p.values {
                if let Some(c) = &v.configuration {
                    uses.push((format!("a <Value> of property `{key}`"), c));
                }
            }
        }
    }
    uses
}

/// Network connections, host resources and parents name things that exist; property keys
/// are unique.
fn check_links(envelope: &Envelope, ovf_name: &str, findings: &mut Findings) {
    let networks: BTreeSet<&str> = envelope
        .network_section
        .iter()
        .flat_map(|s| s.networks.iter().map(|n| n.name.as_str()))
        .collect();
    let disks: BTreeSet<&str> = envelope
        .disk_section
        .iter()
        .flat_map(|s| s.disks.iter().map(|d| d.disk_id.as_str()))
        .collect();
    let files: BTreeSet<&str> = envelope.references.iter().map(|f| f.id.as_str()).collect();
    let Some(vs) = &envelope.virtual_system else {
        return;
    };
    for hw in &vs.virtual_hardware_sections {
        let instances: BTreeSet<&str> = hw.items.iter().map(|i| i.instance_id.as_str()).collect();
        for item in &hw.items {
            let what = format!(
                "hardware item `{}` (InstanceID {})",
                item.element_name, item.instance_id
            );
            for c in &item.connections {
                if !networks.contains(c.as_str()) {
                    findings.error(
                        Check::UndefinedReference,
                        Some(ovf_name),
                        format!("{what} connects to network `{c}`, which NetworkSection does not declare"),
                    );
                }
            }
            for r in &item.host_resources {
                let (kind, id, known) = if let Some(id) = r.strip_prefix("ovf:/disk/") {
                    ("disk", id, &disks)
                } else if let Some(id) = r.strip_prefix("ovf:/file/") {
                    ("file", id, &files)
                } else {
                    continue;
                };
                if !known.contains(id) {
                    findings.error(
                        Check::UndefinedReference,
                        Some(ovf_name),
                        format!(
                            "{what} uses {kind} `{id}` ({r}), which the descriptor does not declare"
                        ),
                    );
                }
            }
            if let Some(parent) = &item.parent
                && !instances.contains(parent.as_str())
            {
                findings.error(
                    Check::UndefinedReference,
                    Some(ovf_name),
                    format!("{what} has Parent {parent}, which no item's InstanceID is"),
                );
            }
        }
    }
    let mut keys = HashSet::new();
    for section in &vs.product_sections {
        for p in section.properties() {
            let key = section.full_key(p);
            let key = match &section.instance {
                Some(i) if !i.is_empty() => format!("{key}.{i}"),
                _ => key,
            };
            if !keys.insert(key.clone()) {
                findings.error(
                    Check::DuplicateId,
                    Some(ovf_name),
                    format!("the property key `{key}` is declared twice"),
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::unit_bytes;

    #[test]
    fn allocation_units() {
        assert_eq!(unit_bytes(None), Some(1));
        assert_eq!(unit_bytes(Some("byte")), Some(1));
        assert_eq!(unit_bytes(Some("byte * 2^30")), Some(1 << 30));
        assert_eq!(unit_bytes(Some("byte*1024")), Some(1024));
        assert_eq!(unit_bytes(Some("MegaBytes")), None);
    }
}
