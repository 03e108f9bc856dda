//! The operator's documents keep up with the code: every configuration key is
//! described in docs/configuration.md (in its section) and in the example
//! configuration, and the README links every document.

use enterprise_sync::config::Config;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// `(section, key)` for every key, `section` empty at the top level.
fn keys() -> Vec<(String, String)> {
    let mut keys = Vec::new();
    let serde_json::Value::Object(top) = serde_json::to_value(Config::default()).unwrap() else {
        panic!("the configuration serialises as a table");
    };
    for (key, value) in top {
        match value {
            serde_json::Value::Object(section) => {
                keys.extend(section.keys().map(|sub| (key.clone(), sub.clone())));
            }
            _ => keys.push((String::new(), key)),
        }
    }
    keys
}

/// The text of `## <heading>` up to the next `## `.
fn section<'a>(document: &'a str, heading: &str) -> &'a str {
    let start = document
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading}"));
    let rest = &document[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

#[test]
fn every_configuration_key_is_documented() {
    let document = repo_file("docs/configuration.md");
    let example = repo_file("packaging/config.example.toml");
    let keys = keys();
    assert!(keys.len() >= 55, "{keys:?}");
    for (table, key) in keys {
        let heading = if table.is_empty() {
            "Top level".to_string()
        } else {
            format!("`[{table}]`")
        };
        assert!(
            section(&document, &heading).contains(&format!("| `{key}` |")),
            "docs/configuration.md does not describe {table}.{key} under {heading}"
        );
        let assigned = example.lines().any(|line| {
            let line = line.trim_start_matches("# ");
            line.starts_with(&format!("{key} = ")) || line.starts_with(&format!("[{table}.{key}"))
        });
        assert!(
            assigned,
            "packaging/config.example.toml lacks {table}.{key}"
        );
    }
}

#[test]
fn the_readme_links_every_document() {
    let readme = repo_file("README.md");
    for entry in std::fs::read_dir(format!("{}/docs", env!("CARGO_MANIFEST_DIR"))).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            readme.contains(&format!("](docs/{name})")),
            "README.md does not link docs/{name}"
        );
    }
}
