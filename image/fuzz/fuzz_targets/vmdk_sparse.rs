#![no_main]
mod common;
// Hosted sparse / stream-optimized extents: the input gets a valid magic so the fuzzer
// spends its time past the first check.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut d = b"KDMV".to_vec();
    d.extend_from_slice(data.get(4..).unwrap_or_default());
    common::with_file("disk.vmdk", &d, |p| {
        if let Ok(f) = std::fs::File::open(p) {
            if let Ok(src) = image::vmdk::VmdkSource::open_sparse(f, p) {
                common::exercise(Box::new(src));
            }
        }
    });
});
