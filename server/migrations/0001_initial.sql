-- dm-server's PostgreSQL schema, version 1. Applied by dm-server at start
-- (server/src/state/postgres.rs) inside one transaction; never edit a
-- released migration, add the next file instead.
--
-- Values are the same JSON documents the embedded (redb) backend stores,
-- as text: the server reads and writes whole records.

-- One row per device that polled. `record` is NULL only inside the
-- transaction that creates the row (a refused first poll rolls it back).
CREATE TABLE devices (
    id     TEXT PRIMARY KEY,
    record TEXT
);

-- Status messages in arrival order (server-wide sequence). A ReportID is
-- stored once per device: a message delivered again, to any replica, hits
-- the unique index and is dropped.
CREATE TABLE status (
    seq       BIGSERIAL PRIMARY KEY,
    device_id TEXT NOT NULL,
    report_id TEXT,
    record    TEXT NOT NULL
);
CREATE INDEX status_by_device ON status (device_id, seq);
CREATE UNIQUE INDEX status_report_once ON status (device_id, report_id)
    WHERE report_id IS NOT NULL;

-- The latest inventory of each kind (`software`, `machine`) per device.
CREATE TABLE inventories (
    device_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    record    TEXT NOT NULL,
    PRIMARY KEY (device_id, kind)
);

-- Collected files by the path the device sent; the bytes are under the
-- shared state directory at the record's stored_path.
CREATE TABLE files (
    device_id     TEXT NOT NULL,
    original_path TEXT NOT NULL,
    record        TEXT NOT NULL,
    PRIMARY KEY (device_id, original_path)
);
