-- cpq-sim's own database (never the platform's): every request an external system received, by
-- its idempotency key, and the callbacks the asynchronous systems owe.

-- One row per (system, Idempotency-Key). The first request inserts it in progress; an execution
-- stores its final answer (status completed), which every repeat of the key gets back. A transient
-- failure stores no answer (status open again), so a retry with the key may execute.
CREATE TABLE sim_request (
    system              text        NOT NULL,
    idempotency_key     text        NOT NULL,
    request_id          uuid        NOT NULL UNIQUE,
    operation           text        NOT NULL,
    -- SHA-256 of the request body's canonical JSON: the same key with another body is refused.
    body_hash           bytea       NOT NULL,
    payload             jsonb       NOT NULL,
    callback_url        text,
    status              text        NOT NULL CHECK (status IN ('open', 'in_progress', 'completed')),
    response_status     smallint,
    response_body       jsonb,
    -- Real executions of this key: more than 1 is a duplicate external execution.
    executions          integer     NOT NULL DEFAULT 0,
    -- Requests answered from this row: the first, retries after transient failures, replays.
    attempts            integer     NOT NULL DEFAULT 1,
    transient_failures  integer     NOT NULL DEFAULT 0,
    timeouts            integer     NOT NULL DEFAULT 0,
    permanent_failures  integer     NOT NULL DEFAULT 0,
    claimed_at          timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    PRIMARY KEY (system, idempotency_key),
    CHECK ((status = 'completed') = (response_status IS NOT NULL AND response_body IS NOT NULL))
);

-- "Duplicate external executions = 0" is this index being empty.
CREATE INDEX sim_request_duplicate ON sim_request (system, created_at) WHERE executions > 1;
CREATE INDEX sim_request_created ON sim_request (created_at, system, idempotency_key);

-- A callback an asynchronous system owes: delivered by the background loop from due_at, retried
-- with back-off until the receiver answers 2xx; dropped ones are never sent.
CREATE TABLE sim_callback (
    callback_id     uuid        PRIMARY KEY,
    request_id      uuid        NOT NULL REFERENCES sim_request (request_id) ON DELETE CASCADE,
    system          text        NOT NULL,
    callback_url    text        NOT NULL,
    -- The exact bytes signed and sent: every redelivery is identical.
    body            text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'delivered', 'dropped')),
    attempts        integer     NOT NULL DEFAULT 0,
    due_at          timestamptz NOT NULL,
    last_status     smallint,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);

CREATE INDEX sim_callback_due ON sim_callback (due_at) WHERE status = 'pending';
CREATE INDEX sim_callback_request ON sim_callback (request_id);
