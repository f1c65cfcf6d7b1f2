//! The root file system of an appliance disk, read without mounting it: the partition named
//! `root` in the raw disk's GPT (sfdisk), its files read with debugfs.

use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::run;

/// The root partition of a disk image: (raw file, byte offset), read with debugfs.
pub struct RootFs {
    /// The raw disk.
    pub image: PathBuf,
    offset: u64,
}

impl RootFs {
    /// The partition named "root" in the GPT of `raw`.
    pub fn of(raw: &Path) -> RootFs {
        let json = run(Command::new("sfdisk").arg("--json").arg(raw));
        let v: serde_json::Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("sfdisk --json: {e}"));
        let sector = v["partitiontable"]["sectorsize"].as_u64().unwrap_or(512);
        let parts = v["partitiontable"]["partitions"]
            .as_array()
            .expect("sfdisk --json: partitions");
        let root = parts
            .iter()
            .find(|p| p["name"] == "root")
            .expect("a partition named root");
        RootFs {
            image: raw.to_owned(),
            offset: root["start"].as_u64().expect("sfdisk --json: start") * sector,
        }
    }

    fn spec(&self) -> String {
        format!("{}?offset={}", self.image.display(), self.offset)
    }

    /// `debugfs -R 'cat PATH'`: None when the file does not exist.
    pub fn read(&self, path: &str) -> Option<String> {
        let out = Command::new("debugfs")
            .arg("-R")
            .arg(format!("cat {path}"))
            .arg(self.spec())
            .output()
            .unwrap_or_else(|e| panic!("debugfs: {e}"));
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("File not found") || !out.status.success() {
            return None;
        }
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn ls(&self, dir: &str) -> Vec<String> {
        let out = run(Command::new("debugfs")
            .arg("-R")
            .arg(format!("ls -p {dir}"))
            .arg(self.spec()));
        // -p: /inode/mode/uid/gid/name/size/
        out.lines()
            .filter_map(|l| l.split('/').nth(5))
            .filter(|n| !n.is_empty() && *n != "." && *n != "..")
            .map(str::to_owned)
            .collect()
    }

    /// Whether `path` exists (`debugfs -R 'stat PATH'`).
    pub fn exists(&self, path: &str) -> bool {
        let out = Command::new("debugfs")
            .arg("-R")
            .arg(format!("stat {path}"))
            .arg(self.spec())
            .output()
            .unwrap_or_else(|e| panic!("debugfs: {e}"));
        out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("not found")
    }
}
