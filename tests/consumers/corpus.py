"""A second reference reader over the shared corpus, for tests/it/corpus.rs: feedparser-rs
(an independent parser, in Rust, with feedparser's API) reads every file the manifest lists.
`python3 corpus.py CORPUS_DIR` prints one JSON line per file: path, entries, first title as a
reader shows it, or the error."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from read import shown  # noqa: E402  (the same rendering of text/html titles)


def main():
    import feedparser_rs

    corpus = sys.argv[1]
    with open(os.path.join(corpus, "manifest.tsv"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    for row in rows:
        path = row[0]
        try:
            with open(os.path.join(corpus, "feeds", path), "rb") as f:
                d = feedparser_rs.parse(f.read())
            first = shown(d.entries[0].title_detail) if d.entries else None
            out = {"path": path, "entries": len(d.entries), "first_title": first or ""}
        except Exception as e:  # a parser that gives up is a reading too
            out = {"path": path, "error": str(e)}
        print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
