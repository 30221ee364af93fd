//! A store on a small tmpfs: an agent that fills the disk fails alone, its
//! siblings finish, and a store too full to start a stage says so.
//! Mounting a tmpfs needs root (CI runs as root); without it the test fails
//! and says why rather than passing without checking anything.

mod common;
use common::Project;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let o = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(at).output().unwrap();
        assert!(o.status.success(), "this test mounts a tmpfs as the store and needs root: {}", String::from_utf8_lossy(&o.stderr));
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn spec(agents: &[(&str, &str)]) -> String {
    common::shell_agents_spec(r#"stage agent budget="1m" grace="2s""#, agents)
}

use common::SHELL_MODEL as MODEL;

fn status(p: &Project, agent: &str, stage: &str) -> Option<String> {
    p.shell_status(agent, stage)
}

#[test]
fn an_agent_that_fills_the_disk_fails_alone_and_a_full_store_refuses_to_start() {
    let p = Project::with_spec(&spec(&[("filler", &format!("{MODEL}; head -c 300M /dev/zero > \"$PTB_OUT/big\"")), ("honest", MODEL)]));
    let store = p.path().join("store");
    let _tmpfs = Tmpfs::mount(&store, "128m");

    let o = p.run(&["apply", "experiments/demo.kdl", "-j", "1"]);
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!o.status.success(), "a failed stage makes apply fail:\n{out}");
    assert_eq!(status(&p, "filler", "agent").as_deref(), Some("failed"), "{out}");
    assert_eq!(status(&p, "honest", "agent").as_deref(), Some("success"), "{out}");
    assert_eq!(status(&p, "honest", "eval").as_deref(), Some("success"), "the sibling's chain finishes:\n{out}");
    // The failed attempt's 128 MiB were given back.
    let free = p.run(&["verify", "--store", "store"]);
    assert!(free.status.success(), "{}", String::from_utf8_lossy(&free.stdout));

    // Fill the store from outside: no stage starts, each says why, nothing hangs.
    p.edit_spec("agents filler honest", "agents filler honest late");
    p.edit_spec("matrix {", &format!("agent late {{ command \"/bin/sh\" \"-c\" #\"{MODEL}\"#; }}\nmatrix {{"));
    let ballast = store.join("ballast");
    let o = Command::new("sh").arg("-c").arg(format!("head -c 100M /dev/zero > '{}'", ballast.display())).output().unwrap();
    assert!(o.status.success());
    let o = p.run(&["apply", "experiments/demo.kdl", "-j", "1"]);
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!o.status.success());
    assert!(out.contains("MiB are free on the store's filesystem"), "{out}");
    assert!(out.contains("needs 64 MiB to start"), "{out}");
    assert_eq!(status(&p, "late", "agent").as_deref(), Some("failed"), "{out}");
    assert_eq!(status(&p, "honest", "eval").as_deref(), Some("success"), "finished results stay");

    // Space again: the refused stages run, the finished ones are not rerun.
    std::fs::remove_file(&ballast).unwrap();
    p.edit_spec("agents filler honest late", "agents honest late");
    let out = p.apply(&["-j", "1"]);
    assert_eq!(status(&p, "late", "eval").as_deref(), Some("success"), "{out}");
    assert_eq!(Project::ran(&out), vec!["tiny-a/arith/late/seed=1 agent", "tiny-a/arith/late/seed=1 eval"], "{out}");
}
