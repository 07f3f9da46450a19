//! `git-summary [REPOSITORY]`: prints the branch, the last commits and the
//! changed files of a git repository (default: the policy's working
//! directory), running `git` through the wasmproc process capability.
//!
//! Exits 2 if the policy denies running `git`, 1 on any other failure.

mod changes;
mod git;
mod report;

use std::process::ExitCode;

use changes::Changes;
use git::{Failure, Git};
use report::Report;

/// The policy that grants exactly the git commands of [`summarize`].
const POLICY: &str = "examples/git-summary/policy.toml";

// What this plugin asks the host for; `wasmproc inspect git-summary.wasm`
// shows it, and a host's policy grants all of it or less.
wasmproc_guest::manifest!(
    r#"
version = 1

[[program]]
name = "git"
args = [
    ["rev-parse", "--abbrev-ref", "HEAD"],
    ["rev-list", "--count", "HEAD"],
    ["log", "--oneline", "-n", "5"],
    ["status", "--porcelain"],
]
operations = ["run"]
reason = "reads the branch, the commit count, the last 5 commits and the changed files"

[dirs]
reason = "runs git in the repository named on the command line"
"#
);

fn main() -> ExitCode {
    let repository = std::env::args().nth(1);
    let git = Git::new(repository.clone());
    match summarize(&git) {
        Ok(report) => {
            print!("{}", report.render(repository.as_deref()));
            ExitCode::SUCCESS
        }
        Err(Failure::Denied { command, why }) => {
            eprintln!("git-summary: wasmproc denied `{command}`: {why}");
            match &repository {
                Some(dir) => eprintln!(
                    "git-summary needs git in {dir}: run with --policy {POLICY} --allow-dir {dir}"
                ),
                None => eprintln!("git-summary needs git: run with --policy {POLICY}"),
            }
            ExitCode::from(2)
        }
        Err(failure) => {
            eprintln!("git-summary: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// Asks git for everything the report shows. `policy.toml` grants exactly
/// these commands: change both together.
fn summarize(git: &Git) -> Result<Report, Failure> {
    let branch = git.run(&["rev-parse", "--abbrev-ref", "HEAD"])?;
    let commit_count = git.run(&["rev-list", "--count", "HEAD"])?;
    let last_commits = git.run(&["log", "--oneline", "-n", "5"])?;
    let status = git.run(&["status", "--porcelain"])?;
    Ok(Report {
        branch: branch.trim().to_owned(),
        commit_count: commit_count.trim().parse().ok(),
        last_commits: last_commits.lines().map(str::to_owned).collect(),
        changes: Changes::from_porcelain(&status),
    })
}
