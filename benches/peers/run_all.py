#!/usr/bin/env python3
"""Runs `smflow bench` and the numba, JAX and PyTorch peers (benches/peers/*_jobs.py)
interleaved — round-robin over every (implementation, dtype, device), R rounds — on the
three jobs of `smflow bench` with matched sizes, and prints one table per job: best
path-steps/s (neuron-steps/s for mf_sgd) over the rounds, every round's value, the ratio
to the fastest peer, and the peers' own correctness checks.

    python3 benches/peers/run_all.py [--smflow target/release/smflow] [--rounds 2] [--quick]
    python3 benches/peers/run_all.py --combine a.json b.json   # one table of earlier --json files

The peers run under --python (default: this interpreter); a peer whose package is not
importable there is skipped with a note. This script itself needs only the standard
library. smflow runs `bench --backend cpu`, and `bench --backend gpu` when `smflow
devices` reports an adapter. smflow's cpu backend is float64 (and also float32 on the mean-field
jobs: bench runs both) and its gpu backend float32;
each peer runs at both f32 and f64, on the CPU, and also on CUDA where torch (or jaxlib)
sees a GPU. --smflow-backends and --device choose those explicitly (benches/device.sh
runs `--smflow-backends gpu --device cuda`); --jobs and --mf-widths (any powers of two)
choose the jobs of both. A command that fails or times out leaves its jobs as rows marked
ERROR (with the reason under "notes"); what it printed before that is kept.
"""

import argparse
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import peers_common as C  # noqa: E402  (job names and sizes; numpy not needed here)

PEERS = ("numba", "jax", "torch")
DEFAULT_JOBS = "sgd,sme2,mf"

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
    out, err, sec, why = run_capture(cmd, timeout)
    if why:
        tail = (err or out).strip().splitlines()[-5:]
        raise RuntimeError(why + ("\n    " + "\n    ".join(tail) if tail and not why.startswith("timed out") else ""))
    return out, err, sec


def run_capture(cmd, timeout):
    """Runs cmd in its own process group with stdout and stderr in files; returns (stdout,
    stderr, seconds, why) where why is None, or what went wrong (exit status, timeout: then
    the whole group is killed, and what it printed until then is still returned)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        try:
            p = subprocess.Popen(cmd, stdout=fo, stderr=fe, text=True, start_new_session=True)
        except OSError as e:
            return "", "", 0.0, f"{shlex.join(cmd)}: {e}"
        why = None
        try:
            rc = p.wait(timeout=max(timeout, 1))
            if rc != 0:
                why = f"exit {rc}: {shlex.join(cmd)}"
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                p.kill()
            p.wait()
            why = f"timed out after {timeout:.0f} s: {shlex.join(cmd)}"
        fo.seek(0)
        fe.seek(0)
        return fo.read(), fe.read(), time.perf_counter() - t0, why


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
    """One thing run per round: a command that yields rows (impl, dtype, device, job, rate,
    check); `expected` = the (job, dtype) pairs it should yield, `impl` and `device` name
    the rows of those it did not (a failure)."""

    def __init__(self, name, cmd, parse, expected, impl, device):
        self.name, self.cmd, self.parse = name, cmd, parse
        self.expected, self.impl, self.device = expected, impl, device
        self.devices = {}  # dtype -> the device name its rows had (for failure rows in later rounds)


def smflow_device(m):
    if m["backend"] == "cpu":
        return "cpu (" + m["adapter"].replace("CPU reference, ", "").replace(" (f64)", "").replace(" (f32)", "").replace("f64, ", "") + ")"
    # e.g. "llvmpipe (LLVM 15.0.6, 256 bits) [Vulkan, software rasteriser: CPU]"
    name = m["adapter"].split(" [")[0].replace(" (f32)", "")
    return f"gpu: {name}" + (" (software)" if "software" in m["adapter"] else "")


SMFLOW_LINE = re.compile(r"^(cpu|gpu)\s+(\S+)\s+(\d+)\s+([0-9.]+)\s+([0-9.eE+-]+)\s\s(.*)$")


def smflow_unit(exe, backend, paths, mf_replicas, tmp, jobs, extra):
    out = os.path.join(tmp, f"smflow-{backend}.json")
    if os.path.exists(out):
        os.remove(out)
    cmd = [exe, "bench", "--backend", backend, "--paths", str(paths), "--mf-replicas", str(mf_replicas)] + extra + ["--json", out]

    def parse(stdout):
        try:
            with open(out) as f:
                ms = json.load(f)
        except (OSError, ValueError):  # killed before it wrote --json: its printed lines
            ms = []
            for line in stdout.splitlines():
                g = SMFLOW_LINE.match(line.strip())
                if g:
                    adapter = g.group(6).replace(" (neuron-steps/s)", "")
                    ms.append(dict(backend=g.group(1), job=g.group(2), paths=int(g.group(3)),
                                   seconds=float(g.group(4)), path_steps_per_second=float(g.group(5)), adapter=adapter))
        rows = []
        for m in ms:
            if m["job"] not in jobs:
                continue  # data_sgd: no peer here
            # bench --json says the precision; older binaries (and printed lines) do not.
            dtype = m.get("precision") or ("f64" if m["backend"] == "cpu" else "f32")
            if "(f32)" in m["adapter"]:
                dtype = "f32"
            rows.append(dict(impl="smflow", dtype=dtype, device=smflow_device(m), job=m["job"],
                             rate=m["path_steps_per_second"], check="n/a", paths=m["paths"]))
        return rows

    dtype = "f64" if backend == "cpu" else "f32"
    return Unit(f"smflow {backend}", cmd, parse, [(j, dtype) for j in jobs], "smflow", backend)


def peer_unit(py, peer, dtypes, device, paths, mf_replicas, jobs_spec, widths_spec, jobs):
    cmd = [py, os.path.join(HERE, f"{peer}_jobs.py"), "--dtype", ",".join(dtypes), "--paths", str(paths),
           "--mf-replicas", str(mf_replicas), "--jobs", jobs_spec, "--device", device]
    if widths_spec is not None:
        cmd += ["--mf-widths", widths_spec]

    def parse(stdout):
        rows = []
        for r in json_lines(stdout):
            if "peer" not in r or "job" not in r:
                continue
            row = dict(impl=r["peer"], dtype=r["dtype"], device=r["device"], job=r["job"],
                       rate=r.get("path_steps_per_second"), check=r.get("check", "n/a"), paths=r.get("paths"),
                       mean=r.get("mean_x2"), se=r.get("stderr_x2"), exact=r.get("exact_x2"))
            if r.get("error"):
                row["error"] = r["error"]
            rows.append(row)
        return rows

    return Unit(f"{peer} {','.join(dtypes)} {device}", cmd, parse, [(j, d) for d in dtypes for j in jobs], peer, device)


def fmt(x):
    return "—" if x is None else f"{x:.3e}"


def print_table(hdr, table):
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(hdr)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(hdr, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for t in table:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(t, widths)) + " |")


def job_order(job):
    """sgd, sme2, then the mean-field jobs by width."""
    if job == "sgd":
        return (0, 0)
    if job == "sme2":
        return (1, 0)
    try:
        return (2, int(job[len("mf_sgd_n"):]))
    except ValueError:
        return (3, 0)


def check_summary(checks):
    if all(c == "n/a" for c in checks):
        return "n/a"
    nerr = sum(c == "error" for c in checks)
    real = [c for c in checks if c in ("pass", "fail")]
    npass = sum(c == "pass" for c in real)
    out = []
    if real:
        out.append(f"pass {npass}/{len(real)}" if npass == len(real) else f"FAIL {len(real) - npass}/{len(real)}")
    if nerr:
        out.append(f"ERROR {nerr}/{len(checks)} (notes)")
    return ", ".join(out) if out else "n/a"


def short_device(dev):
    """'gpu: NVIDIA H200' -> 'gpu', 'cuda (NVIDIA H200)' -> 'cuda', 'cpu (2 threads)' -> 'cpu'."""
    return dev.split(" ")[0].rstrip(":") + (" sw" if "(software)" in dev else "")


def size_text(job, n):
    """'2^26 paths', '16 replicas'."""
    unit = "replicas" if job.startswith("mf") else "paths"
    if n is None:
        return f"? {unit}"
    if unit == "paths" and n > 0 and n & (n - 1) == 0:
        return f"2^{n.bit_length() - 1} {unit}"
    return f"{n} {unit}"


def combine(files, torch_goal=3.0, sgd_goal=1e11):
    """One table over the rows of earlier --json files: a row per (job, size), a column per
    (implementation, dtype, device); smflow's ratios to the fastest peer and to PyTorch
    CUDA f32; and the goal checks of benches/device.sh."""
    rows, notes, machine, smflow, versions = [], [], None, None, {}
    for fn in files:
        try:
            with open(fn) as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            notes.append(f"{fn}: not read ({e})")
            continue
        rows += d.get("rows", [])
        notes += [f"{os.path.basename(fn)}: {n}" for n in d.get("notes", [])]
        machine = machine or d.get("machine")
        smflow = smflow or d.get("smflow")
        versions = versions or d.get("versions", {})
    if machine:
        print(f"machine: {machine}; smflow: {smflow or '—'}; python {versions.get('python', '?')}, "
              f"torch {versions.get('torch') or '—'}, jax {versions.get('jax') or '—'}, numba {versions.get('numba') or '—'}")
    cols = []
    for x in rows:
        k = (x["impl"], x["dtype"], x["device"])
        if k not in cols:
            cols.append(k)
    impl_rank = {"smflow": 0, "torch": 1, "jax": 2, "numba": 3}
    cols.sort(key=lambda k: (impl_rank.get(k[0], 9), k[1], "cpu" in k[2], k[2]))
    def gkey(x):  # an error row has no size: the one its command was asked for
        return (x["job"], x["paths"] if x.get("paths") is not None else x.get("want_paths"))

    groups = []
    for x in rows:
        if gkey(x) not in groups:
            groups.append(gkey(x))
    groups.sort(key=lambda g: (job_order(g[0]), g[1] or 0))

    def best(g, k):
        xs = [x for x in rows if gkey(x) == g and (x["impl"], x["dtype"], x["device"]) == k]
        rates = [x["rate"] for x in xs if x.get("rate")]
        return (max(rates) if rates else None), xs

    hdr = ["job", "size"] + [f"{k[0]} {k[1]} {short_device(k[2])}" for k in cols] + ["smflow ÷ fastest peer", "smflow ÷ torch cuda f32", "peer checks"]
    table, ratios, sgd_rates = [], [], []
    for g in groups:
        cells, smf, smf_any, peers, torch_cuda, checks = [], None, None, [], None, []
        for k in cols:
            b, xs = best(g, k)
            if not xs:
                cells.append("")
                continue
            cells.append(fmt(b) if b is not None else "ERROR")
            if k[0] != "smflow":
                checks += [x.get("check", "n/a") for x in xs]
            if b is None:
                continue
            if k[0] == "smflow":
                smf_any = max(smf_any or 0.0, b)
                if k[2].startswith("gpu") and "(software)" not in k[2]:
                    smf = max(smf or 0.0, b)  # the goals are about a hardware GPU
            else:
                peers.append(b)
                if k[0] == "torch" and k[1] == "f32" and k[2].startswith("cuda"):
                    torch_cuda = b
        fastest = smf or smf_any
        r_peer = f"{fastest / max(peers):.2f}" if fastest and peers else "—"
        r_torch = smf / torch_cuda if smf and torch_cuda else None
        ratios.append((g, r_torch))
        if g[0] == "sgd" and smf:
            sgd_rates.append((g[1], smf))
        table.append([g[0], size_text(*g)] + cells + [r_peer, "—" if r_torch is None else f"{r_torch:.2f}", check_summary(checks) if checks else "—"])
    print("\n## All jobs (best over rounds; path-steps/s, mean-field: neuron-steps/s)")
    if table:
        print_table(hdr, table)
    else:
        print("(no results)")
    print("\ncolumns: " + "; ".join(f"{k[0]} {k[1]} {short_device(k[2])} = {k[2]}" for k in cols))
    print("\n## Goals")
    if sgd_rates:
        p, r = max(sgd_rates, key=lambda t: t[1])
        print(f"- ≥ 1e11 path-steps/s on 1-D SGD: smflow gpu best {r:.3e} (sgd, {size_text('sgd', p)}): "
              + ("MET" if r >= sgd_goal else f"NOT met ({r / sgd_goal:.2f} of the goal)"))
    else:
        print("- ≥ 1e11 path-steps/s on 1-D SGD: NOT MEASURED (no smflow gpu sgd result on a hardware adapter)")
    by_job = {}
    for g, r in ratios:
        by_job.setdefault(g[0], [])
        if r is not None:
            by_job[g[0]].append((g[1], r))
    missing = [j for j, rs in by_job.items() if not rs]
    low = [(j, p, r) for j, rs in by_job.items() for p, r in rs if r < torch_goal]
    got = [r for rs in by_job.values() for _, r in rs]
    if not got:
        print(f"- ≥ {torch_goal:g}× PyTorch CUDA on every job: NOT MEASURED (need smflow gpu and torch cuda f32 on a job)")
    else:
        verdict = "MET" if not low and not missing else "NOT met"
        detail = f"smallest ratio {min(got):.2f}"
        if low:
            detail += "; below on " + ", ".join(f"{j} at {size_text(j, p)} ({r:.2f})" for j, p, r in low)
        if missing:
            detail += "; not measured on " + ", ".join(missing)
        print(f"- ≥ {torch_goal:g}× PyTorch CUDA on every job (smflow gpu f32 ÷ torch cuda f32, every size): {verdict} ({detail})")
    if notes:
        print("\nnotes:")
        for n in notes:
            print(f"  - {n}")
    return 0


def write_json(path, probe, smflow_version, rows, notes):
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dict(machine=cpu_model(), smflow=smflow_version, versions=probe, rows=rows, notes=notes), f, indent=1)
        os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smflow", default="target/release/smflow", help="the smflow binary (default target/release/smflow)")
    p.add_argument("--rounds", type=int, default=None, help="rounds of the round-robin (default 2; 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test (paths 2^14, mf-replicas 2, 1 round)")
    p.add_argument("--paths", type=int, default=None, help="sgd paths (sme2: paths/16), as smflow bench --paths (default 2^20)")
    p.add_argument("--mf-replicas", type=int, default=None, help="as smflow bench --mf-replicas (default 64)")
    p.add_argument("--mf-widths", default=None,
                   help="comma-separated powers of two, as smflow bench --mf-widths (default 1024,65536)")
    p.add_argument("--jobs", default=None,
                   help="comma-separated: sgd, sme2, mf (every --mf-widths width), mf_sgd_n<N> (default all; "
                        "smflow also runs data_sgd then, which has no peer)")
    p.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of numba,jax,torch")
    p.add_argument("--dtypes", default="f32,f64", help="peer dtypes")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="peers' device: auto = the CPU, and CUDA where torch/jaxlib see a GPU (default); "
                        "cuda = CUDA only (numba has none: skipped)")
    p.add_argument("--smflow-backends", default="auto",
                   help="comma-separated cpu,gpu; auto = cpu, and gpu when `smflow devices` shows an adapter (default)")
    p.add_argument("--python", default=os.environ.get("PEERS_PYTHON", sys.executable),
                   help="interpreter with the peers installed (default $PEERS_PYTHON or this one)")
    p.add_argument("--no-smflow", action="store_true", help="peers only")
    p.add_argument("--no-gpu", action="store_true", help="skip smflow --backend gpu and CUDA peers")
    p.add_argument("--timeout", type=int, default=None, help="seconds per command (default 900; 120 with --quick)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds for the whole run: each command gets at most what is left, and those that "
                        "cannot start are ERROR rows (default: none)")
    p.add_argument("--json", default=None, help="also write every row of every round here (rewritten after each command)")
    p.add_argument("--combine", nargs="+", metavar="JSON", default=None,
                   help="only print one table over the rows of these earlier --json files, with the goal checks")
    a = p.parse_args()
    if a.combine:
        return combine(a.combine)
    rounds = a.rounds if a.rounds is not None else (1 if a.quick else 2)
    paths = a.paths if a.paths is not None else (1 << 14 if a.quick else 1 << 20)
    mf_replicas = a.mf_replicas if a.mf_replicas is not None else (2 if a.quick else 64)
    timeout = a.timeout if a.timeout is not None else (120 if a.quick else 900)
    dtypes = [d.strip() for d in a.dtypes.split(",") if d.strip()]
    jobs_spec = a.jobs if a.jobs is not None else DEFAULT_JOBS
    jobs = C.expand_jobs(jobs_spec, a.mf_widths)  # validates both
    widths = [int(j[len("mf_sgd_n"):]) for j in jobs if j.startswith("mf_sgd_n")]
    t_start = time.perf_counter()
    deadline = t_start + a.time_limit if a.time_limit is not None else None

    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cpus, {platform.system()} {platform.release()}")
    print(f"load average at start (1, 5, 15 min): {load()}")
    notes = []

    def setup_timeout(t):  # the probes' timeouts, within --time-limit
        return t if deadline is None else max(10, min(t, (deadline - time.perf_counter()) / 3))

    try:
        out, _, _ = run([a.python, "-c", PROBE], setup_timeout(120))
        probe = json.loads(out.strip().splitlines()[-1])
    except (RuntimeError, ValueError, IndexError) as e:
        probe = {"python": "?"}
        notes.append(f"could not probe {a.python}: {e}")
    vers = ", ".join(f"{k} {probe.get(k) or 'not importable'}" for k in ("python", "numpy", "numba", "jax", "torch"))
    print(f"peers' interpreter {a.python}: {vers}")
    if probe.get("torch_cuda") or probe.get("jax_backend") == "gpu":
        print(f"  torch CUDA: {probe.get('torch_cuda_name') or 'no'}; jax backend: {probe.get('jax_backend') or '—'}")

    units = []
    failed_rows = []  # (job, dtype) rows of units that could not run at all

    def cannot_run(impl, device, dts, why):
        notes.append(why)
        for dt in dts:
            for j in jobs:
                failed_rows.append(dict(impl=impl, dtype=dt, device=device, job=j, rate=None, check="error",
                                        paths=None, want_paths=want_paths(j), error=why, round=0))

    def want_paths(job):
        if job == "sgd":
            return paths
        if job == "sme2":
            return max(paths // 16, 1)
        return C.mf_shape(int(job[len("mf_sgd_n"):]), mf_replicas)[0]

    smflow_version = None
    if a.smflow_backends == "auto":
        backends = None
    else:
        backends = [b.strip() for b in a.smflow_backends.split(",") if b.strip()]
        for b in backends:
            if b not in ("cpu", "gpu"):
                sys.exit(f"unknown smflow backend {b!r} (cpu, gpu)")
        if a.no_gpu:
            backends = [b for b in backends if b != "gpu"]
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
                devices = run([exe, "devices"], setup_timeout(120))[0]
            except RuntimeError as e:
                devices = ""
                notes.append(f"smflow devices failed: {e}")
            print(f"smflow: {smflow_version} ({exe})")
            for line in devices.strip().splitlines():
                print(f"  smflow devices: {line}")
            tmp = tempfile.mkdtemp(prefix="smflow-peers-")
            extra = []
            if a.jobs is not None:  # smflow's job names: sgd, sme2, mf (its widths: --mf-widths)
                extra += ["--jobs", ",".join([j for j in ("sgd", "sme2") if j in jobs] + (["mf"] if widths else []))]
            if widths and (a.mf_widths is not None or widths != list(C.MF_WIDTHS)):
                extra += ["--mf-widths", ",".join(map(str, widths))]
            gpu_ok = "default gpu:" in devices
            for b in (backends if backends is not None else ["cpu", "gpu"]):
                if b == "gpu" and a.no_gpu:
                    continue
                if b == "gpu" and not gpu_ok:
                    if backends is None:
                        notes.append("smflow: no wgpu adapter, gpu backend skipped")
                    else:
                        cannot_run("smflow", "gpu", ["f32"], "smflow: `smflow devices` shows no wgpu adapter: gpu backend not run")
                    continue
                units.append(smflow_unit(exe, b, paths, mf_replicas, tmp, jobs, extra))

    for peer in [x.strip() for x in a.peers.split(",") if x.strip()]:
        if peer not in PEERS:
            sys.exit(f"unknown peer {peer!r}")
        if not probe.get("numpy") or not probe.get(peer):
            why = probe.get(peer + "_error") or "not installed"
            msg = (f"{peer}: not importable under {a.python} ({why}); skipped "
                   f"(pip install numpy {'jax' if peer == 'jax' else peer})")
            if a.device == "cuda":
                cannot_run(peer, "cuda", dtypes, msg)
            else:
                notes.append(msg)
            continue
        has_cuda = (peer == "torch" and probe.get("torch_cuda")) or (peer == "jax" and probe.get("jax_backend") == "gpu")
        if a.device == "cpu":
            devices = ["cpu"]
        elif a.device == "cuda":
            devices = []
            if a.no_gpu:
                continue
            if peer == "numba":
                notes.append("numba: cpu only (no numba.cuda variant), skipped with --device cuda")
            elif not has_cuda:
                cannot_run(peer, "cuda", dtypes, f"{peer}: sees no CUDA GPU under {a.python}"
                           + (f" (jax backend: {probe.get('jax_backend')})" if peer == "jax" else ""))
            else:
                devices = ["cuda"]
        else:
            devices = ["cpu"] + (["cuda"] if has_cuda and not a.no_gpu else [])
        for dev in devices:
            if a.quick:  # one process per peer and device: fewer imports
                units.append(peer_unit(a.python, peer, dtypes, dev, paths, mf_replicas, jobs_spec, a.mf_widths, jobs))
            else:
                for dt in dtypes:
                    units.append(peer_unit(a.python, peer, [dt], dev, paths, mf_replicas, jobs_spec, a.mf_widths, jobs))

    sizes = f"sizes: sgd {paths} paths, sme2 {max(paths // 16, 1)} paths, mf --mf-replicas {mf_replicas}"
    if a.mf_widths is not None or a.jobs is not None:
        sizes += f" (widths {', '.join(map(str, widths)) or 'none'}; jobs {', '.join(jobs)})"
    print(f"{sizes}; {rounds} round(s) of {len(units)} commands, interleaved")
    rows = list(failed_rows)
    for r in range(rounds):
        order = units[r % len(units):] + units[: r % len(units)] if units else []
        for u in order:
            left = None if deadline is None else deadline - time.perf_counter()
            skipped = left is not None and left < 5
            if skipped:
                got, err = [], f"not run: --time-limit {a.time_limit:g} s reached"
                print(f"  round {r + 1}: {u.name}: SKIPPED (time limit)", flush=True)
            else:
                stdout, stderr, sec, err = run_capture(u.cmd, timeout if left is None else min(timeout, left))
                try:
                    got = u.parse(stdout)
                except (OSError, ValueError, KeyError, TypeError) as e:
                    got, err = [], (err or "") + f" (output not understood: {e})"
                if err:
                    tail = [ln for ln in (stderr or stdout).strip().splitlines() if ln.strip()][-5:]
                    if tail and not err.startswith("timed out"):
                        err += "\n    " + "\n    ".join(tail)
            for g in got:
                g["round"] = r + 1
                if g.get("paths") is None:
                    g["want_paths"] = want_paths(g["job"])
                if g.get("error"):
                    notes.append(f"round {r + 1}, {g['impl']} {g['dtype']} {g['job']}: {g['error']}")
            seen = {(g["job"], g["dtype"]) for g in got}
            missing = [(j, d) for j, d in u.expected if (j, d) not in seen]
            if err or missing:
                reason = err or "no result printed"
                notes.append(f"round {r + 1}, {u.name}: {reason}" + (f" [no result: {', '.join(j + ' ' + d for j, d in missing)}]" if missing else ""))
                u.devices.update({g["dtype"]: g["device"] for g in got})
                for j, d in missing:
                    got.append(dict(impl=u.impl, dtype=d, device=u.devices.get(d, u.device), job=j, rate=None, check="error",
                                    paths=None, want_paths=want_paths(j), error=reason.splitlines()[0], round=r + 1))
            u.devices.update({g["dtype"]: g["device"] for g in got})
            rows += got
            ok = sum(1 for g in got if g.get("rate"))
            if not skipped:
                status = "" if not err else (" — TIMED OUT" if err.startswith("timed out") else " — FAILED")
                print(f"  round {r + 1}: {u.name}: {ok} results in {sec:.1f} s (load {load()}){status}", flush=True)
            write_json(a.json, probe, smflow_version, rows, notes)

    print(f"\nload average at end (1, 5, 15 min): {load()}; total {time.perf_counter() - t_start:.0f} s")
    for job in jobs:
        jr = [x for x in rows if x["job"] == job]
        if not jr:
            continue
        keys = []
        for x in jr:
            k = (x["impl"], x["dtype"], x["device"])
            if k not in keys:
                keys.append(k)
        best = {}
        for k in keys:
            rates = [x["rate"] for x in jr if (x["impl"], x["dtype"], x["device"]) == k and x.get("rate")]
            best[k] = max(rates) if rates else None
        peer_best = max([v for k, v in best.items() if k[0] != "smflow" and v is not None], default=None)
        print(f"\n## {C.job_title(job)}")
        sizes = sorted({x["paths"] for x in jr if x.get("paths") is not None})
        unit = "replicas" if job.startswith("mf") else "paths"
        print(f"({unit}: {', '.join(map(str, sizes)) or '—'}; ratio = best / fastest peer's best)")
        hdr = ["implementation", "dtype", "device", "best", "rounds", "× fastest peer", "check"]
        table = []
        for k in sorted(keys, key=lambda k: -(best[k] or -1.0)):
            xs = [x for x in jr if (x["impl"], x["dtype"], x["device"]) == k]
            chk = check_summary([x["check"] for x in xs])
            ratio = f"{best[k] / peer_best:.2f}" if peer_best and best[k] else "—"
            table.append([k[0], k[1], k[2], fmt(best[k]) if best[k] else "ERROR",
                          ", ".join(fmt(x["rate"]) if x.get("rate") else "error" for x in xs), ratio, chk])
        print_table(hdr, table)
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
    write_json(a.json, probe, smflow_version, rows, notes)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
