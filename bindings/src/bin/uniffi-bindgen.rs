//! The uniffi binding generator, pinned to the same uniffi version as the
//! library so generated code and scaffolding always match.

fn main() {
    uniffi::uniffi_bindgen_main()
}
