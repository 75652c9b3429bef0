//! Languages: BCP 47 tags as configs and feeds write them, checked against the IANA Language
//! Subtag Registry (which the language-tags crate carries), and the language of a text when
//! nobody said it, detected by whatlang.
//!
//! Detection says only what the text shows: a language, and for Chinese a script only when
//! every character that tells Simplified from Traditional agrees (zhconv's tables); a text of
//! characters common to both is plain `zh`, never given a script it does not have.

use language_tags::{LanguageTag, ValidationError};

/// Why a tag is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TagError {
    #[error(
        "`{0}` is not a language tag (BCP 47: a language, then optional script, region and variants, such as \"zh-Hant-TW\" or \"pt-BR\")"
    )]
    Malformed(String),
    #[error(
        "`{tag}` is not a registered language tag: {why} (write a tag such as \"zh-CN\", \"zh-Hant\" or \"pt-BR\")"
    )]
    NotRegistered { tag: String, why: &'static str },
}

/// `tag` checked and in its canonical form (`iw` is `he`, `en-Latn` is `en`; case as the
/// registry writes it). `_` is read as `-`, as feeds and locales write it (`en_US`).
pub(crate) fn checked(tag: &str) -> Result<String, TagError> {
    let written = tag.trim().replace('_', "-");
    let parsed = LanguageTag::parse(&written).map_err(|_| TagError::Malformed(tag.to_string()))?;
    let not_registered = |why| TagError::NotRegistered {
        tag: tag.to_string(),
        why,
    };
    parsed.validate().map_err(|e| not_registered(why(&e)))?;
    let canonical = parsed.canonicalize().map_err(|e| not_registered(why(&e)))?;
    Ok(conventional_case(canonical.as_str()))
}

fn why(e: &ValidationError) -> &'static str {
    match e {
        ValidationError::PrimaryLanguageNotInRegistry => "its language is not in the IANA registry",
        ValidationError::ScriptNotInRegistry => "its script is not in the IANA registry",
        ValidationError::RegionNotInRegistry => "its region is not in the IANA registry",
        ValidationError::VariantNotInRegistry => "a variant is not in the IANA registry",
        ValidationError::ExtendedLanguageNotInRegistry => "its extended language is not in the IANA registry",
        ValidationError::WrongExtendedLanguagePrefix | ValidationError::WrongVariantPrefix => {
            "a subtag does not belong with the language it follows"
        }
        ValidationError::MultipleExtendedLanguageSubtags => "it has more than one extended language",
        ValidationError::DuplicateVariant | ValidationError::DuplicateExtension => "it repeats a subtag",
    }
}

/// Language lowercase, script titlecase, region uppercase: `zh-Hant-TW` however it came.
fn conventional_case(tag: &str) -> String {
    let mut out = Vec::new();
    let mut singleton = false;
    for (i, part) in tag.split('-').enumerate() {
        let cased = if i == 0 || singleton {
            part.to_ascii_lowercase()
        } else if part.len() == 4 && part.chars().all(|c| c.is_ascii_alphabetic()) {
            let mut s = part.to_ascii_lowercase();
            s[..1].make_ascii_uppercase();
            s
        } else if part.len() == 2 && part.chars().all(|c| c.is_ascii_alphabetic()) {
            part.to_ascii_uppercase()
        } else {
            part.to_ascii_lowercase()
        };
        singleton |= part.len() == 1;
        out.push(cased);
    }
    out.join("-")
}

/// Whether `tag` is in the language range `range` (RFC 4647 basic filtering, case-insensitive):
/// `zh` takes `zh`, `zh-Hant` and `zh-TW`; `*` takes any tag.
pub(crate) fn in_range(tag: &str, range: &str) -> bool {
    if range == "*" {
        return true;
    }
    let (tag, range) = (tag.as_bytes(), range.as_bytes());
    tag.len() >= range.len()
        && tag[..range.len()].eq_ignore_ascii_case(range)
        && (tag.len() == range.len() || tag[range.len()] == b'-')
}

/// How much text detection reads: a paragraph's worth of trigrams (about 80 words), and a
/// bound on the work for a long body. Read at 1,000 characters instead, the 1,323 entries of
/// the shared corpus longer than 500 got the same reading but for 19, all one podcast's link
/// lists read as reliable English at one length and not at the other (11 one way, 8 the
/// other). A reading costs about 47 µs at 500 characters and 59 µs at 1,000 (most of it is
/// whatlang's cost per call, whatever the length), so this saves a fifth of detection.
const DETECT_CHARS: usize = 500;

/// The language of `text` (plain text), when it shows clearly: a BCP 47 tag such as `fr`, `ja`,
/// `zh-Hans`; `None` for text too short or too mixed to tell.
#[cfg(test)]
fn detect(text: &str) -> Option<String> {
    read(text).map(|(tag, ..)| tag)
}

/// A language read from `text`: its tag, its script, and whether the reading is one whatlang
/// calls reliable.
fn read(text: &str) -> Option<(String, whatlang::Script, bool)> {
    let sample: String = text.chars().take(DETECT_CHARS).collect();
    let info = whatlang::detect(&sample)?;
    // Scripts whose text whatlang can only read as one language need no further evidence;
    // scripts shared by many languages (Latin, Cyrillic, Arabic, Devanagari) need a reliable
    // reading of the words.
    let one_language = matches!(
        info.script(),
        whatlang::Script::Hangul
            | whatlang::Script::Hiragana
            | whatlang::Script::Katakana
            | whatlang::Script::Mandarin
            | whatlang::Script::Greek
            | whatlang::Script::Georgian
            | whatlang::Script::Armenian
            | whatlang::Script::Thai
            | whatlang::Script::Khmer
            | whatlang::Script::Sinhala
            | whatlang::Script::Tamil
            | whatlang::Script::Telugu
            | whatlang::Script::Kannada
            | whatlang::Script::Malayalam
            | whatlang::Script::Gujarati
            | whatlang::Script::Gurmukhi
            | whatlang::Script::Oriya
            | whatlang::Script::Myanmar
    );
    if !one_language && !info.is_reliable() {
        return None;
    }
    let code = info.lang().code();
    let tag = match info.lang() {
        whatlang::Lang::Cmn => chinese(&sample).to_string(),
        // Iranian Persian: the registry's tag for the language people call Persian.
        whatlang::Lang::Pes => "fa".to_string(),
        _ => isolang::Language::from_639_3(code)
            .and_then(|l| l.to_639_1())
            .map_or_else(|| code.to_string(), str::to_string),
    };
    Some((checked(&tag).ok()?, info.script(), info.is_reliable()))
}

/// How many reliable readings in a row, all of one language, make it a feed's language.
const AGREEING: usize = 5;

/// Detection across one poll's new entries of a feed. Reading a text's words costs about
/// 45 µs (most of a cold poll's work when every entry needs it), and a feed is nearly always
/// written in one language: once its entries have read reliably as one language five times in
/// a row, an entry in that language's script is taken to be in it, and only an entry in
/// another script is read in full. Chinese is always read (its script tag comes from each
/// text's characters). Once five or more entries have been read and most said nothing clearly
/// (word salad, titles alone), the rest of the poll is not read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FeedDetector {
    streak: Option<(String, whatlang::Script, usize)>,
    /// Readings so far, and how many of them said nothing.
    read: usize,
    unclear: usize,
}

impl FeedDetector {
    /// The language of an entry titled `title` whose text `text` makes (made only when it is
    /// to be read: once the feed's language is known, a title in its script is enough).
    pub(crate) fn detect(&mut self, title: &str, text: impl FnOnce() -> String) -> Option<String> {
        if self.read >= AGREEING && self.unclear * 2 > self.read {
            return None;
        }
        let known = self
            .streak
            .as_ref()
            .filter(|(_, script, n)| *n >= AGREEING && *script != whatlang::Script::Mandarin);
        if let Some((tag, script, _)) = known
            && whatlang::detect_script(title) == Some(*script)
        {
            return Some(tag.clone());
        }
        let text = &text();
        if let Some((tag, script, _)) = known {
            let sample: String = text.chars().take(DETECT_CHARS).collect();
            if whatlang::detect_script(&sample) == Some(*script) {
                return Some(tag.clone());
            }
        }
        self.read += 1;
        let Some((tag, script, reliable)) = read(text) else {
            self.unclear += 1;
            return None;
        };
        self.streak = match self.streak.take() {
            Some((same, s, n)) if reliable && same == tag && s == script => Some((same, s, n + 1)),
            _ if reliable => Some((tag.clone(), script, 1)),
            _ => None,
        };
        Some(tag)
    }
}

/// Chinese text's tag: a script only when the characters that differ between Simplified and
/// Traditional all point one way.
fn chinese(text: &str) -> &'static str {
    let hans = zhconv::is_hans_confidence(text);
    if hans >= 1.0 {
        "zh-Hans"
    } else if hans <= 0.0 {
        "zh-Hant"
    } else {
        // NaN (no telling characters) or a mix.
        "zh"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_checked_against_the_registry_and_canonical() {
        assert_eq!(checked("zh-CN").unwrap(), "zh-CN");
        assert_eq!(checked("zh-hant-tw").unwrap(), "zh-Hant-TW");
        assert_eq!(checked("en_US").unwrap(), "en-US");
        assert_eq!(checked("iw").unwrap(), "he");
        assert_eq!(checked("sr-Latn-RS").unwrap(), "sr-Latn-RS");
        assert!(matches!(checked("xx-bogus"), Err(TagError::NotRegistered { .. })));
        assert!(matches!(checked("en-QQQQ"), Err(TagError::NotRegistered { .. })));
        assert!(matches!(
            checked("Chinese (Traditional)"),
            Err(TagError::Malformed(_))
        ));
        assert!(checked("Fran?ais").is_err());
        assert!(checked("FranÃ§ais").is_err());
    }

    #[test]
    fn ranges_take_their_subtags() {
        assert!(in_range("zh-Hant-TW", "zh"));
        assert!(in_range("ZH", "zh"));
        assert!(in_range("en", "*"));
        assert!(!in_range("zha", "zh"));
        assert!(!in_range("zh", "zh-Hant"));
    }

    #[test]
    fn detection_says_what_the_text_shows() {
        assert_eq!(
            detect("今日は良い天気ですね。散歩に行きましょう。").as_deref(),
            Some("ja")
        );
        assert_eq!(
            detect("오늘은 날씨가 좋습니다. 산책하러 갑시다.").as_deref(),
            Some("ko")
        );
        assert_eq!(
            detect("国务院常务会议研究部署进一步推动经济发展").as_deref(),
            Some("zh-Hans")
        );
        assert_eq!(
            detect("國務院常務會議研究部署進一步推動經濟發展").as_deref(),
            Some("zh-Hant")
        );
        // Characters shared by both scripts: Chinese, with no script claimed.
        assert_eq!(detect("中文").as_deref(), Some("zh"));
        let russian = "Правительство обсудило план развития экономики на следующий год и \
                       утвердило новые меры поддержки малого бизнеса в регионах страны.";
        assert_eq!(detect(russian).as_deref(), Some("ru"));
        let arabic = "ناقشت الحكومة خطة التنمية الاقتصادية للعام المقبل ووافقت على إجراءات \
                      جديدة لدعم الشركات الصغيرة في مناطق البلاد المختلفة.";
        assert_eq!(detect(arabic).as_deref(), Some("ar"));
        let hindi = "सरकार ने अगले वर्ष के लिए आर्थिक विकास की योजना पर चर्चा की और देश के \
                     विभिन्न क्षेत्रों में छोटे व्यवसायों के लिए नए उपायों को मंजूरी दी।";
        assert_eq!(detect(hindi).as_deref(), Some("hi"));
        assert_eq!(detect("ok"), None);
    }

    #[test]
    fn a_feeds_language_is_learned_from_five_agreeing_entries_and_other_scripts_still_read() {
        let english = "Negotiators from more than forty countries returned to the table on Saturday, \
                       hoping to settle the remaining questions about funding before the end of the year.";
        let mut detector = FeedDetector::default();
        for _ in 0..AGREEING {
            assert_eq!(detector.detect("", || english.into()).as_deref(), Some("en"));
        }
        // Learned: a Latin text is taken as English without reading it (this one is German).
        assert_eq!(
            detector
                .detect("", || "Die Regierung hat heute beschlossen".into())
                .as_deref(),
            Some("en")
        );
        // A title in the learned script is enough: the text is not even made.
        assert_eq!(
            detector
                .detect("Talks resume", || unreachable!("the text is not read"))
                .as_deref(),
            Some("en")
        );
        // Another script is read in full.
        let russian = "Правительство обсудило план развития экономики на следующий год и \
                       утвердило новые меры поддержки малого бизнеса в регионах страны.";
        assert_eq!(detector.detect("", || russian.into()).as_deref(), Some("ru"));
        assert_eq!(
            detector
                .detect("", || "国務院".into())
                .as_deref()
                .map(|t| &t[..2]),
            Some("zh")
        );
        // Disagreement before the streak is long enough: every text is read.
        let mut mixed = FeedDetector::default();
        let german = "Die Bundesregierung hat am Mittwoch ein neues Gesetz zur Förderung der \
                      erneuerbaren Energien beschlossen, das im kommenden Jahr in Kraft treten soll.";
        for (text, tag) in [(english, "en"), (german, "de"), (english, "en"), (german, "de")] {
            assert_eq!(mixed.detect("", || text.into()).as_deref(), Some(tag));
        }
        // Texts that mostly say nothing: the rest of the poll is not read.
        let mut unclear = FeedDetector::default();
        for _ in 0..AGREEING {
            assert_eq!(unclear.detect("", || "ok".into()), None);
        }
        assert_eq!(unclear.detect("", || english.into()), None);
    }
}
