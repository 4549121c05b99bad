//! The docs name only what exists: every repository path in README.md and docs/*.md (a backticked name under one of
//! the top-level folders, or a file name such as `sender.rs` that some file's path ends with), and every file a
//! command example uploads (`curl -F image=@assets/example.jpg`), so a reader who follows them finds the file.

use std::path::{Path, PathBuf};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The folders at the top of the repository: a backticked name starting with one of them is a path.
const TOP_FOLDERS: [&str; 9] = ["api", "worker", "common", "tests", "docs", "deploy", "bench", "assets", ".ci"];

/// A bare file name with one of these extensions is a file of the repository (`x.png` in an example is not).
const SOURCE_EXTENSIONS: [&str; 12] =
    ["rs", "sh", "md", "yml", "yaml", "toml", "json", "mjs", "html", "lua", "py", "txt"];

/// The generated paths `.gitignore` names from the root (`/target`, `/deploy/docker/.env`): a doc may name them
/// though a fresh clone has none, and the walk does not enter them.
fn generated() -> Vec<String> {
    let ignore = std::fs::read_to_string(root().join(".gitignore")).unwrap_or_default();
    let mut paths: Vec<String> =
        ignore.lines().filter_map(|l| l.trim().strip_prefix('/')).map(|l| l.trim_end_matches('/').to_owned()).collect();
    paths.push(".git".into());
    paths
}

/// Every file and folder of the repository, as paths relative to its root with `/` between names.
fn repository_paths() -> Vec<String> {
    let (skip, mut found, mut folders) = (generated(), Vec::new(), vec![String::new()]);
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(root().join(&folder)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if folder.is_empty() { name } else { format!("{folder}/{name}") };
            if skip.contains(&path) || path.ends_with("node_modules") {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                folders.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

/// README.md and docs/*.md with their text.
fn documents() -> Vec<(String, String)> {
    let mut names = vec!["README.md".to_owned()];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            names.push(format!("docs/{name}"));
        }
    }
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(root().join(&name)).unwrap();
            (name, text)
        })
        .collect()
}

/// The inline code spans of a Markdown text, outside fenced blocks; and the lines inside fenced blocks.
fn spans_and_code(text: &str) -> (Vec<&str>, Vec<&str>) {
    let (mut spans, mut code, mut fenced) = (Vec::new(), Vec::new(), false);
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            code.push(line);
        } else {
            spans.extend(line.split('`').skip(1).step_by(2));
        }
    }
    (spans, code)
}

/// The repository path a code span names, if it looks like one (without a `:line` or `#anchor` tail).
fn named_path(span: &str) -> Option<&str> {
    if span.contains(char::is_whitespace) || span.contains("://") || span.starts_with('/') {
        return None;
    }
    let path = span.split([':', '#']).next().unwrap_or_default().trim_end_matches('/');
    let first = path.split('/').next().unwrap_or_default();
    let extension = path.rsplit_once('.').map(|(_, e)| e);
    let under_top = path.contains('/') && TOP_FOLDERS.contains(&first);
    let source = extension.is_some_and(|e| SOURCE_EXTENSIONS.contains(&e));
    (under_top || source).then_some(path)
}

/// The files a shell example uploads: curl's `@file` arguments (`image=@x`, `--data-binary @x`).
fn uploaded_files(line: &str) -> Vec<&str> {
    let mut files = Vec::new();
    for (i, _) in line.match_indices('@') {
        if !matches!(line[..i].chars().last(), Some('=' | ' ')) {
            continue;
        }
        let file = line[i + 1..].split([' ', '\'', '"', ')']).next().unwrap_or_default();
        if !file.is_empty() && !file.starts_with('$') && !file.starts_with('-') {
            files.push(file);
        }
    }
    files
}

/// Whether `path` names something in the repository: under a top folder (`*` as a wildcard for one name), or a file
/// name or tail (`pipeline/codec/jpeg/turbo.rs`) that some path ends with.
fn exists(path: &str, paths: &[String], generated: &[String]) -> bool {
    let matches = |candidate: &str| match path.split_once('*') {
        Some((head, tail)) => candidate.starts_with(head) && candidate.ends_with(tail) && candidate.len() > head.len(),
        None => candidate == path,
    };
    let first = path.split('/').next().unwrap_or_default();
    if path.contains('/') && TOP_FOLDERS.contains(&first) {
        paths.iter().any(|p| matches(p)) || generated.iter().any(|g| path == g || path.starts_with(&format!("{g}/")))
    } else {
        paths.iter().any(|p| p == path || p.ends_with(&format!("/{path}")))
    }
}

#[test]
fn every_path_the_docs_name_exists_in_the_repository() {
    let (paths, generated) = (repository_paths(), generated());
    let mut missing = Vec::new();
    for (name, text) in documents() {
        let (spans, code) = spans_and_code(&text);
        for path in spans.into_iter().filter_map(named_path) {
            if !exists(path, &paths, &generated) {
                missing.push(format!("{name}: `{path}`"));
            }
        }
        for file in code.iter().flat_map(|line| uploaded_files(line)) {
            if !root().join(file).is_file() {
                missing.push(format!("{name}: an example uploads {file}, which is not in the repository"));
            }
        }
    }
    assert!(missing.is_empty(), "the docs name paths that do not exist:\n{}", missing.join("\n"));
}

#[test]
fn the_path_finder_knows_paths_from_prose() {
    assert_eq!(named_path("common/src/file_store/object.rs:12"), Some("common/src/file_store/object.rs"));
    assert_eq!(named_path("api/src/routes/"), Some("api/src/routes"));
    assert_eq!(named_path("sender.rs"), Some("sender.rs"));
    for prose in ["/openapi.json", "x.png", "THUMBQ_AUTH=keys", "make start", "https://example.com/a.rs", "a/b"] {
        assert_eq!(named_path(prose), None, "{prose}");
    }
    assert_eq!(uploaded_files("curl -F image=@assets/example.jpg 'http://u:p@host/'"), ["assets/example.jpg"]);
    assert_eq!(uploaded_files("curl --data-binary @a.png -F \"image=@$FILE\""), ["a.png"]);
}
