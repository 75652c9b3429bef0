//! Append-only migrations. Never edit a released step; add the next one.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// Step `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: feeds, entries, tombstones.
    r#"
    CREATE TABLE feeds (
        id              INTEGER PRIMARY KEY,
        url             TEXT NOT NULL UNIQUE,
        title           TEXT,
        site_url        TEXT,
        feed_id         TEXT,
        etag            TEXT,
        last_modified   TEXT,
        body_hash       TEXT,
        last_fetch      INTEGER,
        last_success    INTEGER,
        last_error      TEXT,
        failures        INTEGER NOT NULL DEFAULT 0,
        created         INTEGER NOT NULL
    );

    CREATE TABLE entries (
        id              INTEGER PRIMARY KEY,
        feed_id         INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        key             TEXT NOT NULL,
        guid            TEXT,
        link            TEXT,
        title           TEXT NOT NULL,
        author_name     TEXT,
        author_email    TEXT,
        author_uri      TEXT,
        summary         TEXT,
        content         TEXT,
        categories      TEXT NOT NULL DEFAULT '[]',
        enclosures      TEXT NOT NULL DEFAULT '[]',
        published       INTEGER NOT NULL,
        updated         INTEGER NOT NULL,
        first_seen      INTEGER NOT NULL,
        content_hash    TEXT NOT NULL,
        UNIQUE (feed_id, key)
    );
    -- Outputs read the newest entries first; this index makes that a walk, not a sort.
    CREATE INDEX entries_by_date ON entries (published DESC, id DESC);

    -- Keys of entries removed by retention, so they never come back as new.
    CREATE TABLE tombstones (
        feed_id         INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        key             TEXT NOT NULL,
        removed         INTEGER NOT NULL,
        PRIMARY KEY (feed_id, key)
    ) WITHOUT ROWID;
    "#,
    // 2: scheduling state (failures, publisher hints), per-host delays, tombstone last-seen.
    r#"
    ALTER TABLE feeds ADD COLUMN failing_since INTEGER;
    ALTER TABLE feeds ADD COLUMN retry_after INTEGER;
    ALTER TABLE feeds ADD COLUMN fresh_until INTEGER;
    ALTER TABLE feeds ADD COLUMN rhythm INTEGER;
    ALTER TABLE feeds ADD COLUMN skip_hours INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE feeds ADD COLUMN skip_days INTEGER NOT NULL DEFAULT 0;

    -- A tombstone can go once its key has not been seen in its feed for a while.
    ALTER TABLE tombstones ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
    UPDATE tombstones SET last_seen = removed;

    -- A 429 or 403 from a host delays every feed on it.
    CREATE TABLE hosts (
        host            TEXT PRIMARY KEY,
        not_before      INTEGER NOT NULL,
        reason          TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 3: outputs find their newest entries from indexes alone: by date (with the feed, to
    // filter without reading rows) for outputs of most feeds, per feed for narrow ones.
    r#"
    DROP INDEX entries_by_date;
    CREATE INDEX entries_by_date ON entries (published DESC, id DESC, feed_id);
    CREATE INDEX entries_by_feed ON entries (feed_id, published DESC, id DESC);
    "#,
    // 4: cross-feed duplicates by canonical link, and a new feed's back catalogue kept out of
    // outputs (`hidden`). The output indexes carry `hidden` so they still answer alone.
    r#"
    ALTER TABLE entries ADD COLUMN canonical_link TEXT;
    ALTER TABLE entries ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
    -- Not a partial index: a query on a partial index is planned anew for every bound value.
    CREATE INDEX entries_by_link ON entries (canonical_link);
    DROP INDEX entries_by_date;
    DROP INDEX entries_by_feed;
    CREATE INDEX entries_by_date ON entries (published DESC, id DESC, feed_id, hidden);
    CREATE INDEX entries_by_feed ON entries (feed_id, hidden, published DESC, id DESC);
    "#,
    // 5: feeds that moved (permanent redirects on consecutive polls) and feeds that are gone.
    r#"
    ALTER TABLE feeds ADD COLUMN moved_to TEXT;
    ALTER TABLE feeds ADD COLUMN moved_candidate TEXT;
    ALTER TABLE feeds ADD COLUMN moved_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE feeds ADD COLUMN gone_at INTEGER;
    -- The config fingerprint under which the feed was found gone.
    ALTER TABLE feeds ADD COLUMN gone_config TEXT;
    "#,
    // 6: fingerprints of the items whose entries are stored unchanged (8 bytes each), so a
    // re-fetched body costs the parser only its new items.
    r#"
    ALTER TABLE feeds ADD COLUMN segments BLOB;
    "#,
    // 7: due times live in the store, in milliseconds (a schedule with seconds and a jitter
    // of fractions of one needs them), with the policy they were computed under and the lease
    // of a feed being polled; failures keep their kind; abandoned feeds are noted once.
    // Existing feeds get `schedule_key` NULL, which marks their due time stale: the first open
    // with a config computes it from the feed's history (`poll::prepare`), in the one place
    // that computes due times, rather than here in SQL.
    r#"
    UPDATE feeds SET last_fetch = last_fetch * 1000 WHERE last_fetch IS NOT NULL;
    ALTER TABLE feeds ADD COLUMN next_due INTEGER;
    ALTER TABLE feeds ADD COLUMN schedule_key TEXT;
    ALTER TABLE feeds ADD COLUMN lease_until INTEGER;
    ALTER TABLE feeds ADD COLUMN failure_kind TEXT;
    ALTER TABLE feeds ADD COLUMN abandoned_at INTEGER;
    UPDATE feeds SET next_due = COALESCE(last_fetch, 0);
    -- A wake-up reads the due feeds as a range of this index: O(due), not O(feeds).
    CREATE INDEX feeds_by_due ON feeds (next_due);
    "#,
    // 8: outputs that could not be written, until they are: `feeds` and /healthz show them.
    r#"
    CREATE TABLE outputs (
        path            TEXT PRIMARY KEY,
        last_error      TEXT,
        failing_since   INTEGER,
        failures        INTEGER NOT NULL DEFAULT 0,
        last_written    INTEGER
    ) WITHOUT ROWID;
    "#,
    // 9: what a feed's last document needed repaired to be read (comma-separated names).
    r#"
    ALTER TABLE feeds ADD COLUMN repairs TEXT;
    "#,
    // 10: each feed's recent failures, for `feeds URL` (the last 20 are kept).
    r#"
    CREATE TABLE feed_errors (
        id              INTEGER PRIMARY KEY,
        feed_id         INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        at              INTEGER NOT NULL,
        kind            TEXT NOT NULL,
        message         TEXT NOT NULL
    );
    CREATE INDEX feed_errors_by_feed ON feed_errors (feed_id, id);
    "#,
    // 11: a new feed's back catalogue is kept out of outputs by its rank (newest first) in the
    // feed's first poll, against `poll.new_feed_entries` as it is now: raising the setting
    // lets more in. Entries hidden before ranks were kept get ranks after the default 10
    // shown ones. `settings` remembers what `hidden` was last computed for.
    r#"
    ALTER TABLE entries ADD COLUMN catalogue_rank INTEGER;
    UPDATE entries SET catalogue_rank = 9 + (
        SELECT COUNT(*) FROM entries AS newer
        WHERE newer.feed_id = entries.feed_id AND newer.hidden = 1
          AND (newer.published, newer.id) >= (entries.published, entries.id))
    WHERE hidden = 1;
    CREATE TABLE settings (
        name            TEXT PRIMARY KEY,
        value           TEXT NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO settings (name, value) VALUES ('new_feed_entries', '10');
    "#,
    // 12: the language a feed declares, for the page's `lang` attributes.
    r#"
    ALTER TABLE feeds ADD COLUMN language TEXT;
    "#,
    // 13: where an entry's content came from ([[feed]] full_text): NULL (the feed), 'page'
    // or 'failed' (with the error, how many tries, and when the last one was, in milliseconds:
    // a retry must come from a later poll, which may begin within the same second).
    r#"
    ALTER TABLE entries ADD COLUMN full_text TEXT;
    ALTER TABLE entries ADD COLUMN full_text_error TEXT;
    ALTER TABLE entries ADD COLUMN full_text_tries INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE entries ADD COLUMN full_text_at INTEGER;
    "#,
    // 14: tombstones by when their key was last seen, so that expiring them reads only the
    // expired ones (without it each expiry step scanned every tombstone: 0.4 s at 5,000,000).
    r#"
    CREATE INDEX tombstones_by_last_seen ON tombstones (last_seen);
    "#,
    // 15: each entry's language (a BCP 47 tag) and where it came from: 'config', 'feed' or
    // 'detected'. Entries stored before have none.
    r#"
    ALTER TABLE entries ADD COLUMN language TEXT;
    ALTER TABLE entries ADD COLUMN language_source TEXT;
    "#,
    // 16: the URL a feed's output ids are made from, when it was renamed from another
    // spelling of its URL (NULL: its own URL, as every feed stored before).
    r#"
    ALTER TABLE feeds ADD COLUMN id_url TEXT;
    "#,
    // 17: feeds' icons. An image is kept once by the hash of its bytes (feeds of one site share
    // one); each feed's last look says where its image was found, the validators to ask again
    // with, when, and why nothing was found; the feed's row says when to look next, so a poll
    // knows without a read of its own.
    r#"
    CREATE TABLE icons (
        hash       TEXT PRIMARY KEY,
        media_type TEXT NOT NULL,
        bytes      BLOB NOT NULL
    );
    CREATE TABLE feed_icons (
        feed_id       INTEGER PRIMARY KEY REFERENCES feeds(id) ON DELETE CASCADE,
        url           TEXT,
        hash          TEXT,
        etag          TEXT,
        last_modified TEXT,
        checked       INTEGER NOT NULL,
        error         TEXT
    );
    CREATE INDEX feed_icons_by_hash ON feed_icons (hash);
    ALTER TABLE feeds ADD COLUMN icon_due INTEGER;
    "#,
    // 18: the webhook outbox. Which entries each output has announced (so each is sent once;
    // an output is in `announcing` from its first render, whose back catalogue is taken as
    // announced), and the deliveries: one request's body each, for one webhook of an output,
    // retried until `next_attempt` says (a claim moves it on) or given up (`failed`). Ids are
    // never reused (AUTOINCREMENT): a delivery's id is its idempotency key.
    r#"
    CREATE TABLE announcing (
        output TEXT PRIMARY KEY,
        since  INTEGER NOT NULL
    );
    CREATE TABLE announced (
        output   TEXT NOT NULL,
        entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        PRIMARY KEY (output, entry_id)
    ) WITHOUT ROWID;
    CREATE INDEX announced_by_entry ON announced (entry_id);
    CREATE TABLE deliveries (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        output       TEXT NOT NULL,
        webhook      TEXT NOT NULL,
        body         TEXT NOT NULL,
        created      INTEGER NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        last_error   TEXT,
        failed       INTEGER
    );
    CREATE INDEX deliveries_due ON deliveries (next_attempt) WHERE failed IS NULL;
    "#,
    // 19: each output's readers: an aggregator's stated subscribers per feed id (`via` its
    // name, the latest figure), or one direct reader per salted hash of address and
    // User-Agent (`via` 'direct'); when each was last seen.
    r#"
    CREATE TABLE readers (
        output TEXT NOT NULL,
        via    TEXT NOT NULL,
        key    TEXT NOT NULL,
        count  INTEGER NOT NULL,
        seen   INTEGER NOT NULL,
        PRIMARY KEY (output, via, key)
    ) WITHOUT ROWID;
    "#,
    // 20: feeds' WebSub subscriptions; until when each feed is pushed (its polls stretched
    // until then); which entries first arrived by push.
    r#"
    CREATE TABLE subscriptions (
        feed_id      INTEGER PRIMARY KEY REFERENCES feeds(id) ON DELETE CASCADE,
        hub          TEXT NOT NULL,
        topic        TEXT NOT NULL,
        state        TEXT NOT NULL,
        secret       TEXT NOT NULL,
        nonce        TEXT NOT NULL,
        lease_until  INTEGER,
        next_attempt INTEGER,
        failures     INTEGER NOT NULL DEFAULT 0,
        error        TEXT,
        last_push    INTEGER,
        pushes       INTEGER NOT NULL DEFAULT 0,
        rejected     INTEGER NOT NULL DEFAULT 0
    );
    ALTER TABLE feeds ADD COLUMN push_until INTEGER;
    ALTER TABLE entries ADD COLUMN pushed INTEGER;
    "#,
    // 21: subscription lists: the members in force and a shrunk set held for confirmation
    // (JSON), with what the next fetch needs.
    r#"
    CREATE TABLE lists (
        key           TEXT PRIMARY KEY,
        etag          TEXT,
        last_modified TEXT,
        members       TEXT NOT NULL,
        held          TEXT,
        fetched       INTEGER,
        last_success  INTEGER,
        last_error    TEXT,
        failures      INTEGER NOT NULL DEFAULT 0,
        next_due      INTEGER
    );
    "#,
];

/// Refuses a database written by a newer Tributary, before anything is written to it.
pub(super) fn refuse_newer(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| StoreError::Unavailable {
            context: format!("cannot open database {}", path.display()),
            source: e.into(),
        })?;
    if found > supported {
        return Err(StoreError::TooNew {
            store: format!("database {}", path.display()),
            found,
            supported,
            shared: false,
        });
    }
    Ok(())
}

/// Brings the schema up to date, one migration per transaction.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> rusqlite::Result<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    // Databases created before auto_vacuum was set in time (it must precede WAL mode) never
    // gave pages back: converted once, which rewrites the file (VACUUM). Not fatal: such a
    // database works, it only does not shrink.
    let auto_vacuum: i64 = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
    if found > 0 && auto_vacuum != 2 && !conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
        tracing::info!(database = %path.display(), "converting the database for incremental vacuum (once)");
        let converted = conn
            .pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .and_then(|()| conn.execute_batch("VACUUM"));
        if let Err(e) = converted {
            tracing::warn!(database = %path.display(), error = %e, "cannot convert the database for incremental vacuum; it will not shrink");
        }
    }
    for (version, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
