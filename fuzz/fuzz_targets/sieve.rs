//! Sieve compilation of arbitrary scripts: compiles or reports an error, never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = postfach_sieve::compile_bytes(data);
});
