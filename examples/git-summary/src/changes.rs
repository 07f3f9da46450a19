//! Counting changed files from `git status --porcelain`.

/// How many files are in each kind of change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub modified: usize,
    pub added: usize,
    pub deleted: usize,
    pub renamed: usize,
    pub copied: usize,
    pub type_changed: usize,
    pub conflicted: usize,
    pub untracked: usize,
}

impl Changes {
    /// Counts the lines of `git status --porcelain` output. Ignored files
    /// (`!!`) are not counted.
    pub fn from_porcelain(status: &str) -> Self {
        let mut changes = Changes::default();
        for line in status.lines() {
            let Some(code) = line.get(..2) else { continue };
            let counter = match code {
                "??" => &mut changes.untracked,
                "!!" => continue,
                "DD" | "AU" | "UD" | "UA" | "DU" | "AA" | "UU" => &mut changes.conflicted,
                _ => {
                    // The index column if it has a change, else the work tree.
                    let [index, worktree] = [code.as_bytes()[0], code.as_bytes()[1]];
                    match if index == b' ' { worktree } else { index } {
                        b'M' => &mut changes.modified,
                        b'A' => &mut changes.added,
                        b'D' => &mut changes.deleted,
                        b'R' => &mut changes.renamed,
                        b'C' => &mut changes.copied,
                        b'T' => &mut changes.type_changed,
                        _ => continue,
                    }
                }
            };
            *counter += 1;
        }
        changes
    }

    /// Every changed file.
    pub fn total(&self) -> usize {
        self.kinds().iter().map(|(_, count)| count).sum()
    }

    /// Each kind of change with its count, in report order.
    pub fn kinds(&self) -> [(&'static str, usize); 8] {
        [
            ("modified", self.modified),
            ("added", self.added),
            ("deleted", self.deleted),
            ("renamed", self.renamed),
            ("copied", self.copied),
            ("type changed", self.type_changed),
            ("conflicted", self.conflicted),
            ("untracked", self.untracked),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_kind_of_change() {
        let status = " M src/main.rs\nM  README.md\nA  new.rs\n D gone.rs\nR  old -> new\nUU both.rs\n?? scratch.txt\n!! target/\n";
        let changes = Changes::from_porcelain(status);
        assert_eq!(
            changes,
            Changes {
                modified: 2,
                added: 1,
                deleted: 1,
                renamed: 1,
                conflicted: 1,
                untracked: 1,
                ..Changes::default()
            }
        );
        assert_eq!(changes.total(), 7);
    }

    #[test]
    fn a_clean_tree_has_no_changes() {
        assert_eq!(Changes::from_porcelain("").total(), 0);
    }
}
