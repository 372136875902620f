//! WGSL source of a mean-field job: the run's constants as a header (sizes, tile,
//! slices, dynamics flags, step constants, μ₀), then Philox, the two-layer model and the
//! kernels. One composition for the training samples and one for the test set.

use super::plan::group;
use super::*;
use crate::data::sampling::{feistel_half_bits, Sampling};

/// Values per replica of `aux` (order-2 drift): r_j, ρ_j, g.
pub(super) fn aux_len(job: &MfJob, plan: &Plan) -> u64 {
    2 * plan.ns as u64 + job.state_len() as u64
}

/// The kernels of `job` (training samples, or the test set with `test`).
pub(super) fn compose(
    job: &MfJob,
    plan: &Plan,
    test: bool,
    p: Precision,
    int64: bool,
    shared: u64,
) -> String {
    let rs = real_size(p);
    let (ns, sc, sch) = if test {
        (plan.nt, plan.tsc, plan.tsch)
    } else {
        (plan.ns, plan.sc, plan.sch)
    };
    let dynamics = job.dynamics;
    let rk4 = dynamics.is_ode() && !test;
    let modified = dynamics.modified() && !test;
    let g = group(plan.wg, sc, rs, shared);
    let gr = RWG.min(ns.next_power_of_two());
    let xmode = match (test || !job.minibatch(), job.streaming) {
        (false, Some(_)) => 1,
        (false, None) => 2,
        _ => 0,
    };
    let smf = job.set_noise() && !test;
    let sub = job.substeps().max(1);
    let nset = job.set.as_ref().map_or(1, |s| s.n.max(1)) as f64;
    let momentum = dynamics.has_momentum() && !test;
    let mut h = String::from(real_header(p));
    let mut u = |name: &str, v: u64| {
        let _ = writeln!(h, "const {name}: u32 = {v}u;");
    };
    u("WG", plan.wg as u64);
    u("RWG", RWG as u64);
    u("D", job.d as u64);
    u("PER", job.per() as u64);
    u("NN", job.width as u64);
    u("NS", ns as u64);
    u("SC", sc as u64);
    u("SCH", sch as u64);
    u("G", g as u64);
    u("GR", gr as u64);
    u("PR", (RWG / gr) as u64);
    u("SH", g as u64 * (plan.wg as u64 + 1) + plan.wg as u64);
    u("TILES", plan.tiles as u64);
    u("MT", job.teacher.m() as u64);
    u("NDATA", nset as u64);
    u("FEISTEL_H", feistel_half_bits(nset as u32) as u64);
    u("SUB_FINE", job.substeps.max(1) as u64);
    u("COARSEN", job.coarsen.max(1) as u64);
    u("EVALS", dynamics.evaluations_per_step(sub) as u64);
    u("XMODE", xmode);
    u("CMODE", smf as u64);
    u("AUXS", aux_len(job, plan));
    u("STREAM", job.stream as u64);
    u("TAG_INIT", TAG_INIT as u64);
    u("ACT", job.act.code() as u64);
    u("PHI", job.phi.code() as u64);
    let _ = writeln!(
        h,
        "const KEY: vec2<u32> = vec2<u32>({}u, {}u);",
        job.key[0], job.key[1]
    );
    for (name, v) in [
        ("RK4", rk4),
        ("READ_STG", rk4),
        ("TEST", test),
        ("MODIFIED", modified),
        ("MOMENTUM", momentum),
        ("EPOCHS", job.sampling == Sampling::Epochs),
    ] {
        let _ = writeln!(h, "const {name}: bool = {v};");
    }
    let mut r = |name: &str, v: f64| {
        let _ = writeln!(h, "const {name}: real = {};", lit(v, p));
    };
    let c0 = if test { 1.0 } else { job.sample_weight() };
    let hstep = job.eta / sub as f64;
    let (w0, noise_scale) = job.noise_weights();
    r("C0", c0);
    r("INV_N", 1.0 / job.width as f64);
    r("INV_NS", 1.0 / ns.max(1) as f64);
    r("INV_MT", 1.0 / job.teacher.m().max(1) as f64);
    r("H", hstep);
    r("H6", hstep / 6.0);
    r("SIGMA", job.streaming.unwrap_or(0.0));
    r("BOUND", job.bound.min(f64::MAX));
    r("W0", w0);
    r("NOISE_SCALE", noise_scale);
    r("GAMMA", job.friction);
    r("INV_SQRT_COARSEN", 1.0 / (job.coarsen.max(1) as f64).sqrt());
    // The order-2 correction's factor: (η/2)/N, × dt on smf2's EM step (RK4 applies h).
    let step = if dynamics.is_ode() { 1.0 } else { hstep };
    r("CORR", 0.5 * job.eta * step / nset);
    r("A_MEAN", job.init.a_mean);
    r("A_STD", job.init.a_std);
    r("W_STD", job.init.w_std);
    [
        &h,
        MATH,
        mulhilo(int64),
        PHILOX,
        SAMPLING,
        RK4,
        HEAVY_BALL,
        TWO_LAYER,
        KERNELS,
    ]
    .concat()
}
