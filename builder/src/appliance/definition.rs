//! The HAProxy appliance's definition (`builder/appliance/haproxy.toml` and its EULA), built
//! into the binary, and the choice between it and a `--definition FILE`.

use std::path::Path;

use ovf::{Definition, DefinitionError};

/// The HAProxy appliance definition, embedded in the binary.
pub const HAPROXY_DEFINITION: &str = include_str!("../../appliance/haproxy.toml");
/// The EULA the HAProxy definition names (`eula.txt`), embedded in the binary.
pub const HAPROXY_EULA: &str = include_str!("../../appliance/eula.txt");
/// How error messages name the built-in definition.
pub const HAPROXY_DEFINITION_ORIGIN: &str = "builder/appliance/haproxy.toml (built in)";

/// The built-in HAProxy appliance definition, EULA included.
pub fn builtin_definition() -> Result<Definition, DefinitionError> {
    Definition::parse_with_files(
        HAPROXY_DEFINITION,
        HAPROXY_DEFINITION_ORIGIN,
        |path| match path {
            "eula.txt" => Ok(HAPROXY_EULA.to_string()),
            other => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{other} is not built into ova-builder; use --definition FILE"),
            )),
        },
    )
}

/// The definition in `path`, or the built-in one when `None`.
pub fn load_definition(path: Option<&Path>) -> Result<Definition, DefinitionError> {
    match path {
        Some(path) => Definition::from_file(path),
        None => builtin_definition(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_definition_loads_with_eula() {
        let def = builtin_definition().unwrap_or_else(|e| panic!("{e}"));
        let eula = def.eula().and_then(|e| e.text.as_deref());
        assert_eq!(eula, Some(HAPROXY_EULA));
    }
}
