#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vigil_core_fuzz::decode_all_ways(vigil_core::codec::uuid::PLX_CONTINUOUS_MEASUREMENT, data)
});
