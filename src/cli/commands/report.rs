use super::*;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The lockfile (not needed with --check, which reads it from the table).
    pub lockfile: Option<PathBuf>,
    #[arg(long, short)]
    pub template: Option<PathBuf>,
    /// Write here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Fail if this committed table no longer matches its lockfile.
    #[arg(long, conflicts_with_all = ["template", "output", "html", "figures"])]
    pub check: Option<PathBuf>,
    /// A self-contained HTML page (tables, charts, replaced runs, budget,
    /// cells, provenance) instead of a template.
    #[arg(long, conflicts_with = "template")]
    pub html: bool,
    /// Also write one standalone SVG per benchmark, the weighted average
    /// and GPU-hours into DIR (--template then restyles the figures).
    #[arg(long, value_name = "DIR")]
    pub figures: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let Args { lockfile, template, output, check, html, figures } = a;
    if let Some(file) = check {
        ptb_core::report::check(&file)?;
        eprintln!("{} matches its lockfile", file.display());
        return Ok(ExitCode::SUCCESS);
    }
    if html || figures.is_some() {
        let Some(lockfile) = lockfile else {
            miette::bail!(miette::miette!(help = "e.g. ptb report lockfiles/demo.lock --html -o report.html --figures figures/", "report needs a lockfile"));
        };
        if let Some(dir) = &figures {
            let written = ptb_core::report::write_figures(&lockfile, dir, template.as_deref())?;
            eprintln!("wrote {} figure(s) to {}", written.len(), dir.display());
        }
        if html {
            let text = ptb_core::report::render_html(&lockfile)?;
            match output {
                Some(o) => std::fs::write(&o, text).into_diagnostic().wrap_err_with(|| format!("writing {}", o.display()))?,
                None => print!("{text}"),
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(lockfile), Some(template)) = (lockfile, template) else {
        miette::bail!(miette::miette!(
            help = "e.g. ptb report lockfiles/demo.lock --template templates/table.md.j2",
            "report needs a lockfile and --template (or --check FILE)"
        ));
    };
    let text = ptb_core::report::render(&lockfile, &template)?;
    match output {
        Some(o) => std::fs::write(&o, text).into_diagnostic().wrap_err_with(|| format!("writing {}", o.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
