//! The Debian archive's indices and the package files kept between builds, in an apt root of
//! the build cache (`<cache>/apt/<id>/`, one per architecture and list of sources).
//!
//! How far the cache is trusted: not at all.
//! - The indices: `apt-get update` runs in this root at every build. apt checks the
//!   `InRelease` signature against the host's keyring and every `Packages` file against the
//!   hashes of that signed `InRelease`, and only then replaces the lists it keeps (as it does
//!   in `/var/lib/apt/lists` of any Debian system); an unchanged `InRelease` costs one
//!   conditional request and downloads nothing.
//! - The package files: apt does **not** check a `.deb` it finds in its archive directory
//!   beyond its size (apt 2.6 uses a same-size file as it is: measured with a file changed in
//!   place). So every cached `.deb` is checked here, before mmdebstrap sees it, against the
//!   size and SHA-256 that the verified `Packages` files give for that file name; a file that
//!   does not match (an older version, damage, tampering) is deleted. mmdebstrap is then given
//!   these very `Packages` files and skips its own update, so apt chooses the versions from
//!   the same indices the files were checked against.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::{StageError, io};
use super::tool;

/// An apt root in the cache: its own configuration, sources, lists and package files.
#[derive(Debug, Clone)]
pub struct AptRoot {
    dir: PathBuf,
}

/// One verified `Packages` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub path: PathBuf,
    /// Its name in apt's lists directory (it says which mirror, suite and component).
    pub name: String,
    pub sha256: String,
}

/// What `apt-get update` produced.
#[derive(Debug, Clone)]
pub struct Indices {
    /// The `Packages` files, in apt's order.
    pub packages: Vec<IndexFile>,
    /// The `Date` of the first source's `InRelease` (the release the base is built from), in
    /// seconds since 1970.
    pub release_date: u64,
}

/// The size and SHA-256 a package file must have, by the file name apt stores it under.
pub type Expected = HashMap<String, Vec<(u64, String)>>;

impl AptRoot {
    /// The apt root for `sources` (`deb URL SUITE COMPONENTS` lines) on `arch`, created or
    /// brought up to date under `cache`.
    pub fn prepare(cache: &Path, arch: &str, sources: &[String]) -> Result<AptRoot, StageError> {
        let id = short_hash(&format!("{arch}\n{}", sources.join("\n")));
        let dir = cache.join("apt").join(id);
        for sub in [
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/sources.list.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg",
        ] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(io("creating", &path))?;
        }
        let status = dir.join("var/lib/dpkg/status");
        if !status.exists() {
            fs::write(&status, b"").map_err(io("writing", &status))?;
        }
        let list = dir.join("etc/apt/sources.list");
        fs::write(&list, sources_list(sources)).map_err(io("writing", &list))?;
        let (trusted, trusted_parts) = host_keyrings()?;
        // As mmdebstrap configures apt: only this architecture, the host's keyrings, no
        // translations (its chroot has `Acquire::Languages "none"`, so the lists match).
        let config = format!(
            "Apt::Architecture \"{arch}\";\nApt::Architectures \"{arch}\";\nDir \"{}\";\n\
             Dir::State::Status \"{}\";\nDir::Etc::Trusted \"{trusted}\";\n\
             Dir::Etc::TrustedParts \"{trusted_parts}\";\nAcquire::Languages \"none\";\n\
             Acquire::Retries \"3\";\n",
            dir.display(),
            status.display()
        );
        let conf = dir.join("apt.conf");
        fs::write(&conf, config).map_err(io("writing", &conf))?;
        Ok(AptRoot { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached package files.
    pub fn archives(&self) -> PathBuf {
        self.dir.join("var/cache/apt/archives")
    }

    /// apt's lists (the verified indices).
    pub fn lists(&self) -> PathBuf {
        self.dir.join("var/lib/apt/lists")
    }

    fn env(&self) -> [(&'static str, String); 1] {
        [(
            "APT_CONFIG",
            self.dir.join("apt.conf").display().to_string(),
        )]
    }

    /// `apt-get update` (signatures and hashes checked by apt, any failure an error), then the
    /// `Packages` files it keeps, each hashed, and the release date.
    pub fn update(&self) -> Result<Indices, StageError> {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        tool::run("apt-get", ["-q", "update", "--error-on=any"], &env)?;
        let out = tool::run("apt-get", ["indextargets"], &env)?;
        let targets = parse_stanzas(&String::from_utf8_lossy(&out.stdout));
        let mut packages = Vec::new();
        let mut release_date = None;
        for target in targets
            .iter()
            .filter(|t| field(t, "Identifier") == "Packages")
        {
            let index = checked_index(target)?;
            // The first line of sources.list is the suite itself (the others are -updates
            // and -security): its date is the release's.
            if release_date.is_none() && field(target, "Sourcesentry").ends_with(":1") {
                release_date = Some(release_date_of(target)?);
            }
            packages.push(index);
        }
        if packages.is_empty() {
            return Err(StageError::Invalid(format!(
                "apt-get update in {} found no Packages index for the sources",
                self.dir.display()
            )));
        }
        let release_date = release_date.ok_or_else(|| {
            StageError::Invalid("no Packages index comes from the first source".into())
        })?;
        Ok(Indices {
            packages,
            release_date,
        })
    }
}

/// `sources.list` with these lines, as mmdebstrap writes it from its arguments.
pub fn sources_list(sources: &[String]) -> String {
    sources.iter().map(|s| format!("{s}\n")).collect()
}

/// The host's `Dir::Etc::Trusted` and `Dir::Etc::TrustedParts` (mmdebstrap uses them too).
fn host_keyrings() -> Result<(String, String), StageError> {
    let out = tool::run(
        "apt-config",
        [
            "shell",
            "T",
            "Dir::Etc::Trusted/f",
            "P",
            "Dir::Etc::TrustedParts/d",
        ],
        &[("APT_CONFIG", "")],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}='")))
            .and_then(|v| v.strip_suffix('\''))
            .map(str::to_owned)
            .ok_or_else(|| StageError::Invalid(format!("apt-config shell printed no {name}")))
    };
    Ok((value("T")?, value("P")?))
}

/// The first value of `name` in a stanza, or "".
fn field<'a>(stanza: &'a [(String, String)], name: &str) -> &'a str {
    stanza
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// deb822 stanzas (`Key: value` lines, blank lines between): continuation lines are dropped.
fn parse_stanzas(text: &str) -> Vec<Vec<(String, String)>> {
    let mut stanzas = Vec::new();
    let mut current = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                stanzas.push(std::mem::take(&mut current));
            }
        } else if let Some((k, v)) = line.split_once(':')
            && !line.starts_with([' ', '\t'])
        {
            current.push((k.to_owned(), v.trim().to_owned()));
        }
    }
    if !current.is_empty() {
        stanzas.push(current);
    }
    stanzas
}

/// A `Packages` target of `apt-get indextargets`: apt trusts it (its signature was checked)
/// and the file is there, uncompressed.
fn checked_index(target: &[(String, String)]) -> Result<IndexFile, StageError> {
    let path = PathBuf::from(field(target, "Filename"));
    if field(target, "Trusted") != "yes" {
        return Err(StageError::Invalid(format!(
            "apt does not trust {} (its InRelease signature was not verified)",
            path.display()
        )));
    }
    if !path.is_file() {
        return Err(StageError::Invalid(format!(
            "apt-get update left no {} (a mirror without this suite or architecture?)",
            path.display()
        )));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(IndexFile {
        sha256: sha256_file(&path)?,
        path,
        name,
    })
}

/// The `Date` of the (In)Release file a `Packages` target belongs to.
fn release_date_of(target: &[(String, String)]) -> Result<u64, StageError> {
    let filename = field(target, "Filename");
    let meta = field(target, "MetaKey").replace('/', "_");
    let prefix = filename.strip_suffix(&meta).ok_or_else(|| {
        StageError::Invalid(format!("{filename} does not end in its MetaKey {meta}"))
    })?;
    let release = ["InRelease", "Release"]
        .iter()
        .map(|n| PathBuf::from(format!("{prefix}{n}")))
        .find(|p| p.is_file())
        .ok_or_else(|| StageError::Invalid(format!("no {prefix}InRelease nor {prefix}Release")))?;
    let text = fs::read_to_string(&release).map_err(io("reading", &release))?;
    let date = text
        .lines()
        .find_map(|l| l.strip_prefix("Date:"))
        .ok_or_else(|| StageError::Invalid(format!("{} has no Date", release.display())))?;
    parse_rfc2822(date.trim()).ok_or_else(|| {
        StageError::Invalid(format!(
            "{}: cannot read the Date `{}`",
            release.display(),
            date.trim()
        ))
    })
}

/// Seconds since 1970 of an RFC 2822 date as Release files write it:
/// `Sat, 11 Jul 2026 10:16:37 UTC` (the weekday is optional; the zone is UTC, GMT, Z or
/// `±hhmm`).
pub fn parse_rfc2822(text: &str) -> Option<u64> {
    let text = text.split_once(',').map_or(text, |(_, rest)| rest);
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [day, month, year, time, zone] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    let offset = match *zone {
        "UTC" | "GMT" | "Z" => 0,
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let n: i64 = z[1..].parse().ok()?;
            let secs = (n / 100) * 3600 + (n % 100) * 60;
            if z.starts_with('-') { -secs } else { secs }
        }
        _ => return None,
    };
    // Days from 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + s - offset;
    u64::try_from(secs).ok()
}

/// The file name apt stores a package under: `NAME_VERSION_ARCH.deb`, with `:` (an epoch)
/// and `_` quoted as `%3a`/`%5f` (apt's `QuoteString(…, "_:")`).
pub fn archive_name(package: &str, version: &str, arch: &str) -> String {
    fn quote(s: &str, bad: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if bad.as_bytes().contains(&b) || b == b'%' || b <= 0x20 || b >= 0x7f {
                out.push_str(&format!("%{b:02x}"));
            } else {
                out.push(b as char);
            }
        }
        out
    }
    format!(
        "{}_{}_{}.deb",
        quote(package, "_:"),
        quote(version, "_:"),
        quote(arch, "_:.")
    )
}

/// What every package file named in `indices` must be: its size and SHA-256, by apt's file
/// name for it.
pub fn expected_packages(indices: &[IndexFile]) -> Result<Expected, StageError> {
    let mut expected = Expected::new();
    for index in indices {
        let file = fs::File::open(&index.path).map_err(io("opening", &index.path))?;
        read_packages(BufReader::with_capacity(1 << 20, file), &mut expected)
            .map_err(io("reading", &index.path))?;
    }
    Ok(expected)
}

/// Adds the stanzas of one `Packages` file to `expected`.
pub fn read_packages(reader: impl BufRead, expected: &mut Expected) -> std::io::Result<()> {
    #[derive(Default)]
    struct Stanza {
        package: String,
        version: String,
        arch: String,
        size: Option<u64>,
        sha256: String,
    }
    let mut add = |s: &mut Stanza| {
        let s = std::mem::take(s);
        if let (false, false, false, Some(size), false) = (
            s.package.is_empty(),
            s.version.is_empty(),
            s.arch.is_empty(),
            s.size,
            s.sha256.is_empty(),
        ) {
            let entry = expected
                .entry(archive_name(&s.package, &s.version, &s.arch))
                .or_default();
            let value = (size, s.sha256.to_ascii_lowercase());
            if !entry.contains(&value) {
                entry.push(value);
            }
        }
    };
    let mut stanza = Stanza::default();
    for line in reader.lines() {
        let line = line?;
        if line.is_empty() {
            add(&mut stanza);
        } else if let Some(v) = line.strip_prefix("Package: ") {
            stanza.package = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("Version: ") {
            stanza.version = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("Architecture: ") {
            stanza.arch = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("Size: ") {
            stanza.size = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("SHA256: ") {
            stanza.sha256 = v.trim().to_owned();
        }
    }
    add(&mut stanza);
    Ok(())
}

/// What [`check_cached_packages`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheCheck {
    /// The file names that match the indices.
    pub verified: Vec<String>,
    /// How many files were deleted (no longer in the indices, or not what they list).
    pub removed: usize,
    pub verified_bytes: u64,
}

/// Checks every `.deb` in `dir` against `expected`: a file whose name the indices do not list,
/// or whose size or SHA-256 differs, is deleted.
pub fn check_cached_packages(dir: &Path, expected: &Expected) -> Result<CacheCheck, StageError> {
    let mut check = CacheCheck::default();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(check),
        Err(e) => return Err(io("listing", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io("listing", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !name.ends_with(".deb") {
            continue;
        }
        let meta = fs::symlink_metadata(&path).map_err(io("stat", &path))?;
        let good = meta.is_file()
            && match expected.get(&name) {
                Some(wanted) if wanted.iter().any(|(size, _)| *size == meta.len()) => {
                    let actual = sha256_file(&path)?;
                    wanted
                        .iter()
                        .any(|(size, sha)| *size == meta.len() && *sha == actual)
                }
                _ => false,
            };
        if good {
            check.verified_bytes += meta.len();
            check.verified.push(name);
        } else {
            fs::remove_file(&path).map_err(io("removing", &path))?;
            check.removed += 1;
        }
    }
    check.verified.sort();
    Ok(check)
}

/// The SHA-256 of a file, in hex.
pub fn sha256_file(path: &Path) -> Result<String, StageError> {
    let mut file = fs::File::open(path).map_err(io("opening", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The first 16 hex digits of a SHA-256: names of cache entries.
pub fn short_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))[..16].to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn release_dates() {
        assert_eq!(
            parse_rfc2822("Sat, 11 Jul 2026 10:16:37 UTC"),
            Some(1_783_764_997)
        );
        assert_eq!(parse_rfc2822("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(parse_rfc2822("29 Feb 2000 00:00:00 GMT"), Some(951_782_400));
        assert_eq!(
            parse_rfc2822("Tue, 14 Nov 2023 23:13:20 +0100"),
            Some(1_700_000_000)
        );
        for bad in [
            "",
            "Sat, 11 Jul 2026",
            "Sat, 11 Juli 2026 10:16:37 UTC",
            "Sat, 11 Jul 2026 10:16 UTC",
            "Sat, 32 Jul 2026 10:16:37 UTC",
            "Sat, 11 Jul 2026 10:16:37 CEST",
        ] {
            assert_eq!(parse_rfc2822(bad), None, "{bad}");
        }
    }

    #[test]
    fn archive_names_quote_the_epoch_like_apt() {
        assert_eq!(
            archive_name("libc6", "2.36-9+deb12u10", "amd64"),
            "libc6_2.36-9+deb12u10_amd64.deb"
        );
        assert_eq!(
            archive_name("systemd", "1:252.39-1~deb12u1", "amd64"),
            "systemd_1%3a252.39-1~deb12u1_amd64.deb"
        );
    }

    #[test]
    fn indextargets_stanzas() {
        let text = "MetaKey: main/binary-amd64/Packages\nFilename: /x/l_dists_bookworm_main_binary-amd64_Packages\nTrusted: yes\n\nMetaKey: b\nDescription: one\n two\n";
        let s = parse_stanzas(text);
        assert_eq!(s.len(), 2);
        assert_eq!(field(&s[0], "Trusted"), "yes");
        assert_eq!(field(&s[1], "Description"), "one");
        assert_eq!(field(&s[1], "Missing"), "");
    }
}
