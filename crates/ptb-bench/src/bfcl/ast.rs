//! BFCL's AST checker (bfcl-eval 2026.3.23, `ast_checker.py`), Python
//! language only: function name, required parameters, no unexpected
//! parameters, type checks (int accepted for float, nested list item types),
//! value membership in the possible answers with BFCL's string normalisation,
//! optional parameters marked by `""`, and order-free matching for parallel
//! calls.

use super::{Category, ToolCall, Verdict, py_eq};
use regex::Regex;
use serde_json::{Map, Value};
use std::sync::OnceLock;

#[derive(Debug, Clone, Default)]
pub struct AstOptions {
    /// BFCL's `underscore_to_dot` model flag: for endpoints that forbid `.` in
    /// tool names, expected names have `.` replaced by `_` before matching.
    pub underscore_to_dot: bool,
}

/// Python's type of a JSON-decoded value, as BFCL's `type(value)` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PyType {
    Str,
    Int,
    Float,
    Bool,
    List,
    Dict,
    None,
}

fn py_type(v: &Value) -> PyType {
    match v {
        Value::String(_) => PyType::Str,
        Value::Number(n) if n.is_f64() => PyType::Float,
        Value::Number(_) => PyType::Int,
        Value::Bool(_) => PyType::Bool,
        Value::Array(_) => PyType::List,
        Value::Object(_) => PyType::Dict,
        Value::Null => PyType::None,
    }
}

/// `PYTHON_TYPE_MAPPING` (BFCL maps `any` to `str`).
fn mapped(t: &str) -> Option<PyType> {
    Some(match t {
        "string" | "any" => PyType::Str,
        "integer" => PyType::Int,
        "float" => PyType::Float,
        "boolean" => PyType::Bool,
        "array" | "tuple" => PyType::List,
        "dict" => PyType::Dict,
        _ => return None,
    })
}

/// `get_possible_answer_type`: the type of the first non-`""` possible answer.
fn possible_type(possible: &[Value]) -> Option<PyType> {
    possible.iter().find(|a| a.as_str() != Some("")).map(py_type)
}

/// `type_checker`. Returns Ok(is_variable) or Err(reason).
fn type_check(param: &str, value: &Value, possible: &[Value], expected: PyType, nested: Option<PyType>) -> Result<bool, String> {
    let is_variable = possible_type(possible).is_some_and(|t| t != expected);
    if py_type(value) == expected {
        let Some(nested) = nested else {
            return Ok(is_variable);
        };
        for item in possible {
            let mut flag = true;
            if let (Value::Array(pa), Value::Array(vals)) = (item, value) {
                for v in vals {
                    if type_check(param, v, pa, nested, None).is_err() {
                        flag = false;
                        break;
                    }
                }
            }
            if flag {
                return Ok(is_variable);
            }
        }
        // BFCL marks the result invalid here and never clears it again.
        return Err(format!("nested type check failed for parameter `{param}`"));
    }
    if possible_type(possible).is_some_and(|t| py_type(value) == t) {
        return Ok(true);
    }
    Err(format!("incorrect type for parameter `{param}`: expected {expected:?}, got {:?}", py_type(value)))
}

/// `standardize_string`: drop ` ,./-_*^`, lower-case, `'` → `"`.
pub fn standardize(s: &str) -> String {
    static R: OnceLock<Regex> = OnceLock::new();
    let r = R.get_or_init(|| Regex::new(r"[ ,./\-_*^]").expect("static regex"));
    r.replace_all(s, "").to_lowercase().replace('\'', "\"")
}

fn std_value(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(standardize(s)),
        other => other.clone(),
    }
}

fn contains(list: &[Value], v: &Value) -> bool {
    list.iter().any(|x| py_eq(x, v))
}

fn string_check(param: &str, value: &str, possible: &[Value]) -> Result<(), String> {
    let want: Vec<Value> = possible.iter().filter(|p| p.is_string()).map(std_value).collect();
    if contains(&want, &Value::String(standardize(value))) { Ok(()) } else { Err(format!("invalid value for parameter `{param}`: {value:?}")) }
}

fn list_check(param: &str, value: &[Value], possible: &[Value]) -> Result<(), String> {
    let got = Value::Array(value.iter().map(std_value).collect());
    let want: Vec<Value> = possible
        .iter()
        .map(|p| match p {
            Value::Array(a) => Value::Array(a.iter().map(std_value).collect()),
            // BFCL iterates the characters of a non-list answer here; such an
            // answer can never equal a list, so it never matches.
            _ => Value::Null,
        })
        .collect();
    if contains(&want, &got) { Ok(()) } else { Err(format!("invalid value for parameter `{param}`")) }
}

fn dict_check(param: &str, value: &Map<String, Value>, possible: &[Value]) -> Result<(), String> {
    let mut last = format!("invalid value for parameter `{param}`");
    'answers: for answer in possible {
        let Value::Object(answer) = answer else {
            continue;
        };
        for (k, v) in value {
            let Some(allowed) = answer.get(k).and_then(Value::as_array) else {
                last = format!("unexpected dict key `{k}` in `{param}`");
                continue 'answers;
            };
            let allowed: Vec<Value> = allowed.iter().map(std_value).collect();
            if !contains(&allowed, &std_value(v)) {
                last = format!("invalid value for dict key `{k}` in `{param}`");
                continue 'answers;
            }
        }
        for (k, allowed) in answer {
            let optional = allowed.as_array().is_some_and(|a| a.iter().any(|x| x.as_str() == Some("")));
            if !value.contains_key(k) && !optional {
                last = format!("missing dict key `{k}` in `{param}`");
                continue 'answers;
            }
        }
        return Ok(());
    }
    Err(last)
}

fn list_dict_check(param: &str, value: &[Value], possible: &[Value]) -> Result<(), String> {
    let mut last = format!("invalid value for parameter `{param}`");
    'answers: for answer in possible {
        let Value::Array(dicts) = answer else {
            continue;
        };
        if dicts.len() != value.len() {
            last = "wrong number of dictionaries in the list".into();
            continue;
        }
        for (v, a) in value.iter().zip(dicts) {
            let Value::Object(v) = v else {
                last = format!("`{param}` holds a non-dict");
                continue 'answers;
            };
            if let Err(e) = dict_check(param, v, std::slice::from_ref(a)) {
                last = e;
                continue 'answers;
            }
        }
        return Ok(());
    }
    Err(last)
}

fn convert_name(name: &str, opts: &AstOptions) -> String {
    if opts.underscore_to_dot { name.replace('.', "_") } else { name.to_string() }
}

/// `simple_function_checker` for one call against one `{name: {param: [values]}}`.
fn check_call(doc: &Value, call: &ToolCall, possible: &Value, opts: &AstOptions) -> Result<(), String> {
    let (_, answer) = possible.as_object().and_then(|m| m.iter().next()).ok_or("malformed possible answer")?;
    let answer = answer.as_object().ok_or("malformed possible answer")?;
    let name = doc.get("name").and_then(Value::as_str).ok_or("function doc without a name")?;
    let params = doc.pointer("/parameters/properties").and_then(Value::as_object).ok_or("function doc without properties")?;
    let empty = Vec::new();
    let required = doc.pointer("/parameters/required").and_then(Value::as_array).unwrap_or(&empty);
    let name = convert_name(name, opts);
    if call.function != name {
        return Err(format!("function `{name}` not found in model output (got `{}`)", call.function));
    }
    for r in required.iter().filter_map(Value::as_str) {
        if !call.arguments.contains_key(r) {
            return Err(format!("missing required parameter `{r}`"));
        }
    }
    for (param, value) in &call.arguments {
        let (Some(detail), Some(allowed)) = (params.get(param), answer.get(param).and_then(Value::as_array)) else {
            return Err(format!("unexpected parameter `{param}`"));
        };
        let tdesc = detail.get("type").and_then(Value::as_str).unwrap_or("any");
        let expected = mapped(tdesc).ok_or_else(|| format!("unknown BFCL type `{tdesc}`"))?;
        let nested = if tdesc == "array" || tdesc == "tuple" {
            let it = detail.pointer("/items/type").and_then(Value::as_str).unwrap_or("any");
            Some(mapped(it).ok_or_else(|| format!("unknown BFCL type `{it}`"))?)
        } else {
            None
        };
        // An int is accepted where a float is expected.
        let value = match (tdesc, value) {
            ("float", Value::Number(n)) if !n.is_f64() => n.as_f64().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or_else(|| value.clone()),
            _ => value.clone(),
        };
        let is_variable = type_check(param, &value, allowed, expected, nested)?;
        if !is_variable {
            match (&value, expected, nested) {
                (Value::Object(m), PyType::Dict, _) => {
                    dict_check(param, m, allowed)?;
                    continue;
                }
                (Value::Array(a), PyType::List, Some(PyType::Dict)) => {
                    list_dict_check(param, a, allowed)?;
                    continue;
                }
                (Value::String(s), PyType::Str, _) => {
                    string_check(param, s, allowed)?;
                    continue;
                }
                (Value::Array(a), PyType::List, _) => {
                    list_check(param, a, allowed)?;
                    continue;
                }
                _ => {}
            }
        }
        if !contains(allowed, &value) {
            return Err(format!("invalid value for parameter `{param}`: {value}"));
        }
    }
    for (param, allowed) in answer {
        let optional = allowed.as_array().is_some_and(|a| a.iter().any(|x| x.as_str() == Some("")));
        if !call.arguments.contains_key(param) && !optional {
            return Err(format!("parameter `{param}` not provided and not optional"));
        }
    }
    Ok(())
}

fn find_doc<'a>(docs: &'a [Value], name: &str) -> Option<&'a Value> {
    docs.iter().find(|d| d.get("name").and_then(Value::as_str) == Some(name))
}

fn expected_name(possible: &Value) -> Option<&str> {
    possible.as_object()?.keys().next().map(String::as_str)
}

/// BFCL's `ast_checker` for a Python category.
pub fn ast_check(category: Category, docs: &[Value], calls: &[ToolCall], possible: &[Value], opts: &AstOptions) -> Verdict {
    let result = match category {
        Category::Parallel | Category::ParallelMultiple => parallel_no_order(docs, calls, possible, opts),
        _ => {
            if calls.len() != possible.len() || calls.len() != 1 {
                Err("wrong number of functions".to_string())
            } else {
                let doc = match category {
                    Category::Multiple => expected_name(&possible[0]).and_then(|n| find_doc(docs, n)),
                    _ => docs.first(),
                };
                match doc {
                    Some(d) => check_call(d, &calls[0], &possible[0], opts),
                    None => Err("no function doc for the expected function".into()),
                }
            }
        }
    };
    match result {
        Ok(()) => Verdict { correct: true, reason: String::new() },
        Err(e) => Verdict::no(e),
    }
}

/// `parallel_function_checker_no_order`: every possible answer must be matched
/// by a distinct model call, in any order (greedy, first match wins, as BFCL).
fn parallel_no_order(docs: &[Value], calls: &[ToolCall], possible: &[Value], opts: &AstOptions) -> Result<(), String> {
    if calls.len() != possible.len() {
        return Err("wrong number of functions".into());
    }
    let mut used = vec![false; calls.len()];
    for (i, answer) in possible.iter().enumerate() {
        let doc = expected_name(answer).and_then(|n| find_doc(docs, n)).ok_or("no function doc for an expected function")?;
        let hit = (0..calls.len()).find(|&j| !used[j] && check_call(doc, &calls[j], answer, opts).is_ok());
        match hit {
            Some(j) => used[j] = true,
            None => return Err(format!("no model call matches possible answer {i}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(f: &str, a: Value) -> ToolCall {
        ToolCall { function: f.into(), arguments: a.as_object().cloned().unwrap_or_default() }
    }

    fn doc() -> Value {
        json!({"name": "area", "parameters": {"type": "dict", "properties": {
            "base": {"type": "integer"}, "unit": {"type": "string"}, "scale": {"type": "float"}},
            "required": ["base"]}})
    }

    #[test]
    fn optional_and_string_normalisation() {
        let possible = vec![json!({"area": {"base": [10], "unit": ["units", ""], "scale": [1.0, ""]}})];
        let o = AstOptions::default();
        assert!(ast_check(Category::SimplePython, &[doc()], &[call("area", json!({"base": 10}))], &possible, &o).correct);
        assert!(ast_check(Category::SimplePython, &[doc()], &[call("area", json!({"base": 10, "unit": "Units", "scale": 1}))], &possible, &o).correct);
        let wrong_type = ast_check(Category::SimplePython, &[doc()], &[call("area", json!({"base": "10"}))], &possible, &o);
        assert!(!wrong_type.correct && wrong_type.reason.contains("type"), "{wrong_type:?}");
        let missing = ast_check(Category::SimplePython, &[doc()], &[call("area", json!({"unit": "units"}))], &possible, &o);
        assert!(!missing.correct && missing.reason.contains("missing required"));
        assert!(!ast_check(Category::SimplePython, &[doc()], &[call("area", json!({"base": 10, "color": "red"}))], &possible, &o).correct);
    }

    #[test]
    fn parallel_ignores_order() {
        let possible = vec![json!({"area": {"base": [1]}}), json!({"area": {"base": [2]}})];
        let calls = [call("area", json!({"base": 2})), call("area", json!({"base": 1}))];
        assert!(ast_check(Category::Parallel, &[doc()], &calls, &possible, &AstOptions::default()).correct);
        assert!(!ast_check(Category::Parallel, &[doc()], &calls[..1], &possible, &AstOptions::default()).correct);
    }
}
