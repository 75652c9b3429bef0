"""What Python's feed readers make of one of Tributary's outputs, for tests/it/consumers.rs:
`python3 read.py FORMAT FILE` prints {"reader": [entries...]} as JSON, each entry in the same
plain shape (see consumers.rs); a field a reader does not expose is None."""

import calendar
import json
import sys


def seconds(struct_time):
    return calendar.timegm(struct_time) if struct_time else None


def stamp(dt):
    return int(dt.timestamp()) if dt else None


def with_feedparser(path):
    import feedparser

    d = feedparser.parse(path)
    return [
        {
            "title": e.get("title"),
            "link": e.get("link"),
            "date": seconds(e.get("published_parsed") or e.get("updated_parsed")),
            "author": e.get("author_detail", {}).get("name") or e.get("author"),
            "enclosures": [l["href"] for l in e.get("links", []) if l.get("rel") == "enclosure"],
        }
        for e in d.entries
    ]


def shown(detail):
    """A title as a reader shows it: text/html (how feedparser-rs reports RSS and JSON Feed
    titles, escaped) is rendered to its text."""
    import html
    import re

    if detail is None:
        return None
    if detail.type == "text/html":
        return html.unescape(re.sub(r"<[^>]*>", "", detail.value))
    return detail.value


def with_feedparser_rs(path):
    import feedparser_rs

    with open(path, "rb") as f:
        d = feedparser_rs.parse(f.read())
    return [
        {
            "title": shown(e.title_detail),
            "link": e.link,
            "date": seconds(e.published_parsed or e.updated_parsed),
            "author": (e.author_detail.name if e.author_detail else None) or e.author,
            "enclosures": [x.href for x in e.enclosures],
        }
        for e in d.entries
    ]


def with_atoma(fmt, path):
    import atoma

    if fmt == "atom":
        feed = atoma.parse_atom_file(path)
        return [
            {
                "title": e.title.value if e.title else None,
                "link": next((l.href for l in e.links if (l.rel or "alternate") == "alternate"), None),
                "date": stamp(e.published or e.updated),
                "author": e.authors[0].name if e.authors else None,
                "enclosures": [l.href for l in e.links if l.rel == "enclosure"],
            }
            for e in feed.entries
        ]
    if fmt == "rss":
        feed = atoma.parse_rss_file(path)
        return [
            {
                "title": i.title,
                "link": i.link,
                "date": stamp(i.pub_date),
                # atoma reads RSS's own <author> only, not dc:creator.
                "author": None,
                "enclosures": [x.url for x in i.enclosures],
            }
            for i in feed.items
        ]
    feed = atoma.parse_json_feed_file(path)
    return [
        {
            "title": i.title,
            "link": i.url,
            "date": stamp(i.date_published),
            "author": i.author.name if i.author else None,
            "enclosures": [a.url for a in i.attachments],
        }
        for i in feed.items
    ]


def with_listparser(path):
    import listparser

    with open(path, "rb") as f:
        result = listparser.parse(f.read())
    return [
        {
            "title": feed.title,
            "xmlUrl": feed.url,
            "htmlUrl": None,
            # Its category attribute first, then the folder it sits in.
            "folder": feed.categories[-1][-1] if feed.categories and feed.categories[-1] else None,
        }
        for feed in result.feeds
    ]


def main():
    fmt, path = sys.argv[1], sys.argv[2]
    if fmt == "opml":
        result = {"listparser": with_listparser(path)}
    elif fmt == "json":
        # Released feedparser (6.0) does not read JSON Feed.
        result = {"atoma": with_atoma(fmt, path), "feedparser-rs": with_feedparser_rs(path)}
    else:
        result = {
            "feedparser": with_feedparser(path),
            "atoma": with_atoma(fmt, path),
            "feedparser-rs": with_feedparser_rs(path),
        }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
