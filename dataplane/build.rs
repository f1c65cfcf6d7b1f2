//! `GET /v2/specification` answers the spec as JSON: converted once here, so the server neither
//! parses YAML at run time nor keeps a parsed copy in memory.

fn main() {
    let spec = "spec/dataplaneapi-v2.yaml";
    println!("cargo::rerun-if-changed={spec}");
    let text = std::fs::read_to_string(spec).unwrap_or_else(|e| panic!("cannot read {spec}: {e}"));
    let value: serde_json::Value =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{spec} is not valid YAML: {e}"));
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("specification.json"), value.to_string())
        .unwrap_or_else(|e| panic!("cannot write the JSON specification: {e}"));
}
