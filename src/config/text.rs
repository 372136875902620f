//! Config text to a JSON value: syntax errors with line, column and the field being
//! read (never re-parsed as anything else), NaN/Infinity and out-of-range numbers named
//! by field, a key given twice refused, a leading byte-order mark skipped. The schema
//! of each experiment is read from the value by `parse`.

use super::parse::{bad, join};
use super::ConfigError;
use serde_json::Value;

/// The first key given twice in one JSON object, as its field path (`a.b`), if any:
/// serde_json keeps the last silently, so `"paths": 500, "paths": 7` would run 7.
fn duplicate_key(text: &str) -> Option<String> {
    use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use std::cell::RefCell;
    use std::fmt;

    struct Walk<'a> {
        path: String,
        found: &'a RefCell<Option<String>>,
    }
    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            while seq
                .next_element_seed(Walk {
                    path: join(&self.path, &format!("[{i}]")),
                    found: self.found,
                })?
                .is_some()
            {
                i += 1;
            }
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = join(&self.path, &key);
                if !seen.insert(key) && self.found.borrow().is_none() {
                    *self.found.borrow_mut() = Some(path.clone());
                }
                map.next_value_seed(Walk {
                    path,
                    found: self.found,
                })?;
            }
            Ok(())
        }
    }
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let walk = Walk {
        path: String::new(),
        found: &found,
    };
    walk.deserialize(&mut de).ok()?;
    found.into_inner()
}

/// Parses config text to a JSON value. A syntax error is reported as such (with the
/// field being read when there is one) and never re-parsed as anything else; a
/// `NaN`/`Infinity` or an out-of-range number names its field.
pub fn json(text: &str) -> Result<Value, ConfigError> {
    // A byte-order mark (some editors write one) is not JSON, and not the user's text.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let e = match serde_json::from_str::<Value>(text) {
        Ok(v) => {
            if let Some(field) = duplicate_key(text) {
                return Err(bad(
                    field,
                    "given twice in one object (JSON would keep the last silently; allowed: \
                     each key once)",
                ));
            }
            return Ok(v);
        }
        Err(e) => e,
    };
    let (line, column) = (e.line(), e.column());
    let full = e.to_string();
    let msg = full
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&full)
        .to_string();
    let offset = byte_offset(text, line, column);
    let path = path_at(text, offset);
    let token = token_at(text, offset);
    let bare = token.trim_start_matches(['-', '+']).to_ascii_lowercase();
    let field = if path.is_empty() {
        "config".to_string()
    } else {
        path.clone()
    };
    if bare.starts_with("nan") || bare.starts_with("inf") {
        return Err(bad(
            field,
            format!(
                "{token} is not allowed: NaN/Infinity are not JSON numbers (line {line} column {column}; allowed: a finite number)"
            ),
        ));
    }
    if msg.starts_with("number out of range") {
        return Err(bad(
            field,
            format!(
                "number out of range at line {line} column {column} (allowed: a finite number, |x| < 1.8e308)"
            ),
        ));
    }
    let near = if path.is_empty() {
        String::new()
    } else {
        format!(" (near {path})")
    };
    Err(bad(
        "config",
        format!("JSON syntax error at line {line} column {column}: {msg}{near}"),
    ))
}

fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line.max(1) {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let mut off = (start + column.saturating_sub(1)).min(text.len());
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    off
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.')
}

/// The bare word (number, literal, identifier) around byte `offset`.
fn token_at(text: &str, offset: usize) -> String {
    let mut start = offset.min(text.len());
    while let Some(c) = text[..start].chars().next_back() {
        if !is_token_char(c) {
            break;
        }
        start -= c.len_utf8();
    }
    text[start..]
        .chars()
        .take_while(|&c| is_token_char(c))
        .collect()
}

/// The field path (`a.b[2]`) whose value is being read at byte `offset` of a JSON text
/// that is well-formed up to there.
fn path_at(text: &str, offset: usize) -> String {
    enum Frame {
        Object { key: Option<String>, value: bool },
        Array { index: usize },
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut chars = text[..offset.min(text.len())].chars();
    while let Some(c) = chars.next() {
        match c {
            '{' => stack.push(Frame::Object {
                key: None,
                value: false,
            }),
            '[' => stack.push(Frame::Array { index: 0 }),
            '}' | ']' => {
                stack.pop();
            }
            ':' => {
                if let Some(Frame::Object { value, .. }) = stack.last_mut() {
                    *value = true;
                }
            }
            ',' => match stack.last_mut() {
                Some(Frame::Object { key, value }) => {
                    *key = None;
                    *value = false;
                }
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            '"' => {
                let mut s = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => s.push(c),
                    }
                }
                if let Some(Frame::Object { key, value: false }) = stack.last_mut() {
                    if closed {
                        *key = Some(s);
                    }
                }
            }
            _ => {}
        }
    }
    let mut path = String::new();
    for f in &stack {
        match f {
            Frame::Object { key: Some(k), .. } => path = join(&path, k),
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => path = format!("{path}[{index}]"),
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let v = json("\u{feff}{\"paths\": 5}").unwrap();
        assert_eq!(v["paths"], 5);
        // Only at the start: elsewhere it is a syntax error as before.
        assert!(json("{\"paths\": \u{feff}5}").is_err());
    }

    #[test]
    fn a_key_given_twice_is_named_at_any_depth() {
        let e = json(r#"{"paths": 500, "seed": 1, "paths": 7}"#).unwrap_err();
        assert_eq!(e.field, "paths", "{e}");
        assert!(e.message.contains("given twice"), "{e}");
        let e = json(r#"{"model": {"a": [1], "b": 2}, "x": [{"k": 1, "k": 2}]}"#).unwrap_err();
        assert_eq!(e.field, "x[0].k", "{e}");
        // The same key in different objects is fine.
        assert!(json(r#"{"a": {"k": 1}, "b": {"k": 2}, "c": [{"k": 1}, {"k": 2}]}"#).is_ok());
    }

    #[test]
    fn syntax_errors_name_the_field_being_read() {
        let e = json("{\"a\": 1,\n \"etas\": [0.1, Infinity]}").unwrap_err();
        assert_eq!(e.field, "etas[1]", "{e}");
        assert!(
            e.message.contains("NaN/Infinity are not JSON numbers"),
            "{e}"
        );
        let e = json("{\"m\": {\"h\": NaN}}").unwrap_err();
        assert_eq!(e.field, "m.h", "{e}");
        let e = json("{\"m\": {\"h\": -Infinity}}").unwrap_err();
        assert_eq!(e.field, "m.h", "{e}");
        let e = json("{\"h\": 1e999}").unwrap_err();
        assert_eq!(e.field, "h", "{e}");
        let e = json("{\"a\": 1\n \"b\": 2}").unwrap_err();
        assert_eq!(e.field, "config");
        assert!(
            e.message
                .starts_with("JSON syntax error at line 2 column 2"),
            "{e}"
        );
    }
}
