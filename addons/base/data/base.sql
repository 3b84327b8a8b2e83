-- The core tables of the base addon (run at install and again at upgrade: re-runnable).

CREATE TABLE IF NOT EXISTS ir_module_module (
    id serial PRIMARY KEY,
    name varchar NOT NULL UNIQUE,
    state varchar NOT NULL DEFAULT 'uninstalled',
    latest_version varchar,
    create_date timestamp DEFAULT (now() AT TIME ZONE 'UTC'),
    write_date timestamp DEFAULT (now() AT TIME ZONE 'UTC')
);

CREATE TABLE IF NOT EXISTS ir_config_parameter (
    id serial PRIMARY KEY,
    key varchar NOT NULL UNIQUE,
    value text NOT NULL
);

-- Generated once, at install (Odoo's `ir.config_parameter` init).
INSERT INTO ir_config_parameter (key, value) VALUES ('database.secret', gen_random_uuid()::text)
    ON CONFLICT (key) DO NOTHING;
INSERT INTO ir_config_parameter (key, value) VALUES ('database.uuid', gen_random_uuid()::text)
    ON CONFLICT (key) DO NOTHING;
INSERT INTO ir_config_parameter (key, value)
    VALUES ('database.create_date', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))
    ON CONFLICT (key) DO NOTHING;

CREATE TABLE IF NOT EXISTS res_users (
    id serial PRIMARY KEY,
    login varchar NOT NULL UNIQUE,
    -- A passlib-style hash; NULL means no password login.
    password varchar,
    active boolean NOT NULL DEFAULT true,
    create_date timestamp DEFAULT (now() AT TIME ZONE 'UTC')
);

INSERT INTO res_users (id, login, active) VALUES (1, '__system__', false) ON CONFLICT DO NOTHING;
INSERT INTO res_users (id, login, active) VALUES (2, 'admin', true) ON CONFLICT DO NOTHING;
SELECT setval('res_users_id_seq', GREATEST((SELECT max(id) FROM res_users), 2));

CREATE TABLE IF NOT EXISTS ir_cron (
    id serial PRIMARY KEY,
    cron_name varchar NOT NULL,
    -- The cron handler (declared by an addon with #[cron("name")]).
    handler varchar NOT NULL,
    -- The addon that created the job (from its manifest's [[cron]]), if any.
    module varchar,
    user_id integer NOT NULL DEFAULT 1 REFERENCES res_users (id),
    active boolean NOT NULL DEFAULT true,
    interval_number integer NOT NULL DEFAULT 1 CHECK (interval_number > 0),
    interval_type varchar NOT NULL DEFAULT 'months'
        CHECK (interval_type IN ('minutes', 'hours', 'days', 'weeks', 'months')),
    nextcall timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    lastcall timestamp,
    priority integer NOT NULL DEFAULT 5,
    failure_count integer NOT NULL DEFAULT 0,
    first_failure_date timestamp,
    -- The last run: start, end and outcome ('done' or 'failed: ...').
    last_start timestamp,
    last_end timestamp,
    last_outcome text
);
CREATE INDEX IF NOT EXISTS ir_cron_nextcall_index ON ir_cron (nextcall) WHERE active;

CREATE TABLE IF NOT EXISTS ir_cron_trigger (
    id serial PRIMARY KEY,
    cron_id integer NOT NULL REFERENCES ir_cron (id) ON DELETE CASCADE,
    call_at timestamp NOT NULL
);
CREATE INDEX IF NOT EXISTS ir_cron_trigger_cron_id_index ON ir_cron_trigger (cron_id);
CREATE INDEX IF NOT EXISTS ir_cron_trigger_call_at_index ON ir_cron_trigger (call_at);
