#![no_main]

libfuzzer_sys::fuzz_target!(init: hostcert::fuzz::init(), |data: &[u8]| {
    hostcert::fuzz::image_layout(data);
});
