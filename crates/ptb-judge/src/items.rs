//! A benchmark's test items as texts to index, read with ptb-bench's own
//! loaders (so the judge looks for exactly what the evaluator scores). A
//! benchmark ptb does not know gets a generic reading: every line of every
//! JSONL file in its data directory is an item.

use crate::ngram::TestItem;
use ptb_bench::{BenchId, arena, bfcl, data, gpqa, healthbench, humaneval, math};
use serde_json::Value;
use std::path::Path;

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// The test items of `bench` (a benchmark name) in `dir`.
pub fn load(bench: &str, dir: &Path) -> Result<Vec<TestItem>, String> {
    let err = |e: ptb_bench::BenchError| e.to_string();
    let item = |id: String, segments: Vec<String>| TestItem { id, segments };
    let Ok(id) = bench.parse::<BenchId>() else {
        return generic(dir);
    };
    Ok(match id {
        BenchId::Gsm8k => {
            math::load_gsm8k(dir).map_err(err)?.into_iter().map(|m| item(m.id, [Some(m.question), m.reasoning].into_iter().flatten().collect())).collect()
        }
        BenchId::Aime2025 => math::load_aime(dir).map_err(err)?.into_iter().map(|m| item(m.id, vec![m.question])).collect(),
        BenchId::HumanEval => humaneval::load(dir).map_err(err)?.into_iter().map(|h| item(h.task_id, vec![h.prompt, h.canonical_solution, h.test])).collect(),
        BenchId::GpqaMain => {
            let csv = if dir.is_file() { dir.to_path_buf() } else { data::bench_dir(dir, id).join("gpqa_main.csv") };
            gpqa::load_csv(&csv).map_err(err)?.into_iter().map(|g| item(g.id, std::iter::once(g.question).chain(g.choices).collect())).collect()
        }
        BenchId::Bfcl => {
            let mut v = Vec::new();
            for c in bfcl::Category::ALL {
                for b in bfcl::load(dir, c).map_err(err)? {
                    let mut segs: Vec<String> = b.messages.into_iter().map(|m| m.content).collect();
                    let mut docs = Vec::new();
                    strings(&Value::Array(b.functions), &mut docs);
                    segs.push(docs.join("\n"));
                    v.push(item(b.id, segs));
                }
            }
            v
        }
        BenchId::ArenaHardWriting => arena::load_questions(dir).map_err(err)?.into_iter().map(|q| item(q.uid, vec![q.prompt])).collect(),
        BenchId::HealthBench => {
            let ex = healthbench::load(dir, healthbench::Source::Easy245).or_else(|_| healthbench::load(dir, healthbench::Source::Package500)).map_err(err)?;
            ex.into_iter().map(|e| item(e.prompt_id, e.prompt.into_iter().map(|m| m.content).collect())).collect()
        }
    })
}

/// Every line of every `.jsonl` file under `dir` (or `dir` itself when it is
/// one), its string values joined: one item per line, `file:line` as its id.
fn generic(dir: &Path) -> Result<Vec<TestItem>, String> {
    let files: Vec<std::path::PathBuf> = if dir.is_file() {
        vec![dir.to_path_buf()]
    } else {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        v.sort();
        v
    };
    let mut items = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let mut segs = Vec::new();
            match serde_json::from_str::<Value>(line) {
                Ok(v) => strings(&v, &mut segs),
                Err(_) => segs.push(line.to_string()),
            }
            items.push(TestItem { id: format!("{name}:{}", i + 1), segments: vec![segs.join("\n")] });
        }
    }
    Ok(items)
}
