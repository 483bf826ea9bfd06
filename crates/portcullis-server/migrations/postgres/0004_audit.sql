-- Security events (who did what, when), never a secret.
CREATE TABLE audit_events (
    id         bigserial PRIMARY KEY,
    type       text NOT NULL,
    user_id    text,
    session_id text,
    ip         text,
    user_agent text,
    at         timestamptz NOT NULL,
    detail     text NOT NULL
);
CREATE INDEX audit_events_by_user ON audit_events(user_id, id);
CREATE INDEX audit_events_by_time ON audit_events(at);
