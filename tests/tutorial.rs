//! docs/tutorial.md, run: every `$ command` in its `console` blocks is run
//! in order, in a fresh folder, with this build's `vestibule` on the PATH,
//! and what it prints must match the lines shown under it (`...` skips any
//! lines, `[..]` any text within a line).

use std::path::{Path, PathBuf};
use std::process::Command;

/// One command of the tutorial and the output it shows.
struct Step {
    command: String,
    expected: Vec<String>,
}

fn steps(markdown: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_console = false;
    let mut heredoc: Option<String> = None;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_console = line == "```console";
            continue;
        }
        if !in_console {
            continue;
        }
        let last = steps.last_mut();
        match (&heredoc, last) {
            (Some(end), Some(step)) => {
                step.command.push('\n');
                step.command.push_str(line);
                if line == end {
                    heredoc = None;
                }
            }
            _ if line.starts_with("$ ") => {
                let command = line[2..].to_string();
                heredoc = command
                    .split("<<'")
                    .nth(1)
                    .map(|rest| rest.trim_end_matches('\'').to_string());
                steps.push(Step {
                    command,
                    expected: Vec::new(),
                });
            }
            (None, Some(step)) => step.expected.push(line.to_string()),
            (_, None) => panic!("output before any command: {line}"),
        }
    }
    steps
}

/// Whether `actual` shows `expected`, with `...` and `[..]`.
fn matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => (0..=actual.len()).any(|skip| matches(rest, &actual[skip..])),
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(line, tail)| line_matches(first, line) && matches(rest, tail)),
    }
}

fn line_matches(pattern: &str, line: &str) -> bool {
    let line = line.trim_end();
    let mut parts = pattern.trim_end().split("[..]");
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

#[test]
fn the_tutorial_works_as_written() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let markdown = std::fs::read_to_string(workspace.join("docs/tutorial.md")).unwrap();
    let steps = steps(&markdown);
    assert!(steps.len() >= 10, "only {} steps found", steps.len());
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_vestibule"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let home = tempfile::tempdir().unwrap();
    let mut cwd = home.path().to_path_buf();
    for step in steps {
        if let Some(dir) = step.command.strip_prefix("cd ") {
            cwd = cwd.join(dir);
            continue;
        }
        if step.command.starts_with("cargo ") && !cwd.join("target").exists() {
            // The new crate shares this workspace's lock file and target
            // folder, so its dependencies are not compiled again here; the
            // commands are the tutorial's own.
            std::fs::copy(workspace.join("Cargo.lock"), cwd.join("Cargo.lock")).unwrap();
            std::os::unix::fs::symlink(workspace.join("target"), cwd.join("target")).unwrap();
        }
        let output = Command::new("bash")
            .arg("-c")
            .arg(&step.command)
            .current_dir(&cwd)
            .env("PATH", &path)
            .env("LC_ALL", "C")
            .env("NO_COLOR", "1")
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "`{}` failed:\n{text}", step.command);
        let lines: Vec<&str> = text.lines().collect();
        // What a command shows is all it prints, unless it says `...`; a
        // command shown without output may print anything.
        let mut expected = step.expected.clone();
        if expected.is_empty() {
            expected.push("...".into());
        }
        assert!(
            matches(&expected, &lines),
            "`{}` printed:\n{text}\nwhich does not match what the tutorial shows:\n{}",
            step.command,
            step.expected.join("\n")
        );
    }
}

#[test]
fn patterns_match_as_documented() {
    let lines = ["a", "time: 1.2ms", "b", "c"];
    let expect = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    assert!(matches(&expect(&["a", "time: [..]", "..."]), &lines));
    assert!(matches(&expect(&["...", "c"]), &lines));
    assert!(!matches(&expect(&["a", "time: [..]"]), &lines), "unshown lines fail");
    assert!(!matches(&expect(&["a", "time: 9[..]", "..."]), &lines));
    assert!(line_matches("x [..] y [..] z", "x 1 y 2 z"));
}
