//! The request parser under libFuzzer: the oracle of `tests/fuzz/parser_oracle.rs` (no panic, same result however
//! the input is split, agreement with `redis-protocol` on canonical requests). The first input byte picks the
//! read sizes.
#![no_main]

#[path = "../../tests/fuzz/parser_oracle.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let reads = [(split & 0x0f) as usize + 1, (split >> 4) as usize + 1];
    oracle::check(input, &reads);
});
