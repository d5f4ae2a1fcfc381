-- labelfix store, version 5: reviewer accounts and sign-in sessions for team mode (`labelfix review` on a
-- non-loopback address, or with --team). Managed with `labelfix reviewers add/remove/list`; the review
-- app's sign-in form checks them. Passwords are never stored: `password_hash` is a self-describing
-- scrypt record "scrypt$<n>$<r>$<p>$<salt, base64>$<hash, base64>" (per-reviewer random salt; the cost
-- parameters are kept with each hash so they can be raised later without breaking old ones).

-- owner: labelfix/store/reviewers.py
CREATE TABLE reviewers (
    name          VARCHAR PRIMARY KEY,     -- recorded as `reviewer` on every review event they make
    role          VARCHAR NOT NULL CHECK (role IN ('annotator', 'lead')),
    password_hash VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
    disabled      BOOLEAN NOT NULL DEFAULT false
);

-- A signed-in browser session. The token lives only in the server's memory for that browser session;
-- the store keeps its sha256, so reading the store does not give a usable session.
-- owner: labelfix/store/reviewers.py
CREATE TABLE review_sessions (
    token_sha256  VARCHAR PRIMARY KEY,
    name          VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    last_seen_at  TIMESTAMP NOT NULL,
    ended_at      TIMESTAMP                -- sign-out, account removed or disabled, or expiry noticed
);
