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

-- The steps of the runs of test_db.checkpoint_steps (runs must never overlap), the gate that
-- holds its first run, and the run numbers.
CREATE SEQUENCE IF NOT EXISTS test_db_run_seq;
CREATE TABLE IF NOT EXISTS test_db_run_step (
    id serial PRIMARY KEY,
    job_id integer NOT NULL,
    run integer NOT NULL,
    step integer NOT NULL,
    at timestamp NOT NULL DEFAULT (clock_timestamp() AT TIME ZONE 'UTC')
);
CREATE TABLE IF NOT EXISTS test_db_gate (job_id integer PRIMARY KEY);

-- A deferred foreign key: a row pointing to no note fails at COMMIT, not at INSERT.
CREATE TABLE IF NOT EXISTS test_db_deferred (
    id serial PRIMARY KEY,
    note_id integer NOT NULL REFERENCES test_db_note (id) DEFERRABLE INITIALLY DEFERRED
);
