//! `smflow run --resume DIR`: a run killed mid-way (SIGKILL, SIGINT) leaves its
//! `progress.json`; resuming it gives, byte for byte, the points, weak errors,
//! correlations and exact partial sums of an uninterrupted run. A resume with another
//! config, seed or shard, of a finished run, or of another experiment, is refused
//! (exit 2) and leaves the directory as it was.
//!
//! Runs are made slow enough to interrupt with small work units
//! (`SMFLOW_UNIT_REPLICAS=1000`, i.e. 1024 replicas); the uninterrupted references use
//! the backend's unit size (`Backend::work_unit`), so every comparison also shows that
//! the unit size does not change the results.

mod common;

use smflow::backend::cpu::CpuBackend;
use smflow::backend::gpu::GpuBackend;
use smflow::backend::{Backend, Precision};
use smflow::experiment::{execute_from, plan, Done, Shard};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smflow");

/// Three dynamics × three step sizes; long enough to interrupt (≥ 5 s of CPU: at 60 000
/// paths a faster CPU path finished within the 2 s the interrupt tests wait).
const WEAK: &str = r#"{"experiment": "weak_order", "name": "resume_weak",
 "model": {"kind": "multiplicative", "mean": 2.0, "std": 1.5},
 "x0": [1.0], "dynamics": ["sgd", "sme1", "sme2"], "batch": 2,
 "etas": [0.2, 0.1, 0.05], "horizon": 1.0,
 "observables": ["x0", "norm2"], "paths": 180000,
 "sde": {"substeps": 8, "extrapolate": true}, "seed": 1}"#;

/// n_point: 20 batches per run, run as shard 2 of 3.
const NPOINT: &str = r#"{"experiment": "n_point", "name": "resume_npoint",
 "model": {"kind": "quadratic", "a": [[1.5]], "mean": [0.3], "cov": [[0.64]]},
 "particles": [[1.0], [-0.5]], "dynamics": ["sgd", "smf1", "sme1", "smf2"], "batch": 2,
 "etas": [0.1, 0.05], "horizon": 1.0, "checkpoints": [0.5],
 "paths": 150000, "sde": {"substeps": 8, "extrapolate": true}, "seed": 5}"#;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("resume")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_config(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn command(args: &[&str], small_units: bool) -> Command {
    let mut c = Command::new(BIN);
    c.args(args);
    if small_units {
        c.env("SMFLOW_UNIT_REPLICAS", "1000");
    } else {
        c.env_remove("SMFLOW_UNIT_REPLICAS");
    }
    c
}

fn smflow(args: &[&str]) -> Output {
    command(args, false).output().expect("binary runs")
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "smflow failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The uninterrupted run of `cfg` (default unit size) into `out`.
fn reference(cfg: &str, out: &Path, extra: &[&str]) {
    let mut args = vec!["run", cfg, "--quiet", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    ok(&smflow(&args));
    assert!(
        !out.join("progress.json").exists(),
        "a finished run keeps progress.json"
    );
}

/// (units done, units in all) of a progress file, if one is there.
fn units(dir: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(dir.join("progress.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).expect("progress.json is whole JSON");
    Some((v["units_done"].as_u64()?, v["units_total"].as_u64()?))
}

/// Starts an interruptible run (small units) and returns as soon as its progress file
/// shows units done and units left to do. (The file is written after the first unit,
/// then every ≥ 2 s: waiting for a second write let a run shorter than ~2 s finish
/// first, and the test fail on a fast machine.)
fn start_and_wait(cfg: &str, out: &Path, extra: &[&str]) -> (Child, (u64, u64)) {
    let mut args = vec!["run", cfg, "--quiet", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut child = command(&args, true).spawn().expect("binary starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            panic!("the run ended ({s}) before it could be interrupted: {seen:?}; make the config larger");
        }
        if let Some(u) = units(out) {
            assert!(u.0 >= 1 && u.0 <= u.1, "{u:?}");
            assert!(u.0 < u.1, "all units done before the run could be interrupted: {seen:?}; make the config larger");
            if seen.last() != Some(&u) {
                seen.push(u);
            }
            return (child, u);
        }
        assert!(
            Instant::now() < deadline,
            "no progress.json in {}",
            out.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn resume(cfg: &str, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", cfg, "--resume", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    smflow(&args)
}

/// The moments of a partials.json (its timing fields legitimately differ).
fn moments(dir: &Path) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("partials.json")).unwrap()).unwrap();
    v["moments"].clone()
}

/// The data files of two run directories are equal byte for byte.
fn same_results(a: &Path, b: &Path, files: &[&str]) {
    for f in files {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(
            x == y,
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
    assert_eq!(moments(a), moments(b), "partials.json moments differ");
    assert!(!b.join("progress.json").exists());
    assert!(b.join("results.json").exists());
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Exit 2 with `needle` in the one-line error, and the directory unchanged.
fn refused(o: &Output, needle: &str, dir: &Path, before: &BTreeMap<String, Vec<u8>>) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    eprintln!("{}", err.trim());
    assert!(
        snapshot(dir) == *before,
        "the refused resume changed {}",
        dir.display()
    );
}

/// The uninterrupted weak_order reference, shared by the tests that need it.
fn weak_reference() -> &'static (String, PathBuf) {
    static REF: OnceLock<(String, PathBuf)> = OnceLock::new();
    REF.get_or_init(|| {
        let d = scratch("weak_reference");
        let cfg = write_config(&d, "weak.json", WEAK);
        let out = d.join("full");
        reference(&cfg, &out, &["--backend", "cpu"]);
        (cfg, out)
    })
}

const WEAK_FILES: [&str; 2] = ["points.csv", "weak_error.csv"];

#[test]
fn work_units_merge_to_exactly_one_call() {
    // One backend call over a slice equals calls over its parts, merged, bit for bit:
    // on the CPU at any cut (every path is added exactly); on the GPU at cuts on
    // multiples of 64 of the global replica index, since its f32/f64 workgroup partials
    // always sum the replicas [64 g, 64 g + 64) (the driver aligns its chunks and skips
    // the lanes before a range), which is where shards and work units cut.
    let ck = common::checked(&WEAK.replace("180000", "6000"));
    let p = plan(&ck);
    let spec = &p.runs[4].spec; // sme1 at η = 0.1
    let n_stats = spec.checkpoints.len() * spec.observables.len();
    let parts = |b: &dyn Backend, cuts: &[u64]| {
        let mut acc = vec![smflow::stats::Moments::default(); n_stats];
        for w in cuts.windows(2) {
            let m = b.run(&ck.model, spec, w[0]..w[1], &|_| {}).unwrap();
            acc.iter_mut().zip(&m).for_each(|(a, x)| a.merge(x));
        }
        acc.iter().map(|m| m.to_parts()).collect::<Vec<_>>()
    };
    let cpu = CpuBackend::default();
    assert_eq!(
        parts(&cpu, &[100, 5100]),
        parts(&cpu, &[100, 1100, 1101, 4000, 5100])
    );
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(cpu)];
    match GpuBackend::new(Precision::F32) {
        Ok(g) => {
            assert_eq!(
                parts(&g, &[100, 5100]),
                parts(&g, &[100, 1088, 1152, 5056, 5100])
            );
            backends.push(Box::new(g));
            // Chunks of 320 replicas: a unit spans several, the last one shorter (the
            // pacer scales its learnt budget down for it).
            backends.push(Box::new(
                GpuBackend::with_chunk(Precision::F32, 320).unwrap(),
            ));
        }
        Err(e) => eprintln!("skipping the gpu backend: {e:#}"),
    }
    // The whole plan, in units of 1024 replicas and of the backend's size.
    for b in &backends {
        for shard in [Shard::WHOLE, Shard::parse("2/3").unwrap()] {
            let run = |unit| {
                let c = execute_from(
                    &p,
                    b.as_ref(),
                    shard,
                    &|_| {},
                    Done::none(&p, unit),
                    &mut |_| Ok(()),
                )
                .unwrap();
                (c.to_parts(), c.path_steps)
            };
            let (small, big) = (run(1024), run(b.work_unit()));
            assert!(
                small.0 == big.0,
                "{}: units of 1024 change the sums",
                b.name()
            );
            assert_eq!(small.1, big.1);
        }
    }
}

#[test]
fn sigkill_then_resume_is_bit_identical() {
    let (cfg, full) = weak_reference();
    let d = scratch("sigkill");
    let out = d.join("run");
    let (mut child, at) = start_and_wait(cfg, &out, &["--backend", "cpu"]);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status}");
    assert!(!out.join("results.json").exists());
    let left = units(&out).expect("progress.json survives the kill");
    eprintln!("killed at {at:?}; progress.json holds {left:?}");
    let o = resume(cfg, &out, &["--backend", "cpu"]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{} of {} work units done", left.0, left.1)),
        "{err}"
    );
    same_results(full, &out, &WEAK_FILES);
}

/// Whether this process ignores SIGINT (then its children do too, e.g. under nohup or
/// as a background job of a non-interactive shell).
fn sigint_ignored() -> bool {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|m| m & (1 << 1) != 0)
}

#[test]
fn sigint_then_resume_is_bit_identical() {
    if sigint_ignored() {
        eprintln!("skipping: SIGINT is ignored in this process, so it would be in smflow");
        return;
    }
    let (cfg, full) = weak_reference();
    let d = scratch("sigint");
    let out = d.join("run");
    let (mut child, _) = start_and_wait(cfg, &out, &["--backend", "cpu"]);
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let t = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(2), "{status}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "SIGINT took {:?}",
        t.elapsed()
    );
    assert!(!out.join("results.json").exists());
    assert!(units(&out).is_some());
    ok(&resume(cfg, &out, &["--backend", "cpu", "--quiet"]));
    same_results(full, &out, &WEAK_FILES);
}

#[test]
fn resume_with_another_config_seed_shard_or_backend_is_refused() {
    let (cfg, full) = weak_reference();
    let d = scratch("refused");
    let out = d.join("run");
    let (mut child, _) = start_and_wait(cfg, &out, &["--backend", "cpu"]);
    child.kill().unwrap();
    child.wait().unwrap();
    let before = snapshot(&out);
    let cpu = ["--backend", "cpu"];
    refused(
        &resume(cfg, &out, &["--backend", "cpu", "--seed", "2"]),
        "was run with a different config or seed (field seed: 1 there, 2 here)",
        &out,
        &before,
    );
    refused(
        &resume(cfg, &out, &["--backend", "cpu", "--paths", "50000"]),
        "(field paths: 180000 there, 50000 here)",
        &out,
        &before,
    );
    let changed = write_config(&d, "changed.json", &WEAK.replace("0.05]", "0.04]"));
    refused(
        &resume(&changed, &out, &cpu),
        "(field etas[2]: 0.05 there, 0.04 here)",
        &out,
        &before,
    );
    refused(
        &resume(cfg, &out, &["--backend", "cpu", "--shard", "1/2"]),
        "(field shard: none (the whole run) there, 1/2 here)",
        &out,
        &before,
    );
    if GpuBackend::new(Precision::F32).is_ok() {
        refused(
            &resume(cfg, &out, &["--backend", "gpu"]),
            "was run on backend cpu (f64",
            &out,
            &before,
        );
    }
    refused(
        &resume(cfg, &out, &["--backend", "cpu", "--force"]),
        "cannot be combined with --force",
        &out,
        &before,
    );
    refused(
        &resume(
            cfg,
            &out,
            &["--backend", "cpu", "--out", full.to_str().unwrap()],
        ),
        "names another (drop --out)",
        &out,
        &before,
    );
    // A tampered file is refused by its digest.
    let p = out.join("progress.json");
    let text = std::fs::read_to_string(&p).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["done"][0][0] = serde_json::json!(0);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    let before = snapshot(&out);
    refused(
        &resume(cfg, &out, &cpu),
        "progress.json: digest mismatch",
        &out,
        &before,
    );
    std::fs::write(&p, text).unwrap();
    // Still resumable after all that; --out naming the same directory is fine.
    ok(&resume(
        cfg,
        &out,
        &[
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    same_results(full, &out, &WEAK_FILES);
}

#[test]
fn resume_of_a_finished_run_or_a_foreign_directory_is_refused() {
    let (cfg, full) = weak_reference();
    let before = snapshot(full);
    refused(
        &resume(cfg, full, &["--backend", "cpu"]),
        &format!(
            "--resume {}: the run is already complete (it holds results.json)",
            full.display()
        ),
        full,
        &before,
    );
    let d = scratch("foreign");
    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    refused(
        &resume(cfg, &empty, &["--backend", "cpu"]),
        "no progress.json",
        &empty,
        &BTreeMap::new(),
    );
    let o = resume(cfg, &d.join("missing"), &["--backend", "cpu"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!d.join("missing").exists());
    // Experiments that resume by jobs look for their progress folder.
    for config in ["least_squares_risk", "invariant_1d", "width_sweep_quick"] {
        let path = format!("{}/configs/{config}.json", env!("CARGO_MANIFEST_DIR"));
        refused(
            &resume(&path, &empty, &["--backend", "cpu"]),
            "no progress/run.json",
            &empty,
            &BTreeMap::new(),
        );
    }
}

#[test]
fn n_point_shard_resumes_bit_identically() {
    let d = scratch("npoint");
    let cfg = write_config(&d, "npoint.json", NPOINT);
    let full = d.join("full");
    let shard = ["--backend", "cpu", "--shard", "2/3"];
    reference(&cfg, &full, &shard);
    let out = d.join("run");
    let (mut child, _) = start_and_wait(&cfg, &out, &shard);
    child.kill().unwrap();
    child.wait().unwrap();
    ok(&resume(
        &cfg,
        &out,
        &["--backend", "cpu", "--shard", "2/3", "--quiet"],
    ));
    same_results(
        &full,
        &out,
        &["points.csv", "correlations.csv", "ensemble.csv"],
    );
}

#[test]
fn gpu_run_resumes_bit_identically() {
    if let Err(e) = GpuBackend::new(Precision::F32) {
        eprintln!("skipping: no wgpu adapter ({e:#})");
        return;
    }
    let d = scratch("gpu");
    let cfg = write_config(&d, "weak.json", &WEAK.replace("180000", "200000"));
    let full = d.join("full");
    let gpu = ["--backend", "gpu"];
    reference(&cfg, &full, &gpu);
    let out = d.join("run");
    let (mut child, _) = start_and_wait(&cfg, &out, &gpu);
    child.kill().unwrap();
    child.wait().unwrap();
    ok(&resume(&cfg, &out, &["--backend", "gpu", "--quiet"]));
    same_results(&full, &out, &WEAK_FILES);
}

/// The files of a finished run: every output byte for byte, and results.json up to
/// its timing fields; no progress left behind.
fn same_outputs(full: &Path, out: &Path) {
    let (a, b) = (snapshot(full), snapshot(out));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the resumed run wrote other files"
    );
    for (name, bytes) in &a {
        if name == "results.json" {
            let strip = |x: &[u8]| {
                let mut v: serde_json::Value = serde_json::from_slice(x).unwrap();
                for k in ["wall_seconds", "path_steps_per_second"] {
                    v.as_object_mut().unwrap().remove(k);
                }
                v
            };
            assert_eq!(
                strip(bytes),
                strip(&b[name]),
                "results.json differs after resume"
            );
        } else {
            assert!(*bytes == b[name], "{name} differs after resume");
        }
    }
}

/// Saved jobs in a run directory's `progress/`.
fn saved_jobs(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("progress")).map_or(0, |r| {
        r.filter(|e| e.as_ref().is_ok_and(|e| is_saved_job(&e.path())))
            .count()
    })
}

/// A completed job file, `job-NNNNNN.json`; not the `job-NNNNNN.tmp` that
/// `write_atomic` renames into place (a kill can leave it half-written).
fn is_saved_job(p: &Path) -> bool {
    let name = p.file_name().unwrap().to_string_lossy();
    name.starts_with("job-") && name.ends_with(".json")
}

/// An experiment that resumes by jobs: killed (SIGKILL) after its first saved job and
/// resumed, it writes what an uninterrupted run writes; a resume with another seed is
/// then refused as complete, and one of a run with a tampered job file is refused.
fn jobs_resume_bit_identically(name: &str, cfg: &str, extra: &[&str]) {
    let d = scratch(name);
    let cfg = write_config(&d, &format!("{name}.json"), cfg);
    let full = d.join("full");
    let mut args = vec!["--backend", "cpu"];
    args.extend_from_slice(extra);
    reference(&cfg, &full, &args);
    let out = d.join("run");
    let mut run = vec![
        "run",
        cfg.as_str(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    run.extend_from_slice(&args);
    let mut child = command(&run, false).spawn().expect("binary starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    while saved_jobs(&out) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be interrupted"
        );
        assert!(Instant::now() < deadline, "no saved job within 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !out.join("results.json").exists(),
        "killed after it finished: make the config larger"
    );
    let saved = saved_jobs(&out);
    // A tampered job is refused, naming the file, and the directory is left as it was.
    let job = std::fs::read_dir(out.join("progress"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| is_saved_job(p))
        .unwrap();
    let good = std::fs::read(&job).unwrap();
    let mut bad: serde_json::Value = serde_json::from_slice(&good).unwrap();
    bad["index"] = serde_json::json!(bad["index"].as_u64().unwrap() + 1000);
    std::fs::write(&job, serde_json::to_vec(&bad).unwrap()).unwrap();
    let o = resume(&cfg, &out, &args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("digest mismatch"), "{err}");
    std::fs::write(&job, &good).unwrap();
    let o = resume(&cfg, &out, &args);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{saved}")) && err.contains("jobs done"),
        "{err}"
    );
    eprintln!("{name}: killed with {saved} jobs saved; {}", err.trim());
    same_outputs(&full, &out);
    assert!(
        !out.join("progress").exists(),
        "a finished run keeps progress/"
    );
    let mut again = args.clone();
    again.extend_from_slice(&["--seed", "9"]);
    let o = resume(&cfg, &out, &again);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("the run is already complete"), "{err}");
}

fn config_file(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/configs/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// width_sweep: one job = one (dynamics, η, width).
#[test]
fn width_sweep_resumes_bit_identically() {
    jobs_resume_bit_identically(
        "width_sweep",
        &config_file("width_sweep_quick"),
        &["--paths", "16"],
    );
}

/// The finite-data experiments: one job = one trainer call (data set, dynamics, η).
#[test]
fn least_squares_risk_resumes_bit_identically() {
    jobs_resume_bit_identically(
        "least_squares_risk",
        &config_file("least_squares_risk"),
        &["--paths", "200"],
    );
}

#[test]
fn implicit_bias_sweep_resumes_bit_identically() {
    jobs_resume_bit_identically(
        "implicit_bias_sweep",
        &config_file("implicit_bias_sweep"),
        &["--paths", "4"],
    );
}

#[test]
fn gd_vs_gf_resumes_bit_identically() {
    let cfg = config_file("gd_vs_gf").replace("\"horizon\": 20", "\"horizon\": 400");
    jobs_resume_bit_identically("gd_vs_gf", &cfg, &[]);
}

/// invariant: one job = one batch of paths of one (dynamics, η).
#[test]
fn invariant_resumes_bit_identically() {
    jobs_resume_bit_identically(
        "invariant",
        &config_file("invariant_1d"),
        &["--paths", "20000"],
    );
}
