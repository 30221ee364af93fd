//! The `ptb` binary: parses arguments and calls the library. No hashing,
//! planning or scoring happens here.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Diagnostics wrap at the terminal's width on a terminal only. In a stage
    // log, a pipe or a file a wrapped line breaks wherever the length of the
    // paths in it puts the break, so nobody (and no test) can find a sentence.
    let wrap = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = miette::set_hook(Box::new(move |_| Box::new(miette::MietteHandlerOpts::new().wrap_lines(wrap).build())));
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            std::process::ExitCode::from(2)
        }
    }
}
