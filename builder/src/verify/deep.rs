//! The deep check of stream-optimized disks: every grain inflated (the deflate stream and its
//! Adler-32 checked), every grain table and the directory checked against the grains, the
//! footer and end-of-stream marker read — by `image::vmdk::check_stream`, in one sequential
//! pass.
//! It catches damage that a recomputed manifest of an unsigned OVA would hide.

use std::io::{BufReader, Read};

use image::ImageError;
use image::vmdk::StreamError;

use super::package::Package;
use super::{Check, Findings};
use crate::progress::Progress;

/// Reads one package file sequentially.
struct FileReader<'a> {
    package: &'a Package,
    name: &'a str,
    offset: u64,
    stage: crate::progress::ByteBar,
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.package.read_at(self.name, self.offset, buf)?;
        self.offset += n as u64;
        self.stage.set(self.offset);
        Ok(n)
    }
}

/// Whether the file starts with a sparse header flagged stream-optimized.
fn is_stream_optimized(package: &Package, name: &str) -> bool {
    let mut head = [0u8; 512];
    match package.read_at(name, 0, &mut head) {
        Ok(512) => image::vmdk::has_stream_flags(&head),
        _ => false,
    }
}

/// Deep-checks every stream-optimized VMDK among `names`.
pub(crate) fn check(
    package: &Package,
    names: &[String],
    findings: &mut Findings,
    progress: &Progress,
) {
    for name in names {
        if !is_stream_optimized(package, name) {
            continue;
        }
        let stage = progress.stage("inflating", package.size(name).unwrap_or(0));
        let reader = FileReader {
            package,
            name,
            offset: 0,
            stage,
        };
        if let Err(e) = image::vmdk::check_stream(BufReader::with_capacity(1 << 20, reader)) {
            let detail = match e {
                // As the reading error of any image: which stream, what the OS said.
                StreamError::Io(_) => ImageError::from(e).to_string(),
                damage => damage.to_string(),
            };
            findings.error(
                Check::VmdkStream,
                Some(name),
                format!("the stream-optimized disk is damaged: {detail}"),
            );
        }
    }
}
