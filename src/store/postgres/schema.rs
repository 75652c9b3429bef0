//! The PostgreSQL schema: append-only migrations, like SQLite's. Version 1 is the SQLite
//! store's shape as of its schema 14 (so `store copy` maps table to table), with what a
//! cluster adds: who holds each feed's lease and under which epoch (fencing), the nodes'
//! heartbeats, cluster-wide per-host turns, and rendered outputs kept for every node to serve.
//! Times are milliseconds or seconds since the epoch as in SQLite (`BIGINT`), so both stores
//! read them with the same code.

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
];
