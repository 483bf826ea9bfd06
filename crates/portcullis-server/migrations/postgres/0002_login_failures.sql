-- Failed logins, for lock-outs that hold across instances (see the SQLite
-- migration of the same name).
CREATE TABLE login_failures (
    account      text NOT NULL,
    address      text NOT NULL,
    failures     bigint NOT NULL,
    window_start timestamptz NOT NULL,
    locked_until timestamptz,
    last_attempt timestamptz NOT NULL,
    PRIMARY KEY (account, address)
);
