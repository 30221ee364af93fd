//! `ptb report` on a paper-shaped lockfile (1,008 cells, synthetic): the
//! HTML page plus every SVG figure, beside the Markdown table, both from the
//! lockfile on disk, in one process. Prints both medians and the ratio.

use ptb_core::report::{html, render, synthetic};
use std::time::{Duration, Instant};

fn median(f: &mut dyn FnMut(), runs: usize) -> Duration {
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("paper.lock");
    synthetic::paper_lockfile().save(&lock).unwrap();
    let tmpl = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/table.md.j2");
    let figs = dir.path().join("figs");
    let mut page_kib = 0;
    let runs = 11;
    let t_md = median(&mut || drop(render(&lock, &tmpl).unwrap()), runs);
    let t_html = median(
        &mut || {
            let page = html::render_html(&lock).unwrap();
            page_kib = page.len() / 1024;
            html::write_figures(&lock, &figs, None).unwrap();
        },
        runs,
    );
    let n_figs = std::fs::read_dir(&figs).unwrap().count();
    println!("`ptb report`, paper-shaped lockfile (1,008 cells), median of {runs}:");
    println!("  --html (page {page_kib} KiB) + --figures ({n_figs} SVGs)  {:>8.1} ms", t_html.as_secs_f64() * 1e3);
    println!("  --template table.md.j2                    {:>8.1} ms", t_md.as_secs_f64() * 1e3);
    println!("  ratio {:.1}×; target ≤ 1000 ms → {}", t_html.as_secs_f64() / t_md.as_secs_f64(), if t_html.as_millis() <= 1000 { "met" } else { "NOT met" });
}
