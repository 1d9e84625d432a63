-- RFC 6121 roster, XEP-0054 vCards, XEP-0160 offline messages and XEP-0191 block lists.
-- Everything hangs off an account and goes with it; roster items naming a deleted local
-- account go too (trigger below).

CREATE TABLE roster_versions (
    username    TEXT NOT NULL,
    domain      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    PRIMARY KEY (username, domain),
    FOREIGN KEY (username, domain) REFERENCES accounts(username, domain) ON DELETE CASCADE
);

CREATE TABLE roster_items (
    username     TEXT NOT NULL,
    domain       TEXT NOT NULL,
    contact      TEXT NOT NULL,
    name         TEXT,
    subscription TEXT NOT NULL,
    ask          INTEGER NOT NULL DEFAULT 0,
    pending_in   INTEGER NOT NULL DEFAULT 0,
    groups       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (username, domain, contact),
    FOREIGN KEY (username, domain) REFERENCES accounts(username, domain) ON DELETE CASCADE
);
CREATE INDEX roster_items_by_contact ON roster_items(contact);

CREATE TABLE vcards (
    username    TEXT NOT NULL,
    domain      TEXT NOT NULL,
    xml         TEXT NOT NULL,
    PRIMARY KEY (username, domain),
    FOREIGN KEY (username, domain) REFERENCES accounts(username, domain) ON DELETE CASCADE
);

CREATE TABLE offline_messages (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    username    TEXT NOT NULL,
    domain      TEXT NOT NULL,
    xml         TEXT NOT NULL,
    FOREIGN KEY (username, domain) REFERENCES accounts(username, domain) ON DELETE CASCADE
);
CREATE INDEX offline_messages_by_account ON offline_messages(username, domain, seq);

CREATE TABLE blocklist (
    username    TEXT NOT NULL,
    domain      TEXT NOT NULL,
    jid         TEXT NOT NULL,
    PRIMARY KEY (username, domain, jid),
    FOREIGN KEY (username, domain) REFERENCES accounts(username, domain) ON DELETE CASCADE
);

-- Other users' roster items pointing at a deleted account.
CREATE TRIGGER roster_items_forget_deleted_account AFTER DELETE ON accounts
BEGIN
    UPDATE roster_versions SET version = version + 1
        WHERE (username, domain) IN (SELECT username, domain FROM roster_items
                                     WHERE contact = OLD.username || '@' || OLD.domain);
    DELETE FROM roster_items WHERE contact = OLD.username || '@' || OLD.domain;
END;
