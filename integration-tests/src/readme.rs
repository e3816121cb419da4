//! The README's own examples, read from `README.md` so tests can run them as written.

use std::env;
use std::fs;
use std::path::Path;

/// The workspace's `README.md`.
pub fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .join("README.md");
    fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// The part of `text` from the line starting with `heading` to the next line starting with
/// `next` (a heading of the same level).
pub fn subsection<'a>(text: &'a str, heading: &str, next: &str) -> &'a str {
    let start = text
        .find(&format!("\n{heading}"))
        .unwrap_or_else(|| panic!("README.md has no {heading:?} heading"))
        + 1;
    let rest = &text[start..];
    let body_start = rest.find('\n').map_or(rest.len(), |end| end + 1);
    let end = rest[body_start..]
        .find(&format!("\n{next}"))
        .map_or(rest.len(), |end| body_start + end + 1);
    &rest[..end]
}

/// The fenced blocks of `text`, in order, as (info string, text).
pub fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(kind) = line.strip_prefix("```") else {
            continue;
        };
        let mut block = String::new();
        for line in lines.by_ref() {
            if line == "```" {
                break;
            }
            block.push_str(line);
            block.push('\n');
        }
        blocks.push((kind.to_owned(), block));
    }
    blocks
}

/// `PATH` with the built `riffle` first, so README commands run as a user types them.
pub fn path_with_riffle() -> String {
    let binary = crate::broker_binary();
    let bin_dir = binary.parent().expect("the binary's directory");
    match env::var("PATH") {
        Ok(path) => format!("{}:{path}", bin_dir.display()),
        Err(_) => bin_dir.display().to_string(),
    }
}
