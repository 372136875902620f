#!/usr/bin/env python3
"""JAX peer of `smflow bench` (the jobs: peers_common.py; how to run: benches/README.md).

sgd, sme2: one `jax.jit` program per size: `lax.map` over chunks of --chunk paths
(default 2^18 on the CPU, 2^24 on a GPU, where 2^18 would leave it mostly idle; so no
more than one step's normals of one chunk exist at a time), inside each a
`lax.fori_loop` over the steps whose body draws that step's normals with
`jax.random.normal(fold_in(key, step), ...)` and updates the state vector; XLA fuses the
draw and the update. The final chunk is padded and the padding masked out of the moments.

mf: the neurons as arrays a (M, n), w (M, n, d) carried through a `lax.fori_loop` over
the steps; each step draws θ (M, b, d), labels it with the teacher and applies the
update with three einsums (the formulas of numpy_meanfield_baseline.py). The initial
neurons and the final observables are inside the same jitted program.

float64 needs `jax_enable_x64`, which this script turns on (float32 arrays stay float32).
Programs are compiled ahead of time (`jit(...).lower(...).compile()`, cached on disk under
JAX_COMPILATION_CACHE_DIR, default in the temp dir) and run once at a small size before
the timed call; the timed call ends with `block_until_ready`. The
device is JAX's default backend (a GPU when jaxlib has CUDA, else the CPU); --device cpu
forces the CPU.
"""

import os
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
# Compiled programs are cached on disk, so repeated runs (run_all.py's rounds) skip XLA
# compilation; compilation is never timed either way.
jax.config.update(
    "jax_compilation_cache_dir",
    os.environ.get("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "smflow-peers-jax-cache")),
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

import peers_common as C  # noqa: E402

PEER = "jax"
HI = lax.Precision.HIGHEST


def ar1_program(dtype, job, paths, chunk, substeps, device):
    """A compiled program key -> (Σ x², Σ x⁴) for `paths` paths of `job`."""
    if job == "sgd":
        (keep, shift, scale), steps, draws = C.sgd_constants(), C.K, C.BATCH
    else:
        (keep, shift, scale), steps, draws = C.sme2_constants(substeps), C.K * substeps, 1
    chunk = min(chunk, paths)
    nchunks = -(-paths // chunk)
    keep, shift, scale, x0 = (jnp.asarray(v, dtype) for v in (keep, shift, scale, C.X0))

    def one_chunk(arg):
        key, first = arg

        def body(k, x):
            z = jax.random.normal(jax.random.fold_in(key, k), (draws, chunk), dtype)
            return keep * x + (shift + scale * z.sum(axis=0))

        x = lax.fori_loop(0, steps, body, jnp.full((chunk,), x0, dtype))
        g = x.astype(jnp.float64) ** 2
        g = jnp.where(first + jnp.arange(chunk) < paths, g, 0.0)
        return g.sum(), (g * g).sum()

    def run(key):
        keys = jax.random.split(key, nchunks)
        firsts = jnp.arange(nchunks, dtype=jnp.int64) * chunk
        s1, s2 = lax.map(one_chunk, (keys, firsts))
        return s1.sum(), s2.sum()

    key = jax.device_put(jax.random.key(0), device)
    return jax.jit(run).lower(key).compile(), steps


def labels(th, ta, tw):
    return jnp.tanh(jnp.einsum("mbd,td->mbt", th, tw, precision=HI)) @ ta / ta.shape[0]


def mf_step(a, w, th, y, c):
    """One mean-field SGD step of every replica (numpy_meanfield_baseline.py's formulas)."""
    width = a.shape[1]
    s = jnp.tanh(jnp.einsum("mnd,mbd->mnb", w, th, precision=HI))
    r = jnp.einsum("mn,mnb->mb", a, s, precision=HI) / width - y
    g = c * r
    da = -jnp.einsum("mb,mnb->mn", g, s, precision=HI)
    gw = g[:, None, :] * a[:, :, None] * (1 - s * s)
    w = w - jnp.einsum("mnb,mbd->mnd", gw, th, precision=HI)
    return a + da, w


def mf_observe(a, w, test_x, test_y):
    width = a.shape[1]
    f = jnp.einsum("mn,mtn->mt", a, jnp.tanh(jnp.einsum("mnd,td->mtn", w, test_x, precision=HI)), precision=HI) / width
    e = f.astype(jnp.float64) - test_y[None, :]
    risk = 0.5 * jnp.mean(e * e, axis=1)
    a2 = jnp.mean(a.astype(jnp.float64) ** 2, axis=1)
    return risk, a2


def mf_program(dtype, width, replicas, steps, teacher, test, device):
    ta, tw = (jax.device_put(jnp.asarray(v, dtype), device) for v in teacher)
    tx = jax.device_put(jnp.asarray(test[0], dtype), device)
    ty = jax.device_put(jnp.asarray(test[1], jnp.float64), device)
    c = jnp.asarray(C.MF_ETA / C.MF_B, dtype)

    def run(key, ta, tw, tx, ty):
        ka, kw, ks = jax.random.split(key, 3)
        a = jax.random.normal(ka, (replicas, width), dtype)
        w = jax.random.normal(kw, (replicas, width, C.MF_D), dtype)

        def body(k, st):
            a, w = st
            th = jax.random.normal(jax.random.fold_in(ks, k), (replicas, C.MF_B, C.MF_D), dtype)
            return mf_step(a, w, th, labels(th, ta, tw), c)

        a, w = lax.fori_loop(0, steps, body, (a, w))
        return mf_observe(a, w, tx, ty)

    key = jax.device_put(jax.random.key(0), device)
    prog = jax.jit(run).lower(key, ta, tw, tx, ty).compile()
    return lambda key: prog(jax.device_put(key, device), ta, tw, tx, ty)


def mf_given(dtype, case, device):
    c = jnp.asarray(C.MF_ETA / C.MF_B, dtype)

    @jax.jit
    def steps(a, w, thetas, ta, tw, tx, ty):
        def body(st, th):
            a, w = st
            return mf_step(a, w, th, labels(th, ta, tw), c), None

        (a, w), _ = lax.scan(body, (a, w), thetas)
        risk, _ = mf_observe(a, w, tx, ty)
        return a, w, risk

    put = lambda v, t=dtype: jax.device_put(jnp.asarray(v, t), device)  # noqa: E731
    out = steps(put(case["a"]), put(case["w"]), put(case["thetas"]), put(case["ta"]), put(case["tw"]),
                put(case["test_x"]), put(case["test_y"], jnp.float64))
    return [np.asarray(v) for v in out]


def main():
    p = C.parser(PEER)
    p.add_argument("--chunk", type=int, default=None,
                   help="paths per lax.map iteration (sgd, sme2; default 2^18 on the CPU, 2^24 on a GPU)")
    p.add_argument("--prng", default="threefry2x32", choices=["threefry2x32", "rbg", "unsafe_rbg"],
                   help="jax_default_prng_impl (threefry2x32 is JAX's default)")
    args = p.parse_args()
    jax.config.update("jax_default_prng_impl", args.prng)
    if args.device == "cpu":
        device = jax.devices("cpu")[0]
    elif args.device in ("auto", "cuda", "gpu"):
        device = jax.devices()[0]
        if args.device != "auto" and device.platform != "gpu":
            raise SystemExit("jax peer: no GPU backend in this jaxlib")
    else:
        raise SystemExit(f"unknown --device {args.device!r}")
    dev = device.platform if device.platform != "cpu" else f"cpu ({C.threads()} cores)"
    if device.platform == "gpu":
        dev = f"cuda ({device.device_kind})"
    ver = dict(jax=jax.__version__, numpy=np.__version__, prng=args.prng)
    failed = False
    for dt in C.dtypes(args.dtype):
        for job in C.expand_jobs(args.jobs, args.mf_widths):
            try:
                C.emit(run_job(args, dt, job, device, dev, ver))
            except Exception as e:  # one job's failure (e.g. out of memory) is a line, not the end
                failed = True
                C.emit(C.error_record(PEER, job, dt, dev, e, **ver))
    return 1 if failed else 0


def run_job(args, dt, job, device, dev, ver):
    """One job at one dtype on `device`; returns its record."""
    dtype = jnp.float32 if dt == "f32" else jnp.float64
    if job in ("sgd", "sme2"):
        paths = args.paths if job == "sgd" else C.sme2_paths(args)
        chunk = args.chunk if args.chunk is not None else (1 << 18 if device.platform == "cpu" else 1 << 24)
        warm, _ = ar1_program(dtype, job, min(args.warmup_paths, paths), chunk, args.substeps, device)
        prog, steps = ar1_program(dtype, job, paths, chunk, args.substeps, device)
        jax.block_until_ready(warm(jax.device_put(jax.random.key(args.seed + 99991), device)))
        key = jax.device_put(jax.random.key(args.seed), device)
        t0 = time.perf_counter()
        s1, s2 = jax.block_until_ready(prog(key))
        sec = time.perf_counter() - t0
        mean, se = C.moments(paths, float(s1), float(s2))
        exact = C.sgd_exact_x2() if job == "sgd" else C.sme2_em_exact_x2(args.substeps)
        return C.record(PEER, job, dt, dev, paths, steps, sec, mean, se, exact, C.check(mean, se, exact), **ver)
    width = C.mf_width(job)
    replicas, steps = C.mf_shape(width, args.mf_replicas)
    teacher = C.mf_teacher()
    test = C.mf_test_set(*teacher)
    case = C.mf_check_case()
    chk, err = C.mf_compare(case, mf_given(dtype, case, device), dt)
    warm = mf_program(dtype, width, min(replicas, 4), 1, teacher, test, device)
    prog = mf_program(dtype, width, replicas, steps, teacher, test, device)
    jax.block_until_ready(warm(jax.random.key(args.seed + 99991)))
    key = jax.random.key(args.seed)
    t0 = time.perf_counter()
    risk, a2 = jax.block_until_ready(prog(key))
    sec = time.perf_counter() - t0
    a2 = np.asarray(a2)
    mean = float(np.mean(a2))
    se = float(np.std(a2, ddof=1) / np.sqrt(replicas)) if replicas > 1 else None
    return C.record(PEER, job, dt, dev, replicas, width * steps, sec, mean, se, None, chk,
                    width=width, steps=steps, unit="neuron-steps", risk=float(np.mean(risk)),
                    check_detail=f"max rel. error vs numpy reference {err:.1e}", **ver)


if __name__ == "__main__":
    sys.exit(main())
