//! The build pipeline: definition + disk → VMDK → descriptor → manifest (→ signature) → OVA.
//!
//! Data flows one way and every large byte is touched as few times as possible:
//! 1. the input disk is read once and converted into an anonymous scratch VMDK in the output
//!    directory, through a hashing writer, so the VMDK's manifest digest and size are known
//!    the moment it is written;
//! 2. the descriptor is rendered with those facts, then the manifest and the signature;
//! 3. the OVA is written to a temporary: `.ovf`, `.mf`, `.cert`, then the VMDK, copied
//!    file-to-file by the kernel while a second thread feeds the same bytes to the archive's
//!    SHA-256 (for `NAME.ova.sha256`);
//! 4. the OVA and its checksum file are renamed into place together at the end. An error or
//!    a signal before that leaves nothing behind.
//!
//! Reproducibility: every timestamp (tar mtimes, the build-date property) is the request's
//! `source_date_epoch` (chosen by the rule of [`crate::source_date`]: never the clock), and
//! the VMDK writer derives its content IDs from the content.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::AdapterType;
use image::DiskSource;
use image::vmdk::VmdkOptions;
use ovf::{BuildFacts, Definition, DiskController, DiskFacts};

use crate::atomic::{CancellableWriter, Cancelled, Interrupt, Outputs, scratch_file};
use crate::manifest::{Algorithm, HashingWriter, Manifest};
use crate::ova::{OvaWriter, WriteError, member_header};
use crate::progress::Progress;
use crate::sign::{SignError, Signer};

/// What to build.
pub struct BuildRequest<'a> {
    /// The input disk (raw, qcow2 or VMDK; detected from the content).
    pub disk: PathBuf,
    pub definition: &'a Definition,
    /// Directory for `NAME.ova` and `NAME.ova.sha256` (created if missing).
    pub out_dir: PathBuf,
    /// Base name of the outputs; default `<virtual system id>-v<version>`.
    pub name: Option<String>,
    /// Release version; default the definition's.
    pub version: Option<String>,
    /// Where the base image came from (provenance property).
    pub base_image: Option<String>,
    /// The product's `FullVersion`; default the definition's, else the release version.
    pub full_version: Option<String>,
    /// Seconds since the epoch for every timestamp (see [`crate::source_date`]).
    pub source_date_epoch: u64,
    pub manifest: Algorithm,
    pub signer: Option<&'a Signer>,
    /// Deflate level of the VMDK (default: the image crate's).
    pub level: Option<i32>,
    /// Compression threads (0 = one per core).
    pub threads: usize,
    pub progress: Progress,
    pub interrupt: Interrupt,
}

/// One member of the OVA.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberReport {
    pub name: String,
    pub size: u64,
    /// `ALG:hex`, as in the manifest (absent for the manifest and the certificate).
    pub digest: Option<String>,
}

/// The disk as converted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DiskReport {
    pub input: PathBuf,
    pub input_format: String,
    pub capacity_bytes: u64,
    pub populated_bytes: u64,
    pub vmdk_bytes: u64,
}

/// What `build` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildReport {
    pub name: String,
    pub ova: PathBuf,
    pub ova_bytes: u64,
    pub ova_sha256: String,
    pub sha256_file: PathBuf,
    pub members: Vec<MemberReport>,
    pub disk: DiskReport,
    pub version: String,
    pub build_date: String,
    /// The mtime of every member (seconds since the epoch).
    pub mtime: u64,
    pub signed_by: Option<String>,
    pub duration_seconds: f64,
}

/// Why a build failed. Nothing was left in the output directory.
/// `{action} {path}: {source}`, without repeating the path when the image error names it
/// already (most do: "PATH: corrupt qcow2 image: …").
fn about_disk(action: &str, path: &Path, source: &image::ImageError) -> String {
    let path = path.display().to_string();
    let source = source.to_string();
    if source.contains(&path) {
        format!("{action}: {source}")
    } else {
        format!("{action} {path}: {source}")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "output name `{0}` is not usable: it must be a bare file name (no `/`) whose member names (`NAME.ovf`, `NAME.cert`) fit a tar header: at most 95 characters"
    )]
    BadName(String),
    #[error("{}", about_disk("cannot read the disk", path, source))]
    Disk {
        path: PathBuf,
        source: image::ImageError,
    },
    #[error(
        "the disk {path} is empty: its {format} virtual size is 0 bytes; an appliance needs a \
         disk with a system on it (an OVA with ovf:capacity=\"0\" cannot be deployed usefully)"
    )]
    EmptyDisk { path: PathBuf, format: String },
    #[error(
        "{}",
        about_disk("cannot convert to a streamOptimized VMDK the disk", path, source)
    )]
    Convert {
        path: PathBuf,
        source: image::ImageError,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("writing the OVA: {0}")]
    Ova(#[from] WriteError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// The `ddb.adapterType` of a disk on `controller`. The VMDK format knows only `ide`,
/// `buslogic`, `lsilogic` and `legacyESX`; VMware writes `lsilogic` for disks on PVSCSI and
/// LSI Logic SAS controllers too.
pub fn vmdk_adapter_type(controller: DiskController) -> AdapterType {
    match controller {
        DiskController::BusLogic => AdapterType::BusLogic,
        DiskController::Pvscsi | DiskController::LsiLogic | DiskController::LsiLogicSas => {
            AdapterType::LsiLogic
        }
    }
}

/// The default output name: `<id>-v<version>`.
pub fn default_name(definition: &Definition, version: Option<&str>) -> String {
    let version = version.unwrap_or(&definition.product().version);
    format!("{}-v{}", definition.virtual_system().id, version)
}

/// Builds the OVA.
pub fn build(request: &BuildRequest<'_>) -> Result<BuildReport, BuildError> {
    let started = Instant::now();
    let definition = request.definition;
    let version = request
        .version
        .clone()
        .unwrap_or_else(|| definition.product().version.clone());
    let name = request
        .name
        .clone()
        .unwrap_or_else(|| default_name(definition, Some(&version)));
    if member_header(&format!("{name}.cert"), 0, 0).is_err() {
        return Err(BuildError::BadName(name));
    }
    let adapter = vmdk_adapter_type(definition.hardware().disk_controller);
    let disk_name = definition.default_disk_file_name();
    let build_date = rfc3339(request.source_date_epoch);

    let (mut source, input_format) = open_disk(&request.disk)?;
    let mut outputs = Outputs::new(&request.out_dir)
        .map_err(io(format!("cannot create {}", request.out_dir.display())))?;
    // 1. Disk → scratch VMDK, hashed as it is written.
    let vmdk = convert_disk(request, source.as_mut(), adapter, &disk_name, outputs.dir())?;
    drop(source);
    // 2. Descriptor, manifest, signature.
    let small = small_members(request, &name, &version, &build_date, &disk_name, &vmdk)?;
    // 3. The OVA and its checksum file.
    let (ova_sha256, ova_bytes) =
        write_ova(request, &mut outputs, &name, &small, &disk_name, &vmdk)?;
    // 4. Publish.
    request.interrupt.check().map_err(|_| Cancelled)?;
    let paths = outputs.commit().map_err(io(format!(
        "cannot rename the outputs into {}",
        request.out_dir.display()
    )))?;
    Ok(BuildReport {
        members: member_reports(request.manifest, small, disk_name, &vmdk),
        name,
        ova: paths[0].clone(),
        ova_bytes,
        ova_sha256,
        sha256_file: paths[1].clone(),
        disk: DiskReport {
            input: request.disk.clone(),
            input_format,
            capacity_bytes: vmdk.capacity_bytes,
            populated_bytes: vmdk.populated_bytes,
            vmdk_bytes: vmdk.size,
        },
        version,
        build_date,
        mtime: request.source_date_epoch,
        signed_by: request.signer.map(Signer::subject),
        duration_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The input disk, opened, with the name of its format; an empty disk is refused.
fn open_disk(path: &Path) -> Result<(Box<dyn DiskSource>, String), BuildError> {
    let source = image::open(path).map_err(|source| BuildError::Disk {
        path: path.to_path_buf(),
        source,
    })?;
    let input_format = source.format().to_string();
    if source.virtual_size() == 0 {
        return Err(BuildError::EmptyDisk {
            path: path.to_path_buf(),
            format: input_format,
        });
    }
    Ok((source, input_format))
}

/// The disk converted into an anonymous scratch file, with its manifest digest.
struct ScratchVmdk {
    file: File,
    digest: String,
    size: u64,
    capacity_bytes: u64,
    populated_bytes: u64,
}

/// Converts the disk into a streamOptimized VMDK in an anonymous scratch file in `dir`,
/// hashing it on the way.
fn convert_disk(
    request: &BuildRequest<'_>,
    source: &mut dyn DiskSource,
    adapter: AdapterType,
    disk_name: &str,
    dir: &Path,
) -> Result<ScratchVmdk, BuildError> {
    let scratch = scratch_file(dir).map_err(io(format!(
        "cannot create a scratch file in {}",
        dir.display()
    )))?;
    let mut options = VmdkOptions {
        adapter_type: adapter,
        file_name: disk_name.to_string(),
        threads: request.threads,
        ..VmdkOptions::default()
    };
    if let Some(level) = request.level {
        options.level = level;
    }
    let bar = request.progress.stage("converting", source.virtual_size());
    let mut writer = BufWriter::with_capacity(
        1 << 20,
        HashingWriter::new(
            CancellableWriter::new(&scratch, request.interrupt.clone()),
            request.manifest,
        ),
    );
    let vmdk = image::vmdk::write_stream_optimized(source, &mut writer, &options, &|done, _| {
        bar.set(done)
    });
    request.interrupt.check().map_err(|_| Cancelled)?;
    let vmdk = vmdk.map_err(|source| BuildError::Convert {
        path: request.disk.clone(),
        source,
    })?;
    let hashing = writer
        .into_inner()
        .map_err(|e| e.into_error())
        .map_err(io("cannot write the VMDK"))?;
    let (_, digest, size) = hashing.finish();
    bar.finish();
    Ok(ScratchVmdk {
        file: scratch,
        digest,
        size,
        capacity_bytes: vmdk.capacity_bytes,
        populated_bytes: vmdk.populated_bytes,
    })
}

/// The members before the disk: descriptor, manifest, and the certificate when signing.
struct SmallMembers {
    ovf_name: String,
    descriptor: String,
    ovf_digest: String,
    mf_name: String,
    manifest: String,
    cert_name: String,
    cert: Option<Vec<u8>>,
}

/// Renders the descriptor with the disk's facts, then the manifest, then signs it.
fn small_members(
    request: &BuildRequest<'_>,
    name: &str,
    version: &str,
    build_date: &str,
    disk_name: &str,
    vmdk: &ScratchVmdk,
) -> Result<SmallMembers, BuildError> {
    let facts = BuildFacts {
        disk: DiskFacts {
            file_name: Some(disk_name.to_string()),
            file_size: Some(vmdk.size),
            capacity: Some(vmdk.capacity_bytes),
            populated_size: Some(vmdk.populated_bytes),
        },
        version: Some(version.to_string()),
        build_date: Some(build_date.to_string()),
        base_image: request.base_image.clone(),
        full_version: request.full_version.clone(),
    };
    let descriptor = ovf::write(&request.definition.to_envelope(&facts));
    let ovf_name = format!("{name}.ovf");
    let mf_name = format!("{name}.mf");
    let mut manifest = Manifest::default();
    let ovf_digest = request.manifest.hex_digest(descriptor.as_bytes());
    manifest.push(request.manifest, &ovf_name, &ovf_digest);
    manifest.push(request.manifest, disk_name, &vmdk.digest);
    let manifest = manifest.render();
    let cert = match request.signer {
        Some(signer) => Some(signer.cert_file(request.manifest, &mf_name, manifest.as_bytes())?),
        None => None,
    };
    Ok(SmallMembers {
        ovf_name,
        descriptor,
        ovf_digest,
        mf_name,
        manifest,
        cert_name: format!("{name}.cert"),
        cert,
    })
}

/// Writes `NAME.ova` (`.ovf`, `.mf`, `.cert`, then the VMDK) and `NAME.ova.sha256` as
/// temporaries of `outputs`; returns the OVA's SHA-256 and size.
fn write_ova(
    request: &BuildRequest<'_>,
    outputs: &mut Outputs,
    name: &str,
    small: &SmallMembers,
    disk_name: &str,
    vmdk: &ScratchVmdk,
) -> Result<(String, u64), BuildError> {
    let ova_name = format!("{name}.ova");
    let (_, ova_file) = outputs
        .create(&ova_name)
        .map_err(io(format!("cannot create a temporary for {ova_name}")))?;
    let mut ova = OvaWriter::new(ova_file, request.source_date_epoch);
    ova.append_bytes(&small.ovf_name, small.descriptor.as_bytes())?;
    ova.append_bytes(&small.mf_name, small.manifest.as_bytes())?;
    if let Some(cert) = &small.cert {
        ova.append_bytes(&small.cert_name, cert)?;
    }
    request.interrupt.check().map_err(|_| Cancelled)?;
    let bar = request.progress.stage("packaging", vmdk.size);
    ova.append_file(disk_name, &vmdk.file, vmdk.size, &|done| bar.set(done))?;
    bar.finish();
    let (_, ova_sha256, ova_bytes) = ova.finish()?;

    let sum_name = format!("{ova_name}.sha256");
    let (_, mut sum_file) = outputs
        .create(&sum_name)
        .map_err(io(format!("cannot create a temporary for {sum_name}")))?;
    sum_file
        .write_all(format!("{ova_sha256}  {ova_name}\n").as_bytes())
        .and_then(|()| sum_file.sync_all())
        .map_err(io(format!("cannot write {sum_name}")))?;
    Ok((ova_sha256, ova_bytes))
}

/// The members as the report lists them, in archive order.
fn member_reports(
    algorithm: Algorithm,
    small: SmallMembers,
    disk_name: String,
    vmdk: &ScratchVmdk,
) -> Vec<MemberReport> {
    let mut members = vec![
        MemberReport {
            name: small.ovf_name,
            size: small.descriptor.len() as u64,
            digest: Some(format!("{algorithm}:{}", small.ovf_digest)),
        },
        MemberReport {
            name: small.mf_name,
            size: small.manifest.len() as u64,
            digest: None,
        },
    ];
    if let Some(cert) = &small.cert {
        members.push(MemberReport {
            name: small.cert_name,
            size: cert.len() as u64,
            digest: None,
        });
    }
    members.push(MemberReport {
        name: disk_name,
        size: vmdk.size,
        digest: Some(format!("{algorithm}:{}", vmdk.digest)),
    });
    members
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (UTC). Hand-written (days-to-civil,
/// after Howard Hinnant's public-domain algorithm) to avoid a date crate for one format.
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn every_controller_has_a_vmdk_adapter_type() {
        use super::{AdapterType, DiskController, vmdk_adapter_type};
        assert_eq!(
            vmdk_adapter_type(DiskController::BusLogic),
            AdapterType::BusLogic
        );
        for scsi in [
            DiskController::Pvscsi,
            DiskController::LsiLogic,
            DiskController::LsiLogicSas,
        ] {
            assert_eq!(vmdk_adapter_type(scsi), AdapterType::LsiLogic);
        }
    }
}
