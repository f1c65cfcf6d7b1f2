//! Definition file → [`Definition`]: TOML with spans ([`raw`](super::raw)), then one check per
//! concern, each naming `file:line:column` when it refuses something. The concerns live in
//! their own modules: [`hardware`], [`network`] (deployment options, networks, NICs) and
//! [`property`] (categories and properties).

mod hardware;
mod network;
mod property;

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use toml::Spanned;

use super::raw;
use super::{
    Definition, DefinitionError, DeploymentOption, Eula, Location, OperatingSystem, ProductInfo,
    VirtualSystemInfo,
};
use crate::text::{Position, line_column};

impl Definition {
    /// Reads and validates a definition file; the EULA file is read relative to it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Definition, DefinitionError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| DefinitionError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Definition::parse_with_files(&text, &path.display().to_string(), |relative| {
            std::fs::read_to_string(dir.join(relative))
        })
    }

    /// Validates a definition without reading any other file: the EULA text stays unloaded
    /// (`Eula::text == None`) and the descriptor then has no EulaSection. For programs that
    /// only need properties and NICs (for example `haproxy-firstboot` embedding the file with
    /// `include_str!`).
    pub fn parse(text: &str, origin: &str) -> Result<Definition, DefinitionError> {
        Definition::build(text, origin, None)
    }

    /// Validates a definition; `load` returns the content of a file named in it (the EULA),
    /// given the path as written.
    pub fn parse_with_files(
        text: &str,
        origin: &str,
        mut load: impl FnMut(&str) -> std::io::Result<String>,
    ) -> Result<Definition, DefinitionError> {
        Definition::build(text, origin, Some(&mut load))
    }

    fn build(
        text: &str,
        origin: &str,
        load: Option<Loader<'_>>,
    ) -> Result<Definition, DefinitionError> {
        let ctx = Ctx {
            text,
            origin: Arc::from(origin),
        };
        let raw: raw::RawDefinition = toml::from_str(text).map_err(|e| {
            let start = e.span().map(|s| s.start).unwrap_or(0);
            DefinitionError::Syntax {
                at: ctx.at_offset(start),
                message: e.message().trim_end().to_string(),
            }
        })?;
        ctx.validate(raw, load)
    }
}

/// Reads a file named in a definition, given the path as written there.
type Loader<'a> = &'a mut dyn FnMut(&str) -> std::io::Result<String>;

struct Ctx<'a> {
    text: &'a str,
    origin: Arc<str>,
}

impl Ctx<'_> {
    fn at_offset(&self, offset: usize) -> Location {
        let Position { line, column } = line_column(self.text, offset);
        Location {
            origin: self.origin.clone(),
            line,
            column,
        }
    }

    fn at(&self, span: Range<usize>) -> Location {
        self.at_offset(span.start)
    }

    fn invalid(&self, span: Range<usize>, message: impl Into<String>) -> DefinitionError {
        DefinitionError::Invalid {
            at: self.at(span),
            message: message.into(),
        }
    }

    fn configurations(
        &self,
        value: Option<&Spanned<String>>,
        declared: &[DeploymentOption],
        what: &str,
    ) -> Result<Vec<String>, DefinitionError> {
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        let ids: Vec<String> = value
            .get_ref()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if ids.is_empty() {
            return Err(self.invalid(
                value.span(),
                format!(
                    "{what} has an empty `configuration`; omit it to mean every deployment option"
                ),
            ));
        }
        for id in &ids {
            if !declared.iter().any(|o| &o.id == id) {
                let list: Vec<&str> = declared.iter().map(|o| o.id.as_str()).collect();
                return Err(DefinitionError::UnknownConfiguration {
                    at: self.at(value.span()),
                    what: what.to_string(),
                    id: id.clone(),
                    declared: if list.is_empty() {
                        "none".to_string()
                    } else {
                        list.join(", ")
                    },
                });
            }
        }
        Ok(ids)
    }

    fn validate(
        &self,
        raw: raw::RawDefinition,
        load: Option<Loader<'_>>,
    ) -> Result<Definition, DefinitionError> {
        let virtual_system = self.virtual_system(raw.virtual_system)?;
        let eula = raw.eula.map(|e| self.eula(e, load)).transpose()?;
        let hardware = self.hardware(raw.hardware)?;
        let deployment_options = self.deployment_options(raw.deployment_options)?;
        let networks = self.networks(raw.networks, &deployment_options)?;
        let nics = self.nics(raw.nics, &networks, &deployment_options)?;
        let categories = self.categories(raw.categories, &deployment_options)?;
        Ok(Definition {
            origin: self.origin.to_string(),
            virtual_system,
            product: product(raw.product),
            eula,
            operating_system: operating_system(raw.operating_system),
            hardware,
            deployment_options,
            networks,
            nics,
            categories,
        })
    }

    fn virtual_system(
        &self,
        vs: raw::RawVirtualSystem,
    ) -> Result<VirtualSystemInfo, DefinitionError> {
        let id = vs.id;
        if id.get_ref().trim().is_empty() || id.get_ref().contains(char::is_whitespace) {
            return Err(self.invalid(
                id.span(),
                "virtual_system.id must be a non-empty name without spaces",
            ));
        }
        Ok(VirtualSystemInfo {
            id: id.into_inner(),
            info: vs.info.unwrap_or_else(|| "A virtual machine".to_string()),
            name: vs.name,
            annotation: vs.annotation,
        })
    }

    /// The EULA; its text is loaded when the caller gave a loader.
    fn eula(&self, e: raw::RawEula, load: Option<Loader<'_>>) -> Result<Eula, DefinitionError> {
        let file = e.file.get_ref().clone();
        let text = match load {
            None => None,
            Some(load) => Some(load(&file).map_err(|err| DefinitionError::Eula {
                at: self.at(e.file.span()),
                path: file.clone(),
                reason: err.to_string(),
            })?),
        };
        Ok(Eula {
            file,
            info: e
                .info
                .unwrap_or_else(|| "End User License Agreement".to_string()),
            text,
        })
    }
}

fn product(p: raw::RawProduct) -> ProductInfo {
    ProductInfo {
        info: p
            .info
            .unwrap_or_else(|| "Information about the installed software".to_string()),
        product: p.product,
        vendor: p.vendor,
        version: p.version,
        full_version: p.full_version,
        product_url: p.product_url,
        vendor_url: p.vendor_url,
        app_url: p.app_url,
    }
}

fn operating_system(os: raw::RawOperatingSystem) -> OperatingSystem {
    OperatingSystem {
        id: os.id,
        version: os.version,
        description: os.description,
        vmw_os_type: os.vmw_os_type,
    }
}
