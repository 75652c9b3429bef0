//! Subscription lists: OPML files, polled like feeds, whose outlines become feeds.

use url::Url;

use super::{CronSchedule, Rules};

/// One outline of a subscription list: a feed, or (`include`) another list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListMember {
    /// The feed's URL (`xmlUrl`), or the included list's (`url` of a `type="include"`).
    pub(crate) url: String,
    pub(crate) title: Option<String>,
    /// Its web page (`htmlUrl`).
    pub(crate) site: Option<String>,
    /// Its folder and `category` paths, as tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tags: Vec<String>,
    /// An outline of `type="include"`: another list, read as part of this one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) include: bool,
}

/// A subscription list as the config has it (`[[list]]`), or one a list includes, which takes
/// the defaults of the list that includes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListSpec {
    /// Where the OPML is read from: `http(s)://` or `file://`.
    pub(crate) url: Url,
    /// Its identity in the store: its URL without credentials.
    pub(crate) key: String,
    /// Added to every feed of the list (beside the outlines' own folders and categories).
    pub(crate) tags: Vec<String>,
    /// When the list is fetched, and the default schedule of its feeds.
    pub(crate) schedule: Option<CronSchedule>,
    /// Its feeds' default for `full_text`.
    pub(crate) full_text: bool,
    /// Its feeds' rules.
    pub(crate) rules: Rules,
    /// The list that includes this one (`None`: a `[[list]]` of the config).
    pub(crate) included_by: Option<String>,
}

impl ListSpec {
    /// Where `member` points: a URL from content, a relative one against the list's own; only
    /// the web's (a list never names a file).
    pub(crate) fn member_url(&self, member: &ListMember) -> Option<Url> {
        self.url
            .join(member.url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
    }

    /// The list `member` includes (at `url`, see [`ListSpec::member_url`]): it takes this
    /// list's defaults, and the member's tags beside this list's.
    pub(crate) fn include(&self, member: &ListMember, url: Url) -> ListSpec {
        let mut tags = self.tags.clone();
        add_tags(&mut tags, &member.tags);
        ListSpec {
            key: super::feed_key(&url),
            url,
            tags,
            schedule: self.schedule.clone(),
            full_text: self.full_text,
            rules: self.rules.clone(),
            included_by: Some(self.key.clone()),
        }
    }
}

/// Adds to `tags` those of `more` it does not have, in order.
pub(crate) fn add_tags(tags: &mut Vec<String>, more: &[String]) {
    for tag in more {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
}

/// The members of each list the store holds, by list key: what the config's lists expand to.
pub(crate) type Memberships = std::collections::HashMap<String, Vec<ListMember>>;

/// A subscription list as the store keeps it between fetches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListState {
    /// The list's key (its URL without credentials).
    pub(crate) key: String,
    pub(crate) validators: super::Validators,
    /// The members in force: the last good fetch's (or the last one confirmed).
    pub(crate) members: Vec<ListMember>,
    /// A fetch that shrank the list by more than half, held until confirmed
    /// (`feeds --accept-list`).
    pub(crate) held: Option<Vec<ListMember>>,
    /// When it was last fetched (or tried), and last read.
    pub(crate) fetched: Option<chrono::DateTime<chrono::Utc>>,
    pub(crate) last_success: Option<chrono::DateTime<chrono::Utc>>,
    /// Why the last fetch or read failed; consecutive failures.
    pub(crate) last_error: Option<String>,
    pub(crate) failures: u32,
    /// When it is fetched next.
    pub(crate) next_due: Option<chrono::DateTime<chrono::Utc>>,
}
