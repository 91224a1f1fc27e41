-- Keyway's session store on PostgreSQL (docs/sessions.md): embedded in the
-- binary by `sqlx::migrate!` and applied at start-up under sqlx's advisory
-- lock, so instances starting together apply it once.

-- Session records: the key is a hash of the session id, data is sealed
-- (XChaCha20-Poly1305), every write is compare-and-set on `version`.
CREATE TABLE keyway_records (
    key        TEXT   PRIMARY KEY,
    version    BIGINT NOT NULL,
    data       BYTEA  NOT NULL,
    expires_at BIGINT NOT NULL -- seconds since the epoch
);
CREATE INDEX keyway_records_expires_at ON keyway_records (expires_at);

-- The login index (back-channel logout): keyed hashes of provider + sid/sub,
-- members are encrypted session ids.
CREATE TABLE keyway_login_index (
    name   TEXT   NOT NULL,
    member TEXT   NOT NULL,
    until  BIGINT NOT NULL,
    PRIMARY KEY (name, member)
);
CREATE INDEX keyway_login_index_until ON keyway_login_index (until);

-- Short locks (one refresh grant per session across instances), timed by
-- the database's clock so that instances' clocks do not matter.
CREATE TABLE keyway_locks (
    name       TEXT        PRIMARY KEY,
    token      TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX keyway_locks_expires_at ON keyway_locks (expires_at);

-- The replay cache: login states and logout-token jtis already used.
CREATE TABLE keyway_claims (
    name  TEXT   PRIMARY KEY,
    until BIGINT NOT NULL
);
CREATE INDEX keyway_claims_until ON keyway_claims (until);
