-- Failed logins, for lock-outs that hold across instances. One row per
-- (account, address) pair, and one per account with address '' for the
-- account-wide slow-down. `account` is a SHA-256 of the e-mail as typed, so
-- unknown e-mails are counted exactly like real ones.
CREATE TABLE login_failures (
    account      TEXT NOT NULL,
    address      TEXT NOT NULL,
    failures     INTEGER NOT NULL,
    window_start TEXT NOT NULL,
    locked_until TEXT,
    last_attempt TEXT NOT NULL,
    PRIMARY KEY (account, address)
) STRICT;
