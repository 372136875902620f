//! Reading config text, shared by every experiment: JSON syntax → `Value` once (`text`),
//! dispatch on `experiment`, then the experiment's own schema with the path of every
//! error (`serde_path_to_error`), so every message reads `path.to.field: what is wrong
//! (allowed: …)`. Internally tagged enums go through [`tagged`], which keeps the path
//! inside the variant (serde's derived impl buffers the content and loses it).

use super::{ConfigError, Experiment};
use serde::de::{DeserializeOwned, Error as _};
use serde_json::Value;

pub use super::text::json;

/// The largest `paths` of any experiment (the replica index is a 32-bit Philox word).
pub const MAX_PATHS: u64 = u32::MAX as u64;

pub(super) fn bad(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// `a` + `b` as a field path (`a.b`, `a[0]`, or either alone when the other is empty).
pub fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ if b.starts_with('[') => format!("{a}{b}"),
        _ => format!("{a}.{b}"),
    }
}

/// Whether a weak_order config's `model.kind`, where it is a string, names a model of
/// some engine (its absence, or another type, is left to the schema's errors).
fn known_kind(model: Option<&Value>) -> bool {
    match model.and_then(|m| m.get("kind")) {
        Some(Value::String(k)) => {
            k == "two_layer" || crate::model::config::KINDS.contains(&k.as_str())
        }
        _ => true,
    }
}

/// The envelope of a parsed config: a JSON object whose `experiment` names one of
/// [`Experiment::ALL`].
pub fn experiment(value: &Value) -> Result<Experiment, ConfigError> {
    let allowed = Experiment::ALL.map(Experiment::name).join(", ");
    let Some(obj) = value.as_object() else {
        return Err(bad(
            "config",
            format!(
                "must be a JSON object {{\"experiment\": …, …}}, got {}",
                kind_of(value)
            ),
        ));
    };
    match obj.get("experiment") {
        None => Err(bad("experiment", format!("missing (allowed: {allowed})"))),
        Some(Value::String(s)) => match Experiment::parse(s) {
            // weak_order on the two-layer model runs in the mean-field engine, on
            // another data set (`data`) in the finite-data trainer.
            Some(Experiment::WeakOrder)
                if obj.get("model").and_then(|m| m.get("kind"))
                    == Some(&Value::from("two_layer")) =>
            {
                Ok(Experiment::MeanFieldWeakOrder)
            }
            // A misspelt kind would otherwise be routed by `data` alone, and refused
            // in the other engine's terms.
            Some(Experiment::WeakOrder) if !known_kind(obj.get("model")) => {
                let kind = obj
                    .get("model")
                    .and_then(|m| m.get("kind"))
                    .unwrap_or(&Value::Null);
                Err(bad(
                    "model.kind",
                    format!(
                        "unknown variant `{}` (allowed: {}, two_layer; or, with `data`, a \
                         finite-data model without `kind`: {{\"param\": …}})",
                        kind.as_str().unwrap_or_default(),
                        crate::model::config::KINDS.join(", ")
                    ),
                ))
            }
            Some(Experiment::WeakOrder) if obj.contains_key("data") => {
                Ok(Experiment::DataWeakOrder)
            }
            Some(e) => Ok(e),
            None => Err(bad(
                "experiment",
                format!("unknown experiment {s:?} (allowed: {allowed})"),
            )),
        },
        Some(v) => Err(bad(
            "experiment",
            format!("missing: must be a string, got {v} (allowed: {allowed})"),
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Deserialises `value` as `T`, every error naming its field (under `prefix`).
pub fn section<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let (field, message) = explain(&join(prefix, &path), &e.into_inner().to_string());
        ConfigError { field, message }
    })
}

/// Marks an error raised inside a [`tagged`] value: `field <path>: message`, its path
/// relative to that value (joined to the outer path by [`section`]).
const INNER: &str = "field ";

/// Names of a serde "expected one of `a`, `b`" / "expected `a` or `b`" list.
fn names(list: &str) -> String {
    list.split('`')
        .skip(1)
        .step_by(2)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first `…` quoted name in `s`.
fn quoted(s: &str) -> &str {
    s.split('`').nth(1).unwrap_or("")
}

/// What a serde "expected …" accepts, in words.
fn allowed_of(expected: &str) -> Option<String> {
    let e = expected.trim();
    Some(match e {
        "u64" | "usize" => format!("an integer 0 … {}", u64::MAX),
        "u32" => format!("an integer 0 … {}", u32::MAX),
        "u16" => format!("an integer 0 … {}", u16::MAX),
        "u8" => format!("an integer 0 … {}", u8::MAX),
        "i64" => format!("an integer {} … {}", i64::MIN, i64::MAX),
        "i32" => format!("an integer {} … {}", i32::MIN, i32::MAX),
        "f64" | "f32" => "a finite number".into(),
        "a string" => "a string".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list [ … ]".into(),
        "a map" => "an object { … }".into(),
        _ if e.starts_with("struct ") => "an object { … }".into(),
        _ if e.starts_with("an array of length ") => {
            format!("a list of {} entries", &e["an array of length ".len()..])
        }
        _ => return None,
    })
}

/// Turns a serde message at `path` into (field, message ending in "(allowed: …)").
fn explain(path: &str, msg: &str) -> (String, String) {
    // An error from inside a tagged value carries its own relative path.
    if let Some(rest) = msg.strip_prefix(INNER) {
        if let Some((inner, m)) = rest.split_once(": ") {
            return (join(path, inner), m.to_string());
        }
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return (
            join(path, quoted(rest)),
            "missing (a required field)".into(),
        );
    }
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let name = quoted(rest);
        let allowed = match rest.split_once(", expected ") {
            Some((_, list)) => names(list),
            None => "none".into(),
        };
        // serde_path_to_error already puts the unknown key on the path.
        let field = if path.rsplit('.').next() == Some(name) {
            path.to_string()
        } else {
            join(path, name)
        };
        return (
            field,
            format!("unknown field `{name}` (allowed: {allowed})"),
        );
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        let name = quoted(rest);
        let allowed = match rest.split_once(", expected ") {
            Some((_, list)) => names(list),
            None => "none".into(),
        };
        return (
            path.to_string(),
            format!("unknown variant `{name}` (allowed: {allowed})"),
        );
    }
    let plain = msg;
    let field = if path.is_empty() { "config" } else { path };
    if let Some((_, expected)) = plain.rsplit_once(", expected ") {
        // `paths` and `batch` are never below 1 (an experiment may ask more: ≥ 2 paths,
        // a batch ≤ N, which its own check names).
        let count = match field {
            "paths" => Some(format!("an integer 1 … {MAX_PATHS}")),
            "batch" => Some(format!("an integer 1 … {}", u32::MAX)),
            _ => None,
        };
        if let Some(a) = count
            .filter(|_| expected.starts_with('u'))
            .or_else(|| allowed_of(expected))
        {
            return (field.to_string(), format!("{plain} (allowed: {a})"));
        }
    }
    (field.to_string(), plain.to_string())
}

/// Deserialises an internally tagged value (`{"<tag>": variant, …}`) keeping the path
/// of errors inside the variant: `build(variant, rest)` parses the other keys, with
/// [`section`] (paths relative to the value). For `impl Deserialize` of tagged enums
/// and `#[serde(deserialize_with)]`.
pub fn tagged<'de, D, T>(
    deserializer: D,
    tag: &str,
    variants: &[&str],
    build: impl FnOnce(&str, &Value) -> Result<T, ConfigError>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    let value = Value::deserialize(deserializer)?;
    let inner = |e: ConfigError| D::Error::custom(format!("{INNER}{}: {}", e.field, e.message));
    let allowed = variants.join(", ");
    let Value::Object(mut obj) = value else {
        return Err(D::Error::custom(format!(
            "must be an object {{\"{tag}\": …, …}}, got {} (allowed {tag}: {allowed})",
            kind_of(&value)
        )));
    };
    let variant = match obj.remove(tag) {
        None => return Err(inner(bad(tag, format!("missing (allowed: {allowed})")))),
        Some(Value::String(s)) if variants.contains(&s.as_str()) => s,
        Some(v) => {
            let shown = match &v {
                Value::String(s) => format!("`{s}`"),
                v => v.to_string(),
            };
            return Err(inner(bad(
                tag,
                format!("unknown variant {shown} (allowed: {allowed})"),
            )));
        }
    };
    build(&variant, &Value::Object(obj)).map_err(inner)
}

/// Command-line overrides of a config, applied to its JSON before validation; an
/// error about an overridden field names the option (`--paths`, `--seed`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Overrides {
    pub paths: Option<u64>,
    pub seed: Option<u64>,
}

impl Overrides {
    pub fn apply(&self, value: &mut Value) {
        if let Some(obj) = value.as_object_mut() {
            if let Some(p) = self.paths {
                obj.insert("paths".into(), p.into());
            }
            if let Some(s) = self.seed {
                obj.insert("seed".into(), s.into());
            }
        }
    }

    /// Renames `paths`/`seed` to `--paths`/`--seed` when they came from the command line.
    pub fn blame(&self, mut e: ConfigError) -> ConfigError {
        if (e.field == "paths" && self.paths.is_some())
            || (e.field == "seed" && self.seed.is_some())
        {
            e.field = format!("--{}", e.field);
        }
        e
    }

    /// Applies the overrides and parses `value` as the config type `T`.
    pub fn parse<T: DeserializeOwned>(&self, mut value: Value) -> Result<T, ConfigError> {
        self.apply(&mut value);
        section(&value, "").map_err(|e| self.blame(e))
    }
}

/// clap parser of `--paths`: a whole number 1 … 4294967295.
pub fn cli_paths(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(p) if (1..=MAX_PATHS).contains(&p) => Ok(p),
        _ => Err(format!(
            "must be a whole number 1 … {MAX_PATHS} (replicas per run), got {s:?}"
        )),
    }
}

/// clap parser of a tolerance (`compare --path-tol`, `--se-tol`): a finite number ≥ 0.
pub fn cli_tolerance(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if t.is_finite() && t >= 0.0 => Ok(t),
        _ => Err(format!("must be a finite number ≥ 0, got {s:?}")),
    }
}

/// clap parser of `--seed`: a whole number 0 … 18446744073709551615.
pub fn cli_seed(s: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().map_err(|_| {
        format!(
            "must be a whole number 0 … {} (a 64-bit Philox key), got {s:?}",
            u64::MAX
        )
    })
}

/// `x` as a short number: plain, or in exponent form when very small or large.
pub fn short(x: f64) -> String {
    if x != 0.0 && !(1e-4..1e9).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// The time grid of every experiment: at least one η, a finite horizon > 0, each η
/// ([`check_eta`]), and report times `checkpoints[j]` in [0, horizon] — in (0, horizon]
/// and at least one step of every η where `zero` is false (the small-d studies, whose
/// time 0 is x₀ itself) — on the step grid of every η ([`check_checkpoint_steps`]).
pub fn check_schedule(
    etas: &[f64],
    horizon: f64,
    checkpoints: &[f64],
    zero: bool,
) -> Result<(), ConfigError> {
    if etas.is_empty() {
        return Err(bad("etas", "must list at least one step size"));
    }
    if !(horizon.is_finite() && horizon > 0.0) {
        return Err(bad(
            "horizon",
            format!("must be a finite number > 0, got {horizon}"),
        ));
    }
    for i in 0..etas.len() {
        check_eta(i, etas, horizon)?;
    }
    let low = if zero { "[0" } else { "(0" };
    for (j, &t) in checkpoints.iter().enumerate() {
        let above_low = if zero { t >= 0.0 } else { t > 0.0 };
        if !(t.is_finite() && above_low && t <= horizon) {
            return Err(bad(
                format!("checkpoints[{j}]"),
                format!("must be a time in {low}, horizon = {}], got {t}", horizon),
            ));
        }
    }
    check_checkpoint_steps(checkpoints, etas)?;
    if !zero {
        for (j, &t) in checkpoints.iter().enumerate() {
            if let Some(i) = etas.iter().position(|&eta| t / eta < 1.0 - 1e-9) {
                return Err(bad(
                    format!("checkpoints[{j}]"),
                    format!("time {t} is less than one step of etas[{i}] = {}", etas[i]),
                ));
            }
        }
    }
    Ok(())
}

/// Step size `etas[i]` of any experiment, against a checked horizon: a finite η > 0,
/// at most `u32::MAX` steps ([`step_limit`]), horizon/η a whole number of at least one
/// step, and not listed before (a repeated η would enter an order fit twice, and its
/// rows the outputs twice). Every family's config calls this one check.
pub fn check_eta(i: usize, etas: &[f64], horizon: f64) -> Result<(), ConfigError> {
    let (eta, field) = (etas[i], format!("etas[{i}]"));
    if !(eta.is_finite() && eta > 0.0) {
        return Err(bad(
            field,
            format!("must be a finite number > 0 (a step size), got {eta}"),
        ));
    }
    step_limit(&field, horizon, eta)?;
    let r = horizon / eta;
    if !(r >= 1.0 - 1e-9 && (r - r.round()).abs() <= 1e-9 * r.max(1.0)) {
        return Err(bad(
            field,
            format!(
                "horizon/η must be a whole number of steps, at least one; {}/{} = {}",
                short(horizon),
                short(eta),
                short(r)
            ),
        ));
    }
    if etas[..i].contains(&eta) {
        return Err(bad(field, format!("{eta} is listed twice")));
    }
    Ok(())
}

/// Report times `checkpoints[j]` of a finite-data or mean-field config: each a whole
/// number of steps of every η (the horizon's own count is [`check_eta`]'s).
pub fn check_checkpoint_steps(checkpoints: &[f64], etas: &[f64]) -> Result<(), ConfigError> {
    for (j, &t) in checkpoints.iter().enumerate() {
        for (i, &eta) in etas.iter().enumerate() {
            let r = t / eta;
            if (r - r.round()).abs() > 1e-9 * r.max(1.0) {
                return Err(bad(
                    format!("checkpoints[{j}]"),
                    format!(
                        "time {t} is not a whole number of steps of etas[{i}] = {eta} \
                         (t/η = {})",
                        short(r)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A whole number of steps `t/η` a run can take, or an error naming `field`.
pub fn step_limit(field: &str, t: f64, eta: f64) -> Result<(), ConfigError> {
    let r = (t / eta).round();
    if r > u32::MAX as f64 {
        return Err(bad(
            field,
            format!(
                "η = {} gives {} steps to the horizon {}, more than the {} a run can take",
                short(eta),
                if r < 1e18 {
                    format!("{r:.0}")
                } else {
                    short(r)
                },
                short(t),
                u32::MAX
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_batch_type_errors_give_their_own_range() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct C {
            paths: u64,
            batch: u32,
        }
        let e = section::<C>(&json(r#"{"paths": -5, "batch": 1}"#).unwrap(), "").unwrap_err();
        assert_eq!(e.field, "paths");
        assert!(
            e.message.contains("(allowed: an integer 1 … 4294967295)"),
            "{e}"
        );
        let e = section::<C>(&json(r#"{"paths": 5, "batch": -1}"#).unwrap(), "").unwrap_err();
        assert!(
            e.message.contains("(allowed: an integer 1 … 4294967295)"),
            "{e}"
        );
    }

    #[test]
    fn experiment_is_checked_first() {
        let v = json("{\"paths\": 1}").unwrap();
        let e = experiment(&v).unwrap_err();
        assert_eq!(e.field, "experiment");
        assert!(e.message.starts_with("missing (allowed: weak_order"), "{e}");
        let v = json("{\"experiment\": \"nope\"}").unwrap();
        assert!(experiment(&v).unwrap_err().message.contains("width_sweep"));
    }

    #[test]
    fn steps_beyond_u32_are_refused() {
        let e = step_limit("etas[0]", 1.0, 2f64.powi(-33)).unwrap_err();
        assert!(e.message.contains("8589934592 steps"), "{e}");
        assert!(step_limit("etas[0]", 1.0, 2f64.powi(-31)).is_ok());
    }
}
