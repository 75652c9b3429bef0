//! What the `feed` fuzz target asserts of any bytes: decode → parse → dedupe → sanitize, the
//! path bytes from the network take to the store. Nothing may panic (feed-rs panics are caught
//! and must stay caught), and no markup gets through unsanitized. Shared by the fuzz target and
//! the test that replays its corpus (`tests/it/fuzz.rs`), so both hold the same promise.

/// Runs the check on `data`; panics when a promise is broken.
pub fn check(data: &[u8]) {
    let (content_type, body) = match data.split_first() {
        Some((0, rest)) => (Some("application/rss+xml; charset=windows-1251"), rest),
        Some((1, rest)) => (Some("text/xml; charset=utf-16"), rest),
        Some((_, rest)) => (None, rest),
        None => (None, data),
    };
    let text = tributary::decode(body.to_vec(), content_type).text;
    let base = url::Url::parse("https://fuzz.example/feed/").unwrap();
    let Ok(feed) = tributary::parse_document(&text, &base) else {
        return;
    };
    // Leaving out every other item (as a re-poll leaves out the stored ones) must not change
    // how the others parse.
    let prints: Vec<_> = feed.entries.iter().map(|e| e.segment).collect();
    if !prints.is_empty() && prints.iter().all(Option::is_some) {
        let known: tributary::Fingerprints = prints.iter().flatten().step_by(2).copied().collect();
        let cut = tributary::parse_changed(&text, &base, &known).expect("the cut document parses");
        let expected: Vec<_> = feed
            .entries
            .iter()
            .filter(|e| !e.segment.is_some_and(|s| known.contains(s)))
            .map(|e| &e.entry)
            .collect();
        let got: Vec<_> = cut.entries.iter().map(|e| &e.entry).collect();
        assert_eq!(got, expected);
    }
    let mut sanitizer = tributary::Sanitizer::new();
    for keyed in tributary::key_entries(feed.entries) {
        let entry = tributary::finish_entry(keyed.entry, &[], &mut Default::default(), &mut sanitizer);
        for html in [&entry.summary, &entry.content].into_iter().flatten() {
            assert!(
                !html.to_ascii_lowercase().contains("<script"),
                "unsanitized: {html}"
            );
        }
    }
}
