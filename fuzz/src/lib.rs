//! What every crate's parser fuzz tests share: the input strategy and the number of executions.
//! The tests themselves sit beside each parser (`fuzz_*` in the crates' test modules); they run
//! with proptest on stable Rust (no nightly `cargo fuzz`), in every `cargo test`. A parser passes
//! when every input gives `Ok` or an error: never a panic, a hang or an unbounded allocation.
//! `RELIABILITY.md` lists the targets.
#![warn(missing_docs)]

use proptest::prelude::*;

/// Executions per fuzz target: `GRASP_FUZZ_CASES`, or 2000 (a few seconds per target in CI).
pub fn cases() -> u32 {
    std::env::var("GRASP_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
}

/// A proptest configuration for fuzz targets: [`cases`] executions from a fixed seed (CI is
/// deterministic; set `PROPTEST_RNG_SEED` to explore), no failure files written.
pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_129),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Inputs near a valid one: up to 8 bytes replaced, cut at a random point 1 time in 4 (3 in 4
/// of all inputs), or random bytes (1 in 4). Mutations of real inputs reach much deeper into a parser than noise alone.
pub fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    assert!(!valid.is_empty(), "a fuzz seed input must not be empty");
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8);
    prop_oneof![
        3 => (edits, prop::option::weighted(0.25, any::<prop::sample::Index>())).prop_map(move |(edits, cut)| {
            let mut v = valid.clone();
            for (i, b) in edits {
                let k = i.index(v.len());
                v[k] = b;
            }
            if let Some(cut) = cut {
                v.truncate(cut.index(v.len() + 1));
            }
            v
        }),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

/// Like [`mutated`], as text (invalid UTF-8 replaced), for parsers that take `&str`.
pub fn mutated_text(valid: &str) -> impl Strategy<Value = String> {
    mutated(valid.as_bytes().to_vec()).prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}
