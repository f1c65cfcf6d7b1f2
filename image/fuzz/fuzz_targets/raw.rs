#![no_main]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::with_file("disk.raw", data, |p| {
        if let Ok(src) = image::raw::RawSource::open(p) {
            common::exercise(Box::new(src));
        }
    });
});
