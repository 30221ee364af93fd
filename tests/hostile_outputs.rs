//! Agents written as an attacker would: each leaves something in its output
//! that should reach outside its store entry, stall ptb, corrupt the
//! lockfile or leak a secret. Applied with the real binary; each test says
//! what the host, the store and the lockfile look like afterwards.

mod common;
use common::Project;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

fn project(agents: &[(&str, &str)]) -> Project {
    Project::with_spec(&common::shell_agents_spec(r#"stage agent budget="1m" grace="2s" { secret "PTB_TEST_TOKEN"; }"#, agents))
}

/// Run apply (failures expected); returns its output. Bounded: a hang is a
/// failure of the test, not of CI.
fn apply(p: &Project) -> String {
    let mut child = p
        .cmd(&["apply", "experiments/demo.kdl", "-j", "2"])
        .env("PTB_TEST_TOKEN", "tok-7f3a9c1e-SECRET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("ptb apply hung on a hostile output");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn lock(p: &Project) -> ptb_core::lock::Lockfile {
    ptb_core::lock::Lockfile::load(&p.lockfile()).expect("the lockfile must always read back")
}

fn status(p: &Project, agent: &str, stage: &str) -> Option<String> {
    p.shell_status(agent, stage)
}

/// The log of a cell's stage (finished or failed attempt).
fn log(p: &Project, agent: &str, stage: &str) -> String {
    let l = lock(p);
    let rec = &l.cells[&format!("tiny-a/arith/{agent}/seed=1")].stages[stage];
    std::fs::read_to_string(p.path().join("store").join(&rec.path).join("log")).unwrap_or_default()
}

fn entry(p: &Project, agent: &str, stage: &str) -> std::path::PathBuf {
    let l = lock(p);
    p.path().join("store").join(&l.cells[&format!("tiny-a/arith/{agent}/seed=1")].stages[stage].path)
}

use common::SHELL_MODEL as MODEL;

#[test]
fn a_symlinked_checkpoint_is_never_followed_into_the_host() {
    let host = tempfile::tempdir().unwrap();
    // If ptb followed the link, the eval would read this and score 1.0.
    std::fs::write(host.path().join("skill.txt"), "1.0\n").unwrap();
    std::fs::write(host.path().join("config.json"), "{}").unwrap();
    let p = project(&[("linker", &format!(r#"ln -s "{}" "$PTB_OUT/final_model""#, host.path().display())), ("honest", MODEL)]);
    let out = apply(&p);
    assert_eq!(status(&p, "linker", "agent").as_deref(), Some("success"), "{out}");
    // The link is kept as data, unfollowed.
    assert!(std::fs::symlink_metadata(entry(&p, "linker", "agent").join("out/final_model")).unwrap().file_type().is_symlink());
    assert_eq!(status(&p, "linker", "eval").as_deref(), Some("failed"), "{out}");
    assert!(log(&p, "linker", "eval").contains("final_model is a symlink; ptb never follows links a stage left"), "{}", log(&p, "linker", "eval"));
    let l = lock(&p);
    assert!(l.cells["tiny-a/arith/linker/seed=1"].stages["eval"].metrics.is_empty(), "a failure is never a score");
    // The honest sibling is unaffected.
    assert_eq!(status(&p, "honest", "eval").as_deref(), Some("success"), "{out}");
}

#[test]
fn metrics_are_data_never_a_pointer_and_never_raw_into_the_lockfile() {
    let host = tempfile::tempdir().unwrap();
    let secret_file = host.path().join("id_rsa");
    std::fs::write(&secret_file, r#"{"stolen": "HOST-PRIVATE-KEY"}"#).unwrap();
    let p = project(&[
        ("thief", &format!(r#"{MODEL}; ln -s "{}" "$PTB_OUT/metrics.json""#, secret_file.display())),
        ("bell", &format!(r#"{MODEL}; printf '{{"note": "a\\u0007b"}}' > "$PTB_OUT/metrics.json""#)),
        ("nested", &format!(r#"{MODEL}; echo '{{"a": {{"b": [1, 2]}}}}' > "$PTB_OUT/metrics.json""#)),
        ("leaker", &format!(r#"{MODEL}; printf '{{"echo": "key=%s"}}' "$PTB_TEST_TOKEN" > "$PTB_OUT/metrics.json""#)),
        ("wide", &format!(r#"{MODEL}; printf '{{"note": "%s"}}' "$(printf 'é%.0s' $(seq 1 500))" > "$PTB_OUT/metrics.json""#)),
    ]);
    let out = apply(&p);
    let text = p.lock_text();
    assert!(!text.contains("HOST-PRIVATE-KEY"), "a host file reached the lockfile");
    assert_eq!(status(&p, "thief", "agent").as_deref(), Some("failed"), "{out}");
    assert!(log(&p, "thief", "agent").contains("metrics.json is a symlink"), "{}", log(&p, "thief", "agent"));
    assert_eq!(status(&p, "bell", "agent").as_deref(), Some("failed"));
    assert!(log(&p, "bell", "agent").contains("metric `note` holds control character U+0007"), "{}", log(&p, "bell", "agent"));
    assert_eq!(status(&p, "nested", "agent").as_deref(), Some("failed"));
    assert!(log(&p, "nested", "agent").contains("metric `a` is an object"));
    // Secrets are redacted from metrics as from logs.
    assert!(!text.contains("tok-7f3a9c1e-SECRET"), "a secret reached the lockfile");
    assert!(text.contains("key=[REDACTED:PTB_TEST_TOKEN]"), "{text}");
    let meta = std::fs::read_to_string(entry(&p, "leaker", "agent").join("meta.json")).unwrap();
    assert!(!meta.contains("tok-7f3a9c1e-SECRET"));
    // A long multi-byte metric is fine, and every command still reads the lockfile.
    assert_eq!(status(&p, "wide", "agent").as_deref(), Some("success"), "{out}");
    p.ok(&["plan", "experiments/demo.kdl"]);
    p.ok(&["report", "lockfiles/demo.lock", "--template", concat!(env!("CARGO_MANIFEST_DIR"), "/templates/table.md.j2")]);
}

#[test]
fn special_files_and_mode_bits_do_not_survive_into_the_store() {
    let p = project(&[
        ("piper", &format!(r#"{MODEL}; mkfifo "$PTB_OUT/final_model/pipe""#)),
        ("setuid", &format!(r#"{MODEL}; cp /bin/true "$PTB_OUT/su"; chmod 6755 "$PTB_OUT/su"; mkdir "$PTB_OUT/d"; chmod 3777 "$PTB_OUT/d""#)),
        (
            "hardlink",
            r#"mkdir -p "$PTB_OUT/final_model"; ln "$PTB_INPUT_MODEL/config.json" "$PTB_OUT/final_model/config.json"; echo 0.5 > "$PTB_OUT/final_model/skill.txt""#,
        ),
    ]);
    let base_config = p.path().join("fixtures/demo/models/tiny-a/config.json");
    std::fs::set_permissions(&base_config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = apply(&p);
    // A FIFO would block any reader for ever: refused, recorded, not hung.
    assert_eq!(status(&p, "piper", "agent").as_deref(), Some("failed"), "{out}");
    assert!(log(&p, "piper", "agent").contains("final_model/pipe is a FIFO"), "{}", log(&p, "piper", "agent"));
    // Set-uid, set-gid and sticky bits are gone.
    assert_eq!(status(&p, "setuid", "agent").as_deref(), Some("success"), "{out}");
    let e = entry(&p, "setuid", "agent");
    assert_eq!(std::fs::metadata(e.join("out/su")).unwrap().permissions().mode() & 0o7000, 0);
    assert_eq!(std::fs::metadata(e.join("out/d")).unwrap().permissions().mode() & 0o7000, 0);
    // Committing a hard link to a base-model file leaves the base model's mode alone.
    assert_eq!(status(&p, "hardlink", "eval").as_deref(), Some("success"), "{out}");
    assert_eq!(std::fs::metadata(&base_config).unwrap().permissions().mode() & 0o777, 0o644, "the store's read-only mode leaked to a file outside it");
    // The store verifies, and the base model's pinned hash still matches.
    p.ok(&["verify", "--store", "store"]);
    let entry_config = entry(&p, "hardlink", "agent").join("out/final_model/config.json");
    assert_eq!(std::fs::read(&entry_config).unwrap(), std::fs::read(&base_config).unwrap());
    assert!(!same_inode(&entry_config, &base_config));
}

fn same_inode(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (std::fs::metadata(a).unwrap(), std::fs::metadata(b).unwrap());
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}
