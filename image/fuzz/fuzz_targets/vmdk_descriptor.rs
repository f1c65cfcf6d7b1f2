#![no_main]
mod common;
// Text descriptors; extents may name "disk.vmdk" (the descriptor itself) and so reach the
// flat and sparse extent readers too.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = image::vmdk::descriptor::parse(text);
    common::with_file("disk.vmdk", data, |p| {
        if let Ok(src) = image::vmdk::VmdkSource::open_descriptor(text, p) {
            common::exercise(Box::new(src));
        }
    });
});
