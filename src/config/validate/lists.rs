//! `[[list]]`: subscription lists, and the config expanded with the feeds they hold.

use super::*;

impl Validator<'_> {
    /// A `[[list]]`: where its OPML is, and the defaults of its feeds.
    pub(super) fn list(&mut self, n: usize, raw: raw::RawList) -> Option<ListSpec> {
        let key = |k: &str| format!("list[{n}].{k}");
        let rules = Rules::of([std::sync::Arc::new(self.rule_table(
            raw.rules,
            &format!("list[{n}]"),
            &key(""),
        ))]);
        let schedule = self.cron_opt(raw.schedule, &key("schedule"));
        let tags = self.tags(raw.tags, &key("tags"));
        let Some(raw_url) = raw.url else {
            self.report(
                raw.span,
                format!("list[{n}]"),
                "missing `url`: every [[list]] needs one",
            );
            return None;
        };
        let url = self.source_url(&raw_url, &key("url"))?;
        Some(ListSpec {
            key: crate::model::feed_key(&url),
            url,
            tags,
            schedule,
            full_text: raw.full_text.unwrap_or(false),
            rules,
            included_by: None,
        })
    }

    /// The lists' feeds, as the members they were loaded with say, added to `feeds`: an
    /// outline's title, site and tags (its folder and categories, and its list's tags), the
    /// list's schedule, `full_text` and rules. A `[[feed]]` of the same URL keeps its own keys
    /// and takes the list's tags too (and the outline's title, site and the list's schedule
    /// where it sets none). Included lists are followed (taking the defaults of the list that
    /// includes them); the include that closes a loop is skipped, and said. Returns every list,
    /// the included ones after the config's.
    pub(super) fn expand_lists(&mut self, lists: Vec<ListSpec>, feeds: &mut Vec<FeedSpec>) -> Vec<ListSpec> {
        let mut all: Vec<ListSpec> = Vec::new();
        let mut queue: std::collections::VecDeque<(ListSpec, Vec<String>)> =
            lists.into_iter().map(|l| (l.clone(), vec![l.key])).collect();
        let mut at: std::collections::HashMap<String, usize> = feeds
            .iter()
            .enumerate()
            .map(|(i, f)| (f.key.clone(), i))
            .collect();
        while let Some((list, chain)) = queue.pop_front() {
            if all.iter().any(|l| l.key == list.key) {
                continue;
            }
            for member in self.members.get(&list.key).into_iter().flatten() {
                let Some(url) = list.member_url(member) else {
                    continue;
                };
                let key = crate::model::feed_key(&url);
                if member.include {
                    if chain.contains(&key) {
                        self.warnings.push(Problem {
                            file: self.file.clone(),
                            line: 0,
                            column: 0,
                            key: "list".into(),
                            message: format!(
                                "list {} includes {}, which includes it back: that include is skipped \
                                 (both lists' own feeds are kept)",
                                crate::model::display_url(&list.url),
                                crate::model::display_url(&url)
                            ),
                        });
                        continue;
                    }
                    let mut chain = chain.clone();
                    chain.push(key);
                    queue.push_back((list.include(member, url), chain));
                    continue;
                }
                let mut tags = list.tags.clone();
                add_tags(&mut tags, &member.tags);
                match at.get(&key).and_then(|i| feeds.get_mut(*i)) {
                    Some(feed) => {
                        add_tags(&mut feed.tags, &tags);
                        if feed.list.is_none() {
                            // A [[feed]]: its own keys win.
                            feed.title = feed.title.take().or_else(|| member.title.clone());
                            feed.site = feed.site.take().or_else(|| member.site.clone());
                            feed.schedule = feed.schedule.take().or_else(|| list.schedule.clone());
                        }
                    }
                    None => {
                        at.insert(key.clone(), feeds.len());
                        feeds.push(FeedSpec {
                            key,
                            url,
                            title: member.title.clone(),
                            site: member.site.clone().filter(|s| {
                                Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                            }),
                            tags,
                            schedule: list.schedule.clone(),
                            ignore_hints: false,
                            disabled: false,
                            rules: list.rules.clone(),
                            headers: Vec::new(),
                            full_text: list.full_text,
                            rewrite: Vec::new(),
                            source: crate::model::Source::Feed,
                            lang: None,
                            timezone: None,
                            timeout: None,
                            proxy: None,
                            list: Some(list.key.clone()),
                        });
                    }
                }
            }
            all.push(list);
        }
        all
    }
}
