//! A throwaway project: the demo's scripts and fixtures copied into a temp
//! dir, a spec written there, and the real `ptb` binary run against it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Project {
    pub dir: tempfile::TempDir,
}

fn copy_tree(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(from).unwrap();
        let dest = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

pub const DEMO: &str = include_str!("../../experiments/demo.kdl");

impl Project {
    /// A project holding the demo experiment.
    pub fn demo() -> Project {
        Project::with_spec(DEMO)
    }

    pub fn with_spec(spec: &str) -> Project {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&root.join("scripts/demo"), &dir.path().join("scripts/demo"));
        copy_tree(&root.join("fixtures/demo"), &dir.path().join("fixtures/demo"));
        std::fs::create_dir_all(dir.path().join("experiments")).unwrap();
        let p = Project { dir };
        p.write_spec(spec);
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn spec_path(&self) -> PathBuf {
        self.path().join("experiments/demo.kdl")
    }

    pub fn write_spec(&self, spec: &str) {
        std::fs::write(self.spec_path(), spec).unwrap();
    }

    /// Rewrite the spec with a textual substitution (which must apply).
    pub fn edit_spec(&self, from: &str, to: &str) {
        let s = std::fs::read_to_string(self.spec_path()).unwrap();
        assert!(s.contains(from), "spec has no `{from}`");
        self.write_spec(&s.replacen(from, to, 1));
    }

    pub fn lockfile(&self) -> PathBuf {
        self.path().join("lockfiles/demo.lock")
    }

    pub fn lock_text(&self) -> String {
        std::fs::read_to_string(self.lockfile()).unwrap()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ptb"));
        c.current_dir(self.path()).args(args).env_remove("PTB_STORE").env("NO_COLOR", "1");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Run and require success; returns stdout + stderr.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "ptb {args:?} failed:\n{text}");
        text
    }

    pub fn stdout(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "ptb {args:?} failed:\n{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn apply(&self, extra: &[&str]) -> String {
        let mut args = vec!["apply", "experiments/demo.kdl"];
        args.extend_from_slice(extra);
        self.ok(&args)
    }

    /// Stages that ran in an apply, as "cell stage" from its output.
    pub fn ran(output: &str) -> Vec<String> {
        let mut v: Vec<String> = output
            .lines()
            .filter(|l| l.starts_with("✓ ") || l.starts_with("✗ "))
            .filter(|l| !l.contains("cached"))
            .map(|l| l[4..].split(':').next().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    /// JSON plan lines.
    pub fn plan_json(&self) -> Vec<serde_json::Value> {
        self.stdout(&["plan", "experiments/demo.kdl", "--json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// Finished store entries (directory names).
    pub fn store_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path().join("store/v1"))
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with('.') && n != "failed").collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// A spec of one model and one benchmark whose agents are shell scripts
/// (name → script, run with `sh -c` after `set -eu`), with the given agent
/// stage and the demo's eval stage: the hostile-agent tests' shape.
pub fn shell_agents_spec(agent_stage: &str, agents: &[(&str, &str)]) -> String {
    let mut spec = format!(
        "experiment demo\nmodel tiny-a path=\"../fixtures/demo/models/tiny-a\" arch=llama\nbenchmark arith data=\"../fixtures/demo/data/arith.jsonl\"\n{agent_stage}\nstage eval budget=\"1m\" {{ command \"../scripts/demo/eval.sh\"; }}\n"
    );
    for (name, script) in agents {
        spec.push_str(&format!("agent {name} {{ command \"/bin/sh\" \"-c\" #\"set -eu; {script}\"#; }}\n"));
    }
    spec.push_str(&format!("matrix {{\n    agents {}\n    seeds 1\n}}\n", agents.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" ")));
    spec
}

/// A shell agent's honest part: a checkpoint the demo's eval scores.
pub const SHELL_MODEL: &str =
    r#"mkdir -p "$PTB_OUT/final_model"; cp "$PTB_INPUT_MODEL/config.json" "$PTB_OUT/final_model/"; echo 0.5 > "$PTB_OUT/final_model/skill.txt""#;

impl Project {
    /// The recorded status of `agent`'s cell's `stage` in [`shell_agents_spec`]'s
    /// matrix, read through the lockfile reader (which must always succeed).
    pub fn shell_status(&self, agent: &str, stage: &str) -> Option<String> {
        let l = ptb_core::lock::Lockfile::load(&self.lockfile()).expect("the lockfile must always read back");
        l.cells.get(&format!("tiny-a/arith/{agent}/seed=1"))?.stages.get(stage).map(|s| s.status.name().to_string())
    }
}
