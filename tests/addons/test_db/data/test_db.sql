-- Tables of the test_db addon.
CREATE TABLE IF NOT EXISTS test_db_note (
    id serial PRIMARY KEY,
    name text NOT NULL,
    created timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);

-- One row per cron run of test_db.write_row: which job, which host process, when.
CREATE TABLE IF NOT EXISTS test_db_cron_log (
    id serial PRIMARY KEY,
    job_id integer NOT NULL,
    job_name text NOT NULL,
    pid integer NOT NULL,
    started timestamp NOT NULL DEFAULT (clock_timestamp() AT TIME ZONE 'UTC')
);

-- A counter updated concurrently (serialization failures).
CREATE TABLE IF NOT EXISTS test_db_counter (id integer PRIMARY KEY, v integer NOT NULL);
INSERT INTO test_db_counter VALUES (1, 0) ON CONFLICT DO NOTHING;
