-- RFC 3261 §10.3: registered contact bindings (the registrar writes them behind from memory).
CREATE TABLE location (
    aor           TEXT NOT NULL,
    contact       TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    q             INTEGER,
    call_id       TEXT NOT NULL,
    cseq          INTEGER NOT NULL,
    instance      TEXT,
    reg_id        INTEGER,
    -- Path values (RFC 3327) joined by line feeds; empty when there is none.
    path          TEXT NOT NULL DEFAULT '',
    source        TEXT,
    transport     TEXT NOT NULL,
    user_agent    TEXT,
    registered_at INTEGER NOT NULL,
    PRIMARY KEY (aor, contact)
);
CREATE INDEX location_by_expiry ON location(expires_at);
