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

/// `kill -9` while stages are being recorded in the journal: the next
/// command folds the journal in, no recorded stage runs again, and the
/// final lockfile is byte-identical to one written in a single
/// uninterrupted pass over the same results.
#[test]
fn kill_9_mid_apply_leaves_a_journal_the_next_command_compacts() {
    let p = Project::demo();
    let counter = counted(&p, "0.2");
    let journal = ptb_core::lock::journal_path(&p.lockfile());
    let mut child =
        p.cmd(&["apply", "experiments/demo.kdl", "-j", "2"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    // Wait until a few stages are recorded (and the apply is not finished).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let recorded = std::fs::read(&journal).map(|b| b.windows(2).filter(|w| w == b"\n@").count()).unwrap_or(0);
        if recorded >= 5 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "apply finished before it was killed");
        assert!(std::time::Instant::now() < deadline, "no journal records appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    assert!(journal.exists(), "the killed apply left no journal");
    let in_journal = ptb_core::lock::Lockfile::load(&p.lockfile()).unwrap();
    let recorded_agents: Vec<String> = in_journal.cells.iter().filter(|(_, c)| c.stages.contains_key("agent")).map(|(id, _)| id.clone()).collect();
    assert!(!recorded_agents.is_empty());

    // `plan` reads the journal's records and folds them into the lockfile.
    let plan = p.ok(&["plan", "experiments/demo.kdl"]);
    assert!(!journal.exists(), "plan left the journal:\n{plan}");
    assert_eq!(ptb_core::lock::Lockfile::load_file(&p.lockfile()).unwrap(), in_journal, "compaction changed the records");

    let out = p.apply(&["-j", "2"]);
    assert!(out.contains("0 failed"), "{out}");
    assert!(!journal.exists());
    let runs = std::fs::read_to_string(&counter).unwrap();
    for cell in &recorded_agents {
        assert_eq!(runs.lines().filter(|l| l == cell).count(), 1, "{cell}'s agent was recorded before the kill but ran again:\n{runs}");
    }
    let resumed = p.lock_text();
    let lock = ptb_core::lock::parse(&resumed).unwrap();
    let stages: usize = lock.cells.values().map(|c| c.stages.values().filter(|s| s.status == ptb_core::status::StageStatus::Success).count()).sum();
    assert_eq!(stages, 52);

    // The same results recorded in one pass: from the store, into a fresh lockfile.
    std::fs::remove_file(p.lockfile()).unwrap();
    assert!(Project::ran(&p.apply(&[])).is_empty());
    assert_eq!(p.lock_text(), resumed, "the resumed lockfile differs from a one-pass lockfile of the same results");
}

#[test]
fn a_torn_or_garbage_journal_tail_is_ignored_with_a_note() {
    let p = Project::demo();
    p.apply(&["--cell", "tiny-a/arith/*/seed=1"]);
    let before = p.lock_text();
    let journal = ptb_core::lock::journal_path(&p.lockfile());
    for garbage in [&b"ptb-journal 1\n\n@400 0123456789abcdef\ncell \"tiny-a/ari"[..], b"\x00\xff not a journal at all", b"ptb-journal 1\n\n@"] {
        std::fs::write(&journal, garbage).unwrap();
        let o = p.run(&["plan", "experiments/demo.kdl"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(err.contains("ignored") && err.contains("demo.lock.journal"), "no note:\n{err}");
        assert!(!journal.exists());
        assert_eq!(p.lock_text(), before);
    }
    // apply too: it notes, then carries on.
    std::fs::write(&journal, b"ptb-journal 1\n\n@9 zz\ngarbage").unwrap();
    let out = p.apply(&["--cell", "tiny-a/arith/*/seed=1"]);
    assert!(out.contains("ignored"), "{out}");
    assert!(!journal.exists());
}

/// More store hits than apply records in one batch (256): after the
/// lockfile of a 270-stage apply is deleted, the next apply runs nothing
/// and rebuilds the lockfile from the store, byte for byte, every stage in it.
#[test]
fn a_deleted_lockfile_of_many_stages_is_rebuilt_whole_from_the_store() {
    let seeds: Vec<String> = (1..=90).map(|s| s.to_string()).collect();
    let spec = format!(
        "experiment demo\nmodel tiny-a path=\"../fixtures/demo/models/tiny-a\" arch=llama\nbenchmark arith data=\"../fixtures/demo/data/arith.jsonl\"\n\
         agent eager {{ command \"../scripts/demo/agent.sh\" \"0.5\"; }}\nstage agent budget=\"2m\"\n\
         stage judge budget=\"1m\" {{ command \"../scripts/demo/judge.sh\"; }}\nstage eval budget=\"1m\" {{ command \"../scripts/demo/eval.sh\"; }}\n\
         matrix {{\n    agents eager\n    seeds {}\n}}\n",
        seeds.join(" ")
    );
    let p = Project::with_spec(&spec);
    let out = p.apply(&["-j", "2"]);
    assert!(out.contains("270 ran (270 succeeded, 0 failed)"), "{out}");
    let whole = p.lock_text();
    std::fs::remove_file(p.lockfile()).unwrap();
    let again = p.apply(&["-j", "2"]);
    assert!(Project::ran(&again).is_empty(), "{again}");
    assert!(again.contains("0 ran") && again.contains("270 cached"), "{again}");
    assert_eq!(p.lock_text(), whole, "the lockfile rebuilt from the store differs");
}
