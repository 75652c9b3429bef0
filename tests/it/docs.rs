//! The documentation agrees with the code: the reference config names every key the config
//! reads, the man page has the sections a man page has and points nowhere that does not
//! exist, and every example in `--help` runs.

use crate::support::{FeedServer, Route, Workspace, rss};

/// Every key of the schema is in the reference config (set, or commented out with its
/// default), under its own table; and the reference config itself is valid.
#[test]
fn the_reference_config_documents_every_key() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tributary.toml")).unwrap();
    let mut table = String::new();
    let mut documented: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let bare = line.trim().trim_start_matches('#').trim();
        if let Some(name) = bare.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            table = name.to_string();
        } else if let Some(name) = bare.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            table = name.to_string();
        } else if let Some((key, _)) = bare.split_once(" = ")
            && !key.contains(' ')
        {
            documented.push((table.clone(), key.to_string()));
        }
    }
    for (name, keys) in tributary::config_schema() {
        for key in keys {
            assert!(
                documented.iter().any(|(t, k)| t == name && k == key),
                "config/tributary.toml does not document {name}.{key}"
            );
        }
    }
    tributary::Config::parse(std::path::Path::new("/etc/tributary/tributary.toml"), &text)
        .unwrap_or_else(|e| panic!("the reference config is invalid:\n{e}"));
}

#[test]
fn the_man_page_has_the_standard_sections_and_no_dangling_references() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("man")
        .output()
        .unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "COMMANDS",
        "ENVIRONMENT",
        "FILES",
        "EXIT STATUS",
        "SIGNALS",
    ] {
        assert!(
            page.contains(&format!(".SH {section}")) || page.contains(&format!(".SH \"{section}\"")),
            "no {section} section"
        );
    }
    assert!(
        !page.contains("tributary\\-poll(1)") && !page.contains("tributary-poll(1)"),
        "points to pages that do not exist"
    );
    for command in [
        "poll", "run", "check", "feeds", "render", "import", "export", "add", "remove", "explain", "init",
        "preview",
    ] {
        assert!(
            page.contains(&format!("tributary {command}")),
            "{command} is not described"
        );
    }
}

/// Every `Example` line in every command's `--help` runs (against loopback stand-ins for the
/// URLs and paths it names): none is a usage error or a fatal one.
#[tokio::test(flavor = "multi_thread")]
async fn every_help_example_runs() {
    let server = FeedServer::start().await;
    server.set(
        "/feed.xml",
        Route::rss(rss(
            "Example blog",
            &[(
                Some("p1"),
                Some("https://example.org/posts/1"),
                "A post",
                "x",
                Some("Mon, 02 Mar 2026 10:00:00 +0000"),
            )],
        )),
    );
    server.set(
        "/other.xml",
        Route::rss(rss("other", &[(Some("o1"), None, "Other", "y", None)])),
    );
    server.set(
        "/",
        Route::feed(
            "text/html",
            format!(
                "<html><head><link rel=\"alternate\" type=\"application/rss+xml\" href=\"{}\"></head></html>",
                server.url("/feed.xml")
            ),
        ),
    );
    let ws = Workspace::new();
    ws.write_config("[store]\npath = \"data/t.db\"\n\n[[output]]\npath = \"public/all.atom\"\n");
    ws.write(
        "subscriptions.opml",
        format!(
            "<opml version=\"2.0\"><body><outline type=\"rss\" text=\"Other\" xmlUrl=\"{}\"/></body></opml>",
            server.url("/other.xml")
        )
        .as_bytes(),
    );
    let config = ws.path("tributary.toml").display().to_string();
    let stand_ins = [
        ("https://blog.rust-lang.org/feed.xml", server.url("/feed.xml")),
        ("https://example.org/feed.xml", server.url("/feed.xml")),
        ("https://example.org/", server.url("/")),
        ("/etc/tributary/tributary.toml", config.clone()),
        ("~/planet", ws.path("planet").display().to_string()),
    ];
    // The commands in an order where each example has what it needs (feeds before polls).
    let order = [
        "init",
        "add",
        "import",
        "poll",
        "feeds",
        "render",
        "explain",
        "preview",
        "export",
        "check",
        "completions",
        "man",
        "remove",
    ];
    let mut ran = 0;
    for command in order {
        let help = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args([command, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8(help.stdout).unwrap();
        for example in help.lines().filter(|l| l.starts_with("  tributary ")) {
            // The command itself, without what the shell does with its output.
            let mut line = example
                .trim()
                .split(['|', '>'])
                .next()
                .unwrap()
                .split("&&")
                .next()
                .unwrap()
                .trim()
                .to_string();
            for (from, to) in &stand_ins {
                line = line.replace(from, to);
            }
            let words = shell_words(&line);
            // `init` starts from nothing: an empty directory.
            let cwd = if command == "init" {
                ws.path("empty")
            } else {
                ws.path("")
            };
            std::fs::create_dir_all(&cwd).unwrap();
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
                .args(&words[1..])
                .current_dir(&cwd)
                .env_remove("TRIBUTARY_CONFIG")
                .output()
                .await
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.code() != Some(2),
                "`{example}` (run as `{line}`) failed:\n{stderr}{}",
                String::from_utf8_lossy(&out.stdout)
            );
            ran += 1;
        }
    }
    assert!(ran >= 15, "only {ran} examples found");
    let _ = config;
}

/// Words of a command line, with double quotes grouping.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The subcommands `tributary --help` lists, aliases included.
fn subcommands() -> Vec<String> {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let list = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap();
    let mut names = Vec::new();
    for line in list.lines().filter(|l| l.starts_with("  ")) {
        names.extend(line.split_whitespace().next().map(str::to_string));
        if let Some(alias) = line.split("[alias: ").nth(1).and_then(|a| a.split(']').next()) {
            names.push(alias.to_string());
        }
    }
    names
}

/// Every command, config key and default port the README names is one the code has: a
/// sentence in the README is a promise, and a renamed key or command breaks it here.
#[test]
fn the_readme_names_only_commands_keys_paths_and_ports_the_code_has() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let commands = subcommands();
    let invoked = regex::Regex::new(r"(?m)(?:^|`|\$ )\s*tributary ([a-z][a-z-]*)").unwrap();
    let mut seen = 0;
    for cap in invoked.captures_iter(&readme) {
        let command = &cap[1];
        assert!(
            commands.iter().any(|c| c == command),
            "the README runs `tributary {command}`, which does not exist"
        );
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} commands found in the README");

    let schema = tributary::config_schema();
    let known = |table: &str, key: &str| schema.iter().any(|(t, keys)| *t == table && keys.contains(&key));
    let dotted = regex::Regex::new(r"\b(store|node|poll|serve|feed|output|rules)\.([a-z_]+)\b").unwrap();
    let tabled =
        regex::Regex::new(r"\[\[?(store|node|poll|serve|feed|output|rules)\]\]?\s+`?([a-z_]+)").unwrap();
    let mut keys = 0;
    for cap in dotted.captures_iter(&readme).chain(tabled.captures_iter(&readme)) {
        let (table, key) = (&cap[1], &cap[2]);
        // `feed.xml` is a file name; a verdict names a rule kind: "excluded by [rules] words".
        if key == "xml" || (table == "rules" && key == "words") {
            continue;
        }
        assert!(
            known(table, key),
            "the README names {table}.{key}, which the config does not have"
        );
        keys += 1;
    }
    assert!(keys >= 20, "only {keys} keys found in the README");

    // The default ports the README gives are the config's defaults.
    let config = tributary::Config::parse(std::path::Path::new("/tmp/t.toml"), "[serve]\n").unwrap();
    let serve = config.serve.unwrap();
    assert_eq!(serve.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(
        serve.admin_listen.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:8081")
    );
    assert!(
        readme.contains("127.0.0.1:8081/healthz"),
        "the README's health check address"
    );

    // Paths: the repository's exist; the installed ones are where the package puts them.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo_path = regex::Regex::new(
        r"(?m)(?:^|[\s`(\[])((?:config|src|tests|benches|packaging|fuzz|\.ci)/[A-Za-z0-9_./-]*[A-Za-z0-9_])",
    )
    .unwrap();
    let mut paths = 0;
    for cap in repo_path.captures_iter(&readme) {
        let path = &cap[1];
        // A glob names files the README's reader makes (`conf.d/*.toml`); the demo's output
        // directory is made by running it.
        if path.contains('*') || path.starts_with("config/demo-out") {
            continue;
        }
        // A placeholder in capitals (`vN.db`, `tributary_VERSION_ARCH.deb`) names a family
        // of files: its directory must be there.
        let path = match path.rsplit_once('/') {
            Some((dir, name)) if name.chars().any(|c| c.is_ascii_uppercase()) => dir,
            _ => path,
        };
        assert!(
            root.join(path).exists(),
            "the README names {path}, which the repository does not have"
        );
        paths += 1;
    }
    assert!(paths >= 10, "only {paths} repository paths found in the README");
    let packaging: String = [
        "packaging/deb/build",
        "config/systemd/tributary.service",
        "config/systemd/tributary.sysusers",
        "config/tributary.toml",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(root.join(f)).unwrap())
    .collect();
    let installed = regex::Regex::new(
        r"`(/(?:etc/tributary|var/lib/tributary|usr/bin|usr/share|usr/lib|lib/systemd)[A-Za-z0-9_./-]*)`",
    )
    .unwrap();
    let mut installed_paths = 0;
    for cap in installed.captures_iter(&readme) {
        let path = cap[1].trim_end_matches('/');
        assert!(
            packaging.contains(path),
            "the README says the package installs {path}, which no packaging file mentions"
        );
        installed_paths += 1;
    }
    assert!(
        installed_paths >= 3,
        "only {installed_paths} installed paths found in the README"
    );
}

/// The man page lists every config key with its default, taken from the reference config.
#[test]
fn the_man_page_lists_every_key_with_its_default() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("man")
        .output()
        .unwrap();
    let page = String::from_utf8(out.stdout).unwrap();
    let configuration = page
        .split(".SH CONFIGURATION")
        .nth(1)
        .and_then(|s| s.split(".SH ").next())
        .expect("a CONFIGURATION section");
    for (table, keys) in tributary::config_schema() {
        let heading = match table {
            "" => ".SS \"Top level".to_string(),
            "feed" | "output" => format!(".SS [[{table}]]"),
            _ => format!(".SS [{table}]"),
        };
        let section = configuration
            .split(&heading)
            .nth(1)
            .and_then(|s| s.split(".SS ").next())
            .unwrap_or_else(|| panic!("no [{table}] in the man page"));
        for key in keys {
            // roff escapes hyphens; keys have underscores only.
            assert!(
                section.contains(&format!("\\fB{key} = ")),
                "the man page does not list {table}.{key} with its default"
            );
        }
    }
}
