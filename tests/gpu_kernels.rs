//! GPU kernel checks: the WGSL Philox against the Random123 known-answer vectors
//! (DESIGN §9), its uniforms and Box–Muller normals against `smflow::rng`, all through
//! `shaders/rng/philox.wgsl` — the file the simulators use — and naga parse +
//! validation of every composed kernel (no adapter needed for that one).

use smflow::backend::gpu::{compose, GpuBackend};
use smflow::backend::Precision;
use smflow::dynamics::{Coupling, Dynamics, Kind, RunSpec, Solver};
use smflow::rng;

mod common;
use common::cases::{models, spec, KAT};

fn backend(p: Precision) -> Option<GpuBackend> {
    match GpuBackend::new(p) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("skipping: no wgpu adapter ({e})");
            None
        }
    }
}

/// Counters spread over all 32 bits, plus the KAT counters.
fn inputs() -> Vec<([u32; 4], [u32; 2])> {
    let mut v: Vec<_> = KAT.iter().map(|(c, k, _)| (*c, *k)).collect();
    let mut s = 0x1234_5678_9abc_def0u64;
    for i in 0..4093u32 {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let h = (s >> 32) as u32;
        v.push(([i * 977, h, i % 7, h ^ 0xA5A5_0000], [s as u32, 0x5eed]));
    }
    v
}

#[test]
fn wgsl_philox_matches_known_answers_and_cpu() {
    let Some(b) = backend(Precision::F32) else {
        return;
    };
    let inp = inputs();
    // The device's multiply (u64 with SHADER_INT64) and the portable 16-bit split.
    for out in [b.rng_check(&inp), b.rng_check_portable(&inp)] {
        let out = out.expect("rng kernel");
        for (i, (c, k, want)) in KAT.iter().enumerate() {
            assert_eq!(out.bits[i], *want, "KAT ctr {c:08x?} key {k:08x?}");
        }
        for (i, (c, k)) in inp.iter().enumerate() {
            assert_eq!(
                out.bits[i],
                rng::philox4x32_10(*c, *k),
                "ctr {c:08x?} key {k:08x?}"
            );
        }
    }
}

#[test]
fn wgsl_uniforms_and_normals_match_cpu() {
    let Some(b) = backend(Precision::F32) else {
        return;
    };
    let inp = inputs();
    let out = b.rng_check(&inp).expect("rng kernel");
    let mut worst = 0.0f64;
    for (i, (c, k)) in inp.iter().enumerate() {
        let u = rng::philox4x32_10(*c, *k);
        for l in 0..4 {
            // Exact in f64; in f32 k·2^-24 + 2^-25 needs 25 bits for u >= 1/2 and is
            // rounded by at most half an ulp, 2^-25.
            let err = (out.uniforms[i][l] - rng::uniform(u[l])).abs();
            assert!(err <= 2f64.powi(-25), "uniform {i} lane {l}: {err:e}");
        }
        if c[2] >= 1 << 30 {
            continue; // normal index 4·block would overflow u32
        }
        let want = rng::normals4(*c, *k);
        for l in 0..4 {
            let err = (out.normals[i][l] - want[l]).abs() / (1.0 + want[l].abs());
            worst = worst.max(err);
            // f32 log/sin/cos: llvmpipe's sin/cos are good to ~1e-6 absolute (Vulkan
            // only promises 2^-11 on (-π, π)); r ≤ 5.9 multiplies that.
            assert!(
                err < 1e-5,
                "normal {i} lane {l}: gpu {} cpu {}",
                out.normals[i][l],
                want[l]
            );
        }
    }
    eprintln!(
        "worst normal error {worst:.2e} on {}",
        smflow::backend::Backend::adapter(&b)
    );
}

#[test]
fn wgsl_normals_f64_if_supported() {
    let b = match GpuBackend::new(Precision::F64) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("skipping f64: {e}");
            return;
        }
    };
    let inp = inputs();
    let out = b.rng_check(&inp).expect("rng kernel");
    let mut worst = 0.0f64;
    for (i, (c, k)) in inp.iter().enumerate() {
        assert_eq!(out.bits[i], rng::philox4x32_10(*c, *k));
        for l in 0..4 {
            assert_eq!(
                out.uniforms[i][l],
                rng::uniform(out.bits[i][l]),
                "f64 uniforms are exact"
            );
        }
        if c[2] >= 1 << 30 {
            continue;
        }
        let want = rng::normals4(*c, *k);
        for l in 0..4 {
            let err = (out.normals[i][l] - want[l]).abs() / (1.0 + want[l].abs());
            worst = worst.max(err);
            // The same algorithms as the CPU (math_f64.wgsl), so only rounding differs
            // (a driver may fuse a multiply-add): f32 log/cos/sin here fail by ~1e-7.
            assert!(
                err < 1e-14,
                "f64 normal {i} lane {l}: gpu {} cpu {}",
                out.normals[i][l],
                want[l]
            );
        }
    }
    eprintln!("worst f64 normal error {worst:.2e}");
}

const SOLVERS: [Solver; 3] = [
    Solver::Substeps {
        substeps: 4,
        extrapolate: true,
    },
    Solver::Substeps {
        substeps: 4,
        extrapolate: false,
    },
    Solver::Exact,
];

#[test]
fn every_composed_kernel_parses_and_validates() {
    let mut n = 0;
    for m in models() {
        for name in smflow::dynamics::NAMES {
            let dy = Dynamics::parse(name).unwrap();
            for solver in SOLVERS {
                // The exact solver where the model declares the transition (msme1's is
                // of the pair (X, P): the quadratic model's, not geometric BM's).
                let sde_exact = dy.kind() == Kind::Sde && solver == Solver::Exact;
                if sde_exact && !m.as_dyn().capabilities().has(dy.exact_needs()) {
                    continue;
                }
                // One and two particles; an SDE run on em levels also coupled to its
                // discrete partner (sgd, or msgd for msme1) with one particle, and SMF
                // with two (the partner carries every particle).
                let coupled = dy.kind() == Kind::Sde && solver != Solver::Exact;
                let pairs = [(1, dy.reference()), (2, dy.reference())];
                for (particles, coupling) in [(1, None), (2, None)].into_iter().chain(
                    pairs
                        .into_iter()
                        .filter(|&(p, _)| coupled && (p == 1 || dy.shared_noise())),
                ) {
                    for p in [Precision::F32, Precision::F64] {
                        let mut s = spec(&m, dy, solver, particles, 1);
                        s.coupling = coupling.map(|r| Coupling {
                            sgd_stream: RunSpec::stream_tag(r, 1),
                        });
                        let src = compose::compose(&m, &s, p);
                        let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| {
                            panic!(
                                "{} {name} {p:?}: {}\n{src}",
                                m.name(),
                                e.emit_to_string(&src)
                            )
                        });
                        let caps = if p == Precision::F64 {
                            naga::valid::Capabilities::FLOAT64
                        } else {
                            naga::valid::Capabilities::empty()
                        };
                        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
                            .validate(&module)
                            .unwrap_or_else(|e| {
                                panic!("{} {name} {p:?}: {}\n", m.name(), e.emit_to_string(&src))
                            });
                        n += 1;
                    }
                }
            }
        }
    }
    for (p, int64) in [
        (Precision::F32, false),
        (Precision::F64, false),
        (Precision::F32, true),
    ] {
        let src = compose::rng_check_source(p, int64);
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string(&src)));
        let mut caps = naga::valid::Capabilities::empty();
        if p == Precision::F64 {
            caps |= naga::valid::Capabilities::FLOAT64;
        }
        if int64 {
            caps |= naga::valid::Capabilities::SHADER_INT64;
        }
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
            .validate(&module)
            .expect("rng_check validates");
    }
    for int64 in [false, true] {
        let src = compose::rng_ceiling_source(40, int64);
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string(&src)));
        let caps = if int64 {
            naga::valid::Capabilities::SHADER_INT64
        } else {
            naga::valid::Capabilities::empty()
        };
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
            .validate(&module)
            .expect("rng_ceiling validates");
    }
    // 2 precisions × 4 models × (10 dynamics × 3 solvers, less msme1's exact on the 2
    // multiplicative ones) × 2 particle counts, plus the coupled em kernels (sme1,
    // sme2, smf1, smf2, msme1 × 2 solvers, and smf1, smf2 × 2 solvers with 2 particles).
    assert_eq!(n, 2 * ((4 * 10 * 3 - 2) * 2 + 4 * 5 * 2 + 4 * 2 * 2));
}

#[test]
fn adapters_are_listed() {
    for a in smflow::backend::gpu::list_adapters() {
        eprintln!("adapter: {a}");
    }
}

/// The checkpoint reduction fits every adapter's workgroup memory whatever the
/// statistics: n_point's eight particles (72 observables), coupled (three channels),
/// in f64 is 1080 sums per replica, reduced in slices within `REDUCE_BUDGET`; a kernel
/// with few statistics keeps them all in one slice, as before. Counted by the same
/// check every pipeline passes (`device::workgroup_bytes`), without a GPU.
#[test]
fn the_reduction_fits_the_smallest_workgroup_memory() {
    use smflow::backend::gpu::{compose::REDUCE_BUDGET, device::workgroup_bytes};
    use smflow::observables::Observable;
    let m = &models()[0];
    let particles = 8u8;
    let mut obs = Vec::new();
    for p in 0..particles {
        obs.extend([Observable::X0(p), Observable::Prod(p, p)]);
    }
    for p in 0..particles {
        for q in p + 1..particles {
            obs.extend([Observable::Prod(p, q), Observable::Dist2(p, q)]);
        }
    }
    for p in [Precision::F32, Precision::F64] {
        let mut big = spec(
            m,
            Dynamics::Smf2,
            Solver::Substeps {
                substeps: 8,
                extrapolate: true,
            },
            8,
            1,
        );
        big.observables = obs.clone();
        big.coupling = Some(Coupling {
            sgd_stream: RunSpec::stream_tag(Dynamics::Sgd, 1),
        });
        let small = spec(m, Dynamics::Sgd, Solver::Exact, 1, 1);
        let real = if p == Precision::F64 { 8 } else { 4 };
        for (s, sums) in [(&big, 72 * 3 * 5), (&small, small.n_stats() * 5)] {
            assert_eq!(s.n_stats() * 5, sums);
            let bytes = workgroup_bytes(&compose::compose(m, s, p)).unwrap()["reduce"];
            assert!(
                bytes <= REDUCE_BUDGET as u64,
                "{p:?}, {sums} sums: {bytes} bytes of workgroup memory"
            );
            if sums * 64 * real <= REDUCE_BUDGET {
                // One slice: every sum of the workgroup's 64 replicas at once.
                assert_eq!(bytes, (sums * 64 * real) as u64, "{p:?}");
            }
            // The reduction's loops, counted for the loop guard: at least one 63-add
            // tree per slice, and within llvmpipe's budget (61 440 of 65 535) even here.
            let slices = sums.div_ceil(REDUCE_BUDGET / (64 * real)) as u64;
            let iters = compose::reduce_loop_iterations(m, s, p);
            assert!(
                (slices * 63..=61_440).contains(&iters),
                "{p:?}, {sums} sums in {slices} slices: {iters} loop iterations"
            );
        }
    }
}
