//! The PostgreSQL schema: append-only migrations, like SQLite's, run under an advisory lock
//! so that nodes starting together migrate once. Version 1 was the SQLite store's shape as of
//! its schema 14, with what a cluster adds: who holds each feed's lease and under which epoch
//! (fencing), the nodes' heartbeats, cluster-wide per-host turns, and rendered outputs kept
//! for every node to serve. Version 2 gives the columns PostgreSQL's own types: times are
//! `timestamptz`, flags `boolean`, categories `text[]`, enclosures `jsonb`.

use super::MIGRATION_LOCK;

/// Step `i` takes the schema from version `i` to `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite's schema 14 has, and the cluster's own tables.
    r#"
    CREATE TABLE feeds (
        id              BIGSERIAL PRIMARY KEY,
        url             TEXT NOT NULL UNIQUE,
        title           TEXT,
        site_url        TEXT,
        feed_id         TEXT,
        etag            TEXT,
        last_modified   TEXT,
        body_hash       TEXT,
        last_fetch      BIGINT,
        last_success    BIGINT,
        last_error      TEXT,
        failures        BIGINT NOT NULL DEFAULT 0,
        created         BIGINT NOT NULL,
        failing_since   BIGINT,
        retry_after     BIGINT,
        fresh_until     BIGINT,
        rhythm          BIGINT,
        skip_hours      BIGINT NOT NULL DEFAULT 0,
        skip_days       BIGINT NOT NULL DEFAULT 0,
        moved_to        TEXT,
        moved_candidate TEXT,
        moved_count     BIGINT NOT NULL DEFAULT 0,
        gone_at         BIGINT,
        gone_config     TEXT,
        segments        BYTEA,
        next_due        BIGINT,
        schedule_key    TEXT,
        lease_until     BIGINT,
        failure_kind    TEXT,
        abandoned_at    BIGINT,
        repairs         TEXT,
        language        TEXT,
        -- The node holding the lease, and the lease's epoch: it grows with every claim, and a
        -- poll is recorded only under the epoch it was claimed with, so a node that lost its
        -- lease (stalled past it, then woke up) cannot write over the node that took over.
        lease_node      TEXT,
        lease_epoch     BIGINT NOT NULL DEFAULT 0
    );
    -- A wake-up reads the due feeds as a range of this index: O(due), not O(feeds).
    CREATE INDEX feeds_by_due ON feeds (next_due);

    CREATE TABLE entries (
        id              BIGSERIAL PRIMARY KEY,
        feed_id         BIGINT NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
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
        published       BIGINT NOT NULL,
        updated         BIGINT NOT NULL,
        first_seen      BIGINT NOT NULL,
        content_hash    TEXT NOT NULL,
        canonical_link  TEXT,
        hidden          BIGINT NOT NULL DEFAULT 0,
        catalogue_rank  BIGINT,
        full_text       TEXT,
        full_text_error TEXT,
        full_text_tries BIGINT NOT NULL DEFAULT 0,
        full_text_at    BIGINT,
        UNIQUE (feed_id, key)
    );
    CREATE INDEX entries_by_date ON entries (published DESC, id DESC, feed_id, hidden);
    CREATE INDEX entries_by_feed ON entries (feed_id, hidden, published DESC, id DESC);
    CREATE INDEX entries_by_link ON entries (canonical_link);

    CREATE TABLE tombstones (
        feed_id         BIGINT NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        key             TEXT NOT NULL,
        removed         BIGINT NOT NULL,
        last_seen       BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (feed_id, key)
    );
    CREATE INDEX tombstones_by_last_seen ON tombstones (last_seen);

    -- A 429 or 503 with Retry-After from a host delays every feed on it, on every node.
    CREATE TABLE hosts (
        host            TEXT PRIMARY KEY,
        not_before      BIGINT NOT NULL,
        reason          TEXT NOT NULL
    );

    CREATE TABLE outputs (
        path            TEXT PRIMARY KEY,
        last_error      TEXT,
        failing_since   BIGINT,
        failures        BIGINT NOT NULL DEFAULT 0,
        last_written    BIGINT
    );

    CREATE TABLE feed_errors (
        id              BIGSERIAL PRIMARY KEY,
        feed_id         BIGINT NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        at              BIGINT NOT NULL,
        kind            TEXT NOT NULL,
        message         TEXT NOT NULL
    );
    CREATE INDEX feed_errors_by_feed ON feed_errors (feed_id, id);

    CREATE TABLE settings (
        name            TEXT PRIMARY KEY,
        value           TEXT NOT NULL
    );
    INSERT INTO settings (name, value) VALUES ('new_feed_entries', '10');

    -- Every node's heartbeat: `feeds` and /healthz show who is alive and who stopped.
    CREATE TABLE nodes (
        name            TEXT PRIMARY KEY,
        started         BIGINT NOT NULL,
        last_seen       BIGINT NOT NULL,
        pid             BIGINT NOT NULL,
        version         TEXT NOT NULL
    );

    -- `per_host` for the whole cluster: a host has that many turns; a request to it takes a
    -- free turn (or one whose holder's lease ran out) and gives it back after. The epoch
    -- fences a holder that stalled past its lease, as for feeds.
    CREATE TABLE host_turns (
        host            TEXT NOT NULL,
        turn            BIGINT NOT NULL,
        node            TEXT,
        until           BIGINT,
        epoch           BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (host, turn)
    );

    -- The outputs as rendered by the leader, so that every node serves the same bytes and
    -- ETag; a change is announced with NOTIFY tributary_outputs.
    CREATE TABLE rendered (
        path            TEXT PRIMARY KEY,
        bytes           BYTEA NOT NULL,
        etag            TEXT NOT NULL,
        rendered_at     BIGINT NOT NULL
    );
    "#,
    // 2: native types. Times were seconds, or milliseconds where schedules compare them.
    r#"
    ALTER TABLE feeds
        ALTER COLUMN last_fetch TYPE timestamptz USING to_timestamp(last_fetch / 1000.0),
        ALTER COLUMN last_success TYPE timestamptz USING to_timestamp(last_success),
        ALTER COLUMN created TYPE timestamptz USING to_timestamp(created),
        ALTER COLUMN failing_since TYPE timestamptz USING to_timestamp(failing_since),
        ALTER COLUMN retry_after TYPE timestamptz USING to_timestamp(retry_after),
        ALTER COLUMN fresh_until TYPE timestamptz USING to_timestamp(fresh_until),
        ALTER COLUMN gone_at TYPE timestamptz USING to_timestamp(gone_at),
        ALTER COLUMN next_due TYPE timestamptz USING to_timestamp(next_due / 1000.0),
        ALTER COLUMN lease_until TYPE timestamptz USING to_timestamp(lease_until / 1000.0),
        ALTER COLUMN abandoned_at TYPE timestamptz USING to_timestamp(abandoned_at);

    ALTER TABLE entries
        ALTER COLUMN published TYPE timestamptz USING to_timestamp(published),
        ALTER COLUMN updated TYPE timestamptz USING to_timestamp(updated),
        ALTER COLUMN first_seen TYPE timestamptz USING to_timestamp(first_seen),
        ALTER COLUMN full_text_at TYPE timestamptz USING to_timestamp(full_text_at / 1000.0),
        ALTER COLUMN hidden DROP DEFAULT,
        ALTER COLUMN hidden TYPE boolean USING hidden <> 0,
        ALTER COLUMN hidden SET DEFAULT false,
        ALTER COLUMN enclosures DROP DEFAULT,
        ALTER COLUMN enclosures TYPE jsonb USING enclosures::jsonb,
        ALTER COLUMN enclosures SET DEFAULT '[]'::jsonb;
    -- An array column cannot be computed from a subquery in ALTER ... USING: a new column.
    ALTER TABLE entries ADD COLUMN categories_list text[] NOT NULL DEFAULT '{}';
    UPDATE entries SET categories_list = ARRAY(SELECT json_array_elements_text(categories::json))
        WHERE categories <> '[]';
    ALTER TABLE entries DROP COLUMN categories;
    ALTER TABLE entries RENAME COLUMN categories_list TO categories;

    ALTER TABLE tombstones
        ALTER COLUMN removed TYPE timestamptz USING to_timestamp(removed),
        ALTER COLUMN last_seen DROP DEFAULT,
        ALTER COLUMN last_seen TYPE timestamptz USING to_timestamp(last_seen);
    ALTER TABLE hosts ALTER COLUMN not_before TYPE timestamptz USING to_timestamp(not_before);
    ALTER TABLE outputs
        ALTER COLUMN failing_since TYPE timestamptz USING to_timestamp(failing_since),
        ALTER COLUMN last_written TYPE timestamptz USING to_timestamp(last_written);
    ALTER TABLE feed_errors ALTER COLUMN at TYPE timestamptz USING to_timestamp(at);
    ALTER TABLE nodes
        ALTER COLUMN started TYPE timestamptz USING to_timestamp(started / 1000.0),
        ALTER COLUMN last_seen TYPE timestamptz USING to_timestamp(last_seen / 1000.0);
    ALTER TABLE host_turns ALTER COLUMN until TYPE timestamptz USING to_timestamp(until / 1000.0);
    ALTER TABLE rendered ALTER COLUMN rendered_at TYPE timestamptz USING to_timestamp(rendered_at / 1000.0);
    "#,
    // 3: each entry's language (a BCP 47 tag) and where it came from: 'config', 'feed' or
    // 'detected'. Entries stored before have none.
    r#"
    ALTER TABLE entries ADD COLUMN language TEXT, ADD COLUMN language_source TEXT;
    "#,
    // 4: the URL a feed's output ids are made from, when it was renamed from another
    // spelling of its URL (NULL: its own URL, as every feed stored before).
    r#"
    ALTER TABLE feeds ADD COLUMN id_url TEXT;
    "#,
    // 5: feeds' icons, as SQLite's schema 17 keeps them.
    r#"
    CREATE TABLE icons (
        hash       TEXT PRIMARY KEY,
        media_type TEXT NOT NULL,
        bytes      BYTEA NOT NULL
    );
    CREATE TABLE feed_icons (
        feed_id       BIGINT PRIMARY KEY REFERENCES feeds(id) ON DELETE CASCADE,
        url           TEXT,
        hash          TEXT,
        etag          TEXT,
        last_modified TEXT,
        checked       timestamptz NOT NULL,
        error         TEXT
    );
    CREATE INDEX feed_icons_by_hash ON feed_icons (hash);
    ALTER TABLE feeds ADD COLUMN icon_due timestamptz;
    "#,
    // 6: the webhook outbox, as SQLite's schema 18 keeps it.
    r#"
    CREATE TABLE announcing (
        output TEXT PRIMARY KEY,
        since  timestamptz NOT NULL
    );
    CREATE TABLE announced (
        output   TEXT NOT NULL,
        entry_id BIGINT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        PRIMARY KEY (output, entry_id)
    );
    CREATE INDEX announced_by_entry ON announced (entry_id);
    CREATE TABLE deliveries (
        id           BIGSERIAL PRIMARY KEY,
        output       TEXT NOT NULL,
        webhook      TEXT NOT NULL,
        body         TEXT NOT NULL,
        created      timestamptz NOT NULL,
        attempts     BIGINT NOT NULL DEFAULT 0,
        next_attempt timestamptz NOT NULL,
        last_error   TEXT,
        failed       timestamptz
    );
    CREATE INDEX deliveries_due ON deliveries (next_attempt) WHERE failed IS NULL;
    "#,
    // 7: each output's readers, as SQLite's schema 19 keeps them.
    r#"
    CREATE TABLE readers (
        output TEXT NOT NULL,
        via    TEXT NOT NULL,
        key    TEXT NOT NULL,
        count  BIGINT NOT NULL,
        seen   timestamptz NOT NULL,
        PRIMARY KEY (output, via, key)
    );
    "#,
    // 8: feeds' WebSub subscriptions, as SQLite's schema 20 keeps them.
    r#"
    CREATE TABLE subscriptions (
        feed_id      BIGINT PRIMARY KEY REFERENCES feeds(id) ON DELETE CASCADE,
        hub          TEXT NOT NULL,
        topic        TEXT NOT NULL,
        state        TEXT NOT NULL,
        secret       TEXT NOT NULL,
        nonce        TEXT NOT NULL,
        lease_until  timestamptz,
        next_attempt timestamptz,
        failures     INTEGER NOT NULL DEFAULT 0,
        error        TEXT,
        last_push    timestamptz,
        pushes       BIGINT NOT NULL DEFAULT 0,
        rejected     BIGINT NOT NULL DEFAULT 0
    );
    ALTER TABLE feeds ADD COLUMN push_until timestamptz;
    ALTER TABLE entries ADD COLUMN pushed boolean;
    "#,
    // 9: subscription lists, as SQLite's schema 21 keeps them.
    r#"
    CREATE TABLE lists (
        key           TEXT PRIMARY KEY,
        etag          TEXT,
        last_modified TEXT,
        members       jsonb NOT NULL,
        held          jsonb,
        fetched       timestamptz,
        last_success  timestamptz,
        last_error    TEXT,
        failures      INTEGER NOT NULL DEFAULT 0,
        next_due      timestamptz
    );
    "#,
    // 10: counts as BIGINT, as everywhere else in this schema (`store copy` maps integers so).
    r#"
    ALTER TABLE subscriptions ALTER COLUMN failures TYPE BIGINT;
    ALTER TABLE lists ALTER COLUMN failures TYPE BIGINT;
    "#,
];

/// Brings the schema up to date inside `tx` (holding the migration lock until it ends), and
/// returns the version found: one newer than [`MIGRATIONS`] is left as it is, for the caller
/// to refuse.
pub(super) async fn migrate(tx: &tokio_postgres::Transaction<'_>) -> Result<i64, tokio_postgres::Error> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .await?;
    let found: i64 = tx
        .query_opt("SELECT version FROM schema_version", &[])
        .await?
        .map_or(0, |r| r.get(0));
    let supported = MIGRATIONS.len() as i64;
    if found >= supported {
        return Ok(found);
    }
    for sql in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
        tx.batch_execute(sql).await?;
    }
    tx.execute("DELETE FROM schema_version", &[]).await?;
    tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&supported])
        .await?;
    Ok(found)
}
