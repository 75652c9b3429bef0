//! Feed icons: looked for after a feed's first poll, a few at a time.

use std::collections::VecDeque;

use url::Url;

use super::feed::{Context, fetch_for_feed};
use crate::content::full_text;
use crate::content::icon;
use crate::fetch::Fetched;
use crate::model::{IconImage, IconLooked, IconUpdate, Validators};
use crate::parse;
use crate::store::StoreError;

/// Icon looks made at once after a round.
pub(super) const ICON_LOOKS_AT_ONCE: usize = 4;
/// Most finished looks recorded in one write.
pub(super) const ICON_LOOKS_RECORDED_AT_ONCE: usize = 256;

/// A look for a feed's icon, due after its poll.
#[derive(Debug, Clone)]
pub(crate) struct IconLook {
    pub(super) feed_id: i64,
    pub(super) hints: IconHints,
    /// The feed's site as stored, for a poll that parsed no document.
    pub(super) site: Option<String>,
    /// Whether the icon was looked for before (else the store has nothing on it).
    pub(super) looked_before: bool,
    /// Where the feed is fetched from.
    pub(super) target: Url,
    pub(super) proxy: Option<Url>,
    /// The feed's URL as it may be shown.
    pub(super) shown: String,
}

/// What a feed's document said about its icon (nothing on a poll that parsed no document).
#[derive(Debug, Default, Clone)]
pub(super) struct IconHints {
    pub(super) icon: Option<String>,
    pub(super) logo: Option<String>,
    pub(super) site: Option<String>,
}

/// Looks for the feed's icon when a look is due (see [`icon::due`]): the places
/// [`icon::leads`] names, best first, each asked as politely as the feed (its host's turn and
/// holds, its proxy, the guard for content's URLs), until one gives an image. What was found,
/// or that nothing was, is for the caller to record (with other looks: see
/// [`Database::record_icons`](crate::store::Database::record_icons)), with whether the image is
/// new; a failure here is never the feed's.
pub(super) async fn look_for_icon(
    look: IconLook,
    context: &Context,
) -> Result<(IconLooked, bool), StoreError> {
    let IconLook {
        feed_id,
        hints,
        site,
        looked_before,
        target,
        proxy,
        shown,
    } = look;
    let store = &context.store;
    // A feed never looked at has nothing stored (a new planet's first round reads nothing).
    let stored = match looked_before {
        true => store.icon_state(feed_id).await?,
        false => None,
    };
    let stored_url = stored.as_ref().and_then(|s| s.url.as_deref());
    let known = icon::Known {
        declared: hints.icon.as_deref(),
        stored: stored_url,
        site: hints.site.as_deref().or(site.as_deref()),
        feed: Some(&target),
        logo: hints.logo.as_deref(),
    };
    let mut leads: VecDeque<icon::Lead> = icon::leads(&known).into();
    let proxy = proxy.as_ref();
    let mut why = "no icon named by the feed or its site, and no /favicon.ico".to_string();
    let mut update = None;
    for _ in 0..icon::MAX_TRIES {
        let Some(lead) = leads.pop_front() else { break };
        let (url, page) = match lead {
            icon::Lead::Image(url) => (url, false),
            icon::Lead::Page(url) => (url, true),
        };
        let validators = match (&stored, page) {
            (Some(s), false) if s.url.as_deref() == Some(url.as_str()) && s.image.is_some() => {
                s.validators.clone()
            }
            _ => Validators::default(),
        };
        let (fetched, penalty) = fetch_for_feed(context, &url, &validators, proxy).await;
        if let Some((host, until)) = penalty {
            let reason = fetched
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            store.delay_host(host, until, reason).await?;
        }
        match fetched {
            Ok(Fetched::NotModified { .. }) => {
                update = Some(IconUpdate::Unchanged { validators });
                break;
            }
            Ok(fetched) if page => match full_text::page_text(fetched) {
                Ok((html, at)) => {
                    // The page's icons come next, before the places after the page.
                    for found in parse::discover::icon_links(&html, &at).into_iter().rev() {
                        let found = icon::Lead::Image(found);
                        if !leads.contains(&found) {
                            leads.push_front(found);
                        }
                    }
                }
                Err(e) => why = format!("{url}: {e}"),
            },
            Ok(Fetched::Modified(body)) => match icon::sniff(&body.bytes) {
                Some(media_type) if body.bytes.len() <= icon::MAX_BYTES => {
                    let bytes = body.bytes;
                    update = Some(IconUpdate::Found {
                        url: url.to_string(),
                        image: IconImage {
                            hash: icon::hash(&bytes),
                            media_type: media_type.to_string(),
                        },
                        bytes,
                        validators: body.validators,
                    });
                    break;
                }
                Some(_) => why = format!("{url}: larger than {} KiB", icon::MAX_BYTES / 1024),
                None => why = format!("{url}: not a PNG, GIF, JPEG, WebP or ICO image"),
            },
            Err(e) => why = format!("{url}: {e}"),
        }
    }
    let update = update.unwrap_or(IconUpdate::Missing { error: why });
    if let IconUpdate::Missing { error } = &update {
        tracing::debug!(feed = %shown, %error, "no icon found");
    }
    let found = !matches!(update, IconUpdate::Missing { .. });
    let new_image = matches!(&update, IconUpdate::Found { image, .. }
        if stored.as_ref().and_then(|s| s.image.as_ref()) != Some(image));
    let next = icon::next_look(found, context.clock.now());
    Ok((
        IconLooked {
            feed_id,
            update,
            next,
        },
        new_image,
    ))
}
