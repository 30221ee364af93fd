//! A parser for the Python call expressions BFCL writes its ground truth in,
//! e.g. `calc_binomial_probability(n=20, k=5, p=0.6)`.
//!
//! The reference parses them with Python's `ast` + `literal_eval` and then
//! round-trips through JSON. A full Python parser crate would be a heavy build
//! for a grammar this small (a dotted name, keyword/positional arguments and
//! literals: numbers, strings, True/False/None, lists, tuples, dicts, unary
//! minus), so this hand-written recursive-descent parser covers exactly that
//! and rejects everything else. It keeps Python's int/float distinction
//! (`5` vs `5.0`), which the BFCL checkers depend on.

use serde_json::{Map, Number, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct PyCall {
    pub function: String,
    pub positional: Vec<Value>,
    pub keywords: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse Python call at byte {pos}: {message}")]
pub struct PyParseError {
    pub pos: usize,
    pub message: String,
}

struct P<'a> {
    s: &'a str,
    pos: usize,
}

pub fn parse_call(src: &str) -> Result<PyCall, PyParseError> {
    let mut p = P { s: src, pos: 0 };
    p.ws();
    let call = p.call()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.err("trailing input"));
    }
    Ok(call)
}

/// Parse one Python literal (the argument grammar on its own).
pub fn parse_literal(src: &str) -> Result<Value, PyParseError> {
    let mut p = P { s: src, pos: 0 };
    p.ws();
    let v = p.value()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.err("trailing input"));
    }
    Ok(v)
}

impl<'a> P<'a> {
    fn err(&self, m: &str) -> PyParseError {
        PyParseError { pos: self.pos, message: m.to_string() }
    }
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }
    fn ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }
    fn eat(&mut self, c: char) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: char) -> Result<(), PyParseError> {
        if self.eat(c) { Ok(()) } else { Err(self.err(&format!("expected `{c}`"))) }
    }
    fn ident(&mut self) -> Option<&'a str> {
        self.ws();
        let r = self.rest();
        let mut end = 0;
        for (i, c) in r.char_indices() {
            let ok = if i == 0 { c.is_alphabetic() || c == '_' } else { c.is_alphanumeric() || c == '_' };
            if !ok {
                break;
            }
            end = i + c.len_utf8();
        }
        if end == 0 {
            return None;
        }
        self.pos += end;
        Some(&r[..end])
    }

    fn call(&mut self) -> Result<PyCall, PyParseError> {
        let mut name = self.ident().ok_or_else(|| self.err("expected a function name"))?.to_string();
        while self.eat('.') {
            let part = self.ident().ok_or_else(|| self.err("expected a name after `.`"))?;
            name.push('.');
            name.push_str(part);
        }
        self.expect('(')?;
        let mut positional = Vec::new();
        let mut keywords = Map::new();
        loop {
            if self.eat(')') {
                break;
            }
            // A keyword argument is `name=` not followed by another `=`.
            let save = self.pos;
            let kw = self.ident().and_then(|id| {
                self.ws();
                let r = self.rest();
                (r.starts_with('=') && !r.starts_with("==")).then_some(id)
            });
            match kw {
                Some(k) => {
                    self.pos += 1;
                    let v = self.value()?;
                    if keywords.insert(k.to_string(), v).is_some() {
                        return Err(self.err(&format!("keyword argument repeated: {k}")));
                    }
                }
                None => {
                    self.pos = save;
                    if !keywords.is_empty() {
                        return Err(self.err("positional argument follows keyword argument"));
                    }
                    positional.push(self.value()?);
                }
            }
            if !self.eat(',') {
                self.expect(')')?;
                break;
            }
        }
        Ok(PyCall { function: name, positional, keywords })
    }

    fn value(&mut self) -> Result<Value, PyParseError> {
        self.ws();
        match self.peek() {
            Some('[') => {
                self.pos += 1;
                self.seq(']')
            }
            Some('(') => {
                self.pos += 1;
                self.seq(')')
            }
            Some('{') => {
                self.pos += 1;
                self.dict()
            }
            Some('-') | Some('+') => {
                let neg = self.peek() == Some('-');
                self.pos += 1;
                match self.value()? {
                    Value::Number(n) if neg => negate(&n).ok_or_else(|| self.err("number out of range")),
                    Value::Number(n) => Ok(Value::Number(n)),
                    _ => Err(self.err("unary sign on a non-number")),
                }
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(c) if c == '"' || c == '\'' => self.string(false),
            Some(c) if c.is_alphabetic() => {
                let save = self.pos;
                let id = self.ident().unwrap_or("");
                match id {
                    "True" => Ok(Value::Bool(true)),
                    "False" => Ok(Value::Bool(false)),
                    "None" => Ok(Value::Null),
                    "r" | "R" if matches!(self.peek(), Some('"') | Some('\'')) => self.string(true),
                    "u" | "U" if matches!(self.peek(), Some('"') | Some('\'')) => self.string(false),
                    _ => {
                        self.pos = save;
                        Err(self.err(&format!("not a literal: `{id}`")))
                    }
                }
            }
            _ => Err(self.err("expected a literal")),
        }
    }

    /// A list or tuple; both become JSON arrays, as after the reference's JSON round trip.
    fn seq(&mut self, close: char) -> Result<Value, PyParseError> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(Value::Array(items));
            }
            items.push(self.value()?);
            if !self.eat(',') {
                self.expect(close)?;
                return Ok(Value::Array(items));
            }
        }
    }

    fn dict(&mut self) -> Result<Value, PyParseError> {
        let mut m = Map::new();
        loop {
            if self.eat('}') {
                return Ok(Value::Object(m));
            }
            // JSON object keys are strings: json.dumps turns 1 into "1".
            let key = match self.value()? {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => {
                    if b {
                        "true".into()
                    } else {
                        "false".into()
                    }
                }
                Value::Null => "null".into(),
                _ => return Err(self.err("unhashable dict key")),
            };
            self.expect(':')?;
            let v = self.value()?;
            m.insert(key, v);
            if !self.eat(',') {
                self.expect('}')?;
                return Ok(Value::Object(m));
            }
        }
    }

    fn number(&mut self) -> Result<Value, PyParseError> {
        let r = self.rest();
        let end = r
            .char_indices()
            .find(|&(i, c)| {
                !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || ((c == '-' || c == '+') && i > 0 && matches!(r.as_bytes()[i - 1], b'e' | b'E')))
            })
            .map(|(i, _)| i)
            .unwrap_or(r.len());
        let tok = r[..end].replace('_', "");
        self.pos += end;
        let is_float = tok.contains(['.', 'e', 'E']) && !tok.starts_with("0x");
        if !is_float {
            let parsed =
                if let Some(h) = tok.strip_prefix("0x").or_else(|| tok.strip_prefix("0X")) { i64::from_str_radix(h, 16).ok() } else { tok.parse::<i64>().ok() };
            return parsed.map(|i| Value::Number(i.into())).ok_or_else(|| self.err(&format!("bad integer `{tok}`")));
        }
        tok.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number).ok_or_else(|| self.err(&format!("bad float `{tok}`")))
    }

    fn string(&mut self, raw: bool) -> Result<Value, PyParseError> {
        let r = self.rest();
        let q = r.chars().next().ok_or_else(|| self.err("expected a quote"))?;
        let triple: String = std::iter::repeat_n(q, 3).collect();
        let (delim, body_start) = if r.starts_with(&triple) { (triple.as_str(), 3) } else { (&r[..1], 1) };
        let body = &r[body_start..];
        let mut out = String::new();
        let mut it = body.char_indices().peekable();
        while let Some((i, c)) = it.next() {
            if body[i..].starts_with(delim) {
                self.pos += body_start + i + delim.len();
                return Ok(Value::String(out));
            }
            if c == '\\' {
                let Some((_, e)) = it.next() else { break };
                if raw {
                    out.push('\\');
                    out.push(e);
                    continue;
                }
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '0' => out.push('\0'),
                    '\\' | '\'' | '"' => out.push(e),
                    '\n' => {}
                    'x' | 'u' => {
                        let n = if e == 'x' { 2 } else { 4 };
                        let hex: String = (0..n).filter_map(|_| it.next().map(|(_, h)| h)).collect();
                        let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                        out.push(ch.ok_or_else(|| self.err("bad escape"))?);
                    }
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
                continue;
            }
            if c == '\n' && delim.len() == 1 {
                break;
            }
            out.push(c);
        }
        Err(self.err("unterminated string"))
    }
}

fn negate(n: &Number) -> Option<Value> {
    if let Some(i) = n.as_i64() {
        return Some(Value::Number(i.checked_neg()?.into()));
    }
    Number::from_f64(-n.as_f64()?).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_keyword_call_keeping_int_float() {
        let c = parse_call("calc(n=20, p=0.6, v=[1, -2.5e-3], t=(1,), d={'a': None, 'b': True})").unwrap();
        assert_eq!(c.function, "calc");
        assert_eq!(serde_json::Value::Object(c.keywords), json!({"n": 20, "p": 0.6, "v": [1, -0.0025], "t": [1], "d": {"a": null, "b": true}}));
        assert!(parse_literal("5").unwrap().is_i64());
        assert!(parse_literal("5.0").unwrap().is_f64());
    }

    #[test]
    fn strings_and_dotted_names() {
        let c = parse_call(r#"math.gcd(s="it's \"x\"", r='a\nb')"#).unwrap();
        assert_eq!(c.function, "math.gcd");
        assert_eq!(c.keywords["s"], json!("it's \"x\""));
        assert_eq!(c.keywords["r"], json!("a\nb"));
    }

    #[test]
    fn rejects_non_literals() {
        assert!(parse_call("f(x=os.system('rm'))").is_err());
        assert!(parse_call("f(x=1) + 2").is_err());
        assert!(parse_call("f(x=1, y=)").is_err());
    }
}
