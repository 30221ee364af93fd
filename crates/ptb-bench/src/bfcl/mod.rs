//! BFCL: the reference's `exec_simple` task (prompt, tools, exact-match
//! scorer) and BFCL's own AST checker for the categories that use possible
//! answers (simple_python, multiple, parallel, parallel_multiple).

use super::chat::{ChatRequest, Message, ModelOutput, ToolCall, ToolSpec};
use super::{BenchError, data, pycall};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

pub mod ast;
pub use ast::{AstOptions, ast_check};

pub const BFCL_MAX_TOKENS: u32 = 16000;

/// The BFCL categories ptb can score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// The reference's only category, scored by exact match.
    ExecSimple,
    SimplePython,
    Multiple,
    Parallel,
    ParallelMultiple,
}

impl Category {
    pub const ALL: [Category; 5] = [Category::ExecSimple, Category::SimplePython, Category::Multiple, Category::Parallel, Category::ParallelMultiple];

    pub fn name(self) -> &'static str {
        match self {
            Category::ExecSimple => "exec_simple",
            Category::SimplePython => "simple_python",
            Category::Multiple => "multiple",
            Category::Parallel => "parallel",
            Category::ParallelMultiple => "parallel_multiple",
        }
    }
}

/// One BFCL question with its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct BfclItem {
    pub id: String,
    pub category: Category,
    pub messages: Vec<Message>,
    /// The raw BFCL function docs (BFCL types: `dict`, `float`, `tuple`, …).
    pub functions: Vec<Value>,
    /// Each function's first declared parameter, in the file's order (which
    /// `functions` does not keep): a call whose arguments are not an object
    /// passes them to it, as inspect does (`toolparse::decode_arguments`).
    pub first_params: BTreeMap<String, String>,
    pub truth: Truth,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Truth {
    /// exec_simple: one call, parsed from its Python source.
    Call(ToolCall),
    /// AST categories: per call, `{function: {param: [allowed values]}}`.
    Possible(Vec<Value>),
}

#[derive(Deserialize)]
struct QuestionRec {
    id: String,
    question: Vec<Vec<Message>>,
    function: Vec<Value>,
}

/// The same question line read for its functions' parameter order only.
#[derive(Deserialize)]
struct OrderRec {
    function: Vec<FunctionOrder>,
}

#[derive(Deserialize)]
struct FunctionOrder {
    name: String,
    #[serde(default)]
    parameters: Option<ParamsOrder>,
}

#[derive(Deserialize)]
struct ParamsOrder {
    #[serde(default)]
    properties: FirstKey,
}

/// The first key of a JSON object in document order. serde_json's `Map`
/// sorts its keys (the workspace does not enable `preserve_order`, which
/// would change every map ptb serialises), but its deserializer visits them
/// in the order written.
#[derive(Default)]
struct FirstKey(Option<String>);

impl<'de> Deserialize<'de> for FirstKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FirstKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of parameters")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<FirstKey, A::Error> {
                let first = m.next_key::<String>()?;
                if first.is_some() {
                    m.next_value::<serde::de::IgnoredAny>()?;
                    while m.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                }
                Ok(FirstKey(first))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct AnswerRec {
    id: String,
    ground_truth: Vec<Value>,
}

/// inspect_evals' `parse_target`: exactly one call with keyword arguments only.
pub fn parse_ground_truth(src: &str) -> Result<ToolCall, String> {
    let call = pycall::parse_call(src).map_err(|e| e.to_string())?;
    if !call.positional.is_empty() {
        return Err("ground truth has positional arguments".into());
    }
    Ok(ToolCall { function: call.function, arguments: call.keywords })
}

pub fn load(dir: &Path, category: Category) -> Result<Vec<BfclItem>, BenchError> {
    let qrel = format!("{}.question.json", category.name());
    let arel = format!("{}.possible_answer.json", category.name());
    let qpath = data::open_pinned(dir, crate::BenchId::Bfcl, &qrel)?;
    let apath = data::open_pinned(dir, crate::BenchId::Bfcl, &arel)?;
    let questions: Vec<QuestionRec> = data::read_jsonl(&qpath)?;
    let orders: Vec<OrderRec> = data::read_jsonl(&qpath)?;
    let answers: Vec<AnswerRec> = data::read_jsonl(&apath)?;
    let by_id: std::collections::HashMap<String, Vec<Value>> = answers.into_iter().map(|a| (a.id, a.ground_truth)).collect();
    let mut items = Vec::with_capacity(questions.len());
    for (line, (q, order)) in questions.into_iter().zip(orders).enumerate() {
        let perr = |message: String| BenchError::Parse { path: apath.clone(), line: line + 1, message };
        let gt = by_id.get(&q.id).ok_or_else(|| perr(format!("no answer for {}", q.id)))?;
        let truth = match category {
            Category::ExecSimple => {
                let [Value::String(src)] = gt.as_slice() else {
                    return Err(perr(format!("{}: expected one ground-truth call", q.id)));
                };
                Truth::Call(parse_ground_truth(src.as_str()).map_err(|m| perr(format!("{}: {m}", q.id)))?)
            }
            _ => Truth::Possible(gt.clone()),
        };
        let messages = q.question.into_iter().next().unwrap_or_default();
        let first_params = order.function.into_iter().filter_map(|f| Some((f.name, f.parameters?.properties.0?))).collect();
        items.push(BfclItem { id: q.id, category, messages, functions: q.function, first_params, truth });
    }
    Ok(items)
}

/// BFCL type names → JSON schema, as the reference's `get_type` does before
/// handing tools to the model (`dict`→object, `float`→number, `tuple`→array).
pub fn json_schema(bfcl: &Value) -> Value {
    match bfcl {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let v = match (k.as_str(), v) {
                    ("type", Value::String(t)) => Value::String(
                        match t.as_str() {
                            "dict" => "object",
                            "float" => "number",
                            "tuple" => "array",
                            other => other,
                        }
                        .to_string(),
                    ),
                    ("properties", Value::Object(props)) => Value::Object(props.iter().map(|(pk, pv)| (pk.clone(), json_schema(pv))).collect()),
                    ("items", other) => json_schema(other),
                    (_, other) => other.clone(),
                };
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

pub fn tools(item: &BfclItem) -> Vec<ToolSpec> {
    item.functions
        .iter()
        .map(|f| ToolSpec {
            name: f.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
            description: f.get("description").and_then(Value::as_str).unwrap_or_default().to_string(),
            parameters: f.get("parameters").map(json_schema).unwrap_or(Value::Null),
        })
        .collect()
}

/// The question's messages with the functions attached as tools.
pub fn request(item: &BfclItem) -> ChatRequest {
    ChatRequest { messages: item.messages.clone(), tools: tools(item), max_tokens: BFCL_MAX_TOKENS }
}

/// Python's `==` on JSON-decoded values: `1 == 1.0 == True`, containers
/// compared element-wise. The reference compares argument dicts with it.
pub fn py_eq(a: &Value, b: &Value) -> bool {
    fn num(v: &Value) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w))),
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => num(a) == num(b),
        },
        (Value::Bool(_) | Value::Number(_), Value::Bool(_) | Value::Number(_)) => num(a) == num(b),
        _ => a == b,
    }
}

/// Why a model output was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub correct: bool,
    pub reason: String,
}

impl Verdict {
    fn ok() -> Self {
        Verdict { correct: true, reason: String::new() }
    }
    pub(crate) fn no(reason: impl Into<String>) -> Self {
        Verdict { correct: false, reason: reason.into() }
    }
}

/// The reference's exec_simple scorer: exactly one tool call whose function
/// and arguments equal the target's (Python `==`).
pub fn score_exec_simple(output: &ModelOutput, target: &ToolCall) -> Verdict {
    if output.tool_calls.len() != 1 {
        return Verdict::no(format!("expected exactly 1 tool call, got {}", output.tool_calls.len()));
    }
    let call = &output.tool_calls[0];
    if call.function != target.function {
        return Verdict::no(format!("function `{}` != `{}`", call.function, target.function));
    }
    if !py_eq(&Value::Object(call.arguments.clone()), &Value::Object(target.arguments.clone())) {
        return Verdict::no("arguments differ".to_string());
    }
    Verdict::ok()
}

/// Score one item by its category's rule.
pub fn score(item: &BfclItem, output: &ModelOutput, opts: &AstOptions) -> Verdict {
    match &item.truth {
        Truth::Call(t) => score_exec_simple(output, t),
        Truth::Possible(p) => ast_check(item.category, &item.functions, &output.tool_calls, p, opts),
    }
}

/// The ground truth as the model output a perfect model would produce (for
/// `bench check`): exec_simple's call, or for AST categories each call with
/// the first allowed value of every parameter other than `""` (BFCL's marker
/// for "may be omitted"), omitting parameters that allow nothing else.
pub fn reference_output(item: &BfclItem) -> ModelOutput {
    let tool_calls = match &item.truth {
        Truth::Call(c) => vec![c.clone()],
        Truth::Possible(p) => p
            .iter()
            .filter_map(|call| {
                let (name, params) = call.as_object()?.iter().next()?;
                let props = item
                    .functions
                    .iter()
                    .find(|d| d.get("name").and_then(Value::as_str) == Some(name.as_str()))
                    .and_then(|d| d.pointer("/parameters/properties"))
                    .and_then(Value::as_object);
                let mut arguments = Map::new();
                for (k, allowed) in params.as_object()? {
                    // A few possible answers list optional parameters the
                    // function does not have (parallel_multiple_12, _26):
                    // a correct model leaves those out.
                    if !props.is_some_and(|p| p.contains_key(k)) {
                        continue;
                    }
                    if let Some(v) = first_allowed(allowed) {
                        arguments.insert(k.clone(), realize(v));
                    }
                }
                Some(ToolCall { function: name.clone(), arguments })
            })
            .collect(),
    };
    ModelOutput { completion: String::new(), tool_calls }
}

/// The first allowed value that is not `""`; None when `""` (omit the
/// parameter) is all there is. Preferring a value keeps required parameters
/// whose possible answers list `""` first (e.g. simple_python_200).
fn first_allowed(allowed: &Value) -> Option<&Value> {
    allowed.as_array()?.iter().find(|v| v.as_str() != Some(""))
}

/// Possible answers for dict parameters are themselves `{key: [allowed…]}`
/// (also inside lists of dicts): turn them into a concrete value.
fn realize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().filter_map(|(k, allowed)| first_allowed(allowed).map(|x| (k.clone(), x.clone()))).collect()),
        Value::Array(a) if a.iter().any(Value::is_object) => Value::Array(a.iter().map(realize).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn out(function: &str, args: Value) -> ModelOutput {
        ModelOutput {
            completion: String::new(),
            tool_calls: vec![ToolCall { function: function.into(), arguments: args.as_object().cloned().unwrap_or_default() }],
        }
    }

    #[test]
    fn exec_simple_uses_python_equality() {
        let t = parse_ground_truth("calculate_density(mass=50.0, volume=10.0)").unwrap();
        assert!(score_exec_simple(&out("calculate_density", json!({"mass": 50, "volume": 10.0})), &t).correct);
        assert!(!score_exec_simple(&out("calculate_density", json!({"mass": 50})), &t).correct);
        assert!(!score_exec_simple(&out("calculate_mass", json!({"mass": 50.0, "volume": 10.0})), &t).correct);
        assert!(!score_exec_simple(&out("calculate_density", json!({"mass": "50", "volume": 10.0})), &t).correct);
    }

    /// The parameter order is the file's, not the alphabetical order of the
    /// parsed functions.
    #[test]
    fn first_parameter_in_document_order() {
        let line = r#"{"function": [{"name": "f", "parameters": {"type": "dict", "properties": {"zeta": {"type": "string"}, "alpha": {"type": "integer"}}}}, {"name": "g", "parameters": {"type": "dict", "properties": {}}}, {"name": "h"}]}"#;
        let rec: OrderRec = serde_json::from_str(line).unwrap();
        let firsts: Vec<(String, Option<String>)> = rec.function.into_iter().map(|f| (f.name, f.parameters.and_then(|p| p.properties.0))).collect();
        assert_eq!(firsts, [("f".into(), Some("zeta".into())), ("g".into(), None), ("h".into(), None)]);
    }

    #[test]
    fn schema_maps_bfcl_types() {
        let s = json_schema(&json!({"type": "dict", "properties": {"p": {"type": "float"}, "t": {"type": "tuple", "items": {"type": "float"}}}}));
        assert_eq!(s, json!({"type": "object", "properties": {"p": {"type": "number"}, "t": {"type": "array", "items": {"type": "number"}}}}));
    }
}
