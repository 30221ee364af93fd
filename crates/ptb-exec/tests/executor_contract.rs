//! One contract, two runtimes: every case runs against the local-process
//! executor and the Docker executor with the same script and assertions.

mod support;

use ptb_core::spec::ExecutorKind;
use ptb_exec::local::LocalExecutor;
use ptb_exec::{Executor, StageStatus};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

async fn executor(kind: ExecutorKind) -> Box<dyn Executor> {
    match kind {
        ExecutorKind::Docker => Box::new(docker().await),
        _ => Box::new(LocalExecutor::default()),
    }
}

/// Generates `local` and `docker` tests for a case `async fn(ExecutorKind)`.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() { super::$case(ExecutorKind::Local).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn docker() { super::$case(ExecutorKind::Docker).await }
        }
    )*};
}

contract!(
    exit_code_and_logs,
    outputs_and_inputs,
    budget_kills_and_keeps_partial_output,
    sigterm_reaches_the_stage,
    secrets_never_reach_the_log,
    environment_is_present
);

async fn exit_code_and_logs(kind: ExecutorKind) {
    let s = Scratch::new();
    // `split` arrives in two writes: one line, not two.
    let j = job(&s, kind, "echo to-stdout; echo to-stderr >&2; printf 'sp'; sleep 0.3; echo lit; printf 'no newline'; exit 3");
    let lines = Lines::default();
    let o = executor(kind).await.run(&j, &lines).await.unwrap();
    assert_eq!(o.status, StageStatus::Failed);
    assert_eq!(o.exit_code, Some(3));
    let log = s.log();
    for l in ["to-stdout", "to-stderr", "split", "no newline"] {
        assert_eq!(log.lines().filter(|x| *x == l).count(), 1, "{l:?} not exactly once in the log:\n{log}");
        assert!(lines.all().iter().any(|x| x == l), "sink lacks {l:?}: {:?}", lines.all());
    }

    let s = Scratch::new();
    let o = executor(kind).await.run(&job(&s, kind, "true"), &Lines::default()).await.unwrap();
    assert_eq!((o.status, o.exit_code), (StageStatus::Success, Some(0)));
}

async fn outputs_and_inputs(kind: ExecutorKind) {
    let s = Scratch::new();
    let j = job(
        &s,
        kind,
        r#"mkdir -p "$PTB_OUT/final_model" && cat "$PTB_INPUT_DATA/hello.txt" > "$PTB_OUT/final_model/copy.txt" && echo scratch > ./in-work.txt"#,
    );
    let o = executor(kind).await.run(&j, &Lines::default()).await.unwrap();
    assert_eq!(o.status, StageStatus::Success, "log:\n{}", s.log());
    assert_eq!(std::fs::read_to_string(s.path("out/final_model/copy.txt")).unwrap(), "hello from the input\n");
    assert!(s.path("work/in-work.txt").exists(), "the working directory is the job's work_dir");
    // The host can move the output, as the store does when it commits it.
    std::fs::rename(s.path("out"), s.path("moved")).unwrap();
    assert!(s.path("moved/final_model/copy.txt").exists());
}

async fn budget_kills_and_keeps_partial_output(kind: ExecutorKind) {
    let s = Scratch::new();
    // Ignores SIGTERM, so only the SIGKILL after the grace can end it.
    let mut j = job(&s, kind, r#"echo partial > "$PTB_OUT/partial.txt"; echo started; trap '' TERM; sleep 60; echo never"#);
    j.budget = Duration::from_secs(2);
    j.grace = Duration::from_secs(1);
    let t = Instant::now();
    let o = executor(kind).await.run(&j, &Lines::default()).await.unwrap();
    let took = t.elapsed();
    assert_eq!(o.status, StageStatus::BudgetExhausted);
    assert!(took >= j.budget + j.grace, "killed before deadline + grace: {took:?}");
    // The stage would sleep 60 s; 10 s of slack leaves room for a loaded machine (a container's
    // kill and removal once took over 2 s while the rest of the suite ran) and still fails
    // where the kill does not happen.
    assert!(took <= j.budget + j.grace + Duration::from_secs(10), "not killed within 10 s of deadline + grace: {took:?}");
    assert_eq!(std::fs::read_to_string(s.path("out/partial.txt")).unwrap(), "partial\n", "partial output is kept");
    let log = s.log();
    assert!(log.contains("started") && !log.contains("never"), "{log}");
}

async fn sigterm_reaches_the_stage(kind: ExecutorKind) {
    let s = Scratch::new();
    let mut j = job(&s, kind, r#"trap 'echo got-term; echo saved > "$PTB_OUT/saved.txt"; exit 7' TERM; echo ready; while true; do sleep 0.1; done"#);
    j.budget = Duration::from_secs(2);
    j.grace = Duration::from_secs(10);
    let t = Instant::now();
    let o = executor(kind).await.run(&j, &Lines::default()).await.unwrap();
    assert_eq!(o.status, StageStatus::BudgetExhausted);
    assert!(t.elapsed() < Duration::from_secs(8), "the stage had SIGTERM and exited; no need to wait the grace: {:?}", t.elapsed());
    assert!(s.log().contains("got-term"), "{}", s.log());
    assert!(s.path("out/saved.txt").exists(), "what the stage saved on SIGTERM is kept");
}

async fn secrets_never_reach_the_log(kind: ExecutorKind) {
    let s = Scratch::new();
    let secret = "sk-ant-test-0123456789abcdef";
    let mut j = job(&s, kind, r#"echo "key=$API_KEY"; echo "$API_KEY" >&2; test "$API_KEY" = sk-ant-test-0123456789abcdef && echo secret-present"#);
    j.secrets.insert("API_KEY".into(), secret.into());
    let lines = Lines::default();
    let o = executor(kind).await.run(&j, &lines).await.unwrap();
    assert_eq!(o.status, StageStatus::Success, "{}", s.log());
    let log = s.log();
    assert!(log.contains("secret-present"), "the stage must see the secret: {log}");
    assert!(!log.contains(secret), "secret in log: {log}");
    assert!(log.contains("key=[REDACTED:API_KEY]"), "{log}");
    assert!(lines.all().iter().all(|l| !l.contains(secret)));
    let everything = walk_text(s.dir.path());
    assert!(!everything.contains(secret), "secret written to a file under the job's directories");
}

fn walk_text(dir: &std::path::Path) -> String {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

async fn environment_is_present(kind: ExecutorKind) {
    let s = Scratch::new();
    let mut j = job(&s, kind, "env");
    std::fs::write(s.path("task.md"), "task").unwrap();
    j.inputs.push(ptb_exec::JobInput { name: "task.md".into(), path: s.path("task.md") });
    j.env.insert("MY_SETTING".into(), "value with spaces".into());
    j.budget = Duration::from_secs(120);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let o = executor(kind).await.run(&j, &Lines::default()).await.unwrap();
    assert_eq!(o.status, StageStatus::Success);
    let log = s.log();
    let var = |k: &str| log.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or_else(|| panic!("{k} missing:\n{log}")).to_string();
    assert_eq!(var("MY_SETTING"), "value with spaces");
    assert_eq!(var("PTB_SEED"), "1");
    assert_eq!(var("PTB_BUDGET_S"), "120");
    assert_eq!(var("PTB_CELL"), "m/b/a/seed=1");
    assert_eq!(var("PTB_STAGE"), "agent");
    let deadline: u64 = var("PTB_DEADLINE").parse().unwrap();
    assert!((now + 119..=now + 125).contains(&deadline), "deadline {deadline} vs now {now}");
    let out = var("PTB_OUT");
    let input = var("PTB_INPUT_DATA");
    let task = var("PTB_INPUT_TASK_MD");
    match kind {
        ExecutorKind::Docker => assert_eq!((out.as_str(), input.as_str(), task.as_str()), ("/output", "/inputs/data", "/inputs/task.md")),
        _ => assert_eq!(
            (out.as_str(), input.as_str(), task.as_str()),
            (s.path("out").to_str().unwrap(), s.path("in-data").to_str().unwrap(), s.path("task.md").to_str().unwrap())
        ),
    }
}
