//! The VMDK text descriptor ("# Disk DescriptorFile"): parsing what VMware, Packer and qemu-img
//! write, and rendering the one our stream-optimized writer embeds.

use super::adapter::AdapterType;
use super::writer::VmdkOptions;

/// Access mode of an extent line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
    NoAccess,
}

/// One line of the extent description, e.g. `RW 2048 SPARSE "disk-s001.vmdk"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtentLine {
    pub access: Access,
    /// Length in sectors.
    pub sectors: u64,
    /// `SPARSE`, `FLAT`, `ZERO`, `VMFS`, `VMFSSPARSE`, `SESPARSE`, …
    pub kind: String,
    pub file: Option<String>,
    /// Start of the data in the extent file, in sectors (FLAT/VMFS only).
    pub offset: u64,
    /// Line number in the descriptor (from 1), for error messages.
    pub line: usize,
}

/// A parsed descriptor. Keys other than the ones below are kept in `ddb` / ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Descriptor {
    pub version: Option<String>,
    pub cid: Option<String>,
    pub parent_cid: Option<String>,
    pub create_type: Option<String>,
    pub parent_file_name_hint: Option<String>,
    pub extents: Vec<ExtentLine>,
    /// `ddb.*` entries in file order, values unquoted.
    pub ddb: Vec<(String, String)>,
}

impl Descriptor {
    pub fn ddb(&self, key: &str) -> Option<&str> {
        self.ddb
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Total size of all extents in sectors.
    pub fn sectors(&self) -> u64 {
        self.extents
            .iter()
            .fold(0u64, |a, e| a.saturating_add(e.sectors))
    }
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// Whether `b` looks like the start of a text descriptor.
pub fn looks_like_descriptor(b: &[u8]) -> bool {
    let t = String::from_utf8_lossy(&b[..b.len().min(1024)]);
    let t = t.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    t.starts_with("# Disk DescriptorFile") || (t.contains("createType=") && t.starts_with('#'))
}

/// Parses descriptor text. Errors name the line number and what was expected.
pub fn parse(text: &str) -> Result<Descriptor, String> {
    let mut d = Descriptor::default();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        let access = match first {
            "RW" => Some(Access::ReadWrite),
            "RDONLY" => Some(Access::ReadOnly),
            "NOACCESS" => Some(Access::NoAccess),
            _ => None,
        };
        if let Some(access) = access {
            d.extents.push(
                parse_extent(line, access, n + 1).map_err(|e| format!("line {}: {e}", n + 1))?,
            );
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!(
                "line {}: expected `key = value` or an extent line, found {:?}",
                n + 1,
                line.chars().take(60).collect::<String>()
            ));
        };
        let (k, v) = (k.trim(), unquote(v).to_string());
        match k {
            "version" => d.version = Some(v),
            "CID" => d.cid = Some(v),
            "parentCID" => d.parent_cid = Some(v),
            "createType" => d.create_type = Some(v),
            "parentFileNameHint" => d.parent_file_name_hint = Some(v),
            _ if k.starts_with("ddb.") => d.ddb.push((k.to_string(), v)),
            _ => {}
        }
    }
    Ok(d)
}

fn parse_extent(line: &str, access: Access, number: usize) -> Result<ExtentLine, String> {
    // ACCESS SECTORS TYPE ["FILE" [OFFSET]]; the file name is quoted and may contain spaces.
    let (head, file, tail) = match line.split_once('"') {
        Some((head, rest)) => {
            let (file, tail) = rest
                .split_once('"')
                .ok_or("the extent file name has no closing quote")?;
            (head, Some(file.to_string()), tail)
        }
        None => (line, None, ""),
    };
    let mut parts = head.split_whitespace().skip(1);
    let sectors = parts
        .next()
        .ok_or("the extent line has no size")?
        .parse::<u64>()
        .map_err(|_| "the extent size is not a number of sectors")?;
    let kind = parts.next().unwrap_or("").to_string();
    if access != Access::NoAccess && kind.is_empty() {
        return Err("the extent line has no type (SPARSE, FLAT, ZERO, …)".into());
    }
    let offset = match tail.split_whitespace().next() {
        Some(o) => o
            .parse::<u64>()
            .map_err(|_| format!("the extent offset {o:?} is not a number of sectors"))?,
        None => 0,
    };
    Ok(ExtentLine {
        access,
        sectors,
        kind,
        file,
        offset,
        line: number,
    })
}

/// Geometry VMware uses for the adapter: (cylinders, heads, sectors).
pub fn geometry(adapter: AdapterType, capacity_sectors: u64) -> (u64, u64, u64) {
    let (heads, sectors, max_cyl) = match adapter {
        AdapterType::Ide => (16, 63, 16383),
        _ => (255, 63, 65535),
    };
    let cyl = capacity_sectors.div_ceil(heads * sectors).min(max_cyl);
    (cyl, heads, sectors)
}

fn sanitize_file_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .collect();
    if clean.trim().is_empty() {
        "disk.vmdk".into()
    } else {
        clean
    }
}

/// Renders the descriptor embedded in a stream-optimized VMDK.
pub fn render_descriptor(
    capacity_sectors: u64,
    cid: u32,
    long_cid: &str,
    opts: &VmdkOptions,
) -> String {
    let (c, h, s) = geometry(opts.adapter_type, capacity_sectors);
    format!(
        "# Disk DescriptorFile\n\
         version=1\n\
         encoding=\"UTF-8\"\n\
         CID={cid:08x}\n\
         parentCID=ffffffff\n\
         createType=\"streamOptimized\"\n\
         \n\
         # Extent description\n\
         RW {capacity_sectors} SPARSE \"{name}\"\n\
         \n\
         # The Disk Data Base\n\
         #DDB\n\
         \n\
         ddb.adapterType = \"{adapter}\"\n\
         ddb.geometry.cylinders = \"{c}\"\n\
         ddb.geometry.heads = \"{h}\"\n\
         ddb.geometry.sectors = \"{s}\"\n\
         ddb.longContentID = \"{long_cid}\"\n\
         ddb.toolsInstallType = \"4\"\n\
         ddb.toolsVersion = \"{tools}\"\n\
         ddb.virtualHWVersion = \"{hw}\"\n",
        name = sanitize_file_name(&opts.file_name),
        adapter = opts.adapter_type,
        tools = opts.tools_version,
        hw = opts.hw_version,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_vmware_writes() {
        let text = "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\n\
            parentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n\n# Extent description\n\
            RW 4192256 SPARSE \"my disk-s001.vmdk\"\nRW 2048 FLAT \"x-flat.vmdk\" 7\n\
            NOACCESS 10\n\n#DDB\nddb.adapterType = \"lsilogic\"\nddb.virtualHWVersion = \"4\"\n";
        let d = parse(text).unwrap();
        assert_eq!(d.create_type.as_deref(), Some("twoGbMaxExtentSparse"));
        assert_eq!(d.extents.len(), 3);
        assert_eq!(d.extents[0].file.as_deref(), Some("my disk-s001.vmdk"));
        assert_eq!(d.extents[1].offset, 7);
        assert_eq!(d.extents[2].access, Access::NoAccess);
        assert_eq!(d.ddb("ddb.adapterType"), Some("lsilogic"));
        assert_eq!(d.sectors(), 4192256 + 2048 + 10);
    }

    #[test]
    fn rejects_garbage_with_line_number() {
        let e = parse("# Disk DescriptorFile\nversion=1\nnonsense here\n").unwrap_err();
        assert!(e.starts_with("line 3"), "{e}");
        let e = parse("RW 12x SPARSE \"a\"").unwrap_err();
        assert!(e.contains("not a number"), "{e}");
    }

    #[test]
    fn geometry_matches_vmware() {
        assert_eq!(geometry(AdapterType::LsiLogic, 20971520), (1306, 255, 63));
        assert_eq!(geometry(AdapterType::Ide, 20971520), (16383, 16, 63));
        assert_eq!(geometry(AdapterType::BusLogic, 1 << 40), (65535, 255, 63));
    }
}
