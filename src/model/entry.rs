//! Entries: what a feed's item says (`Entry`), how it is known within its feed (`EntryKey`),
//! and what the store hands back (`StoredEntry`).

use super::*;

/// One entry as parsed and normalized: UTF-8, sanitized HTML, absolute URLs, plain-text title.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The feed's own id/guid for the entry, when it gave one.
    pub guid: Option<String>,
    /// The entry's link (its page), absolute.
    pub link: Option<String>,
    /// The title, plain text (empty when the feed gave none).
    pub title: String,
    /// Who wrote it, when the feed says.
    pub author: Option<Person>,
    /// Sanitized HTML.
    pub summary: Option<String>,
    /// Sanitized HTML.
    pub content: Option<String>,
    /// When the feed says it was published.
    pub published: Option<DateTime<Utc>>,
    /// When the feed says it last changed.
    pub updated: Option<DateTime<Utc>>,
    /// Its categories or tags, as the feed names them.
    pub categories: Vec<String>,
    /// Attached media (podcast episodes, images).
    pub enclosures: Vec<Enclosure>,
    /// Where `content` came from: the feed, or (`[[feed]] full_text`) the entry's page. Not
    /// part of the entry's content hash: that hash is of what the feed says.
    pub full_text: FullText,
    /// Its language and where that came from; `None` when nobody said and the text did not
    /// show it.
    pub language: Option<Language>,
}

/// An entry's language: a checked BCP 47 tag, and who said it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Language {
    /// The BCP 47 tag, checked and in canonical form (`zh-Hant`, `pt-BR`).
    pub tag: String,
    /// Who said it.
    pub source: LanguageSource,
}

/// Where an entry's language came from, most trusted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LanguageSource {
    /// The feed's `lang` in the config.
    Config,
    /// The language the feed declares (RSS `<language>`, Atom `xml:lang`, JSON Feed
    /// `language`), when it is a registered tag.
    Feed,
    /// Read from the entry's text.
    Detected,
}

impl LanguageSource {
    /// Its name in the store and in JSON answers.
    pub fn as_str(self) -> &'static str {
        match self {
            LanguageSource::Config => "config",
            LanguageSource::Feed => "feed",
            LanguageSource::Detected => "detected",
        }
    }

    /// The source [`LanguageSource::as_str`] named.
    pub fn parse(name: &str) -> Option<LanguageSource> {
        [
            LanguageSource::Config,
            LanguageSource::Feed,
            LanguageSource::Detected,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// Where an entry's content came from, for feeds with `full_text`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FullText {
    /// The feed's own text (full text not asked for, or the entry has no web page).
    #[default]
    Feed,
    /// The article extracted from the entry's page; the feed's own text is the summary.
    Page,
    /// The page could not be read or held no article: the feed's text stands. Tried `tries`
    /// times; a failure is tried again once, at a later poll.
    Failed { error: String, tries: u32 },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
/// A person as feeds name authors: a name, and perhaps an address and a page.
pub struct Person {
    /// The name as written.
    pub name: String,
    /// An email address, when the feed gives one.
    pub email: Option<String>,
    /// A page about them, when the feed gives one.
    pub uri: Option<String>,
}

/// A podcast-style attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enclosure {
    /// Where the media is.
    pub url: String,
    /// Its media type, when the feed says.
    pub mime_type: Option<String>,
    /// Its size in bytes, when the feed says.
    pub length: Option<u64>,
}

/// How an entry is known within its feed. The kind is part of the key so that a guid that
/// happens to equal some link never collides with a link-derived key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryKey(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// What an entry's key was made from.
pub enum KeyKind {
    /// The feed's guid / id.
    Guid,
    /// The canonical form of the entry's link.
    Link,
    /// A hash of title and content, for entries with neither.
    Hash,
}

impl KeyKind {
    pub(super) fn prefix(self) -> &'static str {
        match self {
            KeyKind::Guid => "guid:",
            KeyKind::Link => "link:",
            KeyKind::Hash => "hash:",
        }
    }
}

impl EntryKey {
    /// The key of `kind` made from `value` (a guid, a canonical link, or a text hash).
    pub fn new(kind: KeyKind, value: &str) -> Self {
        EntryKey(format!("{}{value}", kind.prefix()))
    }

    /// Rebuilds a key read back from the store.
    pub(crate) fn from_stored(s: String) -> Self {
        EntryKey(s)
    }

    /// What the key was made from.
    pub fn kind(&self) -> KeyKind {
        [KeyKind::Guid, KeyKind::Link, KeyKind::Hash]
            .into_iter()
            .find(|k| self.0.starts_with(k.prefix()))
            .unwrap_or(KeyKind::Guid)
    }

    /// The key as the store keeps it, its kind as a prefix (`guid:…`, `link:…`, `hash:…`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An entry with its identity and a hash of everything the feed said about it, so that "seen
/// again unchanged" costs one comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyed<T> {
    pub key: EntryKey,
    pub(crate) content_hash: String,
    /// The canonical form of the entry's link, for cross-feed duplicates.
    pub(crate) canonical_link: Option<String>,
    /// The fingerprint of the item it was parsed from, when known (see `parse::segments`).
    pub(crate) segment: Option<SegmentHash>,
    pub entry: T,
}

/// Longer guids are not identifiers but content pasted into the wrong element: dedupe does not
/// key by them, and the parser does not cut items by them.
pub(crate) const MAX_GUID_LEN: usize = 2048;

/// A fingerprint of one item of a feed document, as the parser cut it out.
pub(crate) type SegmentHash = u64;

/// An entry ready for the store.
pub type KeyedEntry = Keyed<Entry>;

/// An entry as stored, with the dates the store settled on.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// The entry's id in the store.
    pub id: i64,
    /// The id of the feed it belongs to.
    pub feed_id: i64,
    /// How it is known within its feed.
    pub key: EntryKey,
    /// What the feed said of it, sanitized.
    pub entry: Entry,
    /// The stable sort date: the feed's date, or first-seen when it had none or it lay in the future.
    pub published: DateTime<Utc>,
    /// Moves when the entry's content changes.
    pub updated: DateTime<Utc>,
    /// When Tributary first stored it (ties cross-feed duplicates to the feed that had it first).
    pub first_seen: DateTime<Utc>,
    /// The canonical form of its link, for cross-feed duplicates.
    pub canonical_link: Option<String>,
    /// Kept out of outputs: part of a new feed's back catalogue.
    pub hidden: bool,
    /// Its rank, newest first, among the entries of its feed's first poll (`None`: it came
    /// later); ranks past `poll.new_feed_entries` are the back catalogue.
    pub catalogue_rank: Option<usize>,
    /// It first arrived in a WebSub push, not a poll.
    pub pushed: bool,
}

/// A set of item fingerprints: those a feed's next parse may leave out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprints(std::collections::HashSet<SegmentHash>);

impl Fingerprints {
    /// Adds the fingerprint of an entry's item, when the parse knew it.
    pub fn add(&mut self, print: Option<SegmentHash>) {
        self.0.extend(print);
    }

    /// Whether the item with fingerprint `print` may be left out.
    pub fn contains(&self, print: SegmentHash) -> bool {
        self.0.contains(&print)
    }

    /// How many fingerprints the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set holds none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The set as the store keeps it: 8 bytes each, little-endian, sorted.
    pub(crate) fn to_stored(&self) -> Vec<u8> {
        let mut prints: Vec<SegmentHash> = self.0.iter().copied().collect();
        prints.sort_unstable();
        prints.iter().flat_map(|p| p.to_le_bytes()).collect()
    }

    /// The set from what [`Fingerprints::to_stored`] wrote (a trailing partial chunk is ignored).
    pub(crate) fn from_stored(bytes: &[u8]) -> Fingerprints {
        Fingerprints(
            bytes
                .chunks_exact(8)
                .filter_map(|c| c.try_into().ok().map(SegmentHash::from_le_bytes))
                .collect(),
        )
    }
}

impl FromIterator<SegmentHash> for Fingerprints {
    fn from_iter<I: IntoIterator<Item = SegmentHash>>(prints: I) -> Fingerprints {
        Fingerprints(prints.into_iter().collect())
    }
}
