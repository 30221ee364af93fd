//! What the model (and the judge) is shown: the exact request each prompt
//! builder produces, checked against the reference harness's strings.

mod bench_common;
use ptb_bench::chat::{Message, Role};
use ptb_bench::gpqa::{self, ChoiceOrder, GpqaItem};
use ptb_bench::{arena, bfcl, healthbench, humaneval, math};
use std::path::Path;

fn data_dir() -> Option<std::path::PathBuf> {
    bench_common::fetched_data(&["gsm8k/SHA256SUMS", "gsm8k/gsm8k_test.jsonl"])
}

#[test]
fn gsm8k_request_is_ten_shot_system_plus_instruction() {
    let Some(dir) = data_dir() else { return };
    let items = math::load_gsm8k(&dir).unwrap();
    let fewshot = math::load_gsm8k_fewshot(&dir).unwrap();
    assert_eq!(items.len(), 1319);
    let req = math::gsm8k_request(&items[0], &fewshot);
    assert_eq!(req.max_tokens, 4000);
    assert_eq!(req.messages.len(), 2);
    assert_eq!(req.messages[0].role, Role::System);
    let sys = &req.messages[0].content;
    assert_eq!(sys.matches("\n\nReasoning:\n").count(), 10);
    assert_eq!(sys.matches("\n\nANSWER: ").count(), 10);
    assert!(sys.starts_with(&fewshot[0].question), "few-shot block starts with the first example's question");
    let user = &req.messages[1].content;
    assert_eq!(
        user,
        &format!(
            "Solve the following math problem step by step. The last line of your response should be of the form \"ANSWER: $ANSWER\" (without quotes) where $ANSWER is the answer to the problem.\n\n{}\n\nRemember to put your answer on its own line at the end in the form \"ANSWER: $ANSWER\" (without quotes) where $ANSWER is the answer to the problem, and you do not need to use a \\boxed command.\n\nReasoning:",
            items[0].question
        )
    );
}

#[test]
fn aime_request_has_no_system_prompt_and_16k_tokens() {
    let Some(dir) = data_dir() else { return };
    let items = math::load_aime(&dir).unwrap();
    assert_eq!(items.len(), 30);
    assert!(items.iter().all(|i| i.target.parse::<u32>().is_ok_and(|n| n < 1000)), "AIME answers are integers 0-999");
    let req = math::aime_request(&items[0]);
    assert_eq!((req.messages.len(), req.max_tokens), (1, 16000));
    // inspect_evals' AIME template breaks the line after the first sentence
    // (GSM8K's does not).
    assert_eq!(
        req.messages[0].content,
        format!(
            "Solve the following math problem step by step.\nThe last line of your response should be of the form \"ANSWER: $ANSWER\" (without quotes) where $ANSWER is the answer to the problem.\n\n{}\n\nRemember to put your answer on its own line at the end in the form \"ANSWER: $ANSWER\" (without quotes) where $ANSWER is the answer to the problem, and you do not need to use a \\boxed command.",
            items[0].question
        )
    );
}

#[test]
fn gpqa_prompt_matches_inspect_multiple_choice_cot() {
    let item = GpqaItem { id: "r1".into(), question: "Q?".into(), choices: ["right".into(), "w1".into(), "w2".into(), "w3".into()] };
    let p = gpqa::present(&item, ChoiceOrder::Original);
    let req = gpqa::request(&item, &p);
    assert_eq!(
        req.messages[0].content,
        "Answer the following multiple choice question. The last line of your response should be of the following format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of A,B,C,D. Think step by step before answering.\n\nQ?\n\nA) right\nB) w1\nC) w2\nD) w3"
    );
    assert_eq!((p.target, req.max_tokens), ('A', 16000));
    // Seeded shuffles are recorded and reproducible; unseeded ones (the reference's) are not.
    let s = gpqa::present(&item, ChoiceOrder::Seeded(7));
    assert_eq!(s, gpqa::present(&item, ChoiceOrder::Seeded(7)));
    assert_eq!(s.choices[(s.target as u8 - b'A') as usize], "right");
}

#[test]
fn gpqa_fixture_loads_quoted_multiline_fields() {
    let items = gpqa::load_csv(Path::new("tests/fixtures/bench/gpqa_fixture.csv")).unwrap();
    assert_eq!(items.len(), 6);
    assert_eq!(items[2].id, "recFIX003");
    assert!(items[2].question.contains("spanning\ntwo lines, with \"quotes\""));
    assert_eq!(items[2].choices[3], "Yellow, mostly");
    let err = gpqa::load_csv(Path::new("tests/fixtures/bench/nope.csv")).unwrap_err();
    assert!(err.to_string().contains("nope.csv"));
}

#[test]
fn humaneval_prompt_is_instruction_plus_signature() {
    let Some(dir) = data_dir() else { return };
    let items = humaneval::load(&dir).unwrap();
    assert_eq!(items.len(), 164);
    let req = humaneval::request(&items[0]);
    assert_eq!(req.max_tokens, 4000);
    assert_eq!(
        req.messages[0].content,
        format!(
            "\nRead the following function signature and docstring, and fully implement\nthe function described. Your response should only contain the code for\nthis function.\n\n{}",
            items[0].prompt
        )
    );
}

#[test]
fn bfcl_exec_simple_request_attaches_tools_as_json_schema() {
    let Some(dir) = data_dir() else { return };
    let items = bfcl::load(&dir, bfcl::Category::ExecSimple).unwrap();
    assert_eq!(items.len(), 100);
    let req = bfcl::request(&items[0]);
    assert_eq!(req.max_tokens, 16000);
    assert_eq!(req.messages[0].role, Role::User);
    assert_eq!(req.tools[0].name, "calc_binomial_probability");
    assert_eq!(req.tools[0].parameters["type"], "object");
    assert_eq!(req.tools[0].parameters["properties"]["p"]["type"], "number");
    let bfcl::Truth::Call(t) = &items[0].truth else { panic!("exec_simple truth is a call") };
    assert_eq!(t.function, "calc_binomial_probability");
    assert_eq!(serde_json::Value::Object(t.arguments.clone()), serde_json::json!({"n": 20, "k": 5, "p": 0.6}));
}

#[test]
fn arena_games_swap_positions() {
    let [g1, g2] = arena::judge_games("Write a poem.", "BASE", "CAND");
    assert_eq!(g1[0], Message::system(arena::JUDGE_SYSTEM_PROMPT));
    assert!(arena::JUDGE_SYSTEM_PROMPT.contains("[[A>>B]]") && !arena::JUDGE_SYSTEM_PROMPT.contains("generating your own answer"));
    assert_eq!(
        g1[1].content,
        "<|User Prompt|>\nWrite a poem.\n\n<|The Start of Assistant A's Answer|>\nBASE\n<|The End of Assistant A's Answer|>\n\n<|The Start of Assistant B's Answer|>\nCAND\n<|The End of Assistant B's Answer|>"
    );
    assert!(g2[1].content.contains("Assistant A's Answer|>\nCAND\n"));
}

#[test]
fn arena_questions_are_the_250_creative_writing_prompts() {
    let Some(dir) = data_dir() else { return };
    let qs = arena::load_questions(&dir).unwrap();
    assert_eq!(qs.len(), 250);
    assert!(qs.iter().all(|q| q.category == "creative_writing"));
    assert_eq!(arena::answer_request(&qs[0]).max_tokens, 16384);
}

#[test]
fn healthbench_grader_prompt_embeds_conversation_and_rubric() {
    let Some(dir) = data_dir() else { return };
    let exs = healthbench::load(&dir, healthbench::Source::Package500).unwrap();
    let ex = &exs[0];
    let p = healthbench::grader_prompt(&ex.prompt, "MODEL REPLY", &ex.rubrics[0]);
    assert!(p.starts_with("Your job is to look at a conversation and a rubric item"));
    assert!(p.contains(&format!("# Conversation\nuser: {}", ex.prompt[0].content)) || ex.prompt[0].role != Role::User);
    assert!(p.contains("\n\nassistant: MODEL REPLY\n\n# Rubric item\n["));
    assert!(p.ends_with("Return just the json object in markdown format. Do not include any other text in the response."));
    assert_eq!(healthbench::answer_request(ex).messages, ex.prompt);
}

/// The reference-only files (`fetch-data.sh --posttrainbench`) are optional:
/// CI cannot fetch them, so this checks them only where they were copied.
#[test]
fn reference_only_files_when_present_match_the_paper() {
    let dir = ptb_bench::data::data_dir(None);
    if !dir.join("healthbench/healthbench_easy245.jsonl").is_file() {
        eprintln!("skipped: no healthbench_easy245.jsonl (fetch-data.sh --posttrainbench DIR)");
        return;
    }
    let easy = healthbench::load(&dir, healthbench::Source::Easy245).unwrap();
    assert_eq!(easy.len(), 245);
    assert!(easy.iter().all(|e| e.is_easy()), "every example meets the paper's Easy definition");
    let baseline = ptb_bench::judged::load_arena_baseline(&dir, ptb_bench::arena::BASELINE_MODEL).unwrap();
    let qs = arena::load_questions(&dir).unwrap();
    assert!(qs.iter().all(|q| baseline.contains_key(&q.uid)), "the baseline answers every question");
}
