//! Word rules at scale (`-- --only rules`): a planet-wide `[rules] exclude_words_file` of 10
//! words, then of 10,000, judging the same 100,000 entries (English, Chinese and Russian
//! bodies of about 600 characters, one in a hundred carrying a spam line in Traditional
//! characters and full-width digits). The rules come from a real config, through the same
//! verdict the poll and the outputs use; the figure is the time per 1,000 entries, on one core.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use tributary::Config;
use tributary::Entry;
use tributary::{Fields, Verdict, verdict};

use super::Row;
use super::measure::self_cpu;

const ENTRIES: usize = 100_000;

/// A small deterministic generator: the same words and entries on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn word(&mut self, alphabet: &[char], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[self.next() as usize % alphabet.len()])
            .collect()
    }
}

const LATIN: &[char] = &[
    'a', 'e', 'i', 'o', 'u', 'k', 'r', 's', 't', 'n', 'l', 'm', 'p', 'd',
];
const HAN: &[char] = &[
    '国', '产', '网', '视', '频', '亚', '洲', '经', '济', '发', '展', '新', '闻', '会',
];
const CYRILLIC: &[char] = &[
    'а', 'е', 'и', 'о', 'у', 'к', 'р', 'с', 'т', 'н', 'л', 'м', 'п', 'д',
];

/// The entries judged: a third each in English-like, Chinese and Russian-like text.
fn entries() -> Vec<Entry> {
    let mut rng = Lcg(7);
    (0..ENTRIES)
        .map(|i| {
            let alphabet = [LATIN, HAN, CYRILLIC][i % 3];
            let mut body = String::from("<p>");
            while body.len() < 600 {
                let len = if alphabet == HAN {
                    2
                } else {
                    3 + rng.next() as usize % 6
                };
                body.push_str(&rng.word(alphabet, len));
                body.push(if alphabet == HAN { '，' } else { ' ' });
            }
            if i % 100 == 0 {
                body.push_str("亞洲９１視頻,國產９１網");
            }
            body.push_str("</p>");
            Entry {
                title: format!("Story {i} {}", rng.word(alphabet, 6)),
                content: Some(body),
                categories: vec!["news".into()],
                ..Entry::default()
            }
        })
        .collect()
}

/// A config whose `[rules]` exclude the `count` words of a words file: the spam words and
/// made-up ones in each script.
fn rules_config(dir: &Path, count: usize) -> Config {
    let mut rng = Lcg(11);
    let mut words = String::from("# generated\n亚洲91视频\n国产91网\n");
    for i in 2..count {
        let alphabet = [LATIN, HAN, CYRILLIC][i % 3];
        let len = if alphabet == HAN { 6 } else { 9 };
        let _ = writeln!(words, "{}", rng.word(alphabet, len));
    }
    let file = dir.join(format!("words-{count}.txt"));
    std::fs::write(&file, words).expect("words file");
    let text = format!(
        "[rules]\nexclude_words_file = \"{}\"\n[[feed]]\nurl = \"a.xml\"\n[[output]]\npath = \"out.atom\"\n",
        file.display()
    );
    Config::parse(&dir.join("rules.toml"), &text).expect("the bench's config")
}

pub fn word_rules(base: &Path) -> Vec<Row> {
    let dir = base.join("rules");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let entries = entries();
    [10, 10_000]
        .into_iter()
        .map(|count| {
            let config = rules_config(&dir, count);
            let rules = &config.outputs[0].rules;
            let (cpu, started) = (self_cpu(), Instant::now());
            let excluded = entries
                .iter()
                .filter(|e| matches!(verdict(rules, &Fields::of(e)), Verdict::Excluded(_)))
                .count();
            let wall = started.elapsed();
            let per_1000 = wall.as_secs_f64() * 1000.0 / (ENTRIES as f64 / 1000.0);
            Row {
                scenario: format!("rules: {count} words × 100,000 entries"),
                target: if count == 10 {
                    "(baseline)".into()
                } else {
                    "≈ the 10-word row".into()
                },
                wall,
                cpu: self_cpu().saturating_sub(cpu),
                peak_rss_kib: 0,
                entries: ENTRIES as i64,
                requests: 0,
                not_modified: 0,
                note: format!("{per_1000:.1} ms per 1,000 entries; {excluded} excluded"),
            }
        })
        .collect()
}
