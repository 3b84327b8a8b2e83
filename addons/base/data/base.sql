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
    -- A passlib pbkdf2_sha512 hash (a legacy plaintext value is re-hashed at the next
    -- login); NULL or empty means no password login.
    password varchar,
    active boolean NOT NULL DEFAULT true,
    create_date timestamp DEFAULT (now() AT TIME ZONE 'UTC')
);
-- Added by issue 19 (databases made before it get them at upgrade).
ALTER TABLE res_users ADD COLUMN IF NOT EXISTS name varchar;
ALTER TABLE res_users ADD COLUMN IF NOT EXISTS write_date timestamp DEFAULT (now() AT TIME ZONE 'UTC');

-- Odoo's special users: `__system__` (id 1, inactive, no password), `admin` (password
-- `admin`, as Odoo without demo data: change it with `inphms-host users -d DB passwd admin`;
-- the server warns at start while it is unchanged) and `public` (the user of anonymous
-- requests on `auth = "public"` routes, inactive: it cannot log in).
-- The hash of `admin` was made once with passlib 1.7.4 (600,000 rounds):
-- python3 -c "from passlib.hash import pbkdf2_sha512 as h; print(h.using(rounds=600000).hash('admin'))"
INSERT INTO res_users (id, login, name, active) VALUES (1, '__system__', 'System', false)
    ON CONFLICT DO NOTHING;
INSERT INTO res_users (id, login, name, active, password) VALUES (2, 'admin', 'Administrator', true,
    '$pbkdf2-sha512$600000$d845Z6zVWksJQWjNmbOWEg$X53e7AJYDqP6qom5Qu.iyR2ctgsHibZy020zz9ueDIqoQ2CrrilIoaKdZUWd.p1wBmvMkKrm6OBAWOOqTq9nRQ')
    ON CONFLICT DO NOTHING;
SELECT setval('res_users_id_seq', GREATEST((SELECT max(id) FROM res_users), 2));
INSERT INTO res_users (login, name, active) VALUES ('public', 'Public user', false)
    ON CONFLICT (login) DO NOTHING;

-- Odoo's `res.users.apikeys`: an index (the key's first 8 characters) and a pbkdf2 hash.
CREATE TABLE IF NOT EXISTS res_users_apikeys (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    user_id integer NOT NULL REFERENCES res_users (id) ON DELETE CASCADE,
    scope varchar,
    expiration_date timestamp without time zone,
    index varchar(8) NOT NULL CHECK (char_length(index) = 8),
    key varchar NOT NULL,
    create_date timestamp without time zone DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE INDEX IF NOT EXISTS res_users_apikeys_user_id_index_idx ON res_users_apikeys (user_id, index);

-- Odoo's `ir.model.data`: the external ids (`module.name`) of records made by data files.
CREATE TABLE IF NOT EXISTS ir_model_data (
    id serial PRIMARY KEY,
    module varchar NOT NULL,
    name varchar NOT NULL,
    model varchar NOT NULL,
    res_id integer,
    noupdate boolean DEFAULT false,
    create_date timestamp DEFAULT (now() AT TIME ZONE 'UTC'),
    write_date timestamp DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE UNIQUE INDEX IF NOT EXISTS ir_model_data_module_name_uniq_index ON ir_model_data (module, name);
CREATE INDEX IF NOT EXISTS ir_model_data_model_res_id_index ON ir_model_data (model, res_id);

INSERT INTO ir_model_data (module, name, model, res_id, noupdate) VALUES
    ('base', 'user_root', 'res.users', 1, true),
    ('base', 'user_admin', 'res.users', 2, true),
    ('base', 'public_user', 'res.users', (SELECT id FROM res_users WHERE login = 'public'), true)
    ON CONFLICT (module, name) DO NOTHING;

-- Odoo's `res.groups` (a minimal one: a name, translated as Odoo stores it), its members
-- (`res_groups_users_rel`) and its implied groups (`res_groups_implied_rel`, a member of
-- `gid` is a member of `hid` too: kept closed when users are added, as Odoo does).
CREATE TABLE IF NOT EXISTS res_groups (
    id serial PRIMARY KEY,
    name jsonb NOT NULL,
    share boolean NOT NULL DEFAULT false,
    create_date timestamp DEFAULT (now() AT TIME ZONE 'UTC'),
    write_date timestamp DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE TABLE IF NOT EXISTS res_groups_users_rel (
    gid integer NOT NULL REFERENCES res_groups (id) ON DELETE CASCADE,
    uid integer NOT NULL REFERENCES res_users (id) ON DELETE CASCADE,
    PRIMARY KEY (gid, uid)
);
CREATE INDEX IF NOT EXISTS res_groups_users_rel_uid_gid_idx ON res_groups_users_rel (uid, gid);
CREATE TABLE IF NOT EXISTS res_groups_implied_rel (
    gid integer NOT NULL REFERENCES res_groups (id) ON DELETE CASCADE,
    hid integer NOT NULL REFERENCES res_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (gid, hid)
);

-- Odoo's groups that session_info reads (`base.group_user`, `base.group_erp_manager`,
-- `base.group_system`), each made once with its external id.
WITH wanted (xmlid, label) AS (VALUES
        ('group_user', 'Internal User'),
        ('group_erp_manager', 'Access Rights'),
        ('group_system', 'Settings')),
    missing AS (
        SELECT w.xmlid, w.label FROM wanted w
        WHERE NOT EXISTS (SELECT 1 FROM ir_model_data d WHERE d.module = 'base' AND d.name = w.xmlid)),
    created AS (
        INSERT INTO res_groups (name) SELECT jsonb_build_object('en_US', label) FROM missing
        RETURNING id, name ->> 'en_US' AS label)
INSERT INTO ir_model_data (module, name, model, res_id)
    SELECT 'base', m.xmlid, 'res.groups', c.id FROM created c JOIN missing m ON m.label = c.label;

-- group_system implies group_erp_manager, which implies group_user (Odoo's base_groups.xml).
INSERT INTO res_groups_implied_rel (gid, hid)
    SELECT g.res_id, h.res_id FROM (VALUES ('group_system', 'group_erp_manager'), ('group_erp_manager', 'group_user')) AS v (g, h)
    JOIN ir_model_data g ON g.module = 'base' AND g.name = v.g
    JOIN ir_model_data h ON h.module = 'base' AND h.name = v.h
    ON CONFLICT DO NOTHING;

-- `__system__` and `admin` are in every one of them (Odoo's user_root and user_admin),
-- at install and again at every upgrade (Odoo's data re-applies their groups).
INSERT INTO res_groups_users_rel (gid, uid)
    SELECT d.res_id, u.id FROM ir_model_data d, res_users u
    WHERE d.module = 'base' AND d.name IN ('group_user', 'group_erp_manager', 'group_system')
      AND u.id IN (1, 2)
    ON CONFLICT DO NOTHING;

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
