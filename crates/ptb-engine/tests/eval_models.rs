//! The engine against transformers 4.57.3 on tiny random-weight checkpoints (bf16 on disk,
//! computed in f32): logits, greedy continuations, batching, and load errors.
//! Fixtures: tests/fixtures/eval/<arch>/, made by scripts/make-fixtures.py.

use ptb_engine::{BaseModelSpec, Cpu, Engine, EvalError, FinishReason, Prompt, Request, Sampling, Silent};
use safetensors::SafeTensors;

mod eval_fixtures;
use eval_fixtures::{ARCHS, Case, LOGIT_TOL, cases, dir};

fn engine(arch: &str) -> Engine<Cpu> {
    eval_fixtures::engine(arch)
}

#[test]
fn logits_match_transformers() {
    for arch in ARCHS {
        let e = engine(arch);
        for (i, c) in cases(arch).iter().enumerate() {
            let got: Vec<f32> = e.logits(&c.ids).unwrap().concat();
            assert_eq!(got.len(), c.logits.len(), "{arch} prompt {i}");
            let max = got.iter().zip(&c.logits).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            eprintln!("{arch} prompt {i}: max |Δlogit| = {max:.2e}");
            assert!(max < LOGIT_TOL, "{arch} prompt {i}: max |Δlogit| {max} ≥ {LOGIT_TOL}");
        }
    }
}

fn greedy(ids: &[u32], n: usize) -> Request {
    Request { prompt: Prompt::Tokens(ids.to_vec()), sampling: Sampling::default(), max_new_tokens: n, stop: vec![], ignore_eos: false }
}

#[test]
fn greedy_tokens_match_transformers() {
    for arch in ARCHS {
        let e = engine(arch);
        for (i, c) in cases(arch).iter().enumerate() {
            let out = e.generate(&[greedy(&c.ids, c.greedy.len())], &Silent).unwrap().remove(0);
            // transformers keeps the EOS token in its output; the engine reports it as the reason.
            let mut want = c.greedy.clone();
            if want.last().is_some_and(|t| e.eos_token_ids().contains(t)) {
                want.pop();
                assert_eq!(out.finish_reason, FinishReason::Eos, "{arch} prompt {i}");
            }
            assert_eq!(out.token_ids, want, "{arch} prompt {i}");
            assert_eq!(out.prompt_tokens, c.ids.len());
            assert_eq!(out.completion_tokens, out.token_ids.len());
        }
    }
}

#[test]
fn batched_generation_equals_one_by_one() {
    for arch in ARCHS {
        let e = engine(arch);
        let cs = cases(arch);
        let mut reqs: Vec<Request> = cs.iter().map(|c| greedy(&c.ids, 10)).collect();
        // Seeded sampling must not depend on batch neighbours either.
        for (k, c) in cs.iter().enumerate() {
            reqs.push(Request { sampling: Sampling { temperature: 0.8, top_p: 0.9, top_k: 0, seed: 42 + k as u64 }, ..greedy(&c.ids, 10) });
        }
        let batched = e.generate(&reqs, &Silent).unwrap();
        for (i, r) in reqs.iter().enumerate() {
            let alone = e.generate(std::slice::from_ref(r), &Silent).unwrap().remove(0);
            assert_eq!(batched[i].token_ids, alone.token_ids, "{arch} request {i}");
        }
        let again = e.generate(&reqs, &Silent).unwrap();
        assert_eq!(
            batched.iter().map(|c| &c.token_ids).collect::<Vec<_>>(),
            again.iter().map(|c| &c.token_ids).collect::<Vec<_>>(),
            "{arch}: seeded generation must repeat"
        );
    }
}

/// More requests than slots, with very different lengths: a finished request's slot goes to
/// the next pending one, and every result still equals the request generated alone; with
/// the host KV cache and with burn's tensors (the GPU's path).
#[test]
fn refilled_slots_give_one_by_one_results() {
    use std::sync::Mutex;
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Event {
        Admitted(usize),
        Step(usize),
    }
    #[derive(Default)]
    struct Log(Mutex<Vec<Event>>);
    impl ptb_engine::Reporter for Log {
        fn batch_started(&self, requests: usize, _: usize) {
            self.0.lock().unwrap().push(Event::Admitted(requests));
        }
        fn tokens_generated(&self, n: usize) {
            self.0.lock().unwrap().push(Event::Step(n));
        }
    }
    const MAX_BATCH: usize = 3;
    for (arch, host) in ARCHS.iter().flat_map(|a| [(*a, true), (*a, false)]) {
        let d = dir(arch);
        let base = BaseModelSpec::from_checkpoint(&d).unwrap();
        let options = ptb_engine::EngineOptions { max_batch: MAX_BATCH, ..Default::default() };
        let mut e = Engine::<Cpu>::load_with(&d, &base, &Default::default(), options).unwrap();
        e.model.cpu_kernels = host;
        let cs = cases(arch);
        let lengths = [1, 24, 3, 17, 2, 9, 30, 5];
        let reqs: Vec<Request> = lengths
            .iter()
            .enumerate()
            .map(|(k, &n)| {
                let ids = &cs[k % cs.len()].ids;
                let sampling = if k % 2 == 1 { Sampling { temperature: 0.9, top_p: 0.95, top_k: 0, seed: 7 + k as u64 } } else { Sampling::default() };
                Request { sampling, ignore_eos: k % 3 != 2, ..greedy(ids, n) }
            })
            .collect();
        let log = Log::default();
        let together = e.generate(&reqs, &log).unwrap();
        for (i, r) in reqs.iter().enumerate() {
            let alone = e.generate(std::slice::from_ref(r), &Silent).unwrap().remove(0);
            assert_eq!(together[i].token_ids, alone.token_ids, "{arch} request {i}");
            assert_eq!(together[i].finish_reason, alone.finish_reason, "{arch} request {i}");
        }
        let events = log.0.into_inner().unwrap();
        let admitted: usize = events.iter().map(|e| if let Event::Admitted(n) = e { *n } else { 0 }).sum();
        assert_eq!(admitted, reqs.len(), "{arch}: {events:?}");
        // Refill: while requests wait, no step runs with an empty slot.
        let last_admit = events.iter().rposition(|e| matches!(e, Event::Admitted(_))).unwrap();
        assert!(events[..last_admit].iter().all(|e| !matches!(e, Event::Step(n) if *n < MAX_BATCH)), "{arch}: {events:?}");
        assert!(events.iter().filter(|e| matches!(e, Event::Admitted(_))).count() > 2, "{arch}: {events:?}");
    }
}

#[test]
fn ragged_batch_logits_match_unpadded() {
    // The last-position logits of a left-padded row equal those of the row alone.
    let e = engine("gemma3");
    let cs = cases("gemma3");
    let v = e.model.cfg.vocab_size;
    let reqs: Vec<Request> = cs.iter().map(|c| greedy(&c.ids, 1)).collect();
    let out = e.generate(&reqs, &Silent).unwrap();
    for (c, o) in cs.iter().zip(&out) {
        let last = &c.logits[(c.ids.len() - 1) * v..];
        let want = ptb_engine::sampling::argmax(last);
        if !e.eos_token_ids().contains(&want) {
            assert_eq!(o.token_ids, vec![want]);
        }
    }
}

#[test]
fn stop_strings_cut_the_text() {
    let e = engine("llama");
    let c = &cases("llama")[0];
    let full = e.generate(&[greedy(&c.ids, 12)], &Silent).unwrap().remove(0);
    assert!(full.text.chars().count() > 3, "need some text to cut: {:?}", full.text);
    let stop: String = full.text.chars().skip(2).take(2).collect();
    let cut = e.generate(&[Request { stop: vec![stop.clone()], ..greedy(&c.ids, 12) }], &Silent).unwrap().remove(0);
    assert_eq!(cut.finish_reason, FinishReason::Stop);
    assert!(!cut.text.contains(&stop));
    assert!(full.text.starts_with(&cut.text));

    // A stop string late in a long completion (the engine decodes only the newest tokens at
    // each step; this fixture's text mixes in byte-fallback tokens) still cuts the text
    // where it first occurs.
    let long = e.generate(&[greedy(&c.ids, 60)], &Silent).unwrap().remove(0);
    let chars: Vec<char> = long.text.chars().collect();
    let at = (1..chars.len()).rev().find(|&i| chars[i - 1].is_ascii_alphanumeric() && chars[i].is_ascii_alphanumeric()).expect("two ASCII characters in a row");
    let stop: String = chars[at - 1..=at].iter().collect();
    let cut = e.generate(&[Request { stop: vec!["never in the text \u{1}".into(), stop.clone()], ..greedy(&c.ids, 60) }], &Silent).unwrap().remove(0);
    assert_eq!(cut.finish_reason, FinishReason::Stop);
    assert!(cut.completion_tokens > 10, "the stop must come after the first window: {cut:?}");
    assert_eq!(cut.text, long.text[..long.text.find(&stop).unwrap()]);
}

fn copy_fixture(arch: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(dir(arch)).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), t.path().join(f.file_name())).unwrap();
    }
    t
}

#[test]
fn unknown_architecture_is_named() {
    let t = copy_fixture("qwen3");
    let base = BaseModelSpec { architecture: "MambaForCausalLM".into(), chat_template: None, config: None };
    let err = Engine::<Cpu>::load(t.path(), &base, &Default::default()).err().unwrap();
    assert!(matches!(err, EvalError::UnknownArchitecture(_)));
    assert!(err.to_string().contains("MambaForCausalLM"), "{err}");
}

#[test]
fn tampered_architecture_is_reported_not_obeyed() {
    let t = copy_fixture("qwen3");
    let cfg_path = t.path().join("config.json");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap().replace("Qwen3ForCausalLM", "LlamaForCausalLM");
    std::fs::write(&cfg_path, cfg).unwrap();
    let base = BaseModelSpec { architecture: "Qwen3ForCausalLM".into(), chat_template: None, config: None };
    let e = Engine::<Cpu>::load(t.path(), &base, &Default::default()).unwrap();
    assert_eq!(e.mismatches().len(), 1);
    assert_eq!(e.mismatches()[0].checkpoint, "LlamaForCausalLM");
    // Still evaluated as Qwen3: the logits are the reference's.
    let c = &cases("qwen3")[0];
    let got = e.logits(&c.ids).unwrap().concat();
    let max = got.iter().zip(&c.logits).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(max < LOGIT_TOL);
}

#[test]
fn missing_weights_name_the_file_and_fix() {
    let t = copy_fixture("llama");
    std::fs::remove_file(t.path().join("model.safetensors")).unwrap();
    let base = BaseModelSpec::from_checkpoint(t.path()).unwrap();
    let err = Engine::<Cpu>::load(t.path(), &base, &Default::default()).err().unwrap().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(err.contains("index.json"), "{err}");
}

#[test]
fn truncated_weights_are_an_error_not_a_panic() {
    let t = copy_fixture("llama");
    let p = t.path().join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let base = BaseModelSpec::from_checkpoint(t.path()).unwrap();
    let err = Engine::<Cpu>::load(t.path(), &base, &Default::default()).err().unwrap().to_string();
    assert!(err.contains("model.safetensors") && err.contains("save_pretrained"), "{err}");
}

#[test]
fn sharded_checkpoint_loads_like_single_file() {
    // Split the fixture's tensors over two shards with an index, as save_pretrained does.
    let src = dir("qwen3");
    let t = copy_fixture("qwen3");
    std::fs::remove_file(t.path().join("model.safetensors")).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut map = serde_json::Map::new();
    for (k, part) in [a, b].iter().enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", k + 1);
        let views: Vec<(String, safetensors::tensor::TensorView)> = part.iter().map(|n| (n.clone(), st.tensor(n).unwrap())).collect();
        safetensors::serialize_to_file(views, None, &t.path().join(&file)).unwrap();
        for n in part.iter() {
            map.insert(n.clone(), serde_json::Value::String(file.clone()));
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(t.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
    let base = BaseModelSpec::from_checkpoint(t.path()).unwrap();
    let e = Engine::<Cpu>::load(t.path(), &base, &Default::default()).unwrap();
    let c = &cases("qwen3")[1];
    let got = e.logits(&c.ids).unwrap().concat();
    let max = got.iter().zip(&c.logits).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(max < LOGIT_TOL);
}

/// Logits of a left-padded ragged batch of every case prompt, computed through the KV cache:
/// a short prefill, then one token per step. `[column][row * vocab]`, and each row's padding.
fn stepwise_logits(e: &Engine<Cpu>, cs: &[Case]) -> (Vec<Vec<f32>>, Vec<usize>) {
    use ptb_engine::model::{Batch, KvCache};
    let v = e.model.cfg.vocab_size;
    let longest = cs.iter().map(|c| c.ids.len()).max().unwrap();
    let pad: Vec<usize> = cs.iter().map(|c| longest - c.ids.len()).collect();
    let rows: Vec<Vec<u32>> = cs.iter().zip(&pad).map(|(c, &p)| [vec![0; p], c.ids.clone()].concat()).collect();
    let batch = Batch { pad: pad.clone() };
    let mut cache = KvCache::new(e.model.cfg.num_layers);
    let first = longest - 2; // the shortest prompt is shorter than this: its first tokens come one by one
    let mut step_logits: Vec<Vec<f32>> = vec![];
    let prefill: Vec<Vec<u32>> = rows.iter().map(|r| r[..first].to_vec()).collect();
    let out = e.model.forward(&prefill, &batch, &mut cache, false).into_data().to_vec::<f32>().unwrap();
    for col in 0..first {
        step_logits.push((0..rows.len()).flat_map(|r| out[(r * first + col) * v..(r * first + col + 1) * v].to_vec()).collect());
    }
    for col in first..longest {
        let step: Vec<Vec<u32>> = rows.iter().map(|r| vec![r[col]]).collect();
        step_logits.push(e.model.forward(&step, &batch, &mut cache, true).into_data().to_vec::<f32>().unwrap());
    }
    (step_logits, pad)
}

/// The KV-cache path (prefill a little, then one token at a time) reproduces transformers'
/// full-sequence logits at every position, for a left-padded ragged batch: positions,
/// padding masks and sliding windows (Gemma's window is 4 tokens here) must all be right.
#[test]
fn incremental_decode_with_padding_matches_transformers() {
    for arch in ARCHS {
        let e = engine(arch);
        let v = e.model.cfg.vocab_size;
        let cs = cases(arch);
        let (step_logits, pad) = stepwise_logits(&e, &cs);
        for (r, c) in cs.iter().enumerate() {
            for (pos, step) in step_logits[pad[r]..].iter().enumerate() {
                let got = &step[r * v..(r + 1) * v];
                let want = &c.logits[pos * v..(pos + 1) * v];
                let max = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(max < LOGIT_TOL, "{arch} row {r} position {pos}: max |Δlogit| {max}");
            }
        }
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max)
}

/// With a memory budget (on CUDA: 90% of the free memory), requests join only while the KV
/// cache could hold every live one at its longest: here two at a time, with the results of
/// an unbounded run. A request too long for the budget even alone fails before generating.
#[test]
fn a_memory_budget_limits_rows_not_results() {
    #[derive(Default)]
    struct Rows(std::sync::Mutex<Vec<usize>>);
    impl ptb_engine::Reporter for Rows {
        fn tokens_generated(&self, n: usize) {
            self.0.lock().unwrap().push(n);
        }
    }
    let d = dir("qwen3");
    let base = BaseModelSpec::from_checkpoint(&d).unwrap();
    let unbounded = engine("qwen3");
    let ids = &cases("qwen3")[0].ids;
    let reqs: Vec<Request> = (0..6).map(|k| Request { ignore_eos: true, ..greedy(ids, 20 + k) }).collect();
    let longest = (ids.len() + 25) as u64;
    // Two rows at the longest fit exactly (twice over: the device cache's doubling); a
    // third row, even at the shortest, does not.
    let kv = 2 * (2 * longest * unbounded.model.kv_bytes_per_position());
    let memory = ((unbounded.model.weight_bytes() + kv) as f64 / (1.0 - ptb_engine::engine::WORKING_SHARE)) as u64 + 8;
    let with_memory = |memory| {
        let options = ptb_engine::EngineOptions { memory: Some(memory), ..Default::default() };
        Engine::<Cpu>::load_with(&d, &base, &Default::default(), options)
    };
    let bounded = with_memory(memory).unwrap();
    let rows = Rows::default();
    let got = bounded.generate(&reqs, &rows).unwrap();
    let want = unbounded.generate(&reqs, &Silent).unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.token_ids, w.token_ids, "request {i}");
    }
    assert_eq!(rows.0.into_inner().unwrap().into_iter().max(), Some(2), "rows per step");

    let too_long = Request { ignore_eos: true, ..greedy(ids, 10_000) };
    let err = bounded.generate(&[greedy(ids, 3), too_long], &Silent).unwrap_err().to_string();
    assert!(err.starts_with("request 1:") && err.contains("new tokens need") && err.contains("lower max_new_tokens"), "{err}");
    let err = match with_memory(unbounded.model.weight_bytes()) {
        Ok(_) => panic!("loaded with no room for a cache"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("leaving nothing for the KV cache"), "{err}");
}

/// With a memory budget, the requests prefilled together stop where their prefill would
/// outgrow the working memory: here two prompts a group, with the unbounded run's tokens.
#[test]
fn a_memory_budget_splits_prefills_that_would_not_fit() {
    #[derive(Default)]
    struct Groups(std::sync::Mutex<Vec<usize>>);
    impl ptb_engine::Reporter for Groups {
        fn batch_started(&self, requests: usize, _: usize) {
            self.0.lock().unwrap().push(requests);
        }
    }
    let d = dir("qwen3");
    let unbounded = engine("qwen3");
    // Long enough that attention scores, not the weights, size the memory.
    let ids = &cases("qwen3")[0].ids.repeat(4);
    let reqs: Vec<Request> = (0..6).map(|k| Request { ignore_eos: true, ..greedy(ids, 1 + k % 2) }).collect();
    // Working memory for two prompts' prefill, not three; the cache has room to spare.
    let memory = (unbounded.model.prefill_bytes(2, ids.len()) as f64 / ptb_engine::engine::WORKING_SHARE) as u64 + 8;
    assert!(unbounded.model.prefill_bytes(3, ids.len()) > (memory as f64 * ptb_engine::engine::WORKING_SHARE) as u64);
    let options = ptb_engine::EngineOptions { memory: Some(memory), max_batch: 6, ..Default::default() };
    let bounded = Engine::<Cpu>::load_with(&d, &BaseModelSpec::from_checkpoint(&d).unwrap(), &Default::default(), options).unwrap();
    let groups = Groups::default();
    let got = bounded.generate(&reqs, &groups).unwrap();
    let want = unbounded.generate(&reqs, &Silent).unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.token_ids, w.token_ids, "request {i}");
    }
    let groups = groups.0.into_inner().unwrap();
    assert_eq!(groups.iter().sum::<usize>(), reqs.len(), "{groups:?}");
    assert_eq!(groups.iter().max(), Some(&2), "{groups:?}");
}

/// The host forward pass (ptb's kernels on the ndarray buffers, a preallocated KV cache)
/// gives the logits of burn's ops: one row per step and a 3-row batch (streamed weights),
/// prefills of up to 33 rows (GEMM on the weight in place). Sums run in other orders (16-lane
/// dot products, attention without a score matrix), hence a tolerance above f32 rounding,
/// well inside the 1e-4 both keep to transformers.
#[test]
fn host_forward_pass_matches_burn_ops() {
    const TOL: f32 = 3e-5;
    for arch in ARCHS {
        let fast = engine(arch);
        let mut generic = engine(arch);
        generic.model.cpu_kernels = false;
        let cs = cases(arch);
        for (i, c) in cs.iter().enumerate() {
            let d = max_diff(&fast.logits(&c.ids).unwrap().concat(), &generic.logits(&c.ids).unwrap().concat());
            assert!(d < TOL, "{arch} prompt {i}: max |Δlogit| {d}");
            let (a, _) = stepwise_logits(&fast, std::slice::from_ref(c));
            let (b, _) = stepwise_logits(&generic, std::slice::from_ref(c));
            let d = max_diff(&a.concat(), &b.concat());
            assert!(d < TOL, "{arch} prompt {i} one row per step: max |Δlogit| {d}");
        }
        let (a, _) = stepwise_logits(&fast, &cs);
        let (b, _) = stepwise_logits(&generic, &cs);
        let d = max_diff(&a.concat(), &b.concat());
        assert!(d < TOL, "{arch} batch of {}: max |Δlogit| {d}", cs.len());
    }
}

#[test]
fn shape_changes_against_the_base_config_are_reported() {
    let t = copy_fixture("qwen3");
    let base_cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir("qwen3").join("config.json")).unwrap()).unwrap();
    let mut declared = base_cfg.clone();
    declared["num_hidden_layers"] = serde_json::json!(28);
    let base = BaseModelSpec { architecture: "Qwen3ForCausalLM".into(), chat_template: None, config: Some(declared) };
    let e = Engine::<Cpu>::load(t.path(), &base, &Default::default()).unwrap();
    assert_eq!(e.mismatches().len(), 1, "{:?}", e.mismatches());
    assert_eq!(e.mismatches()[0].field, "num_hidden_layers");
    assert_eq!((e.mismatches()[0].declared.as_str(), e.mismatches()[0].checkpoint.as_str()), ("28", "2"));
    let same = BaseModelSpec { config: Some(base_cfg), ..base };
    assert!(Engine::<Cpu>::load(t.path(), &same, &Default::default()).unwrap().mismatches().is_empty());
}

#[test]
fn reporter_sees_every_batch_token_and_request() {
    use std::sync::Mutex;
    #[derive(Default)]
    struct Recording {
        batches: Mutex<Vec<(usize, usize)>>,
        tokens: Mutex<usize>,
        finished: Mutex<Vec<usize>>,
    }
    impl ptb_engine::Reporter for Recording {
        fn batch_started(&self, requests: usize, prompt_tokens: usize) {
            self.batches.lock().unwrap().push((requests, prompt_tokens));
        }
        fn tokens_generated(&self, n: usize) {
            *self.tokens.lock().unwrap() += n;
        }
        fn request_finished(&self, index: usize) {
            self.finished.lock().unwrap().push(index);
        }
    }
    let d = dir("llama");
    let base = BaseModelSpec::from_checkpoint(&d).unwrap();
    let options = ptb_engine::EngineOptions { max_batch: 2, ..Default::default() };
    let e = Engine::<Cpu>::load_with(&d, &base, &Default::default(), options).unwrap();
    let cs = cases("llama");
    let reqs: Vec<Request> = cs.iter().map(|c| greedy(&c.ids, 5)).collect();
    let rec = Recording::default();
    let out = e.generate(&reqs, &rec).unwrap();
    let batches = rec.batches.lock().unwrap().clone();
    assert_eq!(batches.iter().map(|b| b.0).collect::<Vec<_>>(), vec![2, 1], "max_batch 2 splits 3 requests");
    assert_eq!(batches.iter().map(|b| b.1).sum::<usize>(), cs.iter().map(|c| c.ids.len()).sum::<usize>());
    // Every sampled token is reported, including an EOS that ends a request.
    let sampled: usize = out.iter().map(|c| c.completion_tokens + usize::from(c.finish_reason == FinishReason::Eos)).sum();
    assert_eq!(*rec.tokens.lock().unwrap(), sampled);
    let mut finished = rec.finished.lock().unwrap().clone();
    finished.sort();
    assert_eq!(finished, vec![0, 1, 2]);
}
