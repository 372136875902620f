#!/usr/bin/env python3
"""Runs `smflow bench` and the numba, JAX and PyTorch peers (benches/peers/*_jobs.py)
interleaved — round-robin over every (implementation, dtype, device), R rounds — on the
three jobs of `smflow bench` with matched sizes, and prints one table per job: best
path-steps/s (neuron-steps/s for mf_sgd) over the rounds, every round's value, the ratio
to the fastest peer, and the peers' own correctness checks.

    python3 benches/peers/run_all.py [--smflow target/release/smflow] [--rounds 2] [--quick]

The peers run under --python (default: this interpreter); a peer whose package is not
importable there is skipped with a note. This script itself needs only the standard
library. smflow runs `bench --backend cpu`, and `bench --backend gpu` when `smflow
devices` reports an adapter. smflow's cpu backend is float64 and its gpu backend float32;
each peer runs at both f32 and f64, on the CPU, and also on CUDA where torch (or jaxlib)
sees a GPU.
"""

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = ("numba", "jax", "torch")
JOBS = ("sgd", "sme2", "mf_sgd_n1024", "mf_sgd_n65536")
JOB_TITLE = {
    "sgd": "sgd — 1-D Gaussian SGD, K = 40 steps; path-steps/s",
    "sme2": "sme2 — SME-2 by Euler–Maruyama, K·S = 1280 substeps; path-steps/s",
    "mf_sgd_n1024": "mf_sgd_n1024 — mean-field SGD, n = 2^10, 20 steps; neuron-steps/s",
    "mf_sgd_n65536": "mf_sgd_n65536 — mean-field SGD, n = 2^16, 10 steps; neuron-steps/s",
}

PROBE = r"""
import importlib, importlib.util, json, sys
out = {"python": sys.version.split()[0]}
for m in ["numpy", "numba", "jax", "torch"]:
    if importlib.util.find_spec(m) is None:
        out[m] = None
        continue
    try:
        mod = importlib.import_module(m)
        out[m] = getattr(mod, "__version__", "?")
    except Exception as e:  # broken install
        out[m] = None
        out[m + "_error"] = repr(e)[:200]
if out.get("torch"):
    import torch
    out["torch_cuda"] = torch.cuda.is_available()
    out["torch_cuda_name"] = torch.cuda.get_device_name(0) if out["torch_cuda"] else None
if out.get("jax"):
    import jax
    out["jax_backend"] = jax.default_backend()
print(json.dumps(out))
"""


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "?"


def run(cmd, timeout):
    """Runs cmd; returns (stdout, stderr, seconds) or raises RuntimeError."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout} s: {shlex.join(cmd)}")
    except OSError as e:
        raise RuntimeError(f"{shlex.join(cmd)}: {e}")
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"exit {p.returncode}: {shlex.join(cmd)}\n    " + "\n    ".join(tail))
    return p.stdout, p.stderr, time.perf_counter() - t0


def json_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


class Unit:
    """One thing run per round: a command that yields rows (impl, dtype, device, job, rate, check)."""

    def __init__(self, name, cmd, parse):
        self.name, self.cmd, self.parse = name, cmd, parse


def smflow_unit(exe, backend, paths, mf_replicas, tmp):
    out = os.path.join(tmp, f"smflow-{backend}.json")
    cmd = [exe, "bench", "--backend", backend, "--paths", str(paths), "--mf-replicas", str(mf_replicas), "--json", out]

    def parse(stdout):
        with open(out) as f:
            ms = json.load(f)
        rows = []
        for m in ms:
            if m["job"] not in JOBS:
                continue  # data_sgd: no peer here
            dtype = "f64" if m["backend"] == "cpu" else "f32"
            if m["backend"] == "cpu":
                dev = "cpu (" + m["adapter"].replace("CPU reference, ", "").replace(" (f64)", "").replace("f64, ", "") + ")"
            else:  # e.g. "llvmpipe (LLVM 15.0.6, 256 bits) [Vulkan, software rasteriser: CPU]"
                name = m["adapter"].split(" [")[0].replace(" (f32)", "")
                dev = f"gpu: {name}" + (" (software)" if "software" in m["adapter"] else "")
            rows.append(dict(impl="smflow", dtype=dtype, device=dev, job=m["job"],
                             rate=m["path_steps_per_second"], check="n/a", paths=m["paths"]))
        return rows

    return Unit(f"smflow {backend}", cmd, parse)


def peer_unit(py, peer, dtypes, device, paths, mf_replicas):
    cmd = [py, os.path.join(HERE, f"{peer}_jobs.py"), "--dtype", ",".join(dtypes), "--paths", str(paths),
           "--mf-replicas", str(mf_replicas), "--jobs", "sgd,sme2,mf", "--device", device]

    def parse(stdout):
        rows = []
        for r in json_lines(stdout):
            rows.append(dict(impl=r["peer"], dtype=r["dtype"], device=r["device"], job=r["job"],
                             rate=r["path_steps_per_second"], check=r.get("check", "n/a"), paths=r["paths"],
                             mean=r.get("mean_x2"), se=r.get("stderr_x2"), exact=r.get("exact_x2")))
        return rows

    return Unit(f"{peer} {','.join(dtypes)} {device}", cmd, parse)


def fmt(x):
    return "—" if x is None else f"{x:.3e}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smflow", default="target/release/smflow", help="the smflow binary (default target/release/smflow)")
    p.add_argument("--rounds", type=int, default=None, help="rounds of the round-robin (default 2; 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test (paths 2^14, mf-replicas 2, 1 round)")
    p.add_argument("--paths", type=int, default=None, help="sgd paths (sme2: paths/16), as smflow bench --paths (default 2^20)")
    p.add_argument("--mf-replicas", type=int, default=None, help="as smflow bench --mf-replicas (default 64)")
    p.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of numba,jax,torch")
    p.add_argument("--dtypes", default="f32,f64", help="peer dtypes")
    p.add_argument("--python", default=os.environ.get("PEERS_PYTHON", sys.executable),
                   help="interpreter with the peers installed (default $PEERS_PYTHON or this one)")
    p.add_argument("--no-smflow", action="store_true", help="peers only")
    p.add_argument("--no-gpu", action="store_true", help="skip smflow --backend gpu and CUDA peers")
    p.add_argument("--timeout", type=int, default=None, help="seconds per command (default 900; 120 with --quick)")
    p.add_argument("--json", default=None, help="also write every row of every round here")
    a = p.parse_args()
    rounds = a.rounds if a.rounds is not None else (1 if a.quick else 2)
    paths = a.paths if a.paths is not None else (1 << 14 if a.quick else 1 << 20)
    mf_replicas = a.mf_replicas if a.mf_replicas is not None else (2 if a.quick else 64)
    timeout = a.timeout if a.timeout is not None else (120 if a.quick else 900)
    dtypes = [d.strip() for d in a.dtypes.split(",") if d.strip()]
    t_start = time.perf_counter()

    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cpus, {platform.system()} {platform.release()}")
    print(f"load average at start (1, 5, 15 min): {load()}")
    notes = []
    try:
        out, _, _ = run([a.python, "-c", PROBE], 120)
        probe = json.loads(out.strip().splitlines()[-1])
    except (RuntimeError, ValueError, IndexError) as e:
        probe = {"python": "?"}
        notes.append(f"could not probe {a.python}: {e}")
    vers = ", ".join(f"{k} {probe.get(k) or 'not importable'}" for k in ("python", "numpy", "numba", "jax", "torch"))
    print(f"peers' interpreter {a.python}: {vers}")

    units = []
    smflow_version = None
    if not a.no_smflow:
        exe = a.smflow
        root = os.path.dirname(os.path.dirname(HERE))
        if not os.path.exists(exe) and not os.path.isabs(exe) and os.path.exists(os.path.join(root, exe)):
            exe = os.path.join(root, exe)  # relative to the repository root
        if not os.path.exists(exe):
            notes.append(f"smflow binary {exe} not found (build it: cargo build --release; or pass --smflow PATH): smflow skipped")
        else:
            try:
                smflow_version = run([exe, "--version"], 30)[0].strip()
                devices = run([exe, "devices"], 120)[0]
            except RuntimeError as e:
                devices = ""
                notes.append(f"smflow devices failed: {e}")
            print(f"smflow: {smflow_version} ({exe})")
            for line in devices.strip().splitlines():
                print(f"  smflow devices: {line}")
            tmp = tempfile.mkdtemp(prefix="smflow-peers-")
            units.append(smflow_unit(exe, "cpu", paths, mf_replicas, tmp))
            if "default gpu:" in devices and not a.no_gpu:
                units.append(smflow_unit(exe, "gpu", paths, mf_replicas, tmp))
            elif not a.no_gpu:
                notes.append("smflow: no wgpu adapter, gpu backend skipped")

    for peer in [x.strip() for x in a.peers.split(",") if x.strip()]:
        if peer not in PEERS:
            sys.exit(f"unknown peer {peer!r}")
        if not probe.get("numpy") or not probe.get(peer):
            why = probe.get(peer + "_error") or "not installed"
            notes.append(f"{peer}: not importable under {a.python} ({why}); skipped "
                         f"(pip install numpy {'jax' if peer == 'jax' else peer})")
            continue
        devices = ["cpu"]
        if not a.no_gpu and ((peer == "torch" and probe.get("torch_cuda")) or (peer == "jax" and probe.get("jax_backend") == "gpu")):
            devices.append("cuda")
        for dev in devices:
            if a.quick:  # one process per peer and device: fewer imports
                units.append(peer_unit(a.python, peer, dtypes, dev, paths, mf_replicas))
            else:
                for dt in dtypes:
                    units.append(peer_unit(a.python, peer, [dt], dev, paths, mf_replicas))

    print(f"sizes: sgd {paths} paths, sme2 {max(paths // 16, 1)} paths, mf --mf-replicas {mf_replicas}; "
          f"{rounds} round(s) of {len(units)} commands, interleaved")
    rows = []
    for r in range(rounds):
        order = units[r % len(units):] + units[: r % len(units)] if units else []
        for u in order:
            try:
                stdout, _, sec = run(u.cmd, timeout)
                got = u.parse(stdout)
            except (RuntimeError, OSError, ValueError, KeyError) as e:
                notes.append(f"round {r + 1}, {u.name}: {e}")
                print(f"  round {r + 1}: {u.name}: FAILED", flush=True)
                continue
            for g in got:
                g["round"] = r + 1
            rows += got
            print(f"  round {r + 1}: {u.name}: {len(got)} results in {sec:.1f} s (load {load()})", flush=True)

    print(f"\nload average at end (1, 5, 15 min): {load()}; total {time.perf_counter() - t_start:.0f} s")
    for job in JOBS:
        jr = [x for x in rows if x["job"] == job]
        if not jr:
            continue
        keys = []
        for x in jr:
            k = (x["impl"], x["dtype"], x["device"])
            if k not in keys:
                keys.append(k)
        best = {k: max(x["rate"] for x in jr if (x["impl"], x["dtype"], x["device"]) == k) for k in keys}
        peer_best = max([v for k, v in best.items() if k[0] != "smflow"], default=None)
        print(f"\n## {JOB_TITLE[job]}")
        sizes = sorted({x["paths"] for x in jr})
        unit = "replicas" if job.startswith("mf") else "paths"
        print(f"({unit}: {', '.join(map(str, sizes))}; ratio = best / fastest peer's best)")
        hdr = ["implementation", "dtype", "device", "best", "rounds", "× fastest peer", "check"]
        table = []
        for k in sorted(keys, key=lambda k: -best[k]):
            xs = [x for x in jr if (x["impl"], x["dtype"], x["device"]) == k]
            checks = [x["check"] for x in xs]
            if all(c == "n/a" for c in checks):
                chk = "n/a"
            else:
                npass = sum(c == "pass" for c in checks)
                chk = f"pass {npass}/{len(checks)}" if npass == len(checks) else f"FAIL {len(checks) - npass}/{len(checks)}"
            ratio = f"{best[k] / peer_best:.2f}" if peer_best else "—"
            table.append([k[0], k[1], k[2], fmt(best[k]), ", ".join(fmt(x["rate"]) for x in xs), ratio, chk])
        widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(hdr)]
        print("| " + " | ".join(h.ljust(w) for h, w in zip(hdr, widths)) + " |")
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for t in table:
            print("| " + " | ".join(c.ljust(w) for c, w in zip(t, widths)) + " |")
    fails = [x for x in rows if x["check"] == "fail"]
    if fails:
        print("\nfailed checks:")
        for x in fails:
            print(f"  {x['impl']} {x['dtype']} {x['job']} round {x['round']}: mean {x.get('mean')} ± {x.get('se')}, exact {x.get('exact')}")
    if notes:
        print("\nnotes:")
        for n in notes:
            print(f"  - {n}")
    print("\nsgd/sme2 checks: |Monte Carlo E x² − closed form of the simulated recursion| ≤ 4 standard errors; "
          "mf checks: the peer's step and observables on fixed inputs match the numpy reference "
          "(numpy_meanfield_baseline.py's formulas) to 1e-9 (f64) / 1e-4 (f32); smflow bench itself checks nothing (n/a).")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(machine=cpu_model(), smflow=smflow_version, versions=probe, rows=rows, notes=notes), f, indent=1)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
