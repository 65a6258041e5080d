-- Why each run ended (the cause of the gap after it), and each segment's SHA-256.
ALTER TABLE runs ADD COLUMN end_reason TEXT;
ALTER TABLE segments ADD COLUMN sha256 TEXT;
