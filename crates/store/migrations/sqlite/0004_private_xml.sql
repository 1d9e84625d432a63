-- XEP-0049 private XML storage: one XML fragment per account and namespace (for example the
-- user's own "on the phone" opt-in, urn:cusax:phone-activity:0). Goes with the account.

CREATE TABLE private_xml (
    username    TEXT NOT NULL,
    domain      TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    xml         TEXT NOT NULL,
    PRIMARY KEY (username, domain, namespace),
    FOREIGN KEY (username, domain) REFERENCES accounts(username, domain) ON DELETE CASCADE
);
