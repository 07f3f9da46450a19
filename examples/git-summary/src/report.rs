//! The text the summary prints.

use std::fmt::Write as _;

use crate::changes::Changes;

/// What git told us about the repository.
pub struct Report {
    pub branch: String,
    pub commit_count: Option<u64>,
    pub last_commits: Vec<String>,
    pub changes: Changes,
}

impl Report {
    /// The report as lines of text.
    pub fn render(&self, repository: Option<&str>) -> String {
        let mut text = String::new();
        let place = repository.unwrap_or("(working directory)");
        let _ = writeln!(text, "Repository  {place}");
        let _ = match self.commit_count {
            Some(1) => writeln!(text, "Branch      {} (1 commit)", self.branch),
            Some(count) => writeln!(text, "Branch      {} ({count} commits)", self.branch),
            None => writeln!(text, "Branch      {}", self.branch),
        };

        let _ = writeln!(text, "\nLast commits");
        for commit in &self.last_commits {
            let _ = writeln!(text, "  {commit}");
        }

        let total = self.changes.total();
        if total == 0 {
            let _ = writeln!(text, "\nWorking tree clean");
        } else {
            let files = if total == 1 { "file" } else { "files" };
            let _ = writeln!(text, "\nWorking tree: {total} changed {files}");
            for (kind, count) in self.changes.kinds() {
                if count > 0 {
                    let _ = writeln!(text, "  {kind:<13}{count}");
                }
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_branch_commits_and_changes() {
        let report = Report {
            branch: "main".into(),
            commit_count: Some(42),
            last_commits: vec!["abc1234 Fix the parser".into()],
            changes: Changes::from_porcelain(" M a.rs\n?? b.txt\n"),
        };
        assert_eq!(
            report.render(Some("/work/repo")),
            "Repository  /work/repo\n\
             Branch      main (42 commits)\n\
             \n\
             Last commits\n  abc1234 Fix the parser\n\
             \n\
             Working tree: 2 changed files\n  modified     1\n  untracked    1\n"
        );
    }
}
