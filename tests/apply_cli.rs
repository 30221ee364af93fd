//! End-to-end behaviour of `ptb apply` / `plan` / `why` on the demo, as a
//! user sees it: what runs, what is cached, what the lockfile says.

mod common;
use common::Project;
use std::path::Path;

#[test]
fn first_apply_runs_everything_second_runs_nothing_and_lockfile_is_stable() {
    let p = Project::demo();
    let first = p.apply(&["-j", "2"]);
    assert_eq!(Project::ran(&first).len(), 52, "{first}");
    let lock1 = p.lock_text();
    let second = p.apply(&[]);
    assert!(Project::ran(&second).is_empty(), "second apply ran stages:\n{second}");
    assert!(second.contains("52 cached"), "{second}");
    assert!(second.contains("lockfile lockfiles/demo.lock unchanged"), "{second}");
    assert_eq!(lock1, p.lock_text(), "no-op apply changed the lockfile");
    let third = p.apply(&[]);
    assert!(Project::ran(&third).is_empty());
    assert_eq!(lock1, p.lock_text());
}

#[test]
fn editing_one_model_reruns_exactly_its_cells_and_why_names_the_field() {
    let p = Project::demo();
    p.apply(&["-j", "2"]);
    p.edit_spec("model tiny-b path=\"../fixtures/demo/models/tiny-b\" arch=llama", "model tiny-b path=\"../fixtures/demo/models/tiny-b\" arch=qwen3");
    let why = p.stdout(&["why", "experiments/demo.kdl", "tiny-b/arith/eager/seed=1"]);
    assert!(why.contains("input `model.arch` changed: llama → qwen3"), "{why}");
    let out = p.apply(&[]);
    let ran = Project::ran(&out);
    assert!(!ran.is_empty());
    assert!(ran.iter().all(|s| s.starts_with("tiny-b/")), "{ran:?}");
    // 2 benchmarks × (2 agents × 2 seeds × 3 stages + 1 base eval)
    assert_eq!(ran.len(), 26, "{ran:?}");
    let why = p.stdout(&["why", "experiments/demo.kdl", "tiny-b/arith/eager/seed=1"]);
    assert!(why.contains("up to date"), "{why}");
}

#[test]
fn changing_the_eval_command_reruns_only_eval_stages() {
    let p = Project::demo();
    p.apply(&["-j", "2"]);
    p.edit_spec(
        "stage eval budget=\"1m\" { command \"../scripts/demo/eval.sh\"; }",
        "stage eval budget=\"1m\" { command \"../scripts/demo/eval.sh\" \"--strict\"; }",
    );
    let plan = p.plan_json();
    for s in &plan {
        let expected = if s["stage"] == "eval" { "run" } else { "cached" };
        assert_eq!(s["action"], expected, "{s}");
    }
    let eval = plan.iter().find(|s| s["stage"] == "eval").unwrap();
    let msg = eval["reasons"][0]["message"].as_str().unwrap();
    assert!(msg.starts_with("input `command` changed"), "{msg}");
    assert_eq!(eval["reasons"][0]["kind"], "input_changed");
    assert_eq!(eval["reasons"][0]["field"], "command");
    let ran = Project::ran(&p.apply(&[]));
    assert_eq!(ran.len(), 20);
    assert!(ran.iter().all(|s| s.ends_with(" eval")), "{ran:?}");
}

#[test]
fn editing_a_stage_script_reruns_its_stages() {
    let p = Project::demo();
    p.apply(&["-j", "2"]);
    let judge = p.path().join("scripts/demo/judge.sh");
    let text = std::fs::read_to_string(&judge).unwrap();
    std::fs::write(&judge, text + "\n# a comment changes the content\n").unwrap();
    let why = p.stdout(&["why", "experiments/demo.kdl", "tiny-a/spell/lazy/seed=2"]);
    assert!(why.contains("input `script` changed: sha256:"), "{why}");
    let ran = Project::ran(&p.apply(&[]));
    assert_eq!(ran.len(), 16);
    assert!(ran.iter().all(|s| s.ends_with(" judge")), "{ran:?}");
}

#[test]
fn cell_and_replace_touch_only_matching_cells() {
    let p = Project::demo();
    let out = p.apply(&["--cell", "tiny-a/arith/*/seed=1"]);
    let ran = Project::ran(&out);
    assert_eq!(ran.len(), 7, "{ran:?}"); // eager 3 + lazy 3 + base 1
    assert!(ran.iter().all(|s| s.starts_with("tiny-a/arith/") && s.contains("seed=1")), "{ran:?}");
    // Other cells are still to run.
    let plan = p.plan_json();
    assert_eq!(plan.iter().filter(|s| s["action"] == "run").count(), 52 - 7);

    p.apply(&[]);
    let lock_before = p.lock_text();
    let out = p.apply(&["--replace", "tiny-b/spell/lazy/seed=2"]);
    let ran = Project::ran(&out);
    assert_eq!(ran, vec!["tiny-b/spell/lazy/seed=2 agent", "tiny-b/spell/lazy/seed=2 eval", "tiny-b/spell/lazy/seed=2 judge"]);
    // No other cell's record changed in the lockfile.
    let before = ptb_core::lock::parse(&lock_before).unwrap();
    let after = ptb_core::lock::parse(&p.lock_text()).unwrap();
    for (id, cell) in &before.cells {
        if id != "tiny-b/spell/lazy/seed=2" {
            assert_eq!(Some(cell), after.cells.get(id), "record of {id} changed");
        }
    }
    // The replaced cell is up to date again.
    let why = p.stdout(&["why", "experiments/demo.kdl", "tiny-b/spell/lazy/seed=2"]);
    assert_eq!(why.matches("up to date").count(), 3, "{why}");
}

#[test]
fn locked_refuses_to_change_the_lockfile() {
    let p = Project::demo();
    let o = p.run(&["apply", "experiments/demo.kdl", "--locked"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--locked") && err.contains("not up to date"), "{err}");
    assert!(!p.lockfile().exists(), "--locked wrote a lockfile");
    p.apply(&[]);
    p.ok(&["apply", "experiments/demo.kdl", "--locked"]);
    p.edit_spec("agent lazy { command \"../scripts/demo/agent.sh\" \"0.1\"; }", "agent lazy { command \"../scripts/demo/agent.sh\" \"0.2\"; }");
    let o = p.run(&["apply", "experiments/demo.kdl", "--locked"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("input `command` changed"), "{err}");
}

/// Dropping cells from the spec changes no stage that remains, but apply
/// would drop their records: --locked refuses, and the file keeps every byte.
#[test]
fn locked_refuses_to_drop_cells_and_leaves_the_file_alone() {
    let p = Project::demo();
    p.apply(&[]);
    let before = std::fs::read(p.lockfile()).unwrap();
    p.edit_spec("    agents eager lazy\n    seeds 1 2\n", "    agents eager lazy\n    seeds 1\n");
    let o = p.run(&["apply", "experiments/demo.kdl", "--locked"]);
    assert!(!o.status.success(), "--locked let apply drop cells");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("8 cell(s) no longer in the spec would be dropped"), "{err}");
    assert_eq!(std::fs::read(p.lockfile()).unwrap(), before, "--locked changed the lockfile");
    // Without --locked the records go, and then --locked is satisfied.
    p.apply(&[]);
    assert_ne!(std::fs::read(p.lockfile()).unwrap(), before);
    p.ok(&["apply", "experiments/demo.kdl", "--locked"]);
}

#[test]
fn a_failing_stage_is_not_cached_and_blocks_nothing_else() {
    let p = Project::demo();
    p.edit_spec("agent lazy { command \"../scripts/demo/agent.sh\" \"0.1\"; }", "agent lazy { command \"../scripts/demo/agent.sh\" \"not-a-number\" \"x\"; }");
    let o = p.run(&["apply", "experiments/demo.kdl", "--cell", "tiny-a/arith"]);
    assert!(!o.status.success(), "a failed stage must fail the apply");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("tiny-a/arith/lazy/seed=1 agent: failed; log:"), "{err}");
    assert!(err.contains("skipped, upstream stage `agent` has no result"), "{err}");
    // The eager cells went through.
    assert!(p.store_entries().iter().any(|e| e.contains("tiny-a-arith-eager-seed1-eval")));
    assert!(!p.store_entries().iter().any(|e| e.contains("lazy")));
    let why = p.stdout(&["why", "experiments/demo.kdl", "tiny-a/arith/lazy/seed=1"]);
    assert!(why.contains("previous attempt failed"), "{why}");
    assert!(p.lock_text().contains("status=\"failed\""));
}

#[test]
fn an_agent_over_budget_is_stopped_and_its_partial_output_kept() {
    let p = Project::demo();
    p.edit_spec("stage agent budget=\"2m\" grace=\"5s\"", "stage agent budget=\"1s\" grace=\"1s\"");
    p.edit_spec("agent eager { command \"../scripts/demo/agent.sh\" \"0.5\"; }", "agent eager { command \"../scripts/demo/agent.sh\" \"0.5\" \"30\"; }");
    let start = std::time::Instant::now();
    let o = p.run(&["apply", "experiments/demo.kdl", "--cell", "tiny-a/arith/eager/seed=1"]);
    let took = start.elapsed();
    assert!(took.as_secs_f64() < 1.0 + 1.0 + 2.0 + 3.0, "took {took:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("tiny-a/arith/eager/seed=1 agent: budget_exhausted"), "{err}");
    // What existed at the deadline was kept and evaluated.
    assert!(err.contains("tiny-a/arith/eager/seed=1 eval: success"), "{err}");
    let lock = p.lock_text();
    assert!(lock.contains("status=\"budget_exhausted\""), "{lock}");
}

#[test]
fn logs_shows_a_finished_stage_log() {
    let p = Project::demo();
    p.apply(&["--cell", "tiny-a/arith/eager/seed=1"]);
    let log = p.stdout(&["logs", "experiments/demo.kdl", "tiny-a/arith/eager/seed=1", "--stage", "agent"]);
    assert!(log.contains("agent eager: post-training tiny-a for arith (seed 1"), "{log}");
    let log = p.stdout(&["logs", "experiments/demo.kdl", "tiny-a/arith/eager/seed=1", "--stage", "eval"]);
    assert!(log.contains("eval arith:") && log.contains("correct"), "{log}");
    let o = p.run(&["logs", "experiments/demo.kdl", "tiny-b/arith/eager/seed=1", "--stage", "agent"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("has not run yet"));
}

#[test]
fn a_secret_reaches_the_stage_but_no_log_lockfile_or_store_file() {
    let p = Project::demo();
    let script = p.path().join("scripts/demo/leaky.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"token is $DEMO_TOKEN\"\nexec \"$(dirname \"$0\")/agent.sh\" \"$@\"\n").unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&script).status().unwrap();
    p.edit_spec(
        "agent eager { command \"../scripts/demo/agent.sh\" \"0.5\"; }",
        "agent eager { command \"../scripts/demo/leaky.sh\" \"0.5\"; secret DEMO_TOKEN; }",
    );
    let secret = "s3cr3t-value-123";
    let o = p.cmd(&["apply", "experiments/demo.kdl", "--cell", "tiny-a/arith/eager/seed=1"]).env("DEMO_TOKEN", secret).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = p.stdout(&["logs", "experiments/demo.kdl", "tiny-a/arith/eager/seed=1", "--stage", "agent"]);
    assert!(log.contains("token is [REDACTED:DEMO_TOKEN]"), "the stage did not get the secret, or it was not redacted: {log}");
    for e in walkdir::WalkDir::new(p.path()).into_iter().flatten().filter(|e| e.file_type().is_file()) {
        let bytes = std::fs::read(e.path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(secret), "secret found in {}", e.path().display());
    }
    // Without it, the stage fails before running and says why.
    let o = p.run(&["apply", "experiments/demo.kdl", "--cell", "tiny-a/arith/eager/seed=2"]);
    assert!(!o.status.success());
    let log = p.stdout(&["logs", "experiments/demo.kdl", "tiny-a/arith/eager/seed=2", "--stage", "agent"]);
    assert!(log.contains("secret `DEMO_TOKEN` is not set"), "{log}");
}

#[test]
fn a_cell_pattern_that_matches_nothing_is_an_error() {
    let p = Project::demo();
    let o = p.run(&["apply", "experiments/demo.kdl", "--cell", "tiny-c/arith"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no cell matches `tiny-c/arith`"), "{err}");
    assert!(err.contains("cell ids look like `tiny-a/arith/"), "{err}");
    assert!(!p.lockfile().exists());
    // `plan` says the same, rather than planning zero cells.
    let o = p.run(&["plan", "experiments/demo.kdl", "--cell", "tiny-c/arith"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no cell matches `tiny-c/arith`"));
}

/// The committed lockfiles/demo.lock is what the demo spec gives today: planned with it
/// against an empty store, stages miss their outputs but no input differs. (It had gone
/// stale once, when the agent stage gained its `task_template` input: a newcomer's first
/// `ptb plan` then blamed a changed input they never touched.)
#[test]
fn committed_demo_lockfile_is_current() {
    let p = Project::demo();
    std::fs::create_dir_all(p.path().join("lockfiles")).unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("lockfiles/demo.lock"), p.path().join("lockfiles/demo.lock")).unwrap();
    let plan = p.stdout(&["plan", "experiments/demo.kdl", "--json"]);
    let kinds: std::collections::BTreeSet<String> = plan
        .lines()
        .flat_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["reasons"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap().to_string()).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        kinds,
        ["output_missing", "upstream_reruns"].map(String::from).into(),
        "regenerate it with `cargo run --release -- apply experiments/demo.kdl`:\n{plan}"
    );
}

#[test]
fn cells_finish_their_chain_before_later_cells_start() {
    let p = Project::demo();
    let out = p.apply(&["-j", "1"]);
    // With one job, finish lines are execution order.
    let order: Vec<&str> = out.lines().filter(|l| l.starts_with("✓ ")).map(|l| l[4..].split(':').next().unwrap()).collect();
    assert_eq!(order.len(), 52, "{out}");
    // The first cell with an agent, and the last (reference rows have none).
    let agents: Vec<&str> = order.iter().filter_map(|l| l.strip_suffix(" agent")).collect();
    let (first_cell, last_cell) = (agents[0], agents[agents.len() - 1]);
    let pos = |s: &str| order.iter().position(|l| *l == s).unwrap_or_else(|| panic!("{s} not in {order:?}"));
    assert!(
        pos(&format!("{first_cell} eval")) < pos(&format!("{last_cell} agent")),
        "the first cell's eval finished after the last cell's agent started:\n{order:#?}"
    );
    // Every cell's stages are contiguous.
    let mut seen = std::collections::HashSet::new();
    let mut prev = "";
    for l in &order {
        let cell = l.rsplit_once(' ').unwrap().0;
        if cell != prev {
            assert!(seen.insert(cell), "{cell} was interrupted by another cell:\n{order:#?}");
            prev = cell;
        }
    }
}

#[test]
fn a_new_lockfile_gets_the_mode_the_umask_gives() {
    use std::os::unix::fs::PermissionsExt;
    for (umask, want) in [("022", 0o644), ("027", 0o640)] {
        let p = Project::demo();
        let bin = env!("CARGO_BIN_EXE_ptb");
        let o = std::process::Command::new("sh")
            .current_dir(p.path())
            .env_remove("PTB_STORE")
            .args(["-c", &format!("umask {umask} && exec \"$0\" apply experiments/demo.kdl --cell 'tiny-a/arith/base/*'"), bin])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mode = std::fs::metadata(p.lockfile()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, want, "umask {umask}: lockfile mode {mode:o}");
    }
}

#[test]
fn why_says_a_field_that_was_absent_was_unset() {
    let p = Project::demo();
    p.edit_spec("model tiny-b path=\"../fixtures/demo/models/tiny-b\" arch=llama", "model tiny-b path=\"../fixtures/demo/models/tiny-b\"");
    p.apply(&["--cell", "tiny-b/arith/base/*"]);
    p.edit_spec("model tiny-b path=\"../fixtures/demo/models/tiny-b\"", "model tiny-b path=\"../fixtures/demo/models/tiny-b\" arch=qwen3");
    let why = p.stdout(&["why", "experiments/demo.kdl", "tiny-b/arith/base/seed=1"]);
    assert!(why.contains("input `model.arch` changed: (was unset) → qwen3"), "{why}");
}

/// A fresh clone holds a benchmark's committed `SHA256SUMS` but not its data
/// (the data is fetched by a script). Such a directory must block its evals,
/// naming the absent file and the fix, not be hashed as if it were the data.
#[test]
fn benchmark_data_listed_in_its_sums_but_not_fetched_blocks_its_stages() {
    let p = Project::demo();
    let data = p.path().join("fixtures/demo/data/arith");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("SHA256SUMS"), format!("{}  arith.jsonl\n", "0".repeat(64))).unwrap();
    p.edit_spec(
        "benchmark arith data=\"../fixtures/demo/data/arith.jsonl\" weight=0.6 \\\n    sha256=\"6e059284f5745570b7fe9ab8bb47e364bc23fbb6418724d41e6b1b9306c26c7e\"",
        "benchmark arith data=\"../fixtures/demo/data/arith\" weight=0.6",
    );
    let out = p.stdout(&["plan", "experiments/demo.kdl"]);
    assert!(out.contains("benchmark `arith` data is not fetched"), "{out}");
    assert!(out.contains("arith.jsonl is listed in"), "{out}");
    assert!(out.contains("scripts/bench/fetch-data.sh"), "{out}");
    // Once the file is there, the directory is the data and nothing is blocked.
    std::fs::copy(p.path().join("fixtures/demo/data/arith.jsonl"), data.join("arith.jsonl")).unwrap();
    let out = p.stdout(&["plan", "experiments/demo.kdl"]);
    assert!(!out.contains("Blocked"), "{out}");
}

/// `ptb plan` reads the lockfile's keys from a binary cache in the store;
/// a hand edit of the lockfile, even one that keeps its size (one hex
/// character of a key), is planned from the new text at once.
#[test]
fn a_hand_edited_lockfile_is_planned_from_its_new_text() {
    let p = Project::demo();
    let cell = "tiny-a/arith/eager/seed=1";
    p.apply(&["--cell", cell]);
    for _ in 0..2 {
        // The first reads the text and writes the cache; the second reads the cache.
        let plan = p.ok(&["plan", "experiments/demo.kdl", "--cell", cell, "--json"]);
        assert!(plan.lines().count() == 3 && !plan.contains("store_hit") && !plan.contains("\"run\""), "{plan}");
    }
    let text = p.lock_text();
    let key_at = text.find("stage \"eval\" key=\"").unwrap() + "stage \"eval\" key=\"".len();
    let mut edited = text.clone().into_bytes();
    edited[key_at] = if edited[key_at] == b'0' { b'1' } else { b'0' };
    std::fs::write(p.lockfile(), &edited).unwrap();
    let plan = p.ok(&["plan", "experiments/demo.kdl", "--cell", cell, "--json"]);
    assert!(plan.lines().any(|l| l.contains("\"stage\":\"eval\"") && l.contains("store_hit")), "the edited key was not seen:\n{plan}");
}
