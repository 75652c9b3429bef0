//! The channel-level elements that say how often a feed changes, which feed-rs does not expose
//! (`<skipHours>`, `<skipDays>`, `sy:updatePeriod`, `sy:updateFrequency`) or exposes alone
//! (`<ttl>`). Read from the document head only: they precede the first item.

use std::time::Duration;

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::model::FeedRhythm;
use crate::schedule::Skip;
use crate::schedule::hints;

pub(super) fn scan(doc: &str) -> FeedRhythm {
    let mut reader = Reader::from_str(doc);
    let mut path: Vec<String> = Vec::new();
    let (mut ttl, mut period, mut frequency) = (None, None, None);
    let (mut hours, mut days) = (Vec::new(), Vec::new());
    loop {
        match reader.read_event() {
            Ok(Event::Start(tag)) => {
                let name = tag.local_name().as_ref().to_string();
                if matches!(name.as_str(), "item" | "entry") {
                    break;
                }
                path.push(name);
            }
            Ok(Event::End(_)) => {
                path.pop();
            }
            Ok(Event::Text(text)) => {
                let text = text
                    .xml_content(quick_xml::XmlVersion::Implicit1_0)
                    .trim()
                    .to_string();
                match (
                    path.iter().rev().nth(1).map(String::as_str),
                    path.last().map(String::as_str),
                ) {
                    (_, Some("ttl")) => ttl = text.parse::<u64>().ok(),
                    (_, Some("updatePeriod")) => period = Some(text),
                    (_, Some("updateFrequency")) => frequency = Some(text),
                    (Some("skipHours"), Some("hour")) => hours.push(text),
                    (Some("skipDays"), Some("day")) => days.push(text),
                    _ => {}
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    FeedRhythm {
        ttl: ttl.filter(|m| *m > 0).map(|m| Duration::from_secs(m * 60)),
        update_interval: hints::update_interval(period.as_deref(), frequency.as_deref()),
        skip: Skip {
            hours: hints::skip_hours(hours.iter().map(String::as_str)),
            days: hints::skip_days(days.iter().map(String::as_str)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rhythm_elements() {
        let r = scan(
            "<rss version=\"2.0\" xmlns:sy=\"http://purl.org/rss/1.0/modules/syndication/\"><channel>\
             <ttl>90</ttl><sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>\
             <skipHours><hour>0</hour><hour>23</hour></skipHours><skipDays><day>Sunday</day></skipDays>\
             <item><ttl>1</ttl></item></channel></rss>",
        );
        assert_eq!(r.ttl, Some(Duration::from_secs(90 * 60)));
        assert_eq!(r.update_interval, Some(Duration::from_secs(6 * 3600)));
        assert_eq!(r.skip.hours, 1 | 1 << 23);
        assert_eq!(r.skip.days, 1 << 6);
    }
}
