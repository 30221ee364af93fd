//! A killed `ptb apply` leaves its containers running; the next start
//! reaps them, and leaves alone those of an apply that is still alive.

mod support;

use ptb_core::spec::ExecutorKind;
use ptb_exec::Executor;
use ptb_exec::docker::OwnerToken;
use std::time::Duration;
use support::*;

const CHILD: &str = "PTB_TEST_ORPHAN_CHILD";

/// Not a test on its own: the body of the process the test below kills,
/// which runs it with `--ignored` and the key in `PTB_TEST_ORPHAN_CHILD`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process of killed_apply_leaves_no_orphan_after_the_next_start"]
async fn orphan_child() {
    let key = std::env::var(CHILD).expect("run by killed_apply_leaves_no_orphan_after_the_next_start, which sets PTB_TEST_ORPHAN_CHILD");
    let s = Scratch::new();
    let mut j = job(&s, ExecutorKind::Docker, "sleep 300");
    j.key = key;
    let _ = docker().await.run(&j, &Lines::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_apply_leaves_no_orphan_after_the_next_start() {
    let ex = docker().await;
    let key = format!("orphan{}", std::process::id());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "orphan_child", "--ignored", "--nocapture"])
        .env(CHILD, &key)
        .spawn()
        .unwrap();
    let filter = format!("label=ptb.key={key}");
    let mut id = String::new();
    for _ in 0..100 {
        id = docker_cli(&["ps", "-q", "--filter", &filter]);
        if !id.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!id.is_empty(), "the child never started its container");
    // SIGKILL: no destructor, no cleanup; what `kill -9 ptb` does.
    child.kill().unwrap();
    child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(docker_cli(&["ps", "-q", "--filter", &filter]), id, "the container should have outlived its owner");

    // A container of a live owner (this process) must survive the reap.
    let live = docker_cli(&[
        "run",
        "-d",
        "--label",
        &format!("ptb.key=live{key}"),
        "--label",
        &format!("ptb.owner={}", OwnerToken::current().0),
        IMAGE,
        "sleep",
        "60",
    ]);

    let reaped = ex.reap_orphans().await.unwrap();
    let live_left = docker_cli(&["ps", "-q", "--filter", &format!("label=ptb.key=live{key}")]);
    docker_cli(&["rm", "-f", &live]);
    assert!(reaped.iter().any(|r| r.starts_with(&id)), "{id} not in {reaped:?}");
    assert_eq!(docker_cli(&["ps", "-aq", "--filter", &filter]), "", "orphan still there");
    assert!(!live_left.is_empty(), "the reap removed a container whose owner is alive");
    assert!(!reaped.iter().any(|r| r.starts_with(&live)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_stage_removes_its_container() {
    let ex = docker().await;
    let s = Scratch::new();
    let mut j = job(&s, ExecutorKind::Docker, "sleep 300");
    j.key = format!("abandoned{}", std::process::id());
    let filter = format!("label=ptb.key={}", j.key);
    // What an interrupted apply does to its running stages: drops them.
    let r = tokio::time::timeout(Duration::from_secs(2), ex.run(&j, &Lines::default())).await;
    assert!(r.is_err(), "the stage should still have been running");
    for _ in 0..50 {
        if docker_cli(&["ps", "-aq", "--filter", &filter]).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("container of a dropped stage still exists after 5 s");
}
