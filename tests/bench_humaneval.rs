//! HumanEval scoring and the sandbox that runs model-written code.

mod bench_common;
use bench_common::{figure, run_check};
use ptb_bench::BenchId;
use ptb_bench::humaneval::{self, HumanEvalItem};
use ptb_bench::sandbox::{self, SandboxOptions};
use std::time::{Duration, Instant};

#[test]
fn canonical_solutions_pass_and_corrupted_fail() {
    let Some(r) = run_check(BenchId::HumanEval, None) else {
        return;
    };
    assert_eq!(figure(&r, "canonical solutions pass"), "164/164", "{r}");
    assert_eq!(figure(&r, "corrupted solutions fail"), "164/164", "{r}");
    assert_eq!(figure(&r, "infinite loop killed"), "1/1", "{r}");
}

fn toy() -> HumanEvalItem {
    HumanEvalItem {
        task_id: "toy/0".into(),
        prompt: "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n".into(),
        canonical_solution: "    return a + b\n".into(),
        test: "def check(candidate):\n    assert candidate(2, 3) == 5\n".into(),
        entry_point: "add".into(),
    }
}

#[test]
fn fenced_model_answer_is_extracted_and_run() {
    let item = toy();
    let answers = [
        "Sure!\n```python\ndef add(a, b):\n    return a + b\n```".to_string(),
        "```python\ndef add(a, b):\n    return a - b\n```".to_string(),
        "    return a + b\n".to_string(),
        "    return a + b\0\n".to_string(),
    ];
    let items = vec![item.clone(), item.clone(), item.clone(), item];
    let got = humaneval::score_many(&items, &answers, &SandboxOptions::default(), 2).unwrap();
    assert_eq!(got.iter().map(|r| r.passed).collect::<Vec<_>>(), [true, false, true, false]);
    assert!(got[1].stderr_tail.contains("AssertionError"), "{}", got[1].stderr_tail);
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("grandchild-alive");
    // The forked grandchild would write the marker after 3 s if it survived.
    let code = format!(
        "import os, time\nif os.fork() == 0:\n    time.sleep(3)\n    open({:?}, 'w').write('x')\n    os._exit(0)\nwhile True: pass\n",
        marker.to_str().unwrap()
    );
    let opts = SandboxOptions { timeout: Duration::from_secs(1), ..SandboxOptions::default() };
    let t0 = Instant::now();
    let r = sandbox::run_python(&code, &opts).unwrap();
    assert!(r.timed_out && !r.passed);
    assert!(t0.elapsed() < Duration::from_secs(5), "took {:?}", t0.elapsed());
    std::thread::sleep(Duration::from_millis(3500));
    assert!(!marker.exists(), "a child of the timed-out program survived the kill");
}

#[test]
fn memory_limit_stops_huge_allocations() {
    let opts = SandboxOptions { memory_bytes: 512 << 20, ..SandboxOptions::default() };
    let r = sandbox::run_python("x = bytearray(2 * 1024 ** 3)\n", &opts).unwrap();
    assert!(!r.passed && r.stderr_tail.contains("MemoryError"), "{r:?}");
}

#[test]
fn network_is_unreachable_when_isolation_is_available() {
    if !sandbox::network_isolation_available() {
        // Documented: without user namespaces the sandbox cannot cut the
        // network; `require_no_network` turns that into an error.
        let opts = SandboxOptions { require_no_network: true, ..SandboxOptions::default() };
        assert!(sandbox::run_python("pass", &opts).is_err());
        return;
    }
    // Even loopback is down in a fresh network namespace; a listener the test
    // opens on the host's 127.0.0.1 cannot be reached from inside.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let code = format!("import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n");
    let r = sandbox::run_python(&code, &SandboxOptions::default()).unwrap();
    assert!(r.network_isolated);
    assert!(!r.passed, "connected to the host from inside the sandbox");
    assert!(r.stderr_tail.contains("Error"), "{}", r.stderr_tail);
}

#[test]
fn environment_is_scrubbed_and_cwd_is_private() {
    let code = "import os, sys\nassert 'CARGO' not in os.environ, 'env leaked'\nassert os.listdir('.') in ([], ['.stderr']), os.listdir('.')\n";
    let r = sandbox::run_python(code, &SandboxOptions::default()).unwrap();
    assert!(r.passed, "{}", r.stderr_tail);
}
