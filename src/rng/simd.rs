//! Run-time choice of the instruction set the CPU backend's hot loops are compiled for.
//!
//! The batched normal generator (`fill_normals`: Philox rounds, then branch-free
//! Box–Muller over a chunk) is compiled three times — AVX-512, AVX2 and the portable
//! baseline — and the widest the CPU has is used. The arithmetic is the same IEEE
//! operations in the same order in every copy (Rust never contracts a·b + c into an
//! FMA on its own; where a loop asks for one, `mul_add`, it is exact on every level: an
//! instruction on AVX2 + FMA and AVX-512, software on the baseline), so every level
//! gives the same bits; `tests/simd_levels.rs` proves
//! it. `SMFLOW_SIMD=avx512|avx2|scalar` forces a level (capped by what the CPU has),
//! for those tests and for benchmarks.

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Scalar,
    Avx2,
    Avx512,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }
}

/// The widest level this CPU supports.
pub fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl")
        {
            return Level::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Scalar
}

/// The level in use: `SMFLOW_SIMD` if set (never above `detected()`), else `detected()`.
/// Read once per process.
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let want = match std::env::var("SMFLOW_SIMD").ok().as_deref() {
            Some("scalar") => Level::Scalar,
            Some("avx2") => Level::Avx2,
            _ => Level::Avx512,
        };
        want.min(detected())
    })
}

/// `per_level!(fn name<G: Bound>(args…) => body)` (generics optional) defines `name(level, args…)`: `body(args…)`
/// compiled once per level (AVX-512, AVX2 via `#[target_feature]`, and the baseline) and
/// run at the widest level not above `level` and `detected()`. `body` must be
/// `#[inline(always)]` so that each copy is vectorised for its level. The one dispatch
/// mechanism of every hot loop (the normal generator, the small-d lane groups, the
/// mean-field activations).
#[macro_export]
macro_rules! per_level {
    ($(#[$meta:meta])* $vis:vis fn $name:ident $(<$($g:ident: $bound:path),*>)? ($($arg:ident: $ty:ty),* $(,)?) => $body:path) => {
        $(#[$meta])*
        $vis fn $name $(<$($g: $bound),*>)? (level: $crate::rng::simd::Level, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
                unsafe fn avx512 $(<$($g: $bound),*>)? ($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2 $(<$($g: $bound),*>)? ($($arg: $ty),*) {
                    $body($($arg),*)
                }
                match level.min($crate::rng::simd::detected()) {
                    // SAFETY: the level is capped by what the CPU reports.
                    $crate::rng::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    $crate::rng::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::rng::simd::Level::Scalar => {}
                }
            }
            $body($($arg),*)
        }
    };
}
