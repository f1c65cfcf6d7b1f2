#![no_main]
mod common;
// Format detection and whichever reader it picks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::with_file("disk.img", data, |p| {
        if let Ok(src) = image::open(p) {
            common::exercise(src);
        }
    });
});
