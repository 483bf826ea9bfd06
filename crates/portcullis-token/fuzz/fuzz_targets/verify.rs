#![no_main]
//! Parsing + verification with the oracle of `portcullis_token::fuzzing`:
//! inputs go in both as token strings and as header/claims documents signed
//! with a known HS256 key, so they reach the claim validator.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portcullis_token::fuzzing::run(data);
});
