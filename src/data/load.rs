//! Data sets from files: CSV (features then label per row, optional header) or JSON
//! (`{"x": [[...]], "y": [...], "teacher": [...]}`). Errors name the file, row and
//! column, so a user can fix the file.

use super::DataSet;
use crate::config::ConfigError;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonData {
    x: Vec<Vec<f64>>,
    y: Vec<f64>,
    #[serde(default)]
    teacher: Option<Vec<f64>>,
}

fn bad(field: &str, message: String) -> ConfigError {
    ConfigError {
        field: format!("{field}.path"),
        message,
    }
}

pub fn load(field: &str, path: &str) -> Result<DataSet, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(field, format!("cannot read {path:?}: {e}")))?;
    if path.ends_with(".json") {
        from_json(field, path, &text)
    } else if path.ends_with(".csv") {
        from_csv(field, path, &text)
    } else {
        Err(bad(
            field,
            format!("{path:?}: expected a .csv or .json file"),
        ))
    }
}

fn from_rows(
    field: &str,
    path: &str,
    x: Vec<Vec<f64>>,
    y: Vec<f64>,
    teacher: Option<Vec<f64>>,
) -> Result<DataSet, ConfigError> {
    let n = x.len();
    if n == 0 || n != y.len() {
        return Err(bad(
            field,
            format!(
                "{path:?}: need ≥ 1 sample and as many labels as rows ({n} rows, {} labels)",
                y.len()
            ),
        ));
    }
    let d = x[0].len();
    if d == 0 {
        return Err(bad(field, format!("{path:?}: samples have no features")));
    }
    if let Some(i) = x.iter().position(|r| r.len() != d) {
        return Err(bad(
            field,
            format!(
                "{path:?}: sample {i} has {} features, sample 0 has {d}",
                x[i].len()
            ),
        ));
    }
    if x.iter().flatten().chain(&y).any(|v| !v.is_finite()) {
        return Err(bad(field, format!("{path:?}: all values must be finite")));
    }
    if let Some(t) = &teacher {
        if t.len() != d {
            return Err(bad(
                field,
                format!("{path:?}: teacher must have d = {d} entries"),
            ));
        }
    }
    Ok(DataSet {
        n,
        d,
        x: x.into_iter().flatten().collect(),
        y,
        y_clean: None,
        teacher,
        noise_std: 0.0,
    })
}

fn from_json(field: &str, path: &str, text: &str) -> Result<DataSet, ConfigError> {
    let j: JsonData =
        serde_json::from_str(text).map_err(|e| bad(field, format!("{path:?}: {e}")))?;
    from_rows(field, path, j.x, j.y, j.teacher)
}

fn from_csv(field: &str, path: &str, text: &str) -> Result<DataSet, ConfigError> {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed: Result<Vec<f64>, _> = cells.iter().map(|c| c.parse::<f64>()).collect();
        match parsed {
            Ok(v) if v.len() >= 2 => {
                y.push(v[v.len() - 1]);
                x.push(v[..v.len() - 1].to_vec());
            }
            Ok(_) => {
                return Err(bad(
                    field,
                    format!(
                        "{path:?} line {}: need ≥ 1 feature and a label",
                        line_no + 1
                    ),
                ))
            }
            // A header is allowed as the first non-empty row only.
            Err(_) if x.is_empty() && y.is_empty() && line_no == first_row(text) => {}
            Err(e) => {
                return Err(bad(field, format!("{path:?} line {}: {e}", line_no + 1)));
            }
        }
    }
    from_rows(field, path, x, y, None)
}

fn first_row(text: &str) -> usize {
    text.lines()
        .position(|l| !l.trim().is_empty() && !l.trim().starts_with('#'))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_give_the_same_set() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("d.csv");
        let json = dir.path().join("d.json");
        std::fs::write(&csv, "x1,x2,y\n1,2,3\n4,5,6\n").unwrap();
        std::fs::write(&json, r#"{"x": [[1,2],[4,5]], "y": [3,6]}"#).unwrap();
        let a = load("data", csv.to_str().unwrap()).unwrap();
        let b = load("data", json.to_str().unwrap()).unwrap();
        assert_eq!(a, b);
        assert_eq!((a.n, a.d), (2, 2));
    }

    #[test]
    fn ragged_csv_names_the_sample() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("d.csv");
        std::fs::write(&csv, "1,2,3\n4,5\n").unwrap();
        let e = load("data", csv.to_str().unwrap()).unwrap_err();
        assert_eq!(e.field, "data.path");
        assert!(e.message.contains("sample 1"), "{}", e.message);
    }
}
