//! Killed and concurrent applies: the store holds whole entries or none,
//! the lockfile always parses, and no stage runs twice.

mod common;
use common::Project;
use std::time::Duration;

/// A spec whose agents take a little while and log each run to a file.
fn counted(p: &Project, sleep: &str) -> std::path::PathBuf {
    let counter = p.path().join("runs.txt");
    let wrapper = p.path().join("scripts/demo/counted-agent.sh");
    std::fs::write(&wrapper, "#!/bin/sh\necho \"$PTB_CELL\" >> \"$COUNTER\"\nexec \"$(dirname \"$0\")/agent.sh\" \"$@\"\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&wrapper).unwrap().permissions(), 0o755);
    std::process::Command::new("chmod").arg("+x").arg(&wrapper).status().unwrap();
    let spec = common::DEMO
        .replace(
            "agent eager { command \"../scripts/demo/agent.sh\" \"0.5\"; }",
            &format!("agent eager {{ command \"../scripts/demo/counted-agent.sh\" \"0.5\" \"{sleep}\"; env COUNTER=\"{}\"; }}", counter.display()),
        )
        .replace(
            "agent lazy { command \"../scripts/demo/agent.sh\" \"0.1\"; }",
            &format!("agent lazy {{ command \"../scripts/demo/counted-agent.sh\" \"0.1\" \"{sleep}\"; env COUNTER=\"{}\"; }}", counter.display()),
        );
    p.write_spec(&spec);
    counter
}

fn assert_store_whole(p: &Project) {
    for e in p.store_entries() {
        let d = p.path().join("store/v1").join(&e);
        assert!(d.join("meta.json").is_file(), "entry {e} has no meta.json");
        assert!(d.join("out").is_dir(), "entry {e} has no out/");
        assert!(d.join("log").is_file(), "entry {e} has no log");
    }
    if p.lockfile().exists() {
        ptb_core::lock::Lockfile::load(&p.lockfile()).expect("lockfile must always parse");
    }
}

#[test]
fn kill_9_at_random_moments_never_leaves_partial_entries() {
    let p = Project::demo();
    counted(&p, "0.3");
    // A fixed pseudo-random sequence, so a failure can be reproduced.
    let mut x: u64 = 0x2545F4914F6CDD1D;
    for round in 0..6 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let after = Duration::from_millis(100 + x % 1500);
        let mut child =
            p.cmd(&["apply", "experiments/demo.kdl", "-j", "2"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(after);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert_store_whole(&p);
        let verify = p.run(&["verify", "--store", "store"]);
        assert!(verify.status.success(), "round {round} (killed after {after:?}): verify failed: {}", String::from_utf8_lossy(&verify.stdout));
    }
    let out = p.apply(&["-j", "2"]);
    assert!(out.contains("0 failed"), "{out}");
    assert_store_whole(&p);
    let lock = ptb_core::lock::Lockfile::load(&p.lockfile()).unwrap();
    let stages: usize = lock.cells.values().map(|c| c.stages.values().filter(|s| s.status == ptb_core::status::StageStatus::Success).count()).sum();
    assert_eq!(stages, 52);
    // No build directory is left behind once an apply completes.
    let tmp: Vec<_> = std::fs::read_dir(p.path().join("store/v1/.tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    assert!(Project::ran(&p.apply(&[])).is_empty());
}

#[test]
fn two_concurrent_applies_run_each_stage_once() {
    let p = Project::demo();
    let counter = counted(&p, "0.1");
    let spawn =
        || p.cmd(&["apply", "experiments/demo.kdl", "-j", "2"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let runs = std::fs::read_to_string(&counter).unwrap();
    let mut lines: Vec<&str> = runs.lines().collect();
    let n = lines.len();
    lines.sort();
    lines.dedup();
    assert_eq!(n, lines.len(), "an agent stage ran twice:\n{runs}");
    assert_eq!(n, 16);
    // Between them, every stage is recorded exactly once as a success.
    let lock = ptb_core::lock::Lockfile::load(&p.lockfile()).unwrap();
    let stages: usize = lock.cells.values().map(|c| c.stages.values().filter(|s| s.status == ptb_core::status::StageStatus::Success).count()).sum();
    assert_eq!(stages, 52);
    assert!(Project::ran(&p.apply(&[])).is_empty());
}

#[test]
fn report_check_detects_a_stale_table() {
    let p = Project::demo();
    p.apply(&["-j", "2"]);
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    std::fs::copy(format!("{root}/templates/table.md.j2"), p.path().join("templates/table.md.j2")).unwrap();
    p.ok(&["report", "lockfiles/demo.lock", "--template", "templates/table.md.j2", "-o", "table.md"]);
    p.ok(&["report", "--check", "table.md"]);
    p.edit_spec("agent lazy { command \"../scripts/demo/agent.sh\" \"0.1\"; }", "agent lazy { command \"../scripts/demo/agent.sh\" \"0.3\"; }");
    p.apply(&["-j", "2"]);
    let o = p.run(&["report", "--check", "table.md"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("table.md is out of date"), "{err}");
}

#[test]
fn gc_removes_unreferenced_entries_and_verify_catches_tampering() {
    let p = Project::demo();
    p.apply(&["-j", "2"]);
    let before = p.store_entries().len();
    p.edit_spec(
        "stage eval budget=\"1m\" { command \"../scripts/demo/eval.sh\"; }",
        "stage eval budget=\"1m\" { command \"../scripts/demo/eval.sh\" \"v2\"; }",
    );
    p.apply(&["-j", "2"]);
    assert_eq!(p.store_entries().len(), before + 20);
    let dry = p.stdout(&["gc", "--store", "store", "--dry-run", "lockfiles/demo.lock"]);
    assert_eq!(dry.lines().filter(|l| l.starts_with("would remove v1/")).count(), 20, "{dry}");
    assert_eq!(p.store_entries().len(), before + 20, "dry run removed something");
    p.ok(&["gc", "--store", "store", "lockfiles/demo.lock"]);
    assert_eq!(p.store_entries().len(), before);
    assert!(Project::ran(&p.apply(&[])).is_empty(), "gc removed a referenced entry");
    p.ok(&["verify", "--store", "store"]);
    let victim = p.store_entries().into_iter().find(|e| e.ends_with("-agent")).unwrap();
    let f = p.path().join("store/v1").join(&victim).join("out/final_model/skill.txt");
    std::process::Command::new("chmod").arg("u+w").arg(&f).status().unwrap();
    std::fs::write(&f, "0.99\n").unwrap();
    let o = p.run(&["verify", "--store", "store"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("CHANGED v1/{victim}")));
}
