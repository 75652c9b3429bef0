//! Mojibake repaired run by run: UTF-8 text that was decoded as Windows-1252 (or Latin-1) and
//! encoded as UTF-8 again, somewhere in a publisher's pipeline, inside text that is otherwise
//! right ("FranÃ§ais" beside “curly quotes” and 中文).
//!
//! A run is a sequence of characters whose Windows-1252 bytes form UTF-8 again: a lead
//! (`Â`..`ô`, bytes C2..F4) and its continuation bytes (`€`, `™`, `©`, `¶`, … bytes 80..BF).
//! Correct text can hold such a pair by chance, so a run is repaired only where correct text
//! would not put it (the judgement ftfy makes, on the same cases):
//!
//! - a character of three or four bytes (`â€™` is `’`, `ä¸­` is `中`): no language writes a
//!   lowercase accented letter before two such symbols;
//! - two or more pairs in a row (`Ð¿Ñ€Ð¸` is `при`);
//! - a lone pair led by `Ã` or `Â` (`Ã§` is `ç`, `Â` and a no-break space is a no-break
//!   space): these capitals are followed by letters in Portuguese and Romanian (`SEBASTIÃO`,
//!   `ROMÂNIA`), never by symbols;
//! - a lone pair led by another capital only when its second character is not one text puts
//!   after a capital anyway (a space, `®`, `¿`, `»`, `°` …: `NESTLÉ®`, `QUEM É¿`,
//!   `SELKÄ EDELLÄ` stay), and it makes a letter of a script (`Å‚` is `ł`, not an IPA sign).

use std::borrow::Cow;
use std::sync::OnceLock;

/// `text` with its mojibake runs repaired; borrowed when there are none (most text).
pub fn repair(text: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    let mut copied = 0; // byte offset in `text` up to which `out` holds it
    let mut from = 0; // where the search for the next lead goes on
    // Only the leads are looked at: accented text (French, German, Portuguese) has many, and
    // the rest of it is passed over by memchr.
    while let Some(start) = next_lead(text.as_bytes(), from) {
        let mut run: Vec<Pair> = Vec::new();
        let mut at = start;
        while let Some(pair) = text.get(at..).and_then(decode_at) {
            at += pair.bytes;
            run.push(pair);
        }
        if run.is_empty() {
            from = start + 1;
            continue;
        }
        if plausible(&run) {
            let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
            out.push_str(&text[copied..start]);
            out.extend(run.iter().map(|p| p.decoded));
            copied = at;
        }
        from = at;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
}

/// Where the next possible lead (U+00C2..U+00F4, UTF-8 C3 82..C3 B4) starts, from `from` on.
fn next_lead(b: &[u8], from: usize) -> Option<usize> {
    let rest = b.get(from..)?;
    memchr::memchr_iter(0xC3, rest)
        .map(|i| from + i)
        .find(|&i| matches!(b.get(i + 1), Some(0x82..=0xB4)))
}

/// One character's mojibake: the characters it became and what it was.
struct Pair {
    chars: usize,
    /// Its length in the text, in bytes.
    bytes: usize,
    lead: char,
    second: char,
    decoded: char,
}

/// The mojibake character `text` starts with, if the bytes there form UTF-8.
fn decode_at(text: &str) -> Option<Pair> {
    let mut chars = text.chars();
    let lead = chars.next()?;
    let first = u8::try_from(u32::from(lead))
        .ok()
        .filter(|b| (0xC2..=0xF4).contains(b))?;
    let len = match first {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    };
    let mut bytes = [first, 0, 0, 0];
    let mut taken = lead.len_utf8();
    let mut second = None;
    for slot in bytes.iter_mut().take(len).skip(1) {
        let c = chars.next()?;
        *slot = byte_of(c).filter(|b| (0x80..=0xBF).contains(b))?;
        taken += c.len_utf8();
        second.get_or_insert(c);
    }
    let decoded = std::str::from_utf8(&bytes[..len]).ok()?.chars().next()?;
    Some(Pair {
        chars: len,
        bytes: taken,
        lead,
        second: second?,
        decoded,
    })
}

/// The byte a character stood for when bytes were read as Windows-1252 (or as Latin-1, whose
/// C1 controls stand for the bytes Windows-1252 leaves undefined).
fn byte_of(c: char) -> Option<u8> {
    match u32::from(c) {
        code @ 0x80..=0xFF => u8::try_from(code).ok(),
        _ => windows_1252()
            .iter()
            .position(|&w| w == c)
            .map(|i| 0x80 + i as u8),
    }
}

/// What Windows-1252 makes of bytes 80..9F, from encoding_rs's table.
fn windows_1252() -> &'static [char; 32] {
    static TABLE: OnceLock<[char; 32]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let bytes: Vec<u8> = (0x80..=0x9F).collect();
        let (decoded, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(&bytes);
        let mut table = ['\u{fffd}'; 32];
        for (slot, c) in table.iter_mut().zip(decoded.chars()) {
            *slot = c;
        }
        table
    })
}

fn plausible(run: &[Pair]) -> bool {
    match run {
        [pair] if pair.chars == 2 => {
            matches!(pair.lead, 'Ã' | 'Â') || (!after_capitals(pair.second) && is_script_letter(pair.decoded))
        }
        _ => true,
    }
}

/// Characters correct text puts after a capital letter: spaces, and the signs that follow
/// words (`®`, `©`, `°`, `²`), quotes and Spanish punctuation.
fn after_capitals(c: char) -> bool {
    matches!(
        c,
        '\u{a0}'
            | '¡'
            | '©'
            | 'ª'
            | '«'
            | '®'
            | '°'
            | '²'
            | '³'
            | '·'
            | '¹'
            | 'º'
            | '»'
            | '¿'
            | '¬'
            | '±'
    )
}

/// A letter of Latin Extended, Greek, Cyrillic, Armenian, Hebrew or Arabic: what two-byte
/// UTF-8 holds for real text (IPA signs, modifiers and combining marks are not).
fn is_script_letter(c: char) -> bool {
    c.is_alphabetic()
        && matches!(u32::from(c),
            0x100..=0x24F | 0x370..=0x3FF | 0x400..=0x52F | 0x531..=0x58F | 0x5D0..=0x5EA | 0x620..=0x6FF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_inside_correct_text_are_repaired() {
        for (broken, fixed) in [
            ("FÃ¶rderprogramme", "Förderprogramme"),
            ("“FranÃ§ais” · 中文 and EspaÃ±ol", "“Français” · 中文 and Español"),
            ("ChinaÂ\u{a0}Daily — news", "China\u{a0}Daily — news"),
            ("itâ€™s â€œquotedâ€\u{9d}", "it’s “quoted”"),
            ("Ã‰cole Ã\u{a0} Paris", "École à Paris"),
            ("Ð¿Ñ€Ð¸Ð²ÐµÑ‚, Ð¼Ð¸Ñ€", "привет, мир"),
            ("ä¸\u{AD}æ–‡ text", "中文 text"),
            ("siÄ™ Å‚adnie", "się ładnie"),
            ("Î±Î²Î³", "αβγ"),
            // Correct accents before and after a run, and a run at the very end.
            ("é à FranÃ§ais über", "é à Français über"),
            ("ending in Ã§", "ending in ç"),
        ] {
            assert_eq!(repair(broken), fixed, "{broken}");
        }
    }

    #[test]
    fn correct_text_is_left_alone() {
        for text in [
            "SELKÄ\u{a0}EDELLÄ",
            "SELKÄ EDELLÄ",
            "NESTLÉ®",
            "QUEM É¿",
            "SEBASTIÃO",
            "ROMÂNIA",
            "Café naïve ‘quotes’",
            "PIÑA COLADA°",
            "ÉTÉ «CHAUD»",
            "中文 русский العربية हिन्दी",
            "ASCII only",
            // A lead at the very end, or before a character that is no continuation.
            "ÉCOLE Ã",
            "naïve Ã",
        ] {
            assert!(
                matches!(repair(text), Cow::Borrowed(_)),
                "{text} became {}",
                repair(text)
            );
        }
    }
}
