//! Programs and variables that can be made to run arbitrary code, with what
//! each can do. Grants of them deserve a second look.

use super::env::is_hook;

/// Programs that run code given in their arguments, environment or files.
const PROGRAMS: &[(&str, &str)] = &[
    ("sh", "`sh -c` runs any shell command"),
    ("bash", "`bash -c` runs any shell command"),
    ("dash", "`dash -c` runs any shell command"),
    ("zsh", "`zsh -c` runs any shell command"),
    ("python3", "`python3 -c` runs any Python code"),
    ("python", "`python -c` runs any Python code"),
    ("node", "`node -e` runs any JavaScript"),
    ("perl", "`perl -e` runs any Perl code"),
    ("ruby", "`ruby -e` runs any Ruby code"),
    (
        "git",
        "`-c core.pager=…`, `-c alias.x=!cmd`, hooks and `--upload-pack` run commands",
    ),
    ("env", "`env PROGRAM` runs any other program"),
    ("find", "`find -exec` runs any program"),
    ("xargs", "`xargs PROGRAM` runs any other program"),
    ("awk", "`system()` runs any shell command"),
    ("make", "recipes run any shell command"),
];

/// Variables that make a program load or run code beyond the loader and
/// shell hooks of the environment grant.
const VARIABLES: &[(&str, &str)] = &[
    ("GIT_PAGER", "git runs it as a command"),
    ("GIT_EDITOR", "git runs it as a command"),
    ("GIT_ASKPASS", "git runs it as a command"),
    ("PAGER", "programs run it as a command"),
    ("EDITOR", "programs run it as a command"),
    ("VISUAL", "programs run it as a command"),
];

/// What a catalogued variable can make a program do, if it is catalogued.
pub fn variable_risk(name: &str) -> Option<&'static str> {
    if let Some((_, risk)) = VARIABLES.iter().find(|(n, _)| *n == name) {
        return Some(risk);
    }
    is_hook(name).then_some("it changes how the loader, libc, a shell or a runtime loads code")
}

/// What a catalogued program can be made to do, if it is catalogued. The
/// program is named by file name or path.
pub fn program_risk(program: &str) -> Option<&'static str> {
    let name = program.rsplit('/').next().unwrap_or(program);
    PROGRAMS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, risk)| *risk)
}
