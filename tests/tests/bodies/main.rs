//! Request bodies (issue 15) through the real binary, `test_http` and loopback sockets:
//! bounded memory (bodies past `http_body_spool` received into an unnamed file under
//! `<data_dir>/tmp/` and handed to the handler mapped, intact; the file gone after, and when
//! the client leaves mid-upload; leftovers removed at start), the process-wide budgets
//! `limit_memory_bodies` and `limit_disk_bodies` (503 with `Retry-After`, then recovery; a
//! body that cannot fit refused before it is sent, from its `Content-Length` or as its
//! chunks arrive; larger than a budget, 413), `http_body_timeout` and `http_body_min_rate`
//! (a stalled body answered 408 and its connection closed; a slow but steady one served;
//! bodies dripping a byte at a time neither hold the budget from a small POST nor outlive
//! the minimum rate), form fields bounded as Odoo's `max_form_memory_size` (names
//! included, files not) and werkzeug's `max_form_parts`, 24 concurrent 127 MiB chunked
//! bodies with the default limits (most refused while sending, the host up, under 512 MiB,
//! `/web/health` answering throughout), and requests given up at `limit_time_real` while
//! queued for the blocking pool never running their handler, their bodies freed with the
//! 504.
//!
//! One test binary, a module per area: `spool` (spooled bodies, mapped), `forms` (form
//! limits), `slow` (stalled and dripping bodies), `budgets` (the memory and disk budgets),
//! `pool` (requests given up while queued), `load` (concurrent large uploads).
//! Build first: `cargo build --workspace`, then `cargo test -p inphms-tests --test bodies`
//! (or `cargo xtask test --test bodies`).

mod budgets;
mod forms;
mod load;
mod pool;
mod slow;
mod spool;
mod support;
