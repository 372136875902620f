//! `implicit_bias_sweep` (seed 003, Even et al. Figures 1 and 3; seed 000 Thm 5.3):
//! which interpolator (S)GD on a diagonal linear network finds, against the step size.
//!
//! For every data set, dynamics and η: train to the horizon, then per replica the test
//! loss on a fresh test set, ‖β∞ − β*‖, ‖β∞‖₁, the train loss, ‖Gain‖₁ and, for the
//! u⊙v parametrisation, the distance from β∞ to the interpolator predicted by the
//! effective initialisation α_∞ (seed 003 Thm 2.2). `gf` runs give the GF limit, which
//! is compared with `argmin ψ_α` solved independently (`theory::hyperbolic_entropy`).
//! Diverged replicas are counted and left out of every mean.

use super::config::Setup;
use super::levels::{value_and_error, Levels};
use super::{job, mean_se, num, Output};
use crate::data::{dot, generate, DataSet, GenerateConfig};
use crate::output::lines::{Line, LinePlot};
use crate::theory::gain::effective_alpha;
use crate::theory::hyperbolic_entropy::{alpha_for_uv, min_entropy_interpolator};
use crate::train::net::Param;
use crate::train::{Dynamics, Trainer};
use nalgebra::DVector;
use serde_json::json;
use std::collections::BTreeMap;

/// GF runs to at most horizon · 2^GF_DOUBLINGS while not converged.
const GF_DOUBLINGS: u32 = 6;

const METRICS: [&str; 7] = [
    "test_loss",
    "dist_teacher",
    "l1_norm",
    "train_loss",
    "gain_l1",
    "dist_gf_limit",
    "dist_effective_alpha",
];

/// Labels of a fresh test set: the training set's teacher on new Gaussian features.
pub fn test_set(train: &DataSet, n: usize, seed: u64) -> DataSet {
    let g = GenerateConfig {
        n,
        d: train.d,
        sparsity: None,
        teacher_scale: 1.0,
        label_noise: train.noise_std,
        seed: None,
        labels: Default::default(),
    };
    let mut t = generate(&g, seed ^ 0x7E57_5E7_u64);
    let teacher = train.teacher.clone().expect("checked: teacher known");
    let noise: Vec<f64> = (0..n)
        .map(|i| t.y[i] - t.y_clean.as_ref().unwrap()[i])
        .collect();
    let clean: Vec<f64> = (0..n).map(|i| dot(t.row(i), &teacher)).collect();
    t.y = clean.iter().zip(&noise).map(|(c, e)| c + e).collect();
    t.y_clean = Some(clean);
    t.teacher = Some(teacher);
    t
}

/// The GF limit's Woodworth α for this parametrisation, if it has one.
fn woodworth_alpha(param: Param, d: usize, alpha: f64) -> Option<DVector<f64>> {
    let a = DVector::from_element(d, alpha);
    match param {
        Param::Uv => Some(alpha_for_uv(&a)),
        Param::PlusMinus => Some(a),
        Param::Linear | Param::DeepLinear(_) => None,
    }
}

fn l2(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

pub fn run(s: &Setup, t: &dyn Trainer, progress: &dyn Fn(f64)) -> anyhow::Result<Output> {
    let cfg = &s.cfg;
    let param = s.param;
    let mut path_steps = 0.0;
    // (dynamics, η index) → metric → per-replica values, and per-data-set means.
    let mut values: BTreeMap<(Dynamics, usize), Vec<Vec<f64>>> = BTreeMap::new();
    let mut per_ds: BTreeMap<(Dynamics, usize), Vec<Vec<f64>>> = BTreeMap::new();
    let mut diverged: BTreeMap<(Dynamics, usize), u64> = BTreeMap::new();
    // Per-replica solver-error estimates (with `extrapolate`; else none).
    let mut solver_errors: BTreeMap<(Dynamics, usize), Vec<Vec<f64>>> = BTreeMap::new();
    let mut replicas_csv =
        String::from("dataset,dynamics,eta,replica,diverged,test_loss,dist_teacher,l1_norm,train_loss,gain_l1,dist_gf_limit,dist_effective_alpha\n");
    let mut gf_limit = Vec::new();
    for (di, ds) in s.data.iter().enumerate() {
        let test = test_set(ds, cfg.test_samples, cfg.seed.wrapping_add(di as u64));
        let teacher = ds.teacher.clone().expect("checked");
        let (xm, ym) = (ds.matrix(), ds.labels());
        let aw = woodworth_alpha(param, ds.d, cfg.model.alpha);
        let limit = match &aw {
            Some(a) => Some(min_entropy_interpolator(&xm, &ym, a).map_err(|e| {
                anyhow::anyhow!(
                    "data set {di}: argmin ψ_α s.t. Xβ = y: {e} (needs N < d and full row rank)"
                )
            })?),
            None => None,
        };
        for &d in &s.dynamics {
            for (ei, &eta) in cfg.etas.iter().enumerate() {
                if d == Dynamics::Gf && ei > 0 {
                    // GF does not depend on η: one run per data set, at the first η's
                    // grid, reported for every η.
                    let v = values
                        .get_mut(&(d, 0))
                        .map(|v| v.clone())
                        .unwrap_or_default();
                    values.insert((d, ei), v);
                    let v = per_ds.get(&(d, 0)).cloned().unwrap_or_default();
                    per_ds.insert((d, ei), v);
                    let v = solver_errors.get(&(d, 0)).cloned().unwrap_or_default();
                    solver_errors.insert((d, ei), v);
                    continue;
                }
                let mut j = job(s, di, d, eta, ei);
                let reps = if d.is_random() { cfg.paths } else { 1 };
                let p = j.p();
                let k = j.steps();
                let mut doubling = 0;
                // With `extrapolate`, an SDE's or flow's coupled coarser levels too.
                let lv = loop {
                    if d == Dynamics::Gf {
                        // Run to convergence: horizons T·2^e until the train loss is
                        // ≤ tolerance (each attempt from the start: ≤ 2× the needed work).
                        j.checkpoints = vec![k << doubling];
                    }
                    let lv = Levels::collect(s, t, &j, reps, progress, &mut path_steps)?;
                    let done = d != Dynamics::Gf || doubling == GF_DOUBLINGS || {
                        let mut beta = vec![0.0; ds.d];
                        param.beta(&lv.rows[0][0][0][..p], &mut beta);
                        ds.loss(&beta) <= cfg.converge_tolerance
                    };
                    if done {
                        break lv;
                    }
                    doubling += 1;
                };
                let last = lv.rows[0].len() - 1;
                let key = (d, ei);
                let vals = values
                    .entry(key)
                    .or_insert_with(|| vec![Vec::new(); METRICS.len()]);
                let errs = solver_errors
                    .entry(key)
                    .or_insert_with(|| vec![Vec::new(); METRICS.len()]);
                let mut ds_vals = vec![Vec::new(); METRICS.len()];
                // The metrics of one trained row (`METRICS`' order).
                let metrics = |row: &[f64]| {
                    let mut beta = vec![0.0; ds.d];
                    param.beta(&row[..p], &mut beta);
                    let gain = j
                        .track_gain
                        .then(|| DVector::from_column_slice(&row[p..p + ds.d]));
                    let dist_limit = limit.as_ref().map(|l| l2(&beta, l.as_slice()));
                    // Thm 2.2 (u⊙v): the interpolator of the effective initialisation.
                    let dist_eff = match (&gain, param) {
                        (Some(g), Param::Uv) => {
                            let a_inf =
                                effective_alpha(&DVector::from_element(ds.d, cfg.model.alpha), g);
                            min_entropy_interpolator(&xm, &ym, &alpha_for_uv(&a_inf))
                                .ok()
                                .map(|b| l2(&beta, b.as_slice()))
                        }
                        _ => None,
                    };
                    [
                        test.loss(&beta),
                        l2(&beta, &teacher),
                        beta.iter().map(|b| b.abs()).sum(),
                        ds.loss(&beta),
                        gain.as_ref()
                            .map(|g| g.iter().map(|v| v.abs()).sum())
                            .unwrap_or(f64::NAN),
                        dist_limit.unwrap_or(f64::NAN),
                        dist_eff.unwrap_or(f64::NAN),
                    ]
                };
                for r in 0..lv.replicas(last) {
                    // A state within the bound whose always-defined metrics (the first
                    // four) overflow is diverged too: counted, not dropped from the means.
                    let per_level = lv
                        .replica(last, r)
                        .map(|rows| rows.iter().map(|row| metrics(row)).collect::<Vec<_>>());
                    let finite = |p: &Vec<[f64; METRICS.len()]>| {
                        p.iter().all(|m| m[..4].iter().all(|x| x.is_finite()))
                    };
                    let Some(per_level) = per_level.filter(finite) else {
                        *diverged.entry(key).or_default() += 1;
                        replicas_csv.push_str(&format!(
                            "{di},{},{},{r},1,,,,,,,\n",
                            d.name(),
                            num(eta)
                        ));
                        continue;
                    };
                    replicas_csv.push_str(&format!("{di},{},{},{r},0", d.name(), num(eta)));
                    for k in 0..METRICS.len() {
                        let g: Vec<f64> = per_level.iter().map(|m| m[k]).collect();
                        let (v, e) = value_and_error(d, &g);
                        vals[k].push(v);
                        ds_vals[k].push(v);
                        errs[k].extend(e);
                        replicas_csv.push_str(&format!(",{}", num(v)));
                    }
                    replicas_csv.push('\n');
                }
                let e = per_ds
                    .entry(key)
                    .or_insert_with(|| vec![Vec::new(); METRICS.len()]);
                for k in 0..METRICS.len() {
                    e[k].push(mean_se(&ds_vals[k]).0);
                }
                if d == Dynamics::Gf {
                    if let (Some(l), Some(row)) = (&limit, lv.rows[0][last].first()) {
                        let mut beta = vec![0.0; ds.d];
                        param.beta(&row[..p], &mut beta);
                        gf_limit.push(json!({
                            "dataset": di, "eta": eta,
                            "distance": l2(&beta, l.as_slice()),
                            "relative_distance": l2(&beta, l.as_slice()) / l.norm(),
                            "train_loss": ds.loss(&beta),
                            "converged": ds.loss(&beta) <= cfg.converge_tolerance,
                        }));
                    }
                }
            }
        }
    }
    // Aggregates.
    let mut table = String::from(
        "dynamics,eta,metric,mean,stderr,count,diverged,solver_error,solver_error_stderr\n",
    );
    let mut sweep = Vec::new();
    let mut warnings = Vec::new();
    for ((d, ei), vals) in &values {
        let eta = cfg.etas[*ei];
        let dv = diverged.get(&(*d, *ei)).copied().unwrap_or(0);
        if dv > 0 {
            warnings.push(format!(
                "{d} η={eta}: {dv} of {} replicas diverged (beyond the bound, or a metric \
                 overflowed) and were excluded from every metric",
                dv as usize + vals[0].len()
            ));
        }
        let mut metrics = serde_json::Map::new();
        for (k, name) in METRICS.iter().enumerate() {
            let (m, se, n) = mean_se(&vals[k]);
            if n == 0 && !vals[k].is_empty() {
                continue;
            }
            let errs = &solver_errors[&(*d, *ei)][k];
            let (err, err_se) = if errs.is_empty() {
                (None, None)
            } else {
                let (m, se, _) = mean_se(errs);
                (Some(m), Some(se))
            };
            table.push_str(&format!(
                "{},{},{name},{},{},{n},{dv},{},{}\n",
                d.name(),
                num(eta),
                num(m),
                num(se),
                num(err.unwrap_or(f64::NAN)),
                num(err_se.unwrap_or(f64::NAN))
            ));
            metrics.insert(
                name.to_string(),
                json!({"mean": m, "stderr": se, "count": n, "solver_error": err,
                    "solver_error_stderr": err_se}),
            );
        }
        sweep.push(json!({"dynamics": d.name(), "eta": eta, "diverged": dv, "metrics": metrics}));
    }
    // SGD vs GD at equal η: paired over data sets (per-data-set means), or, with one
    // data set, the SGD replica spread (GD is deterministic).
    let mut comparisons = Vec::new();
    let mut summary = Vec::new();
    for (ei, &eta) in cfg.etas.iter().enumerate() {
        let (Some(sg), Some(gd)) = (
            per_ds.get(&(Dynamics::Sgd, ei)),
            per_ds.get(&(Dynamics::Gd, ei)),
        ) else {
            continue;
        };
        for (k, name) in METRICS.iter().enumerate().take(2) {
            let diffs: Vec<f64> = sg[k].iter().zip(&gd[k]).map(|(a, b)| a - b).collect();
            let (m, mut se, n) = mean_se(&diffs);
            if n == 1 {
                se = mean_se(&values[&(Dynamics::Sgd, ei)][k]).1;
            }
            comparisons.push(
                json!({"eta": eta, "metric": name, "sgd_minus_gd": m, "stderr": se, "datasets": n,
                "sgd_better_beyond_2se": m < -2.0 * se}),
            );
            if k == 1 {
                summary.push(format!(
                    "η = {eta}: ‖β∞ − β*‖ SGD − GD = {m:.4} ± {se:.4} ({n} data sets)"
                ));
            }
        }
    }
    for g in &gf_limit {
        summary.push(format!(
            "GF limit (data set {}): ‖β_GF(T) − argmin ψ_α‖ = {:.2e} (relative {:.2e}), train loss {:.1e}",
            g["dataset"], g["distance"].as_f64().unwrap_or(f64::NAN),
            g["relative_distance"].as_f64().unwrap_or(f64::NAN), g["train_loss"].as_f64().unwrap_or(f64::NAN)
        ));
    }
    let plot = |metric: usize, title: &str| {
        let mut lines = Vec::new();
        for &d in &s.dynamics {
            let points = (0..cfg.etas.len())
                .filter_map(|ei| values.get(&(d, ei)).map(|v| (ei, mean_se(&v[metric]))))
                .map(|(ei, (m, se, _))| (cfg.etas[ei], m, se))
                .collect();
            lines.push(Line {
                label: d.name().to_uppercase(),
                points,
                dashed: d == Dynamics::Gf,
            });
        }
        LinePlot {
            title: format!(
                "{}: {title} (n = {}, d = {}, α = {})",
                s.name, s.data[0].n, s.data[0].d, cfg.model.alpha
            ),
            x_label: "step size η".into(),
            y_label: title.into(),
            log_x: true,
            log_y: true,
            lines,
        }
        .to_svg()
    };
    Ok(Output {
        results: json!({
            "parametrisation": param.name(),
            "alpha": cfg.model.alpha,
            "sweep": sweep,
            "comparisons": comparisons,
            "gf_limit": gf_limit,
            "extrapolate": cfg.extrapolate,
        }),
        files: vec![
            ("sweep.csv".into(), table),
            ("replicas.csv".into(), replicas_csv),
            ("test_loss.svg".into(), plot(0, "test loss")?),
            ("dist_teacher.svg".into(), plot(1, "‖β∞ − β*‖")?),
        ],
        summary,
        path_steps,
        warnings,
    })
}
