//! `ptb report --html` and `--figures`, checked in a real browser (headless
//! Chromium, installed by scripts/test-setup.sh): no console errors, the
//! page's Table 1 numbers equal the Markdown table's, one bar per agent in
//! every chart, a flagged run's evidence reachable from the table; the same
//! bytes from the same lockfile; bad lockfiles give a page that says what is
//! missing. Screenshots are kept under target/tmp/report_html/.

use ptb_core::lock::{AgentInfo, BenchmarkInfo, CellRecord, Lockfile, StageRecord};
use ptb_core::report::synthetic;
use ptb_core::store::MetricValue;
use regex::Regex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

fn ptb(dir: &Path, args: &[&str]) -> std::process::Output {
    let o = Command::new(env!("CARGO_BIN_EXE_ptb")).current_dir(dir).args(args).env("COLUMNS", "80").env("NO_COLOR", "1").output().unwrap();
    assert!(o.status.success(), "ptb {args:?} failed:\n{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn chromium() -> PathBuf {
    let name = std::env::var("PTB_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let found = std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(&name)).find(|p| p.is_file()));
    match found {
        Some(p) => p,
        None if Path::new(&name).is_file() => PathBuf::from(name),
        None => panic!(
            "headless Chromium (`{name}`) is not installed, so the HTML report cannot be checked in a browser: run scripts/test-setup.sh (or scripts/report/chromium-setup.sh)"
        ),
    }
}

/// Records script errors and console.error calls into an attribute of <html>.
const RECORDER: &str = r#"<script>(function(){var d=document.documentElement;function rec(m){d.setAttribute("data-js-errors",(d.getAttribute("data-js-errors")||"")+m+"\n");}window.addEventListener("error",function(e){rec("error: "+e.message);});var ce=console.error;console.error=function(){rec("console.error: "+Array.prototype.join.call(arguments," "));ce.apply(console,arguments);};})();</script>"#;

/// Open `html` in headless Chromium: the DOM after scripts ran, and a
/// screenshot kept as a test artifact. Fails on any console message or
/// script error.
fn browse(html: &Path, name: &str) -> String {
    let bin = chromium();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.html");
    let text = std::fs::read_to_string(html).unwrap();
    let at = text.find("<head>").expect("page has a <head>") + "<head>".len();
    std::fs::write(&page, format!("{}{RECORDER}{}", &text[..at], &text[at..])).unwrap();
    let url = format!("file://{}", page.display());
    let base = |profile: &str| {
        let mut c = Command::new(&bin);
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"])
            .arg(format!("--user-data-dir={}", dir.path().join(profile).display()));
        c
    };
    let o = base("dom").args(["--enable-logging=stderr", "--v=0", "--dump-dom"]).arg(&url).output().unwrap();
    assert!(o.status.success(), "chromium failed: {}", String::from_utf8_lossy(&o.stderr));
    let dom = String::from_utf8(o.stdout).unwrap();
    assert!(dom.contains("</html>"), "chromium returned no DOM");
    let console: Vec<&str> = std::str::from_utf8(&o.stderr).unwrap().lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages:\n{}", console.join("\n"));
    let html_tag = &dom[dom.find("<html").expect("an <html> element")..];
    let html_tag = &html_tag[..html_tag.find('>').unwrap()];
    assert!(!html_tag.contains("data-js-errors"), "script errors: {html_tag}");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_html");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&shot);
    let o = base("shot").arg(format!("--screenshot={}", shot.display())).args(["--window-size=1280,2400"]).arg(&url).output().unwrap();
    assert!(
        o.status.success() && shot.metadata().map(|m| m.len() > 10_000).unwrap_or(false),
        "no screenshot at {}: {}",
        shot.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    dom
}

/// `ptb report L --template templates/table.md.j2`: (agent, column) → text.
fn markdown_numbers(dir: &Path, lock: &str) -> BTreeMap<(String, String), String> {
    let tmpl = format!("{MANIFEST}/templates/table.md.j2");
    let md = String::from_utf8(ptb(dir, &["report", lock, "--template", &tmpl]).stdout).unwrap();
    let mut lines = md.lines().filter(|l| l.starts_with('|'));
    let head: Vec<String> = lines.next().unwrap().split('|').map(|s| s.trim().to_string()).collect();
    let mut out = BTreeMap::new();
    for l in lines.skip(1) {
        let cols: Vec<&str> = l.split('|').map(str::trim).collect();
        for (i, h) in head.iter().enumerate().skip(2) {
            if !h.is_empty() {
                out.insert((cols[1].to_string(), h.clone()), cols[i].to_string());
            }
        }
    }
    assert!(!out.is_empty(), "no numbers in the Markdown table:\n{md}");
    out
}

fn dom_numbers(dom: &str, key: &str) -> BTreeMap<(String, String), String> {
    let re = Regex::new(r#"data-cell="([^|"]+)\|([^|"]+)\|([^"]+)"[^>]*>([^<]*)<"#).unwrap();
    re.captures_iter(dom).filter(|c| &c[1] == key).map(|c| ((c[2].to_string(), c[3].to_string()), c[4].to_string())).collect()
}

/// Chart id → number of bars.
fn bars(dom: &str) -> BTreeMap<String, usize> {
    let re = Regex::new(r#"<svg[^>]*data-chart="([^"]+)""#).unwrap();
    re.captures_iter(dom)
        .map(|c| {
            let start = c.get(0).unwrap().start();
            let body = &dom[start..start + dom[start..].find("</svg>").unwrap()];
            (c[1].to_string(), body.matches("<rect class=\"bar").count())
        })
        .collect()
}

fn check_page(dom: &str, dir: &Path, lock: &str, agents: usize, benchmarks: usize) {
    let md = markdown_numbers(dir, lock);
    let html = dom_numbers(dom, "t1");
    assert_eq!(html, md, "Table 1 in the page differs from the Markdown table");
    let charts = bars(dom);
    assert_eq!(charts.len(), benchmarks + 2, "charts: {charts:?}");
    for (id, n) in &charts {
        assert_eq!(*n, agents, "chart {id} has {n} bars for {agents} agents");
    }
}

#[test]
fn demo_page_in_browser() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo.html");
    ptb(Path::new(MANIFEST), &["report", "lockfiles/demo.lock", "--html", "-o", out.to_str().unwrap()]);
    let dom = browse(&out, "demo");
    check_page(&dom, Path::new(MANIFEST), "lockfiles/demo.lock", 3, 2);
    assert!(dom.contains("Runs scored as the base model"));
}

#[test]
fn paper_page_in_browser() {
    let dir = tempfile::tempdir().unwrap();
    synthetic::paper_lockfile().save(&dir.path().join("paper.lock")).unwrap();
    ptb(dir.path(), &["report", "paper.lock", "--html", "-o", "paper.html"]);
    let dom = browse(&dir.path().join("paper.html"), "paper");
    check_page(&dom, dir.path(), "paper.lock", 12, 7);

    // Each cause has runs, and every replaced run's evidence is an element the
    // page links to (from its cell row and from the agent's list, which
    // Table 1's Replaced column links to).
    let ev = Regex::new(r#"<div class="evidence" id="([^"]+)" data-cause="([^"]+)">"#).unwrap();
    let mut causes: BTreeMap<String, usize> = BTreeMap::new();
    for c in ev.captures_iter(&dom) {
        *causes.entry(c[2].to_string()).or_default() += 1;
        assert!(dom.contains(&format!("href=\"#{}\"", &c[1])), "nothing links to {}", &c[1]);
    }
    let (mut flagged, mut failed, mut no_ckpt) = (0, 0, 0);
    for i in 0..10 * 28 * 3 {
        if synthetic::is_failed(i) {
            failed += 1
        } else if synthetic::is_no_checkpoint(i) {
            no_ckpt += 1
        } else if synthetic::is_flagged(i) {
            flagged += 1
        }
    }
    assert_eq!(causes, BTreeMap::from([("failed".to_string(), failed), ("judge".to_string(), flagged), ("no-checkpoint".to_string(), no_ckpt)]));
    let first = ev.captures_iter(&dom).find(|c| &c[2] == "judge").unwrap();
    let body = &dom[first.get(0).unwrap().start()..];
    let body = &body[..body.find("</div>").unwrap()];
    assert!(body.contains("judge verdict: flagged") && body.contains("contamination"), "no judge evidence in {body}");
    assert!(dom.contains("href=\"#replaced-agent0\"") && dom.contains("id=\"replaced-agent0\""), "Table 1 does not link to agent0's replaced runs");
    assert!(dom.contains("href=\"store/v1/"), "no log links");
    // Budget: GPU-hours and API cost.
    assert!(dom.contains("GPU-hours by agent") && dom.contains("API cost (USD)"));
}

#[test]
fn same_bytes_check_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let mut lock = synthetic::paper_lockfile();
    lock.save(&dir.path().join("paper.lock")).unwrap();
    ptb(dir.path(), &["report", "paper.lock", "--html", "-o", "a.html", "--figures", "figs-a"]);
    ptb(dir.path(), &["report", "paper.lock", "--html", "-o", "b.html", "--figures", "figs-b"]);
    let a = std::fs::read(dir.path().join("a.html")).unwrap();
    assert_eq!(a, std::fs::read(dir.path().join("b.html")).unwrap(), "two renders differ");
    assert!(String::from_utf8_lossy(&a).contains("ptb-report: lockfile=paper.lock template=html"));
    ptb(dir.path(), &["report", "--check", "a.html"]);

    // Figures: avg, seven benchmarks, GPU-hours; same bytes; same numbers as the table.
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("figs-a")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let mut want: Vec<String> = synthetic::BENCHES.iter().map(|(b, _)| format!("{b}.svg")).chain(["avg.svg".into(), "gpu-hours.svg".into()]).collect();
    want.sort();
    assert_eq!(names, want);
    let md = markdown_numbers(dir.path(), "paper.lock");
    for n in &names {
        let svg = std::fs::read_to_string(dir.path().join("figs-a").join(n)).unwrap();
        assert_eq!(svg, std::fs::read_to_string(dir.path().join("figs-b").join(n)).unwrap(), "{n} differs between renders");
        assert!(svg.starts_with("<?xml") && svg.contains("xmlns=\"http://www.w3.org/2000/svg\""), "{n} is not standalone SVG");
        assert_eq!(svg.matches("<rect class=\"bar").count(), 12, "{n}");
        let col = if n == "avg.svg" { "Avg".to_string() } else { n.trim_end_matches(".svg").to_string() };
        if n != "gpu-hours.svg" {
            for ((agent, c), v) in &md {
                if *c == col {
                    assert!(svg.contains(&format!("<title>{agent}: {v}</title>")), "{n}: no bar {agent}: {v}");
                }
            }
        }
    }

    // A changed lockfile makes the page stale.
    let c = lock.cells.values_mut().find(|c| c.agent == "agent3").unwrap();
    c.stages.get_mut("eval").unwrap().metrics.insert("score".into(), MetricValue::Number(0.99));
    lock.save(&dir.path().join("paper.lock")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ptb")).current_dir(dir.path()).args(["report", "--check", "a.html"]).output().unwrap();
    assert!(!o.status.success(), "--check passed on a stale page");
    assert!(String::from_utf8_lossy(&o.stderr).contains("out of date"), "{}", String::from_utf8_lossy(&o.stderr));
}

fn small(benches: &[&str]) -> Lockfile {
    Lockfile {
        experiment: "bad".into(),
        ptb_version: "0.1.0".into(),
        models: vec!["m".into()],
        benchmarks: benches.iter().map(|b| BenchmarkInfo { name: b.to_string(), weight: None }).collect(),
        agents: vec![AgentInfo { name: "a".into(), kind: "run".into() }, AgentInfo { name: "base".into(), kind: "base".into() }],
        ..Default::default()
    }
}

fn cell(l: &mut Lockfile, agent: &str, bench: &str, seed: u64, stage: &str, status: &str, metrics: &[(&str, MetricValue)]) {
    let key = format!("{:064x}", l.cells.len() + 1);
    let rec = StageRecord {
        key,
        status: status.parse().expect("a stage status"),
        path: "v1/x".into(),
        started: String::new(),
        finished: String::new(),
        duration_s: 1.0,
        exit_code: Some(0),
        metrics: metrics.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        inputs: BTreeMap::new(),
    };
    l.cells.insert(
        format!("m/{bench}/{agent}/seed={seed}"),
        CellRecord { model: "m".into(), benchmark: bench.into(), agent: agent.into(), seed, stages: [(stage.to_string(), rec)].into() },
    );
}

fn page(l: &Lockfile, name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    l.save(&dir.path().join(format!("{name}.lock"))).unwrap();
    let lock = format!("{name}.lock");
    ptb(dir.path(), &["report", &lock, "--html", "-o", &format!("{name}.html"), "--figures", "figs"]);
    let text = std::fs::read_to_string(dir.path().join(format!("{name}.html"))).unwrap();
    (dir, text)
}

#[test]
fn bad_inputs_say_what_is_missing() {
    // No cells at all.
    let (_d, t) = page(&small(&["x", "y"]), "empty");
    assert!(t.contains("id=\"missing\"") && t.contains("no cells"), "{t}");
    // Agent stages only: no eval results.
    let mut l = small(&["x", "y"]);
    cell(&mut l, "a", "x", 1, "agent", "success", &[]);
    let (_d, t) = page(&l, "noeval");
    assert!(t.contains("no eval results"), "{t}");
    // One benchmark only.
    let mut l = small(&["x"]);
    cell(&mut l, "a", "x", 1, "eval", "success", &[("score", MetricValue::Number(0.5))]);
    cell(&mut l, "base", "x", 1, "eval", "success", &[("score", MetricValue::Number(0.2))]);
    let (_d, t) = page(&l, "one");
    assert!(t.contains("Only one benchmark (x)"), "{t}");
    // NaN and missing scores, in the browser too.
    let mut l = small(&["x", "y"]);
    cell(&mut l, "a", "x", 1, "eval", "success", &[("score", MetricValue::Number(f64::NAN))]);
    cell(&mut l, "a", "y", 1, "eval", "success", &[("correct", MetricValue::Number(3.0))]);
    cell(&mut l, "base", "x", 1, "eval", "success", &[("score", MetricValue::Number(0.2))]);
    let (d, t) = page(&l, "nan");
    assert!(t.contains("recorded a NaN or infinite score") && t.contains("without a `score` or `accuracy` metric"), "{t}");
    assert!(t.contains("base: no score on y") && t.contains("a: 1 run(s) without a usable score"), "{t}");
    let dom = browse(&d.path().join("nan.html"), "nan");
    assert!(dom.contains("What is missing"));
}
