//! Python-compatible serialisation for chat templates: `json.dumps` (transformers' `tojson`)
//! and `str()` of dicts and lists, plus an order-preserving JSON value, because tool schemas
//! must render with their keys in the order they were written, as Python dicts keep them.

use std::fmt::Write;

use minijinja::value::{Value, ValueKind};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON value whose objects keep their key order.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Ordered {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Ordered>),
    Map(Vec<(String, Ordered)>),
}

impl Ordered {
    pub fn parse(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }
    pub fn is_empty_map(&self) -> bool {
        matches!(self, Ordered::Map(m) if m.is_empty()) || matches!(self, Ordered::Null)
    }
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &Ordered)> {
        let slice: &[(String, Ordered)] = match self {
            Ordered::Map(m) => m,
            _ => &[],
        };
        slice.iter().map(|(k, v)| (k.as_str(), v))
    }
    pub fn get(&self, key: &str) -> Option<&Ordered> {
        self.pairs().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Ordered::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Ordered]> {
        match self {
            Ordered::List(l) => Some(l),
            _ => None,
        }
    }
    pub fn to_value(&self) -> Value {
        match self {
            Ordered::Null => Value::from(()),
            Ordered::Bool(b) => Value::from(*b),
            Ordered::Int(i) => Value::from(*i),
            Ordered::Float(f) => Value::from(*f),
            Ordered::Str(s) => Value::from(s.clone()),
            Ordered::List(l) => Value::from(l.iter().map(Ordered::to_value).collect::<Vec<_>>()),
            Ordered::Map(m) => m.iter().map(|(k, v)| (Value::from(k.clone()), v.to_value())).collect(),
        }
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Null)
            }
            fn visit_none<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Ordered, E> {
                Ok(Ordered::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> Result<Ordered, E> {
                Ok(Ordered::Int(i))
            }
            fn visit_u64<E>(self, u: u64) -> Result<Ordered, E> {
                Ok(i64::try_from(u).map(Ordered::Int).unwrap_or(Ordered::Float(u as f64)))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Ordered, E> {
                Ok(Ordered::Float(f))
            }
            fn visit_str<E>(self, s: &str) -> Result<Ordered, E> {
                Ok(Ordered::Str(s.into()))
            }
            fn visit_string<E>(self, s: String) -> Result<Ordered, E> {
                Ok(Ordered::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Ordered, A::Error> {
                let mut v = vec![];
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Ordered::List(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Ordered, A::Error> {
                let mut v = vec![];
                while let Some((k, x)) = a.next_entry::<String, Ordered>()? {
                    v.push((k, x));
                }
                Ok(Ordered::Map(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ordered::Null => s.serialize_unit(),
            Ordered::Bool(b) => s.serialize_bool(*b),
            Ordered::Int(i) => s.serialize_i64(*i),
            Ordered::Float(f) => s.serialize_f64(*f),
            Ordered::Str(x) => s.serialize_str(x),
            Ordered::List(l) => {
                let mut q = s.serialize_seq(Some(l.len()))?;
                for x in l {
                    q.serialize_element(x)?;
                }
                q.end()
            }
            Ordered::Map(m) => {
                let mut q = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    q.serialize_entry(k, v)?;
                }
                q.end()
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum PyStyle {
    /// `json.dumps(x, ensure_ascii=False, indent=indent, sort_keys=sort_keys)`.
    Json { indent: Option<usize>, sort_keys: bool },
    /// `str(x)` / `repr(x)`.
    Repr,
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 or from 1e16.
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let sci = format!("{f:e}"); // e.g. "1.5e-5", "1e20"
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let s = format!("{f}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn repr_str(s: &str, out: &mut String) {
    let q = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(q);
}

/// Serialises a template value the way Python would.
pub fn dump(v: &Value, style: PyStyle, depth: usize) -> Result<String, String> {
    let mut out = String::new();
    dump_into(v, style, depth, &mut out)?;
    Ok(out)
}

fn dump_into(v: &Value, style: PyStyle, depth: usize, out: &mut String) -> Result<(), String> {
    let repr = matches!(style, PyStyle::Repr);
    let indent = match style {
        PyStyle::Json { indent, .. } => indent,
        PyStyle::Repr => None,
    };
    let newline = |out: &mut String, d: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * d));
        }
    };
    // With an indent Python's item separator is "," (the newline follows), else ", ".
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str(if repr { "None" } else { "null" }),
        ValueKind::Bool => {
            let b = v.is_true();
            out.push_str(match (repr, b) {
                (true, true) => "True",
                (true, false) => "False",
                (false, true) => "true",
                (false, false) => "false",
            })
        }
        ValueKind::Number => {
            if v.is_integer() {
                let _ = write!(out, "{v}");
            } else {
                let f = f64::try_from(v.clone()).map_err(|e| e.to_string())?;
                out.push_str(&py_float(f));
            }
        }
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default();
            if repr { repr_str(s, out) } else { json_str(s, out) }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter().map_err(|e| e.to_string())?.collect();
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                dump_into(x, style, depth + 1, out)?;
            }
            if !items.is_empty() {
                newline(out, depth);
            }
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter().map_err(|e| e.to_string())?.collect();
            if let PyStyle::Json { sort_keys: true, .. } = style {
                keys.sort_by_key(|a| a.to_string());
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                let key = k.as_str().map(str::to_string).unwrap_or_else(|| k.to_string());
                if repr {
                    repr_str(&key, out)
                } else {
                    json_str(&key, out)
                }
                out.push_str(": ");
                let x = v.get_item(k).map_err(|e| e.to_string())?;
                dump_into(&x, style, depth + 1, out)?;
            }
            if !keys.is_empty() {
                newline(out, depth);
            }
            out.push('}');
        }
        other => return Err(format!("cannot serialise a {other:?} to JSON")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.1), "0.1");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(123456.5), "123456.5");
    }

    #[test]
    fn json_and_repr_keep_key_order() {
        let o = Ordered::parse(r#"{"z": 1, "a": [true, null, "it's"], "m": {"x": 2.5}}"#).unwrap();
        let v = o.to_value();
        assert_eq!(dump(&v, PyStyle::Json { indent: None, sort_keys: false }, 0).unwrap(), r#"{"z": 1, "a": [true, null, "it's"], "m": {"x": 2.5}}"#);
        assert_eq!(dump(&v, PyStyle::Repr, 0).unwrap(), r#"{'z': 1, 'a': [True, None, "it's"], 'm': {'x': 2.5}}"#);
        assert_eq!(
            dump(&v, PyStyle::Json { indent: Some(2), sort_keys: true }, 0).unwrap(),
            "{\n  \"a\": [\n    true,\n    null,\n    \"it's\"\n  ],\n  \"m\": {\n    \"x\": 2.5\n  },\n  \"z\": 1\n}"
        );
    }
}
