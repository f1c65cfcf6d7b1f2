//! `ova-builder convert`: any supported disk image → stream-optimized VMDK.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use image::vmdk::{AdapterType, VmdkOptions, VmdkReport};

use crate::atomic::write_atomically;
use crate::progress::Progress;

/// Options of `ova-builder convert`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ova-builder convert disk.raw haproxy-disk1.vmdk
  ova-builder convert packer-output/disk.qcow2 out/disk.vmdk --adapter-type buslogic
  ova-builder convert disk.vmdk out/disk.vmdk --json

The input format (raw, qcow2, VMDK monolithicSparse / twoGbMaxExtentSparse / streamOptimized /
monolithicFlat) is detected from the content. The output is written to a temporary file next to
OUT and renamed into place only when complete.")]
pub struct Args {
    /// Input disk image (raw, qcow2 or VMDK).
    pub input: PathBuf,
    /// Output stream-optimized VMDK.
    pub output: PathBuf,
    /// Controller the disk is attached to (ddb.adapterType): ide, buslogic, lsilogic,
    /// legacyESX; a disk on a PVSCSI or LSI Logic SAS controller is lsilogic. Must match the
    /// OVF descriptor.
    #[arg(long, default_value = "lsilogic")]
    pub adapter_type: String,
    /// ddb.virtualHWVersion written in the descriptor.
    #[arg(long, default_value_t = 4)]
    pub hw_version: u32,
    /// ddb.toolsVersion written in the descriptor (2147483647: guest-managed tools).
    #[arg(long, default_value_t = 2_147_483_647)]
    pub tools_version: u32,
    /// Deflate level 1-12 (default chosen by benchmark).
    #[arg(long, default_value_t = image::vmdk::DEFAULT_LEVEL)]
    pub level: i32,
    /// Compression threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print the result as one JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
    /// Let a VMDK descriptor's extent files lie outside its directory (absolute paths, `..`,
    /// symlinks). Refused by default: a descriptor could otherwise copy any file into the disk.
    #[arg(long)]
    pub allow_extents_outside: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let adapter_type: AdapterType = args.adapter_type.parse()?;
    let start = Instant::now();
    let open_options = image::OpenOptions {
        allow_extents_outside: args.allow_extents_outside,
    };
    let mut source = image::open_with(&args.input, &open_options)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let format = source.format();
    let file_name = args
        .output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "disk.vmdk".into());
    let options = VmdkOptions {
        adapter_type,
        hw_version: args.hw_version,
        tools_version: args.tools_version,
        file_name,
        level: args.level,
        threads: args.threads,
    };

    let bar = Progress::auto().stage("converting", source.virtual_size());
    let report = write_atomically(&args.output, |w| {
        image::vmdk::write_stream_optimized(source.as_mut(), w, &options, &|done, _total| {
            bar.set(done)
        })
        .map_err(anyhow::Error::from)
    })
    .with_context(|| {
        format!(
            "cannot convert {} to {}",
            args.input.display(),
            args.output.display()
        )
    })?;
    bar.clear();
    print_summary(
        &args,
        &format.to_string(),
        &report,
        start.elapsed().as_secs_f64(),
    );
    Ok(ExitCode::SUCCESS)
}

fn print_summary(args: &Args, format: &str, r: &VmdkReport, seconds: f64) {
    if args.json {
        let v = serde_json::json!({
            "input": args.input,
            "input_format": format,
            "output": args.output,
            "capacity_bytes": r.capacity_bytes,
            "populated_bytes": r.populated_bytes,
            "output_bytes": r.output_bytes,
            "grains": r.grains,
            "seconds": (seconds * 1000.0).round() / 1000.0,
        });
        println!("{v}");
    } else {
        println!(
            "{} ({format}, {} virtual, {} populated) -> {} ({}) in {seconds:.1} s",
            args.input.display(),
            human(r.capacity_bytes),
            human(r.populated_bytes),
            args.output.display(),
            human(r.output_bytes),
        );
    }
}

fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
