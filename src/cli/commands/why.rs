use super::*;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub spec: PathBuf,
    /// Cell id or pattern (e.g. `qwen3-1.7b/gsm8k/claude/seed=1`).
    pub cell: String,
    #[command(flatten)]
    pub at: Where,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let Args { spec, cell, at } = a;
    let s = load(&spec, &at, &ptb_core::progress::Silent)?;
    let plan = s.plan(&PlanOptions { cells: vec![cell.clone()], replace: vec![] });
    no_match(&s, &spec, std::slice::from_ref(&cell))?;
    print!("{}", render_why(&plan));
    print!("{}", findings(&s, &cell));
    Ok(ExitCode::SUCCESS)
}

/// Per matching cell with a finished judge stage: its findings with evidence
/// (from the stage's `verdict.json` in the store), and a person's review.
fn findings(s: &Session, pattern: &str) -> String {
    let mut out = String::new();
    let base = s.store.root().parent().unwrap_or(s.store.root()).to_path_buf();
    for c in s.exp.cells.iter().filter(|c| ptb_core::spec::cell_matches(pattern, &c.id)) {
        let review = s.exp.reviews.iter().find(|r| r.cell == c.id);
        let judge = s.lock.stage(&c.id, "judge").filter(|j| j.is_done());
        if judge.is_none() && review.is_none() {
            continue;
        }
        out.push_str(&format!("\n{} judge:\n", c.id));
        // The recorded path is `v1/<entry>`; one that climbs out of the store is not read.
        if let Some(j) = judge.filter(|j| Path::new(&j.path).components().all(|p| matches!(p, std::path::Component::Normal(_)))) {
            let file = base.join(&j.path).join("out").join("verdict.json");
            if std::fs::symlink_metadata(&file).is_ok() {
                out.push_str(&ptb_judge::show::render_file(&file));
            } else {
                let v = match j.metrics.get("verdict") {
                    Some(ptb_core::store::MetricValue::Text(v)) => ptb_judge::show::clean(v, 100),
                    _ => "none".into(),
                };
                out.push_str(&format!("  verdict: {v} (this judge wrote no verdict.json: no findings to show)\n"));
            }
        }
        if let Some(r) = review {
            out.push_str(&format!("  review: {} ({}); the report uses this verdict\n", r.verdict, ptb_judge::show::clean(&r.reason, 500)));
        }
    }
    out
}
