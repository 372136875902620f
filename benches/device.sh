#!/usr/bin/env bash
# Device check on a lent machine with one NVIDIA GPU (H100/H200): smflow's gpu backend
# against the PyTorch and JAX peers on CUDA at GPU sizes, in one short run (see "Device
# check (NVIDIA GPU)" in benches/README.md).
#
#   bash benches/device.sh [--smflow PATH] [--budget SECONDS]
#
# Run from the repository root. Needs no Rust toolchain and no network: a prebuilt release
# binary (default target/release/smflow) and, optionally, Vulkan loader .deb files in .gl/
# (unpacked with dpkg -x). The peers run under $PYTHON (default python3; torch and jax with
# CUDA). Everything goes to $OUT (if set) or ./device-out: device.log (all output), the
# run_all.py --json files, summary.txt (one table with ratios and the goal checks).
# --budget (default 420 s) bounds the whole run; every command has a timeout, and a command
# that fails or times out is a row marked ERROR with a note, not the end of the run.
#
# First smflow's sgd job beside its bare-RNG ceiling (bench --jobs sgd,rng) and with
# work units of 2^20 and 2^24 replicas (SMFLOW_UNIT_REPLICAS), then phases, each only if
# the budget has room left:
#   A  f32: smflow bench --backend gpu, torch cuda, jax cuda: sgd 2^26 paths, sme2 2^22,
#      mean-field n = 1024, 65536, 1048576 with --mf-replicas 4096 (4096, 256, 16 replicas)
#   B  f32: sgd 2^28 paths, sme2 2^24 (the same three)
#   C  f64: torch and jax cuda at the sizes of A (smflow's gpu backend is f32 only)

set -u -o pipefail

SMFLOW=target/release/smflow
BUDGET=420
while [ $# -gt 0 ]; do
    case "$1" in
        --smflow) SMFLOW=$2; shift 2 ;;
        --smflow=*) SMFLOW=${1#*=}; shift ;;
        --budget) BUDGET=$2; shift 2 ;;
        --budget=*) BUDGET=${1#*=}; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "device.sh: unknown argument $1 (--smflow PATH, --budget SECONDS)" >&2; exit 2 ;;
    esac
done
case "$BUDGET" in ''|*[!0-9]*) echo "device.sh: --budget must be whole seconds" >&2; exit 2 ;; esac

OUTDIR=${OUT:-./device-out}
mkdir -p "$OUTDIR"
exec 3>&1 4>&2
exec > >(tee -a "$OUTDIR/device.log") 2>&1
TEE_PID=$!
START=$(date +%s)
PY=${PYTHON:-python3}
RUN_ALL=benches/peers/run_all.py
export PYTHONDONTWRITEBYTECODE=1

left() { echo $((BUDGET - ($(date +%s) - START))); }
min() { if [ "$1" -lt "$2" ]; then echo "$1"; else echo "$2"; fi; }
section() { echo; echo "=== $* (t = $(($(date +%s) - START)) s, $(left) s of the budget left)"; }
finish() {
    section "done"
    exec 1>&3 2>&4
    wait "$TEE_PID" 2>/dev/null || sleep 1
}

section "device check: smflow gpu vs torch/jax CUDA; output in $OUTDIR"
date -u +"%Y-%m-%dT%H:%M:%SZ"

# ---------------------------------------------------------------- Vulkan loader, ICD
if compgen -G ".gl/*.deb" >/dev/null; then
    for f in .gl/*.deb; do
        timeout 60 dpkg -x "$f" / || echo "warning: dpkg -x $f failed"
    done
    timeout 60 ldconfig || echo "warning: ldconfig failed"
    echo "unpacked: $(cd .gl && ls *.deb | tr '\n' ' ')"
else
    echo "no .gl/*.deb: using the machine's Vulkan loader, if any"
fi
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    if [ -d "$d" ] && [[ ":${LD_LIBRARY_PATH:-}:" != *":$d:"* ]]; then
        export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
done
icds=""
for d in /etc/vulkan/icd.d /usr/share/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
    for f in "$d"/*.json; do [ -e "$f" ] && icds="$icds $f"; done
done
echo "Vulkan ICD files:${icds:- none}"
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && ! grep -qil nvidia $icds /dev/null 2>/dev/null; then
    icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    [ -e "$icd" ] || echo "warning: $icd not found either"
    export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd __EGL_VENDOR_LIBRARY_FILENAMES=$egl
    echo "no NVIDIA Vulkan ICD found: VK_DRIVER_FILES=VK_ICD_FILENAMES=$icd, __EGL_VENDOR_LIBRARY_FILENAMES=$egl"
fi

# ---------------------------------------------------------------- machine, versions
section "machine"
timeout 20 nvidia-smi -L || echo "nvidia-smi -L failed"
timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv \
    | tee "$OUTDIR/nvidia-smi.csv" || true
timeout 20 nvidia-smi >"$OUTDIR/nvidia-smi.txt" 2>&1 && grep -m1 "CUDA Version" "$OUTDIR/nvidia-smi.txt" || true
echo "$(uname -srm); $(nproc) cpus; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
timeout 45 "$PY" - <<'EOF' || echo "python version probe failed or timed out"
import sys
print("python", sys.version.split()[0])
for name in ("numpy", "numba", "torch", "jax", "jaxlib"):
    try:
        m = __import__(name)
        print(name, getattr(m, "__version__", "?"))
    except Exception as e:
        print(name, "not importable:", repr(e)[:200])
try:
    import torch
    print("torch cuda", torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))
except Exception as e:
    print("torch cuda: ", repr(e)[:200])
try:
    import jax
    print("jax devices", jax.devices())
except Exception as e:
    print("jax devices: ", repr(e)[:200])
EOF

SMF_ARGS=(--no-smflow)
if [ ! -x "$SMFLOW" ]; then
    echo "smflow binary $SMFLOW not found or not executable: peers only"
elif ! timeout 20 "$SMFLOW" --version; then
    echo "$SMFLOW --version failed: peers only"
else
    timeout 90 "$SMFLOW" devices 2>&1 | tee "$OUTDIR/smflow-devices.txt"
    timeout 20 "$SMFLOW" bench --help | grep -q -- --mf-widths || echo "warning: $SMFLOW bench has no --mf-widths (old binary?)"
    gpu_line=$(grep -m1 "default gpu:" "$OUTDIR/smflow-devices.txt" || true)
    if [ -z "$gpu_line" ]; then
        echo "smflow devices shows no wgpu adapter: smflow gpu NOT run (Vulkan loader/ICD missing? see above)"
    elif grep -qi software <<<"$gpu_line"; then
        echo "smflow's default gpu is a software adapter ($gpu_line): smflow gpu NOT run (the NVIDIA ICD was not found)"
    else
        SMF_ARGS=(--smflow "$SMFLOW" --smflow-backends gpu)
    fi
fi

# ---------------------------------------------------------------- sgd vs its bare RNG
# The sgd job beside its draws alone (bench job `rng`): how close the simulation kernel
# and its driver come to the cost of their random numbers on this GPU.
if [ "${SMF_ARGS[0]}" != --no-smflow ]; then
    section "smflow sgd and its bare-RNG ceiling, 2^26 paths"
    timeout 90 "$SMFLOW" bench --backend gpu --jobs sgd,rng --paths $((1 << 26)) \
        --json "$OUTDIR/rng_ceiling.json" 2>&1 | tee "$OUTDIR/rng_ceiling.txt" \
        || echo "ERROR: smflow bench --jobs sgd,rng failed or timed out"
    # The experiments call the backend once per work unit (resume granularity; 2^22
    # replicas on a hardware GPU, `Backend::work_unit`); each call has host costs
    # (setup, round trips, the partials' fold). The same job in units of 2^20 and 2^24
    # says whether 2^22 is the right size.
    for u in 20 24; do
        section "smflow sgd, 2^26 paths, work units of 2^$u replicas"
        SMFLOW_UNIT_REPLICAS=$((1 << u)) timeout 60 "$SMFLOW" bench --backend gpu --jobs sgd \
            --paths $((1 << 26)) 2>&1 | tee "$OUTDIR/sgd_unit_2p$u.txt" \
            || echo "ERROR: smflow bench --jobs sgd with units of 2^$u failed or timed out"
    done
fi

# ---------------------------------------------------------------- the runs
COMMON=(--python "$PY" --device cuda --peers torch,jax --rounds 1)
WIDE=(--mf-replicas 4096 --mf-widths 1024,65536,1048576)
JSONS=()

phase() {  # phase NAME LIMIT PER_COMMAND_TIMEOUT ARGS...
    local name=$1 limit=$2 per=$3
    shift 3
    section "phase $name (time limit ${limit} s, ${per} s a command)"
    timeout -k 10 $((limit + 30)) "$PY" "$RUN_ALL" "$@" --time-limit "$limit" --timeout "$per" \
        --json "$OUTDIR/$name.json" 2>&1 | tee "$OUTDIR/$name.txt"
    echo "(run_all.py exit status ${PIPESTATUS[0]})"
    [ -e "$OUTDIR/$name.json" ] && JSONS+=("$OUTDIR/$name.json")
}

L=$(left)
if [ "$L" -ge 60 ]; then
    phase A-f32 "$(min $((L - 30)) 240)" 150 "${SMF_ARGS[@]}" "${COMMON[@]}" --dtypes f32 \
        --paths $((1 << 26)) "${WIDE[@]}" --jobs sgd,sme2,mf
else
    echo "budget too small for phase A"
fi
L=$(left)
if [ "$L" -ge 90 ]; then
    phase B-f32-2p28 "$(min $((L - 30)) 110)" 70 "${SMF_ARGS[@]}" "${COMMON[@]}" --dtypes f32 \
        --paths $((1 << 28)) --jobs sgd,sme2
else
    section "phase B (sgd 2^28) skipped: $L s left"
fi
L=$(left)
if [ "$L" -ge 90 ]; then
    phase C-f64 "$((L - 25))" 90 --no-smflow "${COMMON[@]}" --dtypes f64 \
        --paths $((1 << 26)) "${WIDE[@]}" --jobs sgd,sme2,mf
else
    section "phase C (f64) skipped: $L s left"
fi

# ---------------------------------------------------------------- one table, goals
section "summary"
if [ ${#JSONS[@]} -gt 0 ]; then
    timeout 60 "$PY" "$RUN_ALL" --combine "${JSONS[@]}" 2>&1 | tee "$OUTDIR/summary.txt"
else
    echo "no results were written" | tee "$OUTDIR/summary.txt"
fi
finish
