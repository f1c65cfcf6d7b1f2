//! The OVF environment parser and validation never panic on any input, and whatever parses
//! survives a write/read round trip unchanged.
#![no_main]

use firstboot::config::Deployment;
use firstboot::definition;
use firstboot::env;
use firstboot::validate::validate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = env::parse(data) else {
        return;
    };
    let again = env::parse(parsed.to_xml().as_bytes()).expect("written document parses");
    assert_eq!(again, parsed, "round trip changed the document");
    for deployment in [Deployment::Default, Deployment::Frontend] {
        let _ = validate(&parsed, deployment, definition::appliance());
    }
});
