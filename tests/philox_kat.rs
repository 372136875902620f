//! Random123 known-answer vectors for Philox4x32-10 (DESIGN §9), on the CPU here;
//! the WGSL twin is checked in `tests/gpu_kernels.rs`.
mod common;
use common::cases::KAT;
use smflow::rng::philox4x32_10;

#[test]
fn philox_matches_random123_vectors() {
    for (ctr, key, want) in KAT {
        assert_eq!(
            philox4x32_10(ctr, key),
            want,
            "ctr {ctr:08x?} key {key:08x?}"
        );
    }
}
