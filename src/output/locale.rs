//! The page's own words and dates in the page's language: a Fluent message catalog per
//! language (`src/output/locales/*.ftl`: English, Simplified and Traditional Chinese, Japanese,
//! Korean, Spanish, French, German, Portuguese, Russian, Arabic), each with its long date form;
//! month and day names come from glibc's locale data through chrono. A language without a
//! catalog gets the English words and, where glibc knows it, its own month and day names.
//!
//! Times are named with an unambiguous zone: its abbreviation when that names one zone only
//! (`CET`, `JST`), else its offset (`UTC+8`: `CST` is China and US Central both).

use std::sync::OnceLock;

use chrono::{DateTime, Offset, Utc};
use chrono_tz::{OffsetName, Tz};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};

/// The catalogs: a language range each serves (the first that matches a tag wins) and its
/// messages.
const CATALOGS: &[(&str, &str)] = &[
    ("en", include_str!("locales/en.ftl")),
    ("zh-Hant", include_str!("locales/zh-Hant.ftl")),
    ("zh-Hans", include_str!("locales/zh-Hans.ftl")),
    ("ja", include_str!("locales/ja.ftl")),
    ("ko", include_str!("locales/ko.ftl")),
    ("es", include_str!("locales/es.ftl")),
    ("fr", include_str!("locales/fr.ftl")),
    ("de", include_str!("locales/de.ftl")),
    ("pt", include_str!("locales/pt.ftl")),
    ("ru", include_str!("locales/ru.ftl")),
    ("ar", include_str!("locales/ar.ftl")),
];

/// Languages written right to left (their primary subtags).
const RIGHT_TO_LEFT: &[&str] = &["ar", "he", "fa", "ur", "ps", "sd", "ug", "yi", "dv", "ckb"];

type Bundle = FluentBundle<FluentResource>;

fn bundles() -> &'static [Bundle] {
    static BUNDLES: OnceLock<Vec<Bundle>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        CATALOGS
            .iter()
            .map(|(tag, source)| {
                let id: unic_langid::LanguageIdentifier = tag.parse().unwrap_or_default();
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                // The page isolates what it must with <bdi>; isolation marks would end up in
                // attributes and copied text.
                bundle.set_use_isolating(false);
                // The catalogs are ours, and a test parses each: an error here is a bug.
                let resource = FluentResource::try_new(source.to_string()).unwrap_or_else(|(r, _)| r);
                let _ = bundle.add_resource(resource);
                bundle
            })
            .collect()
    })
}

/// The words and dates of one page.
pub(super) struct Locale {
    /// Which catalog, by its index in [`CATALOGS`]; English for a language without one.
    catalog: usize,
    /// Whether the catalog is the page's own language (else its dates keep glibc's forms).
    own: bool,
    names: Option<chrono::Locale>,
    zone: Tz,
    pub(crate) rtl: bool,
}

impl Locale {
    /// The locale of a page in `lang` (a checked BCP 47 tag; `None`: English) and `zone`.
    pub(super) fn new(lang: Option<&str>, zone: Tz) -> Locale {
        let tag = lang.unwrap_or("en");
        let catalog = catalog_for(tag);
        Locale {
            own: catalog.is_some(),
            catalog: catalog.unwrap_or(0),
            names: lang.and_then(chrono_locale),
            zone,
            rtl: RIGHT_TO_LEFT.contains(&primary(tag).as_str()),
        }
    }

    /// Message `id` with `args`, in the page's language (English when its catalog lacks it).
    pub(super) fn message(&self, id: &str, args: Option<&FluentArgs<'_>>) -> Option<String> {
        let all = bundles();
        [self.catalog, 0].iter().find_map(|&i| {
            let bundle = all.get(i)?;
            let pattern = bundle.get_message(id)?.value()?;
            let mut errors = Vec::new();
            Some(bundle.format_pattern(pattern, args, &mut errors).into_owned())
        })
    }

    fn format(&self, t: DateTime<Utc>, pattern: &str) -> String {
        let local = t.with_timezone(&self.zone);
        match self.names {
            Some(names) => local.format_localized(pattern, names).to_string(),
            None => local.format(pattern).to_string(),
        }
    }

    /// The local calendar date, which days are grouped by.
    pub(super) fn day_key(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.zone).format("%Y-%m-%d").to_string()
    }

    /// A day in the language's usual long form: "Sunday, 6 December 2026", "2026年12月6日
    /// 星期日". A language without a catalog gets glibc's names in a common order.
    pub(super) fn day_label(&self, t: DateTime<Utc>) -> String {
        if self.own || self.names.is_none() {
            let pattern = self.message("date-long", None).unwrap_or_default();
            return self.format(t, &pattern);
        }
        if self.format(t, "%x").is_ascii() {
            self.format(t, "%A %-d %B %Y")
        } else {
            self.format(t, "%x (%a)")
        }
    }

    /// A day and time: "Sunday, 6 December 2026, 10:12 UTC+8", "2026年12月6日 星期日 10:12 UTC+8".
    pub(super) fn date_time_label(&self, t: DateTime<Utc>) -> String {
        let mut args = FluentArgs::new();
        args.set("date", self.day_label(t));
        args.set("time", self.time_label(t));
        self.message("date-time", Some(&args)).unwrap_or_default()
    }

    /// A time of day with its zone: "10:12 UTC+8", "09:00 CET".
    pub(super) fn time_label(&self, t: DateTime<Utc>) -> String {
        let pattern = self.message("time", None).unwrap_or_else(|| "%H:%M".into());
        format!("{} {}", self.format(t, &pattern), zone_label(t, self.zone))
    }
}

fn primary(tag: &str) -> String {
    tag.split('-').next().unwrap_or("").to_ascii_lowercase()
}

/// The catalog for `tag`: Chinese by script (a region of Traditional characters counts as
/// Hant), the others by language.
fn catalog_for(tag: &str) -> Option<usize> {
    let lower = tag.to_ascii_lowercase();
    let language = primary(tag);
    let wanted = if language == "zh" {
        let traditional = lower
            .split('-')
            .skip(1)
            .any(|p| matches!(p, "hant" | "tw" | "hk" | "mo"));
        if traditional { "zh-Hant" } else { "zh-Hans" }
    } else {
        language.as_str()
    };
    CATALOGS.iter().position(|(t, _)| *t == wanted)
}

/// glibc's locale for a BCP 47 tag: its own region when it names one (`pt-BR`), Traditional
/// Chinese's (`zh_TW`) for Hant, else the language's home region (`fr` → `fr_FR`), else any
/// region that has the language.
fn chrono_locale(tag: &str) -> Option<chrono::Locale> {
    let mut parts = tag.split(['-', '_']);
    let lang = parts.next()?.to_ascii_lowercase();
    let rest: Vec<&str> = parts.collect();
    let region = rest
        .iter()
        .find(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_alphabetic()))
        .map(|r| r.to_ascii_uppercase())
        .or_else(|| {
            rest.iter()
                .any(|p| p.eq_ignore_ascii_case("hant"))
                .then(|| "TW".to_string())
        });
    let find = |region: &str| chrono::Locale::try_from(format!("{lang}_{region}").as_str()).ok();
    region
        .and_then(|r| find(&r))
        .or_else(|| find(&lang.to_ascii_uppercase()))
        .or_else(|| {
            (b'A'..=b'Z')
                .flat_map(|a| (b'A'..=b'Z').map(move |b| [a, b]))
                .find_map(|r| find(std::str::from_utf8(&r).ok()?))
        })
}

/// How a page names `zone` at `t` beside a time: its abbreviation when that names one zone
/// only, else its offset from UTC.
fn zone_label(t: DateTime<Utc>, zone: Tz) -> String {
    let local = t.with_timezone(&zone);
    let name = local.offset().abbreviation().unwrap_or("");
    const UNAMBIGUOUS: &[&str] = &[
        "UTC", "GMT", "WET", "WEST", "CET", "CEST", "EET", "EEST", "MSK", "JST", "KST", "HKT", "SGT", "PHT",
        "WIB", "AEST", "AEDT", "ACST", "ACDT", "AWST", "NZST", "NZDT", "EST", "EDT", "CDT", "MST", "MDT",
        "PST", "PDT", "AKST", "AKDT", "HST", "SAST", "PKT",
    ];
    if UNAMBIGUOUS.contains(&name) {
        return name.to_string();
    }
    let seconds = local.offset().fix().local_minus_utc();
    let (sign, seconds) = if seconds < 0 {
        ('-', -seconds)
    } else {
        ('+', seconds)
    };
    match (seconds / 3600, seconds % 3600 / 60) {
        (0, 0) => "UTC".to_string(),
        (h, 0) => format!("UTC{sign}{h}"),
        (h, m) => format!("UTC{sign}{h}:{m:02}"),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    /// Every catalog parses, and has every message English has.
    #[test]
    fn every_catalog_is_whole() {
        let ids = |source: &str| -> Vec<String> {
            let resource = FluentResource::try_new(source.to_string()).expect("the catalog parses");
            resource
                .entries()
                .filter_map(|e| match e {
                    fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
                    _ => None,
                })
                .collect()
        };
        let english = ids(CATALOGS[0].1);
        for (tag, source) in CATALOGS {
            assert_eq!(ids(source), english, "{tag}.ftl has other messages than en.ftl");
        }
    }

    #[test]
    fn dates_in_each_languages_long_form() {
        let t = utc(2026, 12, 6, 2, 0, 0);
        let shanghai = chrono_tz::Asia::Shanghai;
        for (lang, day) in [
            (None, "Sunday, 6 December 2026"),
            (Some("zh-CN"), "2026年12月6日 星期日"),
            (Some("zh-Hant"), "2026年12月6日 週日"),
            (Some("ja"), "2026年12月6日 日曜日"),
            (Some("ko"), "2026년 12월 6일 일요일"),
            (Some("es"), "domingo, 6 de diciembre de 2026"),
            (Some("fr"), "dimanche 6 décembre 2026"),
            (Some("de"), "Sonntag, 6. Dezember 2026"),
            (Some("pt-BR"), "domingo, 6 de dezembro de 2026"),
            (Some("ru"), "Воскресенье, 6 декабря 2026 г."),
            (Some("ar"), "الأحد، 6 ديسمبر 2026"),
        ] {
            let locale = Locale::new(lang, shanghai);
            assert_eq!(locale.day_label(t), day, "{lang:?}");
            assert_eq!(locale.time_label(t), "10:00 UTC+8");
        }
        assert!(Locale::new(Some("ar"), chrono_tz::UTC).rtl);
        assert!(!Locale::new(Some("zh-CN"), chrono_tz::UTC).rtl);
        // A language without a catalog: English words, its own month names.
        let italian = Locale::new(Some("it"), chrono_tz::UTC);
        assert_eq!(italian.message("updated", None).as_deref(), Some("Updated"));
        assert_eq!(italian.day_label(t), "domenica 6 dicembre 2026");
    }

    #[test]
    fn zones_are_named_unambiguously() {
        let t = utc(2026, 12, 6, 2, 0, 0);
        assert_eq!(zone_label(t, chrono_tz::Asia::Shanghai), "UTC+8");
        assert_eq!(zone_label(t, chrono_tz::Asia::Kolkata), "UTC+5:30");
        assert_eq!(zone_label(t, chrono_tz::Europe::Paris), "CET");
        assert_eq!(zone_label(t, chrono_tz::Asia::Tokyo), "JST");
        assert_eq!(zone_label(t, chrono_tz::America::Chicago), "UTC-6");
        assert_eq!(zone_label(t, chrono_tz::UTC), "UTC");
        assert_eq!(zone_label(t, chrono_tz::America::Sao_Paulo), "UTC-3");
    }
}
