//! When a cron job is called next: its interval added to a time, and missed runs skipped.

use chrono::{Months, NaiveDateTime, TimeDelta};

/// `t` plus `n` intervals of `kind` (minutes, hours, days, weeks, months).
pub fn add_interval(t: NaiveDateTime, n: i64, kind: &str) -> Option<NaiveDateTime> {
    match kind {
        "minutes" => t.checked_add_signed(TimeDelta::try_minutes(n)?),
        "hours" => t.checked_add_signed(TimeDelta::try_hours(n)?),
        "days" => t.checked_add_signed(TimeDelta::try_days(n)?),
        "weeks" => t.checked_add_signed(TimeDelta::try_weeks(n)?),
        "months" => t.checked_add_months(Months::new(u32::try_from(n).ok()?)),
        _ => None,
    }
}

/// The next call after `now`: `nextcall` moved on by whole intervals (missed runs skipped).
pub fn next_call(nextcall: NaiveDateTime, n: i64, kind: &str, now: NaiveDateTime) -> NaiveDateTime {
    let n = n.max(1);
    let mut next = nextcall;
    let mut steps = 0u32;
    while next <= now {
        match add_interval(next, n, kind) {
            Some(t) => next = t,
            None => return now + TimeDelta::days(1),
        }
        steps += 1;
        if steps > 1_000_000 {
            return now + TimeDelta::days(1);
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn next_call_skips_missed_runs() {
        let now = t("2024-03-10 12:00:00");
        assert_eq!(
            next_call(t("2024-03-10 11:59:00"), 5, "minutes", now),
            t("2024-03-10 12:04:00")
        );
        assert_eq!(
            next_call(t("2024-01-01 00:00:00"), 1, "days", now),
            t("2024-03-11 00:00:00")
        );
        assert_eq!(
            next_call(t("2024-01-31 08:00:00"), 1, "months", now),
            t("2024-03-29 08:00:00")
        );
        assert_eq!(
            next_call(t("2024-03-01 00:00:00"), 2, "weeks", now),
            t("2024-03-15 00:00:00")
        );
        assert_eq!(
            next_call(t("2024-03-11 00:00:00"), 1, "hours", now),
            t("2024-03-11 00:00:00")
        );
    }
}
