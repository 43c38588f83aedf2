-- Webhooks for the ATS. An endpoint is a URL with its signing secret (`whsec_...`) and the
-- event types it takes (space-separated; empty: every type). Endpoints from the config file
-- are marked so the pages show where they are changed.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    from_config BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The durable queue and the delivery log in one: one row per message per endpoint. A message
-- id (`webhook-id`) is shared by its endpoints' rows and kept across retries. A node sending
-- an attempt holds the row's lease (`locked_until`) so no other node sends it at the same time;
-- a node that dies mid-attempt lets the lease run out and another one retries.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id),
    message_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT,
    locked_until BIGINT,
    last_status BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at);
