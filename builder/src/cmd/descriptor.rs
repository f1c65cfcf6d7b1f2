//! `ova-builder descriptor`: appliance definition + disk facts → OVF descriptor.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use ovf::{BuildFacts, DiskFacts};

use crate::appliance::definition::load_definition;
use crate::atomic::write_atomically;

const EXAMPLES: &str = "\
Examples:
  # Inspect the HAProxy descriptor before any disk exists (placeholders for the disk)
  ova-builder descriptor

  # The descriptor for a built disk, written atomically to a file
  ova-builder descriptor -o haproxy.ovf --version 1.2.3 \\
      --disk-file haproxy-disk1.vmdk --disk-size 162529280 \\
      --disk-capacity 2147483648 --populated-size 428867584

  # Another appliance
  ova-builder descriptor --definition my-appliance.toml -o my-appliance.ovf

Disk placeholders: without --disk-file the VMDK is <id>-disk1.vmdk; without --disk-size the
File has no ovf:size; without --disk-capacity the capacity is 0; without --populated-size the
Disk has no ovf:populatedSize.";

/// Options of `ova-builder descriptor`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Appliance definition (TOML). Default: the built-in HAProxy appliance.
    #[arg(long, value_name = "FILE")]
    pub definition: Option<PathBuf>,
    /// Write the descriptor to FILE (whole or not at all) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// File name of the VMDK inside the OVA.
    #[arg(long, value_name = "NAME")]
    pub disk_file: Option<String>,
    /// Exact size of the VMDK file in bytes (ovf:size).
    #[arg(long, value_name = "BYTES")]
    pub disk_size: Option<u64>,
    /// Virtual size of the disk in bytes (ovf:capacity).
    #[arg(long, value_name = "BYTES")]
    pub disk_capacity: Option<u64>,
    /// Bytes of the disk in use (ovf:populatedSize).
    #[arg(long, value_name = "BYTES")]
    pub populated_size: Option<u64>,
    /// Release version (Version, FullVersion and the version property). Default: the
    /// definition's product.version.
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// Build date recorded in the build_date provenance property (e.g. RFC 3339).
    #[arg(long, value_name = "DATE")]
    pub build_date: Option<String>,
    /// Source of the base image recorded in the base_image provenance property.
    #[arg(long, value_name = "SOURCE")]
    pub base_image: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(name) = &args.disk_file {
        check_member_name(name)?;
    }
    let definition = load_definition(args.definition.as_deref())?;
    let facts = BuildFacts {
        disk: DiskFacts {
            file_name: args.disk_file,
            file_size: args.disk_size,
            capacity: args.disk_capacity,
            populated_size: args.populated_size,
        },
        version: args.version,
        build_date: args.build_date,
        base_image: args.base_image,
        full_version: None,
    };
    let xml = ovf::write(&definition.to_envelope(&facts));
    match &args.output {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(xml.as_bytes())
                .and_then(|()| stdout.flush())
                .context("cannot write the descriptor to standard output")?;
        }
        Some(path) => write_atomically(path, |out| out.write_all(xml.as_bytes()))
            .with_context(|| format!("cannot write the descriptor to {}", path.display()))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// OVA members are bare names: no directories, no `./`.
fn check_member_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        anyhow::bail!(
            "--disk-file {name:?} must be a bare file name such as haproxy-disk1.vmdk \
             (no directories: it names a member of the OVA)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_bare() {
        assert!(check_member_name("haproxy-disk1.vmdk").is_ok());
        assert!(check_member_name("dir/disk.vmdk").is_err());
        assert!(check_member_name("./disk.vmdk").is_err());
        assert!(check_member_name("").is_err());
    }
}
