#![no_main]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut d = b"QFI\xfb".to_vec();
    d.extend_from_slice(data.get(4..).unwrap_or_default());
    common::with_file("disk.qcow2", &d, |p| {
        if let Ok(src) = image::qcow2::Qcow2Source::open(p) {
            common::exercise(Box::new(src));
        }
    });
});
