//! haproxy.cfg as a lossless list of sections: parsing then rendering an unchanged document
//! gives back the same bytes (apart from the `# _version=` line, which every commit rewrites).
//!
//! Hand-written because no maintained Rust crate parses haproxy.cfg, let alone round-trips it
//! byte for byte with comments and unknown directives kept; the structure needed here is small:
//! haproxy starts a section at a line whose first word is a section keyword, and everything up to
//! the next such line belongs to it.

use super::words;

/// The keywords that open a section (haproxy 2.x configuration manual, section 2 and later).
/// haproxy-firstboot tells its sections from the API's with this same list.
const SECTION_KEYWORDS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "userlist",
    "peers",
    "resolvers",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
    "crt-store",
    "log-forward",
    "fcgi-app",
    "traces",
    "dynamic-update",
];

const VERSION_PREFIX: &str = "# _version=";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The configuration version (`# _version=N` on the first line; 1 when the line is absent).
    pub version: u64,
    /// Lines before the first section, without the version line.
    pub preamble: Vec<String>,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub keyword: String,
    pub name: Option<String>,
    /// The header line exactly as written.
    pub header: String,
    /// Every line after the header up to the next section, exactly as written.
    pub body: Vec<String>,
}

impl Section {
    /// A new section `keyword name` with the given body lines (indented by two spaces).
    pub fn new(keyword: &str, name: &str, body: Vec<String>) -> Self {
        Section {
            keyword: keyword.to_string(),
            name: Some(name.to_string()),
            header: format!("{keyword} {}", words::quote(name)),
            body,
        }
    }

    /// The header and body lines, each ending with a newline.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(
            self.header.len() + 1 + self.body.iter().map(|l| l.len() + 1).sum::<usize>(),
        );
        out.push_str(&self.header);
        out.push('\n');
        for line in &self.body {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    pub fn is(&self, keyword: &str, name: &str) -> bool {
        self.keyword == keyword && self.name.as_deref() == Some(name)
    }
}

impl Document {
    pub fn parse(text: &str) -> Document {
        let mut lines: Vec<&str> = text.split('\n').collect();
        if text.ends_with('\n') {
            lines.pop();
        }
        let mut version = 1;
        let mut rest = &lines[..];
        if let Some(first) = lines.first()
            && let Some(n) = first.strip_prefix(VERSION_PREFIX)
            && let Ok(n) = n.trim().parse::<u64>()
        {
            version = n;
            rest = &lines[1..];
        }
        let mut doc = Document {
            version,
            preamble: Vec::new(),
            sections: Vec::new(),
        };
        for line in rest {
            let ws = words::split(line);
            match ws.first() {
                Some(k) if SECTION_KEYWORDS.contains(&k.as_str()) => doc.sections.push(Section {
                    keyword: k.clone(),
                    name: ws.get(1).cloned(),
                    header: line.to_string(),
                    body: Vec::new(),
                }),
                _ => match doc.sections.last_mut() {
                    Some(s) => s.body.push(line.to_string()),
                    None => doc.preamble.push(line.to_string()),
                },
            }
        }
        doc
    }

    /// The file's text, with `# _version=<version>` as its first line.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(64 * (self.sections.len() + 4));
        out.push_str(VERSION_PREFIX);
        out.push_str(&self.version.to_string());
        out.push('\n');
        for line in &self.preamble {
            out.push_str(line);
            out.push('\n');
        }
        for s in &self.sections {
            out.push_str(&s.text());
        }
        out
    }

    pub fn sections_of<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| s.keyword == keyword)
    }

    pub fn find(&self, keyword: &str, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.is(keyword, name))
    }

    pub fn find_mut(&mut self, keyword: &str, name: &str) -> Option<&mut Section> {
        self.sections.iter_mut().find(|s| s.is(keyword, name))
    }

    /// Appends a section, separated from the one before by a blank line.
    pub fn append(&mut self, section: Section) {
        if let Some(last) = self.sections.last_mut()
            && last.body.last().is_none_or(|l| !l.trim().is_empty())
        {
            last.body.push(String::new());
        }
        self.sections.push(section);
    }

    /// Removes the section; returns whether it existed.
    pub fn remove(&mut self, keyword: &str, name: &str) -> bool {
        let before = self.sections.len();
        self.sections.retain(|s| !s.is(keyword, name));
        self.sections.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# _version=7\n# kept comment\nglobal\n  maxconn 10 # why\n\ndefaults\n  mode tcp\n\nuserlist controller\n  user admin password $6$x$y\n\nfrontend fe\n  bind 1.2.3.4:80 name b\n  default_backend be\n\nbackend be\n  server s1 10.0.0.1:80 check\n";

    #[test]
    fn round_trips_byte_for_byte() {
        let doc = Document::parse(SAMPLE);
        assert_eq!(doc.version, 7);
        assert_eq!(doc.render(), SAMPLE);
        assert_eq!(doc.sections.len(), 5);
        assert_eq!(doc.find("backend", "be").map(|s| s.body.len()), Some(1));
    }

    #[test]
    fn a_file_without_a_version_line_is_version_one() {
        let doc = Document::parse("global\n  daemon\n");
        assert_eq!(doc.version, 1);
        assert_eq!(doc.render(), "# _version=1\nglobal\n  daemon\n");
    }

    #[test]
    fn appended_sections_are_separated_by_a_blank_line() {
        let mut doc = Document::parse("global\n  daemon\n");
        doc.append(Section::new("backend", "b", vec!["  mode tcp".into()]));
        assert_eq!(
            doc.render(),
            "# _version=1\nglobal\n  daemon\n\nbackend b\n  mode tcp\n"
        );
        assert!(doc.remove("backend", "b"));
        assert!(!doc.remove("backend", "b"));
    }
}
