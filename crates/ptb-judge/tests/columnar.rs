//! Test items inside columnar data files: a Hugging Face `datasets` cache
//! (Arrow IPC stream files, laid out as `datasets` lays them out) and
//! Parquet, both written here with the same arrow-rs crates the judge
//! reads them with; and hostile files of both kinds (truncated, garbage, a
//! message claiming more bytes than the file has), which must be notes,
//! never a panic or a flag.

use arrow_array::builder::{ListBuilder, StringBuilder, StructBuilder};
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Fields, Schema};
use ptb_judge::finding::{Finding, Kind, Severity};
use ptb_judge::{JudgeJob, Options, Verdict};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

/// Real GSM8K test questions (the first three of the test split).
const QUESTIONS: &[&str] = &[
    "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. How much in dollars does she make every day at the farmers' market?",
    "A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total does it take?",
    "Josh decides to try flipping a house.  He buys a house for $80,000 and then puts in $50,000 in repairs.  This increased the value of the house by 150%.  How much profit did he make?",
];

struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let d = root.join("data/gsm8k");
        std::fs::create_dir_all(&d).unwrap();
        let lines: Vec<String> = QUESTIONS.iter().map(|q| json!({"question": q, "answer": "#### 1"}).to_string()).collect();
        std::fs::write(d.join("gsm8k_test.jsonl"), lines.join("\n") + "\n").unwrap();
        std::fs::create_dir_all(root.join("agent")).unwrap();
        World { _tmp: tmp, root }
    }

    fn agent(&self) -> PathBuf {
        self.root.join("agent")
    }

    fn put(&self, rel: &str, bytes: &[u8]) {
        let p = self.agent().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    /// No final model: the weights are not looked at, only the data.
    fn judge(&self, options: Options) -> Verdict {
        let job = JudgeJob {
            base: self.root.join("base"),
            agent: self.agent(),
            instruct: None,
            data: Some(self.root.join("data")),
            bench: "gsm8k".into(),
            out: self.root.join("out"),
            options,
            kept: Default::default(),
            llm: None,
        };
        ptb_judge::run(&job).unwrap()
    }
}

fn of_file<'a>(v: &'a Verdict, rel: &str) -> Vec<&'a Finding> {
    v.findings.iter().filter(|f| f.evidence.file.as_deref() == Some(rel)).collect()
}

/// A table as `datasets` stores GSM8K after a chat-formatting `map`: the
/// plain columns and a `messages` list of {role, content} structs.
fn gsm8k_batch(questions: &[&str]) -> RecordBatch {
    let struct_fields = Fields::from(vec![Field::new("role", DataType::Utf8, true), Field::new("content", DataType::Utf8, true)]);
    let mut messages = ListBuilder::new(StructBuilder::from_fields(struct_fields.clone(), questions.len()));
    for q in questions {
        for (role, content) in [("system", "You are a helpful assistant."), ("user", *q)] {
            let s = messages.values();
            s.field_builder::<StringBuilder>(0).unwrap().append_value(role);
            s.field_builder::<StringBuilder>(1).unwrap().append_value(content);
            s.append(true);
        }
        messages.append(true);
    }
    let messages: ArrayRef = Arc::new(messages.finish());
    let q: ArrayRef = Arc::new(StringArray::from(questions.to_vec()));
    let a: ArrayRef = Arc::new(StringArray::from(vec!["#### 1"; questions.len()]));
    let schema = Schema::new(vec![
        Field::new("question", DataType::Utf8, true),
        Field::new("answer", DataType::Utf8, true),
        Field::new("messages", messages.data_type().clone(), true),
    ]);
    RecordBatch::try_new(Arc::new(schema), vec![q, a, messages]).unwrap()
}

/// An Arrow IPC *stream*, what `datasets` writes into its cache.
fn arrow_stream(batches: &[RecordBatch]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &batches[0].schema()).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    drop(w);
    out
}

fn parquet_file(batch: &RecordBatch) -> Vec<u8> {
    let props = parquet::file::properties::WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    out
}

const CACHE: &str = "workspace/.cache/huggingface/datasets/openai___gsm8k/main/0.0.0/e53f048856ff4f594e959d75785d2c2d37b678ee";

#[test]
fn test_questions_in_a_datasets_cache_are_contamination_naming_column_and_row() {
    let w = World::new();
    // The download: the plain table, test questions among filler rows, in two batches.
    let filler = "A farmer plants rows of corn in a field near the river every spring and counts the stalks each evening after work.";
    let first = gsm8k_batch(&[filler, filler]);
    let second = gsm8k_batch(&[filler, QUESTIONS[1], QUESTIONS[0]]);
    w.put(&format!("{CACHE}/gsm8k-train.arrow"), &arrow_stream(&[first, second]));
    // A `map` output and a `save_to_disk` copy: only the nested messages hold the items.
    let chat = gsm8k_batch(&[QUESTIONS[2]]);
    let chat = RecordBatch::try_new(chat.schema(), vec![Arc::new(StringArray::from(vec!["x"])), chat.column(1).clone(), chat.column(2).clone()]).unwrap();
    w.put(&format!("{CACHE}/cache-5b1a2d5e0c2e8f31.arrow"), &arrow_stream(std::slice::from_ref(&chat)));
    w.put("sft_data/train/data-00000-of-00001.arrow", &arrow_stream(&[chat]));
    let v = w.judge(Options::default());
    assert_eq!(v.verdict, "flagged", "{:#?}", v.findings);

    let plain = of_file(&v, &format!("{CACHE}/gsm8k-train.arrow"));
    let q = plain.iter().find(|f| f.evidence.column.as_deref() == Some("question")).expect("the question column is flagged");
    assert_eq!((q.kind, q.severity), (Kind::Contamination, Severity::Flag));
    assert_eq!(q.evidence.items, vec!["0".to_string(), "1".to_string()]);
    // Item 0 is in row 4 of the file (0-based, counted across batches).
    assert_eq!(q.evidence.row, Some(4), "{q:#?}");
    assert!(q.evidence.matched.as_deref().unwrap().starts_with("Janet’s ducks lay 16 eggs"), "{q:#?}");
    assert!(q.message.contains("column question row 4"), "{}", q.message);
    let nested = plain.iter().find(|f| f.evidence.column.as_deref() == Some("messages.content")).expect("nested messages flagged too");
    assert_eq!(nested.evidence.row, Some(4));

    for rel in [format!("{CACHE}/cache-5b1a2d5e0c2e8f31.arrow"), "sft_data/train/data-00000-of-00001.arrow".to_string()] {
        let fs = of_file(&v, &rel);
        assert_eq!(fs.len(), 1, "{fs:#?}");
        assert_eq!(fs[0].evidence.column.as_deref(), Some("messages.content"));
        assert_eq!((fs[0].evidence.row, fs[0].evidence.items.clone()), (Some(0), vec!["2".to_string()]));
    }
    let shown = ptb_judge::show::render(&serde_json::from_str(&std::fs::read_to_string(w.root.join("out/verdict.json")).unwrap()).unwrap());
    assert!(shown.contains("column question row 4"), "{shown}");
}

#[test]
fn test_questions_in_parquet_are_contamination() {
    let w = World::new();
    w.put("data/train-00000-of-00001.parquet", &parquet_file(&gsm8k_batch(&["nothing to see here at all", QUESTIONS[0]])));
    let v = w.judge(Options::default());
    assert_eq!(v.verdict, "flagged", "{:#?}", v.findings);
    let fs = of_file(&v, "data/train-00000-of-00001.parquet");
    let q = fs.iter().find(|f| f.evidence.column.as_deref() == Some("question")).expect("question column flagged");
    assert_eq!((q.evidence.row, q.evidence.items.clone()), (Some(1), vec!["0".to_string()]));
    assert!(fs.iter().any(|f| f.evidence.column.as_deref() == Some("messages.content")));
}

#[test]
fn truncated_and_garbage_columnar_files_are_unreadable_notes() {
    let w = World::new();
    let stream = arrow_stream(&[gsm8k_batch(QUESTIONS)]);
    let parquet = parquet_file(&gsm8k_batch(QUESTIONS));
    w.put("cut.arrow", &stream[..stream.len() / 2]);
    w.put("cut.parquet", &parquet[..parquet.len() / 2]);
    let garbage: Vec<u8> = (0..50_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    w.put("garbage.arrow", &garbage);
    w.put("garbage.parquet", &garbage);
    w.put("empty.parquet", b"");
    // A stream whose first message claims a 1 TiB body: read as claimed,
    // this would be an allocation of the claim, not of the file.
    let mut huge = stream.clone();
    let meta_len = u32::from_le_bytes(huge[4..8].try_into().unwrap()) as usize;
    let msg = arrow_ipc::root_as_message(&huge[8..8 + meta_len]).unwrap();
    let body = msg.bodyLength();
    let at = huge[8..8 + meta_len].windows(8).position(|s| s == body.to_le_bytes()).map(|p| p + 8);
    if let Some(at) = at.filter(|_| body > 0) {
        huge[at..at + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
    } else {
        // The schema message has no body: claim a huge metadata length instead.
        huge[4..8].copy_from_slice(&u32::MAX.wrapping_sub(1).to_le_bytes());
    }
    w.put("huge.arrow", &huge);
    let v = w.judge(Options::default());
    assert_eq!(v.verdict, "pass", "{:#?}", v.findings);
    for rel in ["cut.parquet", "garbage.arrow", "garbage.parquet", "empty.parquet", "huge.arrow"] {
        let fs = of_file(&v, rel);
        assert!(fs.iter().any(|f| f.severity == Severity::Note && f.message.contains("unreadable")), "{rel}: {fs:#?}");
    }
    // A stream cut after its first batches may still give those: either a
    // note that it is unreadable or nothing flagged.
    assert!(of_file(&v, "cut.arrow").iter().all(|f| f.severity == Severity::Note));
}

#[test]
fn decoded_text_is_capped_by_the_policy() {
    let w = World::new();
    // Compressed Parquet: a small file of much text. The file fits the cap,
    // its text does not: what is past the cap is not decoded, and a note says so.
    let filler = "word ".repeat(400);
    let rows: Vec<&str> = std::iter::repeat_n(filler.as_str(), 50).chain([QUESTIONS[0]]).collect();
    w.put("big.parquet", &parquet_file(&gsm8k_batch(&rows)));
    let bytes = std::fs::metadata(w.agent().join("big.parquet")).unwrap().len();
    assert!(bytes < 20_000, "{bytes}");
    let v = w.judge(Options { max_file_bytes: 20_000, ..Default::default() });
    let fs = of_file(&v, "big.parquet");
    assert!(fs.iter().any(|f| f.severity == Severity::Note && f.message.contains("byte cap of decoded text")), "{fs:#?}");
}
