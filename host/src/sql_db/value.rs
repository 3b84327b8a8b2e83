//! Conversions between the ABI's [`SqlValue`] and PostgreSQL's wire formats.
//!
//! Parameters are sent in PostgreSQL's *text* format (bytes in binary), so that the server
//! parses them with the type it inferred for each `$n` (`'12.50'` as numeric, `'7'` as
//! `integer` or `bigint`...), as psycopg2 does by quoting. Results arrive in binary format and
//! are decoded by type: booleans, integers, floats, numerics (exact decimal text), text,
//! bytes, JSON, timestamps, dates; any other type arrives as its text when it is UTF-8, else
//! as bytes.

use bytes::BytesMut;
use inphms_sdk::abi::SqlValue;
use std::error::Error;
use tokio_postgres::types::{Format, FromSql, IsNull, ToSql, Type};

type BoxError = Box<dyn Error + Sync + Send>;

/// Microseconds from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

/// A parameter.
#[derive(Debug)]
pub struct Param<'a>(pub &'a SqlValue);

fn timestamp_text(us: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(us) {
        Some(t) => t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        None if us > 0 => "infinity".into(),
        None => "-infinity".into(),
    }
}

fn date_text(days: i32) -> String {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    match epoch.checked_add_signed(chrono::Duration::days(days as i64)) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None if days > 0 => "infinity".into(),
        None => "-infinity".into(),
    }
}

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let text: String = match self.0 {
            SqlValue::Null => return Ok(IsNull::Yes),
            SqlValue::Bytes(b) if *ty == Type::BYTEA => {
                out.extend_from_slice(b);
                return Ok(IsNull::No);
            }
            SqlValue::Bytes(b) => {
                let mut s = String::with_capacity(2 + b.len() * 2);
                s.push_str("\\x");
                for byte in b.iter() {
                    s.push_str(&format!("{byte:02x}"));
                }
                s
            }
            SqlValue::Bool(b) => if *b { "t" } else { "f" }.into(),
            SqlValue::Int(i) => i.to_string(),
            SqlValue::Float(f) if f.is_nan() => "NaN".into(),
            SqlValue::Float(f) if f.is_infinite() => {
                if *f > 0.0 { "Infinity" } else { "-Infinity" }.into()
            }
            SqlValue::Float(f) => format!("{f:?}"),
            SqlValue::Numeric(s) | SqlValue::Text(s) | SqlValue::Json(s) => s.to_string(),
            SqlValue::Timestamp(us) if *ty == Type::TIMESTAMPTZ => {
                format!("{}+00", timestamp_text(*us))
            }
            SqlValue::Timestamp(us) => timestamp_text(*us),
            SqlValue::Date(d) => date_text(*d),
        };
        out.extend_from_slice(text.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, ty: &Type) -> Format {
        match self.0 {
            SqlValue::Bytes(_) if *ty == Type::BYTEA => Format::Binary,
            _ => Format::Text,
        }
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A result cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw(pub SqlValue);

fn be<const N: usize>(raw: &[u8]) -> Result<[u8; N], BoxError> {
    raw.get(..N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| "value too short".into())
}

impl<'a> FromSql<'a> for Raw {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Raw, BoxError> {
        let text = || -> Result<String, BoxError> { Ok(std::str::from_utf8(raw)?.to_owned()) };
        let v = match *ty {
            Type::BOOL => SqlValue::Bool(raw.first().is_some_and(|b| *b != 0)),
            Type::INT2 => SqlValue::Int(i16::from_be_bytes(be(raw)?) as i64),
            Type::INT4 => SqlValue::Int(i32::from_be_bytes(be(raw)?) as i64),
            Type::INT8 => SqlValue::Int(i64::from_be_bytes(be(raw)?)),
            Type::OID => SqlValue::Int(u32::from_be_bytes(be(raw)?) as i64),
            Type::FLOAT4 => SqlValue::Float(f32::from_be_bytes(be(raw)?) as f64),
            Type::FLOAT8 => SqlValue::Float(f64::from_be_bytes(be(raw)?)),
            Type::NUMERIC => SqlValue::Numeric(decode_numeric(raw)?.into()),
            Type::BYTEA => SqlValue::Bytes(raw.to_vec().into()),
            Type::JSON => SqlValue::Json(text()?.into()),
            Type::JSONB => match raw.split_first() {
                Some((1, rest)) => SqlValue::Json(std::str::from_utf8(rest)?.into()),
                _ => return Err("unknown jsonb version".into()),
            },
            Type::TIMESTAMP | Type::TIMESTAMPTZ => {
                let us = i64::from_be_bytes(be(raw)?);
                SqlValue::Timestamp(match us {
                    i64::MAX | i64::MIN => us,
                    _ => us.saturating_add(PG_EPOCH_US),
                })
            }
            Type::DATE => {
                let d = i32::from_be_bytes(be(raw)?);
                SqlValue::Date(match d {
                    i32::MAX | i32::MIN => d,
                    _ => d.saturating_add(PG_EPOCH_DAYS),
                })
            }
            Type::UUID if raw.len() == 16 => {
                let h: String = raw.iter().map(|b| format!("{b:02x}")).collect();
                SqlValue::Text(
                    format!(
                        "{}-{}-{}-{}-{}",
                        &h[..8],
                        &h[8..12],
                        &h[12..16],
                        &h[16..20],
                        &h[20..]
                    )
                    .into(),
                )
            }
            Type::CHAR => {
                SqlValue::Text(String::from(raw.first().copied().unwrap_or(0) as char).into())
            }
            _ => match std::str::from_utf8(raw) {
                Ok(s) => SqlValue::Text(s.into()),
                Err(_) => SqlValue::Bytes(raw.to_vec().into()),
            },
        };
        Ok(Raw(v))
    }

    fn from_sql_null(_: &Type) -> Result<Raw, BoxError> {
        Ok(Raw(SqlValue::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// PostgreSQL's binary `numeric` as exact decimal text: `ndigits`, `weight`, `sign`,
/// `dscale`, then base-10000 digits.
pub fn decode_numeric(raw: &[u8]) -> Result<String, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        Ok(u16::from_be_bytes(be(&raw[(i * 2).min(raw.len())..])?))
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i64;
    let sign = word(2)?;
    let dscale = word(3)? as usize;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<i64> = (0..ndigits)
        .map(|i| word(4 + i).map(|d| d as i64))
        .collect::<Result<_, _>>()?;
    let digit = |i: i64| -> i64 {
        if i >= 0 && (i as usize) < digits.len() {
            digits[i as usize]
        } else {
            0
        }
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                out.push_str(&digit(i).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut k = 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(weight + k)));
            k += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    if out == "-0" || (out.starts_with("-0.") && out[3..].bytes().all(|b| b == b'0')) {
        out.remove(0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [ndigits, weight as u16, sign, dscale].iter().chain(digits) {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics() {
        assert_eq!(
            decode_numeric(&numeric(2, 0, 0, 2, &[12, 5000])).unwrap(),
            "12.50"
        );
        assert_eq!(
            decode_numeric(&numeric(1, -1, 0, 3, &[10])).unwrap(),
            "0.001"
        );
        assert_eq!(
            decode_numeric(&numeric(1, 1, 0x4000, 0, &[10])).unwrap(),
            "-100000"
        );
        assert_eq!(decode_numeric(&numeric(0, 0, 0, 0, &[])).unwrap(), "0");
        assert_eq!(
            decode_numeric(&numeric(0, 0, 0xC000, 0, &[])).unwrap(),
            "NaN"
        );
    }

    #[test]
    fn text_forms() {
        assert_eq!(timestamp_text(0), "1970-01-01 00:00:00.000000");
        assert_eq!(date_text(-1), "1969-12-31");
    }
}
