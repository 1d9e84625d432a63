-- RFC 5626 §5.3 / RFC 3581: whether NAT was detected when the binding was registered (the
-- proxy then reaches the device over its flow, otherwise at its Contact). Rows from before
-- this column default to 1: they were reached over their flow, and stay so until refreshed.
ALTER TABLE location ADD COLUMN nat INTEGER NOT NULL DEFAULT 1;
