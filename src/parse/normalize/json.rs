//! JSON Feed as publishers write it, coerced into the shape the specification (and feed-rs)
//! expects: strings where numbers or objects stand, authors in either version's form,
//! attachments without their required fields dropped.

use super::*;

/// JSON Feed, coerced field by field into the shapes of the spec (jsonfeed.org/version/1.1),
/// because feed-rs's typed deserializer fails the whole feed on one field of the wrong type.
pub(super) fn prepare_json(text: &str) -> Result<(String, Push), ParseError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ParseError::Malformed(format!("invalid JSON: {e}")))?;
    let Value::Object(mut feed) = value else {
        return Err(ParseError::NotAFeed("JSON that is not an object".into()));
    };
    if !matches!(feed.get("items"), Some(Value::Array(_))) {
        return Err(ParseError::NotAFeed(
            "JSON without an `items` array is not a JSON Feed".into(),
        ));
    }
    // Any version URL (http or https, 1 / 1.1, or a bare "1.0") is read as 1.1, a superset.
    feed.insert(
        "version".into(),
        Value::String("https://jsonfeed.org/version/1.1".into()),
    );
    if !matches!(feed.get("title"), Some(Value::String(_))) {
        feed.insert("title".into(), Value::String(String::new()));
    }
    for key in [
        "home_page_url",
        "feed_url",
        "language",
        "description",
        "icon",
        "favicon",
    ] {
        keep_if_string(&mut feed, key);
    }
    coerce_authors(&mut feed);
    // `hubs`: [{"type": "WebSub", "url": …}]; a hub of another type is not ours to use.
    let hub = match feed.get("hubs") {
        Some(Value::Array(hubs)) => hubs.iter().find_map(|h| {
            let kind = h.get("type").and_then(Value::as_str).unwrap_or("WebSub");
            let url = h.get("url").and_then(Value::as_str)?;
            kind.eq_ignore_ascii_case("websub").then(|| url.to_string())
        }),
        _ => None,
    };
    let push = Push {
        hub,
        topic: feed.get("feed_url").and_then(Value::as_str).map(str::to_string),
    };
    if let Some(Value::Array(items)) = feed.get_mut("items") {
        items.retain(Value::is_object);
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            coerce_item(item);
        }
    }
    let doc =
        serde_json::to_string(&Value::Object(feed)).map_err(|e| ParseError::Malformed(e.to_string()))?;
    Ok((doc, push))
}

pub(super) fn coerce_item(item: &mut Map<String, Value>) {
    // Ids are strings by the spec, but numbers are common.
    match item.get("id") {
        Some(Value::Number(n)) => {
            let s = n.to_string();
            item.insert("id".into(), Value::String(s));
        }
        Some(Value::String(_)) => {}
        _ => {
            item.remove("id");
        }
    }
    for key in [
        "url",
        "external_url",
        "title",
        "content_html",
        "content_text",
        "summary",
        "date_published",
        "date_modified",
    ] {
        keep_if_string(item, key);
    }
    coerce_authors(item);
    let tags = match item.remove("tags") {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| Value::String(t.into()))
            .collect(),
        Some(Value::Array(tags)) => tags.into_iter().filter(Value::is_string).collect(),
        _ => Vec::new(),
    };
    if !tags.is_empty() {
        item.insert("tags".into(), Value::Array(tags));
    }
    let attachments: Vec<Value> = match item.remove("attachments") {
        Some(Value::Array(list)) => list.into_iter().filter_map(coerce_attachment).collect(),
        _ => Vec::new(),
    };
    if !attachments.is_empty() {
        item.insert("attachments".into(), Value::Array(attachments));
    }
}

pub(super) fn coerce_attachment(value: Value) -> Option<Value> {
    let Value::Object(mut a) = value else { return None };
    if !matches!(a.get("url"), Some(Value::String(_))) {
        return None;
    }
    if !matches!(a.get("mime_type"), Some(Value::String(_))) {
        a.insert(
            "mime_type".into(),
            Value::String("application/octet-stream".into()),
        );
    }
    keep_if_string(&mut a, "title");
    let size = match a.remove("size_in_bytes") {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    if let Some(size) = size {
        a.insert("size_in_bytes".into(), Value::from(size));
    }
    a.remove("duration_in_seconds");
    Some(Value::Object(a))
}

pub(super) fn coerce_authors(object: &mut Map<String, Value>) {
    let valid = |v: &Value| match v {
        Value::Object(o) => {
            let mut o = o.clone();
            keep_if_string(&mut o, "name");
            keep_if_string(&mut o, "url");
            o.retain(|k, _| k == "name" || k == "url");
            Some(Value::Object(o))
        }
        Value::String(name) => Some(serde_json::json!({ "name": name })),
        _ => None,
    };
    match object.get("author").map(valid) {
        Some(Some(a)) => {
            object.insert("author".into(), a);
        }
        Some(None) => {
            object.remove("author");
        }
        None => {}
    }
    match object.remove("authors") {
        Some(Value::Array(list)) => {
            let list: Vec<Value> = list.iter().filter_map(valid).collect();
            object.insert("authors".into(), Value::Array(list));
        }
        Some(single) => {
            if let Some(a) = valid(&single) {
                object.insert("authors".into(), Value::Array(vec![a]));
            }
        }
        None => {}
    }
}

pub(super) fn keep_if_string(object: &mut Map<String, Value>, key: &str) {
    if object.get(key).is_some_and(|v| !v.is_string()) {
        object.remove(key);
    }
}
