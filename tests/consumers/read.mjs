// What Node's feed readers make of one of Tributary's outputs, for tests/it/consumers.rs:
// `node read.mjs FORMAT FILE` prints {"reader": [entries…]} as JSON, each entry in the same
// plain shape (see consumers.rs); a field a reader does not expose is null.
import { readFileSync } from 'node:fs';
import * as feedsmith from 'feedsmith';
import { extractFromXml, extractFromJson } from '@extractus/feed-extractor';
import opml from 'opml';

const [format, file] = process.argv.slice(2);
const text = readFileSync(file, 'utf8');
const seconds = (d) => (d ? Math.round(Date.parse(d) / 1000) : null);
const text_of = (t) => (t == null ? null : typeof t === 'string' ? t : t.value ?? null);

function feedsmithEntries() {
  if (format === 'json') {
    return feedsmith.parseJsonFeed(JSON.parse(text)).items.map((i) => ({
      title: i.title ?? null,
      link: i.url ?? null,
      date: seconds(i.date_published),
      author: i.authors?.[0]?.name ?? i.author?.name ?? null,
      enclosures: (i.attachments ?? []).map((a) => a.url),
    }));
  }
  const { format: kind, feed } = feedsmith.parseFeed(text);
  if (kind === 'atom') {
    return feed.entries.map((e) => ({
      title: text_of(e.title),
      link: (e.links ?? []).find((l) => (l.rel ?? 'alternate') === 'alternate')?.href ?? null,
      date: seconds(e.published ?? e.updated),
      author: e.authors?.[0]?.name ?? null,
      enclosures: (e.links ?? []).filter((l) => l.rel === 'enclosure').map((l) => l.href),
    }));
  }
  return feed.items.map((i) => ({
    title: i.title ?? null,
    link: i.link ?? null,
    date: seconds(i.pubDate),
    author: i.dc?.creators?.[0] ?? i.authors?.[0] ?? null,
    enclosures: (i.enclosures ?? []).map((e) => e.url),
  }));
}

// feed-extractor normalizes to title, link and published only.
function extractorEntries() {
  const feed = format === 'json' ? extractFromJson(JSON.parse(text)) : extractFromXml(text);
  return feed.entries.map((e) => ({
    title: e.title ?? null,
    link: e.link ?? null,
    date: seconds(e.published),
    author: null,
    enclosures: null,
  }));
}

// OPML: every subscription with the folder it sits in.
function outlines(list, folder, out) {
  for (const o of list ?? []) {
    if (o.xmlUrl) {
      out.push({ title: o.title ?? o.text ?? null, xmlUrl: o.xmlUrl, htmlUrl: o.htmlUrl ?? null, folder });
    }
    outlines(o.outlines ?? o.subs, o.xmlUrl ? folder : o.text ?? o.title ?? null, out);
  }
  return out;
}

const result = {};
if (format === 'opml') {
  result.feedsmith = outlines(feedsmith.parseOpml(text).body.outlines, null, []);
  const parsed = await new Promise((resolve, reject) =>
    opml.parse(text, (err, doc) => (err ? reject(err) : resolve(doc))),
  );
  result['opml (Dave Winer)'] = outlines(parsed.opml.body.subs, null, []);
} else {
  result.feedsmith = feedsmithEntries();
  result['feed-extractor'] = extractorEntries();
}
console.log(JSON.stringify(result));
