-- Tracing (docs/operations.md, "Tracing"): the W3C traceparent of the request that accepted a batch, when
-- tracing was on, so that the dispatcher's span of each of its messages continues the request's trace.
-- Nullable, no default: adding it rewrites nothing.
ALTER TABLE message_batch ADD COLUMN traceparent text CHECK (length(traceparent) <= 200);
