//! indicatif progress for `apply`: an overall bar and one line per running
//! stage showing its last log line. Without a terminal, plain lines.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ptb_core::progress::Reporter;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

pub struct Bars {
    mp: MultiProgress,
    overall: Mutex<Option<ProgressBar>>,
    running: Mutex<HashMap<String, ProgressBar>>,
    hashing: Mutex<Option<ProgressBar>>,
    downloading: Mutex<Option<ProgressBar>>,
    tty: bool,
}

impl Bars {
    pub fn new() -> Self {
        let tty = std::io::stderr().is_terminal();
        let mp = MultiProgress::with_draw_target(if tty { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
        Bars { mp, overall: Mutex::new(None), running: Mutex::new(HashMap::new()), hashing: Mutex::new(None), downloading: Mutex::new(None), tty }
    }

    fn say(&self, line: String) {
        if self.tty {
            let _ = self.mp.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    pub fn finish(&self) {
        if let Some(b) = self.overall.lock().unwrap().take() {
            b.finish_and_clear();
        }
    }
}

fn id(cell: &str, stage: &str) -> String {
    format!("{cell} {stage}")
}

impl Reporter for Bars {
    fn hash_started(&self, path: &Path, total: u64) {
        if total < 256 << 20 {
            return; // small inputs hash in a blink; a bar would only flicker
        }
        let b = self.mp.add(ProgressBar::new(total));
        b.set_style(ProgressStyle::with_template("hashing {msg} {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}").unwrap());
        b.set_message(path.display().to_string());
        *self.hashing.lock().unwrap() = Some(b);
    }
    fn hashed_bytes(&self, n: u64) {
        if let Some(b) = &*self.hashing.lock().unwrap() {
            b.inc(n);
        }
    }
    fn hash_finished(&self, _path: &Path) {
        if let Some(b) = self.hashing.lock().unwrap().take() {
            b.finish_and_clear();
        }
    }
    fn download_started(&self, what: &str, total: u64) {
        self.say(format!("fetching {what}"));
        let b = self.mp.add(ProgressBar::new(total));
        b.set_style(ProgressStyle::with_template("  {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}").unwrap());
        *self.downloading.lock().unwrap() = Some(b);
    }
    fn downloaded_bytes(&self, n: u64) {
        if let Some(b) = &*self.downloading.lock().unwrap() {
            b.inc(n);
        }
    }
    fn download_finished(&self, _what: &str) {
        if let Some(b) = self.downloading.lock().unwrap().take() {
            b.finish_and_clear();
        }
    }
    fn apply_started(&self, total: usize) {
        let b = self.mp.add(ProgressBar::new(total as u64));
        b.set_style(ProgressStyle::with_template("{prefix:.bold} [{elapsed_precise}] {bar:30} {pos}/{len} stages").unwrap());
        b.set_prefix("apply");
        *self.overall.lock().unwrap() = Some(b);
    }
    fn stage_started(&self, cell: &str, stage: &str) {
        let b = self.mp.add(ProgressBar::new_spinner());
        b.set_style(ProgressStyle::with_template("  {spinner} {prefix} [{elapsed}] {wide_msg}").unwrap());
        b.set_prefix(id(cell, stage));
        b.enable_steady_tick(Duration::from_millis(200));
        self.running.lock().unwrap().insert(id(cell, stage), b);
    }
    fn stage_log(&self, cell: &str, stage: &str, line: &str) {
        if let Some(b) = self.running.lock().unwrap().get(&id(cell, stage)) {
            b.set_message(line.to_string());
        }
    }
    fn stage_finished(&self, cell: &str, stage: &str, end: ptb_core::status::StageEnd, wall: Duration) {
        if let Some(b) = self.running.lock().unwrap().remove(&id(cell, stage)) {
            b.finish_and_clear();
            self.mp.remove(&b);
        }
        if let Some(b) = &*self.overall.lock().unwrap() {
            b.inc(1);
        }
        let mark = if end.ok() { "✓" } else { "✗" };
        self.say(format!("{mark} {cell} {stage}: {end} ({:.1}s)", wall.as_secs_f64()));
    }
    fn stage_skipped(&self, cell: &str, stage: &str, why: &str) {
        if let Some(b) = &*self.overall.lock().unwrap() {
            b.inc(1);
        }
        self.say(format!("- {cell} {stage}: skipped, {why}"));
    }
    fn note(&self, message: &str) {
        self.say(message.to_string());
    }
}
