-- Odoo's bus.bus: one row per notification; channel and message are compact JSON.
CREATE TABLE IF NOT EXISTS bus_bus (
    id serial PRIMARY KEY,
    channel varchar NOT NULL,
    message varchar NOT NULL,
    create_uid integer,
    create_date timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    write_uid integer,
    write_date timestamp without time zone
);
CREATE INDEX IF NOT EXISTS bus_bus_create_date_index ON bus_bus (create_date);
CREATE INDEX IF NOT EXISTS bus_bus_channel_index ON bus_bus (channel);

-- Odoo's bus.presence (no create/write columns).
CREATE TABLE IF NOT EXISTS bus_presence (
    id serial PRIMARY KEY,
    user_id integer REFERENCES res_users (id) ON DELETE CASCADE,
    last_poll timestamp without time zone,
    last_presence timestamp without time zone,
    status varchar NOT NULL DEFAULT 'offline'
);
CREATE UNIQUE INDEX IF NOT EXISTS bus_presence_user_unique ON bus_presence (user_id)
    WHERE user_id IS NOT NULL;
