//! PEM repair never panics, whatever was pasted.
#![no_main]

use firstboot::pem;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = pem::blocks(&text);
    if let Ok(certs) = pem::certificates(&text) {
        for c in &certs {
            let _ = pem::is_ca(c);
            let _ = pem::subject(c);
        }
    }
    let _ = pem::private_key(&text);
});
