#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vigil_core_fuzz::decode_all_ways(vigil_core::codec::uuid::CGM_SPECIFIC_OPS_CONTROL_POINT, data)
});
