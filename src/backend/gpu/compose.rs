//! WGSL composer. WGSL has no generics, so a kernel is source text: a generated header
//! (`real` = f32 | f64, dimensions, the run's constants), then real `.wgsl` files from
//! `shaders/` — math, Philox, the model, drift, observables, one dynamics template per
//! kind, the reduction and the shared entry point. Everything run-specific is a
//! `const`, so drivers fold it and unroll the small loops; the pipeline cache is keyed
//! by the composed text. The only generated code is `observe` and the straight-line
//! RNG block functions (`rng_blocks_fn`); Philox's 32×32 → 64 product comes from
//! `mulhilo_u64.wgsl` where the device has SHADER_INT64, else `mulhilo_u32.wgsl`.

use super::model_consts::model_consts;
use crate::backend::{shifts, Precision};
use crate::dynamics::{Dynamics, Kind, RunSpec, Solver};
use crate::model::AnyModel;
use crate::observables::Observable;
use std::fmt::Write;

pub const MATH: &str = include_str!("../../../shaders/common/math.wgsl");
pub const PHILOX: &str = include_str!("../../../shaders/rng/philox.wgsl");
pub const MULHILO_U32: &str = include_str!("../../../shaders/rng/mulhilo_u32.wgsl");
pub const MULHILO_U64: &str = include_str!("../../../shaders/rng/mulhilo_u64.wgsl");
pub const RNG_CHECK: &str = include_str!("../../../shaders/rng/rng_check.wgsl");
pub const RNG_CEILING: &str = include_str!("../../../shaders/rng/rng_ceiling.wgsl");
pub const QUADRATIC: &str = include_str!("../../../shaders/models/quadratic.wgsl");
pub const MULTIPLICATIVE: &str = include_str!("../../../shaders/models/multiplicative.wgsl");
pub const TOY_SGD: &str = include_str!("../../../shaders/models/toy_sgd.wgsl");
pub const DRIFT: &str = include_str!("../../../shaders/common/drift.wgsl");
pub const OBSERVABLES: &str = include_str!("../../../shaders/common/observables.wgsl");
pub const REDUCE: &str = include_str!("../../../shaders/common/reduce.wgsl");
/// Bytes of workgroup memory the checkpoint reduction may use: below every adapter's
/// `max_compute_workgroup_storage_size` (WebGPU's 16384, wgpu's downlevel GL 16352;
/// llvmpipe reports 32 KiB, NVIDIA 48). The sums do not depend on the slicing, so one
/// budget for all keeps a kernel the same everywhere.
pub const REDUCE_BUDGET: usize = 16352;
pub const KERNEL: &str = include_str!("../../../shaders/common/kernel.wgsl");
pub const DISCRETE: &str = include_str!("../../../shaders/dynamics/discrete.wgsl");
pub const SGD_UPDATE: &str = include_str!("../../../shaders/dynamics/sgd_update.wgsl");
pub const ODE: &str = include_str!("../../../shaders/dynamics/ode.wgsl");
pub const SDE: &str = include_str!("../../../shaders/dynamics/sde.wgsl");
pub const SDE_LEVEL: &str = include_str!("../../../shaders/dynamics/sde_level.wgsl");
pub const MSME1: &str = include_str!("../../../shaders/dynamics/msme1.wgsl");
pub const HEAVY_BALL: &str = include_str!("../../../shaders/dynamics/heavy_ball.wgsl");
/// Minibatch indices from a finite data set (`data::sampling`'s twin), for the trainer
/// and mean-field.
pub const SAMPLING: &str = include_str!("../../../shaders/data/sampling.wgsl");
/// The RK4 step per coordinate (`solver::rk4`'s twin), for every engine's flows.
pub const RK4: &str = include_str!("../../../shaders/solver/rk4.wgsl");

/// A float as a WGSL abstract-float literal (shortest round-trip form of the value
/// rounded to the target precision; f32 overflow saturates to f32::MAX).
pub fn lit(x: f64, p: Precision) -> String {
    match p {
        Precision::F64 => format!("{x:e}"),
        Precision::F32 => {
            let y = x.clamp(-(f32::MAX as f64), f32::MAX as f64) as f32;
            format!("{:e}", y as f64)
        }
    }
}

pub fn lits(v: &[f64], p: Precision) -> String {
    v.iter().map(|&x| lit(x, p)).collect::<Vec<_>>().join(", ")
}

/// The float type and what depends on its width, for every engine's kernels:
/// `alias real = f32|f64;`, the transcendentals r_exp, r_log, r_cos, r_sin, r_tanh
/// (f32: the GPU's builtins; f64: `src/math.rs`'s algorithms, since GLSL.std.450 has
/// them in 16/32 bits only) and `box_muller_bits` (f64: `rng::box_muller` exactly).
pub fn real_header(p: Precision) -> &'static str {
    match p {
        Precision::F32 => concat!(
            "alias real = f32;\n",
            include_str!("../../../shaders/common/math_f32.wgsl"),
            include_str!("../../../shaders/rng/box_muller_f32.wgsl"),
        ),
        Precision::F64 => concat!(
            "alias real = f64;\n",
            include_str!("../../../shaders/common/math_f64.wgsl"),
            include_str!("../../../shaders/rng/box_muller_f64.wgsl"),
        ),
    }
}

/// The Philox 32×32 → 64 multiply: u64 where the device has SHADER_INT64.
pub fn mulhilo(int64: bool) -> &'static str {
    if int64 {
        MULHILO_U64
    } else {
        MULHILO_U32
    }
}

/// Source of the RNG check kernel (entry point `rng_check`); `int64`: use the
/// SHADER_INT64 multiply (the device must have been opened with that feature).
pub fn rng_check_source(p: Precision, int64: bool) -> String {
    [real_header(p), MATH, mulhilo(int64), PHILOX, RNG_CHECK].concat()
}

/// Source of the bench's bare-RNG kernel (entry point `rng_ceiling`), `steps` draws per
/// invocation, in f32.
pub fn rng_ceiling_source(steps: u32, int64: bool) -> String {
    let header = format!("const CEILING_STEPS: u32 = {steps}u;\n");
    [
        real_header(Precision::F32),
        &header,
        MATH,
        mulhilo(int64),
        PHILOX,
        RNG_CEILING,
    ]
    .concat()
}

/// `fn name(b0: u32) -> array<vec4<real>, B>`: normals 4·b0 .. 4·b0 + n − 1 of the
/// current counter as B = ⌈n/4⌉ whole Philox blocks (the second Box–Muller pair of
/// the last block only if it is used), written out call by call: NIR does not unroll
/// a loop around Philox, and an array filled in such a loop lives in per-lane scratch.
pub fn rng_blocks_fn(name: &str, n: usize) -> String {
    let blocks = n.div_ceil(4).max(1);
    let calls = (0..blocks)
        .map(|b| {
            let pairs = if 4 * b + 2 < n { 2 } else { 1 };
            format!("        rng_normals4(b0 + {b}u, {pairs}u),\n")
        })
        .collect::<String>();
    format!(
        "fn {name}(b0: u32) -> array<vec4<real>, {blocks}> {{\n    return array<vec4<real>, {blocks}>(\n{calls}    );\n}}\n"
    )
}

/// Most normals of one step a coupled kernel keeps in registers between the bridge's
/// pass and the Euler–Maruyama loop.
const CACHED_NORMALS: usize = 64;

/// Entry point of every composed simulation kernel: the steps of a segment.
pub const ENTRY: &str = "main";
/// Entry point of the checkpoint kernel: divergence check and per-workgroup partials.
pub const REDUCE_ENTRY: &str = "reduce";

/// The full simulation kernel of (model, spec) at precision `p`, portable (no u64).
pub fn compose(model: &AnyModel, spec: &RunSpec, p: Precision) -> String {
    compose_for(model, spec, p, false)
}

/// As `compose`; `int64`: Philox multiplies in u64 (needs SHADER_INT64 on the device).
pub fn compose_for(model: &AnyModel, spec: &RunSpec, p: Precision, int64: bool) -> String {
    spec.assert_small_d();
    let m = model.as_dyn();
    let d = m.dim();
    let np = spec.particles();
    let levels = spec.levels();
    let kind = spec.dynamics.kind();
    let (mconsts, dims) = model_consts(model, spec, p);
    let smf_noise = crate::dynamics::path::uses_smf_noise(spec);
    let nc = if smf_noise { dims.nsmf } else { np * d };
    let substeps = spec.substeps();
    let dt_level: Vec<f64> = (0..3)
        .map(|l| match kind {
            Kind::Ode => spec.eta / (substeps >> l).max(1) as f64,
            _ => spec.eta / substeps as f64 * (1u32 << l) as f64,
        })
        .collect();
    let exact = spec.exact_solver_step(m).is_some();
    let momentum = spec.dynamics.has_momentum();
    let x0: Vec<String> = spec
        .x0
        .iter()
        .map(|x| format!("vec_d({})", lits(&x[..d], p)))
        .collect();
    let sh = shifts(model, spec);

    let mut h = String::from(real_header(p));
    let mut u = |name: &str, v: usize| {
        let _ = writeln!(h, "const {name}: u32 = {v}u;");
    };
    u("WG", super::driver::WORKGROUP as usize);
    u("D", d);
    u("DD", d * d);
    u("P", np);
    u("LEVELS", levels);
    u("LP", levels * np);
    u("LPS", spec.state_vectors());
    u("MOM", spec.momentum_offset());
    u("SUBSTEPS", substeps as usize);
    u("BATCH", spec.batch as usize);
    u("N_OBS", spec.observables.len());
    u("N_STAT", spec.n_stats());
    // The reduction's columns (5 per statistic) at a time: as many as fit the
    // workgroup memory every WebGPU device has (`REDUCE_BUDGET`); more statistics
    // (n_point's pairs, a coupled run's channels) go through in slices.
    let (red_w, red_cols) = reduce_columns(spec, p);
    u("RED_COLS", red_cols);
    u("MINE", if red_cols < red_w { red_w } else { 1 });
    u("NT", dims.nt);
    u("NSMF", dims.nsmf);
    u("NE", dims.ne);
    // The exact step's state: X, or (msgd/msme1) the pair (X, P) stacked.
    u("NZ", if momentum { 2 * d } else { d });
    u("NC", nc.max(1));
    u("STREAM", spec.stream as usize);
    u(
        "SGD_STREAM",
        spec.coupling.map_or(0, |c| c.sgd_stream as usize),
    );
    let b = |v: bool| if v { "true" } else { "false" };
    let _ = writeln!(
        h,
        "const KEY: vec2<u32> = vec2<u32>({}u, {}u);",
        spec.key[0], spec.key[1]
    );
    let _ = writeln!(
        h,
        "const IS_GD: bool = {};",
        b(spec.dynamics == Dynamics::Gd)
    );
    let _ = writeln!(h, "const ODE: bool = {};", b(kind == Kind::Ode));
    let _ = writeln!(h, "const EXACT: bool = {};", b(exact));
    let _ = writeln!(h, "const SHARED_NOISE: bool = {};", b(smf_noise));
    let _ = writeln!(h, "const COUPLED: bool = {};", b(spec.coupling.is_some()));
    // A coupled step draws its own normals twice (bridge mean, then the substeps)
    // unless they are few enough to keep in registers.
    let groups = (substeps as usize).div_ceil(4);
    let cache = spec.coupling.is_some() && groups * 4 * nc.max(1) <= CACHED_NORMALS;
    let _ = writeln!(h, "const CACHE_NORMALS: bool = {};", b(cache));
    let _ = writeln!(
        h,
        "const N_CACHED_GROUPS: u32 = {}u;",
        if cache { groups } else { 1 }
    );
    let _ = writeln!(h, "const MODIFIED: bool = {};", b(spec.dynamics.modified()));
    let _ = writeln!(h, "const MOMENTUM: bool = {};", b(momentum));
    let mut r = |name: &str, v: f64| {
        let _ = writeln!(h, "const {name}: real = {};", lit(v, p));
    };
    r("ETA", spec.eta);
    r("DRIFT_C", spec.drift_c());
    r("NOISE_SCALE", spec.noise_var().sqrt());
    r("SQRT_DT", (spec.eta / substeps as f64).sqrt());
    r("SGD_SCALE", spec.eta / spec.batch as f64);
    r("BRIDGE_PIN", spec.eta.sqrt() / substeps as f64);
    r("ROOT_B", (spec.batch as f64).sqrt());
    r("INV_B", 1.0 / spec.batch as f64);
    r("FRICTION", spec.friction);
    r("BOUND", spec.bound);
    let _ = writeln!(
        h,
        "const DT_LEVEL = array<real, 3>({});",
        lits(&dt_level, p)
    );
    let _ = writeln!(h, "const N_CP: u32 = {}u;", spec.checkpoints.len());
    let _ = writeln!(
        h,
        "const SHIFTS = array<real, N_CP * N_STAT>({});",
        lits(&sh, p)
    );
    let _ = writeln!(h, "alias vec_d = array<real, D>;");
    let _ = writeln!(h, "alias vec_z = array<real, NZ>;");
    let _ = writeln!(
        h,
        "alias batch_normals = array<vec4<real>, {}>;",
        (spec.batch as usize * dims.nt).div_ceil(4).max(1)
    );
    let _ = writeln!(h, "const X0 = array<vec_d, P>({});", x0.join(", "));
    h.push_str(&mconsts);

    let model_src = match model {
        AnyModel::Quadratic(_) => QUADRATIC,
        AnyModel::Multiplicative(_) => MULTIPLICATIVE,
        AnyModel::ToySgd(_) => TOY_SGD,
    };
    let dyn_src = match kind {
        Kind::Discrete => DISCRETE.to_string(),
        Kind::Ode => ODE.to_string(),
        // The level loop, and the dynamics' step of one level.
        Kind::Sde if momentum => [SDE, MSME1].join("\n"),
        Kind::Sde => [SDE, SDE_LEVEL].join("\n"),
    };
    // Normals per step: the sgd batch, a group of 4 EM substeps, the exact step.
    let nx = if spec.dynamics.shared_noise() {
        dims.ne
    } else {
        np * dims.ne
    };
    let rng_fns = [
        rng_blocks_fn("rng_batch", spec.batch as usize * dims.nt),
        rng_blocks_fn("rng_group", 4 * nc.max(1)),
        rng_blocks_fn("rng_exact", nx),
    ]
    .concat();
    [
        &h,
        MATH,
        mulhilo(int64),
        PHILOX,
        &rng_fns,
        model_src,
        DRIFT,
        OBSERVABLES,
        &observe_fn(&spec.observables),
        HEAVY_BALL,
        SGD_UPDATE,
        RK4,
        &dyn_src,
        REDUCE,
        KERNEL,
    ]
    .join("\n")
}

/// Generous loop-iteration counts of one invocation of the `main` kernel of (model,
/// spec): `(per_step, fixed)`, every loop of `kernel.wgsl`, the dynamics template and the
/// model counted as if none were unrolled, nested loops multiplied out. A model function
/// (gradient, drift, noise, Hessian-vector product, θ sample, exact step) is charged
/// (D + 2)² (the quadratic model's loops are D², the others' a few D); a Philox block
/// its 10 rounds plus Box–Muller. The driver passes these to
/// `Gpu::steps_per_dispatch`, so a dispatch stays within a software adapter's loop limit.
pub fn loop_iterations(model: &AnyModel, spec: &RunSpec) -> (u64, u64) {
    let m = model.as_dyn();
    let d = m.dim() as u64;
    let (np, levels) = (spec.particles() as u64, spec.levels() as u64);
    let f = (d + 2) * (d + 2);
    let drift = if spec.dynamics.modified() { 3 * f } else { f } + d;
    let block = 12;
    let blocks = |normals: u64| normals.div_ceil(4).max(1) * block;
    let (nt, nsmf, ne) = (
        m.data_normals() as u64,
        m.smf_noise_dim() as u64,
        spec.exact_transition(m).normals() as u64,
    );
    let nc = if crate::dynamics::path::uses_smf_noise(spec) {
        nsmf
    } else {
        np * d
    }
    .max(1);
    let substeps = spec.substeps() as u64;
    let exact = spec.dynamics.kind() == Kind::Sde && spec.solver == Solver::Exact;
    // msgd / msme1 update a momentum beside each coordinate.
    let momentum = if spec.dynamics.has_momentum() { d } else { 0 };
    // One minibatch step of every particle (sgd or msgd; a coupled run's partner too).
    let minibatch = {
        let b = spec.batch as u64;
        blocks(b * nt) + b * (nt + f + np * (f + d)) + np * (d + momentum)
    };
    let per_step = 1 + match spec.dynamics.kind() {
        Kind::Discrete if spec.dynamics == Dynamics::Gd => np * (f + d),
        Kind::Discrete => minibatch,
        Kind::Ode => levels * np * substeps * 4 * (1 + drift + d),
        // The draws, then per particle its normals, the stacking and the n_e² products.
        Kind::Sde if exact => blocks(np * ne) + np * (3 * ne + ne * ne + f),
        Kind::Sde => {
            let level = nc + np * (drift + f + nsmf.max(d) + d + momentum);
            let em = substeps.div_ceil(4) * (blocks(4 * nc) + 4 * (nc + levels * (level + nc)));
            // A coupled run's SGD partner, and the bridge's pass over the normals.
            let partner = if spec.coupling.is_some() {
                minibatch
                    + substeps.div_ceil(4) * (blocks(4 * nc) + 4 * nc)
                    + nc * (spec.batch as u64 + 1)
            } else {
                0
            };
            em + partner
        }
    };
    // Initial state or load, and the store.
    let fixed = 2 * spec.state_vectors() as u64 * (d + 1) + 16;
    (per_step, fixed)
}

/// The reduction's columns (5 per statistic), and how many go through workgroup memory
/// at a time: as many as fit `REDUCE_BUDGET`.
fn reduce_columns(spec: &RunSpec, p: Precision) -> (usize, usize) {
    let red_w = spec.n_stats() * 5;
    let row = super::driver::WORKGROUP * super::driver::real_size(p);
    (red_w, red_w.min(REDUCE_BUDGET / row as usize))
}

/// Generous loop-iteration count of one invocation of the checkpoint `reduce` kernel of
/// (model, spec) in precision `p`, counted as `loop_iterations` counts `main`'s: the
/// state's load and bound check, every observable on every level (and a coupled run's
/// partner) charged as a model function, and the column trees slice by slice. `reduce`
/// is its own dispatch, so the segments' loop guard holds it to the budget on its own
/// (the largest case, 8 coupled particles in f64, is about 5 000).
pub fn reduce_loop_iterations(model: &AnyModel, spec: &RunSpec, p: Precision) -> u64 {
    let d = model.as_dyn().dim() as u64;
    let f = (d + 2) * (d + 2);
    let lps = spec.state_vectors() as u64;
    let (red_w, red_cols) = reduce_columns(spec, p);
    let (red_w, red_cols) = (red_w as u64, red_cols.max(1) as u64);
    let wg = super::driver::WORKGROUP;
    let observed = spec.levels() as u64 + u64::from(spec.coupling.is_some());
    // A lane's columns of one slice: each a tree of wg − 1 adds in log2(wg) loops.
    let trees = red_cols.div_ceil(wg) * (wg + u64::from(wg.ilog2()));
    let slices = red_w.div_ceil(red_cols);
    2 * lps * (d + 1)
        + red_w
        + spec.observables.len() as u64 * (observed * (f + 1) + 8)
        + slices * (1 + red_cols + trees)
        + 16
}

/// `fn observe(o, l)`: observable o on level l (particles baked in).
fn observe_fn(obs: &[Observable]) -> String {
    let mut s =
        String::from("fn observe(o: u32, l: u32) -> real {\n    let b = l * P;\n    switch o {\n");
    for (i, ob) in obs.iter().enumerate() {
        let call = match *ob {
            Observable::Norm2(q) => format!("obs_norm2(xs[b + {q}u])"),
            Observable::X0(q) => format!("obs_x0(xs[b + {q}u])"),
            Observable::Cos(q) => format!("obs_cos(xs[b + {q}u])"),
            Observable::Loss(q) => format!("obs_loss(xs[b + {q}u])"),
            Observable::Prod(q, r) => format!("obs_prod(xs[b + {q}u], xs[b + {r}u])"),
            Observable::Dist2(q, r) => format!("obs_dist2(xs[b + {q}u], xs[b + {r}u])"),
        };
        let _ = writeln!(s, "        case {i}u: {{ return {call}; }}");
    }
    s.push_str("        default: { return real(0.0); }\n    }\n}\n");
    s
}
