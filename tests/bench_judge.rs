//! The judge client against a small OpenAI-compatible server on 127.0.0.1
//! started by each test. Every server handles a bounded number of requests
//! and stops by itself after a deadline.

use ptb_bench::chat::Message;
use ptb_bench::judge::{JudgeClient, JudgeConfig, cache_key};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod judge_server;
use judge_server::*;

fn config(url: &str, cache: Option<&std::path::Path>) -> JudgeConfig {
    JudgeConfig {
        url: url.to_string(),
        model: "judge-test".into(),
        // HOME always exists: the test needs no process-wide env mutation.
        api_key_env: "HOME".into(),
        params: serde_json::Map::from_iter([("max_completion_tokens".to_string(), json!(64))]),
        max_retries: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        concurrency: 4,
        cache_dir: cache.map(std::path::Path::to_path_buf),
    }
}

fn msgs(text: &str) -> Vec<Message> {
    vec![Message::system("be a judge"), Message::user(text)]
}

#[test]
fn sends_openai_request_and_caches_the_reply() {
    let srv = serve(vec![ok("[[A>B]]"), ok("second")]);
    let cache = tempfile::tempdir().unwrap();
    let client = JudgeClient::new(config(&srv.url, Some(cache.path())));
    let r1 = client.complete(&msgs("q1")).unwrap();
    assert_eq!((r1.content.as_str(), r1.cached, r1.attempts), ("[[A>B]]", false, 1));
    let r2 = client.complete(&msgs("q1")).unwrap();
    assert_eq!((r2.content.as_str(), r2.cached), ("[[A>B]]", true));
    // A fresh client over the same cache dir (a later `ptb report`) pays nothing either.
    let again = JudgeClient::new(config(&srv.url, Some(cache.path()))).complete(&msgs("q1")).unwrap();
    assert!(again.cached);
    assert_eq!(srv.seen.lock().unwrap().len(), 1);

    let seen = srv.seen.lock().unwrap();
    let req = &seen[0];
    assert_eq!(req.body["model"], "judge-test");
    assert_eq!(req.body["stream"], false);
    assert_eq!(req.body["max_completion_tokens"], 64);
    assert_eq!(req.body["messages"], json!([{"role": "system", "content": "be a judge"}, {"role": "user", "content": "q1"}]));
    let auth = format!("authorization: bearer {}", std::env::var("HOME").unwrap()).to_lowercase();
    assert!(req.headers.iter().any(|h| h.to_lowercase() == auth), "{:?}", req.headers);
    assert!(req.headers.iter().any(|h| h.starts_with("POST /v1/chat/completions")), "{:?}", req.headers);
}

#[test]
fn cache_key_covers_model_params_and_prompt() {
    let p = serde_json::Map::new();
    let base = cache_key("m", &p, &msgs("q"));
    assert_eq!(base, cache_key("m", &p, &msgs("q")));
    assert_ne!(base, cache_key("m2", &p, &msgs("q")));
    assert_ne!(base, cache_key("m", &p, &msgs("q2")));
    let p2 = serde_json::Map::from_iter([("reasoning_effort".to_string(), json!("medium"))]);
    assert_ne!(base, cache_key("m", &p2, &msgs("q")));
}

#[test]
fn honours_retry_after_on_429() {
    let mut limited = status(429);
    limited.headers.push(("Retry-After", "1".into()));
    let srv = serve(vec![limited, ok("fine")]);
    let client = JudgeClient::new(config(&srv.url, None));
    let t0 = Instant::now();
    let r = client.complete(&msgs("q")).unwrap();
    assert_eq!((r.content.as_str(), r.attempts), ("fine", 2));
    assert!(t0.elapsed() >= Duration::from_millis(950), "retried after {:?}, before Retry-After", t0.elapsed());
}

#[test]
fn retries_server_errors_but_not_client_errors() {
    let srv = serve(vec![status(500), status(503), ok("third time")]);
    let r = JudgeClient::new(config(&srv.url, None)).complete(&msgs("q")).unwrap();
    assert_eq!((r.content.as_str(), r.attempts), ("third time", 3));

    let srv = serve(vec![status(400), ok("never")]);
    let err = JudgeClient::new(config(&srv.url, None)).complete(&msgs("q")).unwrap_err();
    assert!(err.to_string().contains("HTTP 400"), "{err}");
    assert_eq!(srv.seen.lock().unwrap().len(), 1);
}

#[test]
fn gives_up_after_max_retries() {
    let srv = serve(vec![status(503); 6]);
    let err = JudgeClient::new(config(&srv.url, None)).complete(&msgs("q")).unwrap_err();
    assert!(err.to_string().contains("giving up after 4 attempts"), "{err}");
    assert_eq!(srv.seen.lock().unwrap().len(), 4);
}

#[test]
fn missing_api_key_is_reported_by_name() {
    let mut cfg = config("http://127.0.0.1:9/v1", None);
    cfg.api_key_env = "PTB_TEST_SURELY_UNSET_KEY".into();
    let err = JudgeClient::new(cfg).complete(&msgs("q")).unwrap_err();
    assert!(err.to_string().contains("PTB_TEST_SURELY_UNSET_KEY"), "{err}");
}

#[test]
fn concurrency_limit_is_respected() {
    let slow: Vec<Reply> = (0..6).map(|i| Reply { delay: Duration::from_millis(150), ..ok(&format!("r{i}")) }).collect();
    let srv = serve(slow);
    let mut cfg = config(&srv.url, None);
    cfg.concurrency = 2;
    let reqs: Vec<Vec<Message>> = (0..6).map(|i| msgs(&format!("q{i}"))).collect();
    let out = JudgeClient::new(cfg).complete_many(&reqs);
    assert!(out.iter().all(Result::is_ok));
    assert_eq!(srv.seen.lock().unwrap().len(), 6);
    let max = srv.max_in_flight.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "{max} requests in flight with a limit of 2");
}

// ---- judged benchmarks end to end -------------------------------------------

use ptb_bench::arena::ArenaQuestion;
use ptb_bench::healthbench::{HealthExample, RubricItem};
use ptb_bench::judged;

fn user_text(body: &Value) -> String {
    body["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str()).unwrap_or("").to_string()
}

#[test]
fn arena_judging_plays_both_orders_and_scores_the_candidate() {
    // A judge that always strongly prefers the candidate's answer, wherever it is.
    let srv = serve_fn(8, |body| {
        let u = user_text(body);
        ok(if u.contains("<|The Start of Assistant A's Answer|>\nCAND") { "Reasons. [[A>>B]]" } else { "Reasons. [[B>>A]]" })
    });
    let qs: Vec<ArenaQuestion> = ["u1", "u2", "u3"]
        .iter()
        .map(|u| ArenaQuestion { uid: u.to_string(), category: "creative_writing".into(), subcategory: None, prompt: format!("Write {u}") })
        .collect();
    let baseline: std::collections::HashMap<String, String> =
        [("u1", "BASE 1"), ("u2", "BASE 2")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let answers = vec!["<think>plan</think>CAND one".to_string(), "CAND two".to_string(), "CAND three".to_string()];
    let client = JudgeClient::new(config(&srv.url, None));
    let (items, score, battles) = judged::judge_arena(&client, &qs, &baseline, &answers).unwrap();
    // u3 has no baseline answer and is skipped, as in the reference.
    assert_eq!(battles.len(), 2);
    assert_eq!(srv.seen.lock().unwrap().len(), 4);
    assert_eq!((score.accuracy, score.n_scores), (1.0, 12));
    assert_eq!(items.iter().map(|i| i.score).collect::<Vec<_>>(), [1.0, 1.0]);
    let seen = srv.seen.lock().unwrap();
    assert!(seen.iter().all(|s| s.body["messages"][0]["role"] == "system"));
    assert!(seen.iter().all(|s| !user_text(&s.body).contains("<think>")), "thinking must be stripped before judging");
}

#[test]
fn healthbench_grading_retries_bad_replies_and_applies_the_formula() {
    // Met for positive criteria, not met for negative ones; the first reply
    // for "flaky" criteria is unusable and must be re-asked.
    let asked_flaky = Arc::new(AtomicUsize::new(0));
    let flaky = asked_flaky.clone();
    let srv = serve_fn(20, move |body| {
        let u = user_text(body);
        if u.contains("] flaky") && flaky.fetch_add(1, Ordering::SeqCst) == 0 {
            return ok("I think it is met");
        }
        let met = !u.contains("# Rubric item\n[-");
        ok(&format!("```json\n{{\"explanation\": \"x\", \"criteria_met\": {met}}}\n```"))
    });
    let item = |c: &str, p: f64| RubricItem { criterion: c.into(), points: p, tags: vec![] };
    let ex = |id: &str, rubrics: Vec<RubricItem>| HealthExample {
        prompt_id: id.into(),
        prompt: vec![Message::user("I have a headache"), Message::assistant("How long?"), Message::user("Two days")],
        rubrics,
        example_tags: vec![],
    };
    let examples = vec![
        ex("e1", vec![item("asks about severity", 5.0), item("flaky", 3.0), item("recommends opioids", -4.0)]),
        ex("e2", vec![item("suggests hydration", 2.0)]),
    ];
    let cache = tempfile::tempdir().unwrap();
    let client = JudgeClient::new(config(&srv.url, Some(cache.path())));
    let answers = vec!["Drink water.".to_string(), "<think>x</think>Rest.".to_string()];
    let (items, score) = judged::grade_healthbench(&client, &examples, &answers).unwrap();
    assert_eq!(items.iter().map(|i| i.answer.as_str()).collect::<Vec<_>>(), ["110", "1"]);
    assert_eq!(items.iter().map(|i| i.score).collect::<Vec<_>>(), [1.0, 1.0]);
    assert_eq!(score.accuracy, 1.0);
    assert_eq!(asked_flaky.load(Ordering::SeqCst), 2, "the unusable reply is re-asked once");
    assert_eq!(srv.seen.lock().unwrap().len(), 5);
    // Re-grading the same answers is free: every reply comes from the cache.
    let again = judged::grade_healthbench(&client, &examples, &answers).unwrap();
    assert_eq!(again.1.accuracy, 1.0);
    assert_eq!(srv.seen.lock().unwrap().len(), 5);
}

fn arena_questions(n: usize) -> (Vec<ArenaQuestion>, std::collections::HashMap<String, String>, Vec<String>) {
    let qs: Vec<ArenaQuestion> =
        (0..n).map(|i| ArenaQuestion { uid: format!("u{i}"), category: "creative_writing".into(), subcategory: None, prompt: format!("Write {i}") }).collect();
    let baseline = qs.iter().map(|q| (q.uid.clone(), format!("BASE {}", q.uid))).collect();
    let answers = qs.iter().map(|q| format!("CAND {}", q.uid)).collect();
    (qs, baseline, answers)
}

/// An endpoint that is down (500 on every request) fails the evaluation; it
/// is never a score of 0. Once one request has run out of retries the others
/// stop asking, so the outage costs one request's retries, not every one's.
#[test]
fn a_judge_outage_fails_the_evaluation_and_stops_asking() {
    let srv = serve_fn(200, |_| status(500));
    let (qs, baseline, answers) = arena_questions(10);
    let mut cfg = config(&srv.url, None);
    cfg.concurrency = 1;
    let client = JudgeClient::new(cfg);
    let err = judged::judge_arena(&client, &qs, &baseline, &answers).unwrap_err().to_string();
    assert!(err.contains("a judge request failed") && err.contains("HTTP 500"), "{err}");
    let asked = srv.seen.lock().unwrap().len();
    assert_eq!(asked, 4, "one request's 1 + 3 retries, then nothing: {asked}");
}

/// A refused key is not retried and fails the evaluation with the server's word.
#[test]
fn a_refused_key_fails_the_evaluation_at_once() {
    let srv = serve_fn(50, |_| status(401));
    let (qs, baseline, answers) = arena_questions(3);
    let client = JudgeClient::new(config(&srv.url, None));
    let err = judged::judge_arena(&client, &qs, &baseline, &answers).unwrap_err().to_string();
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(srv.seen.lock().unwrap().len() <= 4, "a 401 is not retried");
}

/// Replies that are never in the verdict format are a broken judge, not a
/// candidate that lost every game; nothing is scored.
#[test]
fn a_judge_that_never_gives_a_verdict_fails_the_evaluation() {
    let srv = serve_fn(50, |_| ok("I would rather not say."));
    let (qs, baseline, answers) = arena_questions(3);
    let client = JudgeClient::new(config(&srv.url, None));
    let err = judged::judge_arena(&client, &qs, &baseline, &answers).unwrap_err().to_string();
    assert!(err.contains("none of the judge's 6 replies has a verdict"), "{err}");
}

/// The same for the HealthBench grader: replies without `criteria_met`, even
/// after the reference's re-asks, are an error; so is an outage.
#[test]
fn a_grader_without_json_or_reachable_fails_the_evaluation() {
    let item = RubricItem { criterion: "asks about severity".into(), points: 5.0, tags: vec![] };
    let examples = vec![HealthExample { prompt_id: "e1".into(), prompt: vec![Message::user("I have a headache")], rubrics: vec![item], example_tags: vec![] }];
    let answers = vec!["Drink water.".to_string()];
    let srv = serve_fn(50, |_| ok("met, I suppose"));
    let err = judged::grade_healthbench(&JudgeClient::new(config(&srv.url, None)), &examples, &answers).unwrap_err().to_string();
    assert!(err.contains("has `criteria_met`"), "{err}");
    let down = serve_fn(50, |_| status(503));
    let err = judged::grade_healthbench(&JudgeClient::new(config(&down.url, None)), &examples, &answers).unwrap_err().to_string();
    assert!(err.contains("a judge request failed") && err.contains("HTTP 503"), "{err}");
}

/// Retry-After is the server's to choose: an absurd one is capped at
/// max_backoff, never a panic.
#[test]
fn an_absurd_retry_after_is_capped_not_a_panic() {
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    let srv = serve_fn(10, move |_| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply { status: 429, headers: vec![("Retry-After", "1e20".into())], body: "{}".into(), delay: Duration::ZERO }
        } else {
            ok("fine")
        }
    });
    let mut cfg = config(&srv.url, None);
    cfg.max_backoff = Duration::from_millis(50);
    let started = Instant::now();
    let reply = JudgeClient::new(cfg).complete(&msgs("hi")).unwrap();
    assert_eq!((reply.content.as_str(), reply.attempts), ("fine", 2));
    assert!(started.elapsed() < Duration::from_secs(10));
}
