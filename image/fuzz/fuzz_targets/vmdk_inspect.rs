#![no_main]
// The sequential stream-optimized validator used by `ova-builder verify`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = image::vmdk::inspect(data);
});
