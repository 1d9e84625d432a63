-- Accounts shared by SIP and XMPP. Only derived verifiers are stored, never a password.
CREATE TABLE domains (
    name        TEXT PRIMARY KEY NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE accounts (
    username    TEXT NOT NULL,
    domain      TEXT NOT NULL REFERENCES domains(name),
    locked      INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (username, domain)
);

-- RFC 5802 §3: {salt, iterations, StoredKey, ServerKey} per SCRAM hash.
CREATE TABLE scram_verifiers (
    username    TEXT NOT NULL,
    domain      TEXT NOT NULL,
    hash        TEXT NOT NULL,
    salt        BLOB NOT NULL,
    iterations  INTEGER NOT NULL,
    stored_key  BLOB NOT NULL,
    server_key  BLOB NOT NULL,
    PRIMARY KEY (username, domain, hash),
    FOREIGN KEY (username, domain) REFERENCES accounts(username, domain) ON DELETE CASCADE
);

-- RFC 7616 §3.4.2: H(username:realm:password) per realm and algorithm.
CREATE TABLE digest_ha1 (
    username    TEXT NOT NULL,
    domain      TEXT NOT NULL,
    realm       TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    ha1         TEXT NOT NULL,
    PRIMARY KEY (username, domain, realm, algorithm),
    FOREIGN KEY (username, domain) REFERENCES accounts(username, domain) ON DELETE CASCADE
);

CREATE TABLE aliases (
    alias       TEXT PRIMARY KEY NOT NULL,
    username    TEXT NOT NULL,
    domain      TEXT NOT NULL,
    FOREIGN KEY (username, domain) REFERENCES accounts(username, domain) ON DELETE CASCADE
);
CREATE INDEX aliases_by_account ON aliases(username, domain);

-- Polled by running servers so that cusaxctl changes take effect at once.
CREATE TABLE account_changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    account     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    at          INTEGER NOT NULL
);
