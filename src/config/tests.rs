use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/tributary/t.toml"), text)
}

#[test]
fn lists_expand_to_feeds_with_their_defaults_and_the_configs_feeds_keep_their_keys() {
    use crate::model::ListMember;
    let member = |url: &str, title: &str, tags: &[&str], include: bool| ListMember {
        url: url.into(),
        title: Some(title.into()),
        site: Some("https://a.example/".into()),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        include,
    };
    let members = Memberships::from([
        (
            "https://lists.example/planet.opml".to_string(),
            vec![
                member("feeds/a.xml", "A", &["Tech"], false),
                member("https://b.example/feed", "B from the list", &[], false),
                member("more.opml", "More", &["extra"], true),
                member("file:///etc/passwd", "No", &[], false),
            ],
        ),
        (
            "https://lists.example/more.opml".to_string(),
            vec![
                member("https://d.example/feed", "D", &[], false),
                member("https://lists.example/planet.opml", "Back", &[], true),
            ],
        ),
    ]);
    let text = "[[list]]\nurl = \"https://lists.example/planet.opml\"\ntags = [\"planet\"]\n\
                schedule = \"0 * * * *\"\nfull_text = true\nexclude = [\"(?i)ad\"]\n\
                [[feed]]\nurl = \"https://b.example/feed\"\ntitle = \"B by the config\"\n\
                [[output]]\npath = \"o.atom\"\ntags = [\"extra\"]\n";
    let c = Config::parse_full(
        Path::new("/etc/tributary/t.toml"),
        text,
        &Secrets::from_process(),
        &members,
    )
    .unwrap();
    let feed = |url: &str| c.feeds.iter().find(|f| f.url.as_str() == url).unwrap();
    // A relative member is the list's; the list's defaults are its feeds'.
    let a = feed("https://lists.example/feeds/a.xml");
    assert_eq!(a.title.as_deref(), Some("A"));
    assert_eq!(a.tags, ["planet", "Tech"]);
    assert_eq!(a.list.as_deref(), Some("https://lists.example/planet.opml"));
    assert!(a.full_text && a.schedule.is_some() && !a.rules.is_empty());
    // The config's own feed keeps its keys, takes the list's tags, and is no list's.
    let b = feed("https://b.example/feed");
    assert_eq!(b.title.as_deref(), Some("B by the config"));
    assert_eq!(b.tags, ["planet"]);
    assert_eq!(b.list, None);
    assert!(!b.full_text);
    // The included list's feeds take the includer's defaults and the include's tags.
    let d = feed("https://d.example/feed");
    assert_eq!(d.tags, ["planet", "extra"]);
    assert_eq!(d.list.as_deref(), Some("https://lists.example/more.opml"));
    assert!(
        c.feeds.iter().all(|f| f.url.scheme() != "file"),
        "a list names no file"
    );
    assert_eq!(c.lists.len(), 2);
    assert_eq!(
        c.lists[1].included_by.as_deref(),
        Some("https://lists.example/planet.opml")
    );
    let looped: Vec<&Problem> = c.warnings.iter().filter(|p| p.key == "list").collect();
    assert_eq!(looped.len(), 1, "{looped:?}");
    assert!(looped[0].message.contains("includes it back"));
    assert!(!looped[0].message.contains("  "), "{}", looped[0].message);
    // Outputs select list feeds by the tags lists give them.
    assert_eq!(c.outputs[0].feeds.len(), 1);
}

#[test]
fn defaults_and_relative_paths() {
    let c = parse("[[feed]]\nurl = \"feeds/a.xml\"\n[[output]]\npath = \"out/all.atom\"\n").unwrap();
    assert_eq!(c.store.path, Path::new("/etc/tributary/tributary.db"));
    assert_eq!(c.feeds[0].url.as_str(), "file:///etc/tributary/feeds/a.xml");
    assert_eq!(c.outputs[0].path, Path::new("/etc/tributary/out/all.atom"));
    assert_eq!(c.outputs[0].limit, 100);
    assert!(c.outputs[0].id.starts_with("urn:uuid:"));
    assert_eq!(c.poll.timeout, Duration::from_secs(30));
    assert!(c.poll.user_agent.starts_with("tributary/"));
}

#[test]
fn a_postgres_store_and_its_node() {
    let c = parse(
        "[store]\nurl = \"postgres://planet@db.example:5433/feeds\"\n[node]\nname = \"poller-2\"\nlease = \"45s\"\n",
    )
    .unwrap();
    assert_eq!(
        c.backend(),
        crate::model::Backend::Server {
            url: "postgres://planet@db.example:5433/feeds".into(),
            node: "poller-2".into()
        }
    );
    assert_eq!(c.node.lease, Duration::from_secs(45));
    assert!(parse("[store]\nurl = \"host=/run/postgresql dbname=feeds user=planet\"\n").is_ok());
    // The node's name defaults to the host's; SQLite stays the default store.
    let file = parse("").unwrap();
    assert!(matches!(file.backend(), crate::model::Backend::File(_)));
    assert!(!file.node.name.is_empty());

    let err =
        parse("[store]\npath = \"t.db\"\nurl = \"postgres://a@b/c\"\n[node]\nlease = \"1s\"\nname = \"\"\n")
            .unwrap_err();
    let found: Vec<_> = err
        .problems
        .iter()
        .map(|p| (p.key.as_str(), p.line, p.column))
        .collect();
    assert_eq!(
        found,
        [("store.url", 3, 7), ("node.name", 6, 8), ("node.lease", 5, 9)],
        "{err}"
    );
    assert!(err.to_string().contains("not both"), "{err}");
    let err = parse("[store]\nurl = \"mysql://a@b/c\"\n").unwrap_err();
    assert!(
        err.problems[0].message.contains("PostgreSQL connection string"),
        "{err}"
    );
    // A password from the environment is read, and no message repeats it.
    let err = parse("[store]\nurl = \"postgres://a:${TRIBUTARY_NO_SUCH_VAR}@b/c\"\n").unwrap_err();
    assert_eq!(err.problems[0].key, "store.url", "{err}");
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let err = parse("[poll]\nconcurency = 3\n").unwrap_err();
    let p = &err.problems[0];
    assert_eq!((p.line, p.column), (2, 1));
    assert_eq!(p.key, "poll.concurency");
    assert_eq!(
        p.to_string(),
        "/etc/tributary/t.toml:2:1: poll.concurency: unknown key `concurency`; did you mean `concurrency`?"
    );
}

#[test]
fn validation_collects_every_problem() {
    let err = parse(
        "[poll]\ntimeout = \"soon\"\n[[feed]]\nurl = \"gopher://x\"\n[[output]]\npath = \"a\"\nformat = \"xml\"\n",
    )
    .unwrap_err();
    let keys: Vec<_> = err.problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
    assert_eq!(
        keys,
        [("poll.timeout", 2), ("feed[1].url", 4), ("output[1].format", 7)]
    );
}

#[test]
fn unknown_keys_and_invalid_values_are_all_reported() {
    let err = parse(
        "[poll]\ntimout = \"3s\"\nschedule = \"every hour\"\n[[feed]]\nurl = \"a\"\nexclude = [\"(\"]\n",
    )
    .unwrap_err();
    let got: Vec<_> = err.problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
    assert_eq!(
        got,
        [("poll.timout", 2), ("poll.schedule", 3), ("feed[1].exclude", 6)]
    );
    assert!(err.problems[0].message.contains("did you mean `timeout`?"));
}

#[test]
fn wrong_type_names_the_key() {
    let err = parse("[[feed]]\nurl = \"a\"\n[[feed]]\nurl = 5\n").unwrap_err();
    assert_eq!(err.problems[0].key, "feed[2].url");
    assert_eq!(err.problems[0].line, 4);
}

#[test]
fn planet_rules_and_word_lists() {
    let dir = tempfile::tempdir().unwrap();
    // A fixture, not an output: written plainly.
    std::io::Write::write_all(
        &mut std::fs::File::create(dir.path().join("spam.txt")).unwrap(),
        "# spam seen on news sites\n亚洲91视频\n\n国产91网\n".as_bytes(),
    )
    .unwrap();
    let text = "[rules]\nexclude_words = [\"casino\"]\nexclude_words_file = \"spam.txt\"\n\
                [[feed]]\nurl = \"a.xml\"\ninclude_words = [\"rust\"]\n\
                [[output]]\npath = \"a.atom\"\nexclude = [\"(?i)sponsored\"]\n\
                [[output]]\npath = \"b.atom\"\n";
    let c = Config::parse(&dir.path().join("t.toml"), text).unwrap();
    let places = |r: &Rules| r.tables.iter().map(|t| t.place.clone()).collect::<Vec<_>>();
    assert_eq!(places(&c.outputs[0].rules), ["[rules]", "output[1]"]);
    assert_eq!(places(&c.outputs[1].rules), ["[rules]"]);
    assert_eq!(places(&c.feeds[0].rules), ["feed[1]"]);
    let planet = &c.outputs[1].rules.tables[0];
    assert_eq!(planet.exclude.len(), 2);
    let Pattern::Words(words) = &planet.exclude[1].pattern else {
        panic!("a word list")
    };
    assert_eq!(words.written, ["亚洲91视频", "国产91网"]);
    assert_eq!(words.file.as_deref(), Some(dir.path().join("spam.txt").as_path()));
}

#[test]
fn a_glob_written_as_a_regex_is_told_to_use_words() {
    let err = parse(
        "[rules]\nexclude = [\"*91视频*\"]\nexclude_words = [\" \"]\nexclude_words_file = \"nope.txt\"\n",
    )
    .unwrap_err();
    let got: Vec<_> = err.problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
    assert_eq!(
        got,
        [
            ("rules.exclude", 2),
            ("rules.exclude_words", 3),
            ("rules.exclude_words_file", 4)
        ]
    );
    assert!(
        err.problems[0]
            .message
            .contains("looks like a glob or a plain word: to match words and phrases (no regex syntax), write rules.exclude_words = [\"91视频\"]"),
        "{}",
        err.problems[0].message
    );
    assert!(
        err.problems[2]
            .message
            .contains("cannot read /etc/tributary/nope.txt")
    );
}
