//! A local stage's processes end with the stage, as an attacker would test
//! it: a `setsid` daemon and a double-forked child that each append to a
//! file every 100 ms must stop when the stage ends (success and budget
//! kill), and a background child holding stdout must not keep ptb waiting.
//! Both containment modes: the PID namespace and the token fallback.

mod support;

use ptb_core::spec::ExecutorKind;
use ptb_exec::contain::Containment;
use ptb_exec::local::LocalExecutor;
use ptb_exec::{Executor, StageStatus};
use std::path::Path;
use std::time::Duration;
use support::*;

/// Processes whose command line carries `marker`.
fn with_marker(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline"))
            && cmd.windows(marker.len()).any(|w| w == marker.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

fn kill_all(marker: &str) {
    for pid in with_marker(marker) {
        // SAFETY: plain syscall on a pid we found.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
}

fn len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// A stage that starts a `setsid` daemon and a double-forked child, each
/// appending to its own file every 100 ms, then runs `rest`.
fn escapees(dir: &Path, marker: &str, rest: &str) -> String {
    let (a, b) = (dir.join("daemon.txt"), dir.join("orphan.txt"));
    format!(
        r#"setsid sh -c 'while :; do echo d >> {a}; sleep 0.1; done # {marker}' </dev/null >/dev/null 2>&1 &
( sh -c 'while :; do echo o >> {b}; sleep 0.1; done # {marker}' </dev/null >/dev/null 2>&1 & ) 
while [ ! -s {a} ] || [ ! -s {b} ]; do sleep 0.05; done
echo started
{rest}"#,
        a = a.display(),
        b = b.display()
    )
}

/// After the stage: nothing with the marker runs, and the files stop growing.
fn assert_all_gone(dir: &Path, marker: &str, what: &str) {
    let survivors = with_marker(marker);
    kill_all(marker);
    assert!(survivors.is_empty(), "{what}: processes outlived the stage: {survivors:?}");
    let (a, b) = (dir.join("daemon.txt"), dir.join("orphan.txt"));
    let before = (len(&a), len(&b));
    assert!(before.0 > 0 && before.1 > 0, "{what}: the escapees never ran");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!((len(&a), len(&b)), before, "{what}: the files kept growing");
}

fn marker(tag: &str) -> String {
    format!("ptb-contain-{tag}-{}", std::process::id())
}

async fn run(mode: Containment, script: &str, f: impl FnOnce(&mut ptb_exec::StageJob)) -> (ptb_exec::StageOutcome, Scratch) {
    let s = Scratch::new();
    let mut j = job(&s, ExecutorKind::Local, script);
    f(&mut j);
    let o = LocalExecutor::with_containment(mode).run(&j, &Lines::default()).await.unwrap();
    (o, s)
}

const MODES: [Containment; 2] = [Containment::Namespace, Containment::Token];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_end_with_a_stage_that_succeeds() {
    for mode in MODES {
        let m = marker(&format!("ok-{mode:?}"));
        let dir = tempfile::tempdir().unwrap();
        let (o, s) = run(mode, &escapees(dir.path(), &m, "exit 0"), |_| {}).await;
        assert_eq!(o.status, StageStatus::Success, "{mode:?}: {}", s.log());
        assert!(s.log().contains("started"));
        assert_all_gone(dir.path(), &m, &format!("{mode:?}, after success"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_end_with_a_budget_kill_and_the_outcome_stays_budget_exhausted() {
    for mode in MODES {
        let m = marker(&format!("budget-{mode:?}"));
        let dir = tempfile::tempdir().unwrap();
        let (o, s) = run(mode, &escapees(dir.path(), &m, "echo partial > \"$PTB_OUT/x\"; sleep 600"), |j| {
            j.budget = Duration::from_secs(2);
            j.grace = Duration::from_secs(1);
        })
        .await;
        assert_eq!(o.status, StageStatus::BudgetExhausted, "{mode:?}: {}", s.log());
        assert_eq!(std::fs::read_to_string(s.path("out/x")).unwrap(), "partial\n", "output kept at the deadline");
        assert_all_gone(dir.path(), &m, &format!("{mode:?}, after the budget kill"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_at_the_deadline_reaches_the_stage_first() {
    // The stage's handler runs (and may save a checkpoint) before SIGKILL.
    for mode in MODES {
        let script = r#"trap 'echo saved > "$PTB_OUT/ckpt"; exit 0' TERM; echo up; while :; do sleep 0.1; done"#;
        let (o, s) = run(mode, script, |j| {
            j.budget = Duration::from_secs(1);
            j.grace = Duration::from_secs(20);
        })
        .await;
        assert_eq!(o.status, StageStatus::BudgetExhausted, "{mode:?}");
        assert_eq!(std::fs::read_to_string(s.path("out/ckpt")).unwrap_or_default(), "saved\n", "{mode:?}: no SIGTERM before the kill: {}", s.log());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_child_holding_stdout_does_not_keep_ptb_waiting() {
    for mode in MODES {
        let m = marker(&format!("stdout-{mode:?}"));
        // `env -i` scrubs the environment (and its token): in the fallback
        // mode nothing can find this one, so only the drain bound ends the wait.
        let script = format!("env -i setsid sh -c 'while :; do sleep 1; done # {m}' & echo bye");
        let run = run(mode, &script, |_| {});
        let (o, s) = tokio::time::timeout(Duration::from_secs(120), run).await.unwrap_or_else(|_| {
            kill_all(&m);
            panic!("{mode:?}: the stage's command exited but ptb kept waiting for its output")
        });
        assert_eq!(o.status, StageStatus::Success, "{mode:?}");
        assert!(s.log().contains("bye"));
        let survivors = with_marker(&m);
        kill_all(&m);
        if mode == Containment::Namespace {
            assert!(survivors.is_empty(), "a scrubbed daemon escaped the PID namespace: {survivors:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_signals_pass_through_the_namespace() {
    for mode in MODES {
        let (o, _) = run(mode, "exit 7", |_| {}).await;
        assert_eq!((o.status, o.exit_code, o.signal), (StageStatus::Failed, Some(7), None), "{mode:?}");
        let (o, _) = run(mode, "kill -KILL $$", |_| {}).await;
        assert_eq!((o.status, o.exit_code, o.signal), (StageStatus::Failed, None, Some(libc::SIGKILL)), "{mode:?}");
        let (o, s) = run(mode, "echo out; echo err >&2; cat \"$PTB_INPUT_DATA/hello.txt\"", |_| {}).await;
        assert_eq!(o.status, StageStatus::Success, "{mode:?}");
        assert!(s.log().contains("out") && s.log().contains("err") && s.log().contains("hello from the input"), "{}", s.log());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_mode_really_is_a_namespace() {
    // pid 2 under an init of ptb's: the stage's shell sees itself as 2.
    let (o, s) = run(Containment::Namespace, "echo \"pid=$$\"", |_| {}).await;
    assert_eq!(o.status, StageStatus::Success);
    assert!(s.log().contains("pid=2"), "not in a PID namespace: {}", s.log());
}
