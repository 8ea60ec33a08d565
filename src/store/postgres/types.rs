//! `store::Value` ⇄ PostgreSQL's binary formats, by the type the server inferred for a parameter
//! or declared for a column, so domain code written for SQLite's dynamic typing binds and reads
//! the same values here: integers into int2/int4/int8 columns alike, timestamps as SQLite's text.

use std::error::Error;

use postgres::types::private::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type};

use crate::store::Value;

type BoxError = Box<dyn Error + Sync + Send>;

/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00:00).
const PG_EPOCH_OFFSET: i64 = 946_684_800;

/// A `Value` bound to a parameter of whatever type the server inferred for it.
#[derive(Debug)]
pub struct Param<'a>(pub &'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        encode(self.0, ty, out)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.to_sql(ty, out)
    }
}

fn refuse(value: &Value, ty: &Type) -> BoxError {
    format!("cannot bind {value:?} to a parameter of type {ty}").into()
}

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON
    )
}

fn encode(value: &Value, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    match value {
        Value::Null => Ok(IsNull::Yes),
        Value::Int(v) => encode_int(*v, value, ty, out),
        Value::Real(v) => encode_real(*v, value, ty, out),
        Value::Text(s) => encode_text(s, value, ty, out),
        Value::Blob(b) => match *ty {
            Type::BYTEA => {
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
            _ if is_text(ty) || *ty == Type::JSONB => match std::str::from_utf8(b) {
                Ok(s) => encode_text(s, value, ty, out),
                Err(_) => Err(refuse(value, ty)),
            },
            _ => Err(refuse(value, ty)),
        },
    }
}

fn encode_int(v: i64, value: &Value, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    match *ty {
        Type::INT8 => out.extend_from_slice(&v.to_be_bytes()),
        Type::INT4 => out.extend_from_slice(
            &i32::try_from(v)
                .map_err(|_| format!("integer {v} out of range for type integer"))?
                .to_be_bytes(),
        ),
        Type::INT2 => out.extend_from_slice(
            &i16::try_from(v)
                .map_err(|_| format!("integer {v} out of range for type smallint"))?
                .to_be_bytes(),
        ),
        Type::FLOAT8 => out.extend_from_slice(&(v as f64).to_be_bytes()),
        Type::FLOAT4 => out.extend_from_slice(&(v as f32).to_be_bytes()),
        Type::BOOL => out.extend_from_slice(&[u8::from(v != 0)]),
        Type::NUMERIC => encode_numeric(&v.to_string(), out)?,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => encode_timestamp(v as f64, out)?,
        Type::JSONB => {
            out.extend_from_slice(&[1]);
            out.extend_from_slice(v.to_string().as_bytes());
        }
        _ if is_text(ty) => out.extend_from_slice(v.to_string().as_bytes()),
        _ => return Err(refuse(value, ty)),
    }
    Ok(IsNull::No)
}

fn encode_real(v: f64, value: &Value, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    match *ty {
        Type::FLOAT8 => out.extend_from_slice(&v.to_be_bytes()),
        Type::FLOAT4 => out.extend_from_slice(&(v as f32).to_be_bytes()),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => encode_timestamp(v, out)?,
        Type::INT8 | Type::INT4 | Type::INT2 if v.fract() == 0.0 && v.abs() < 9.0e18 => {
            return encode_int(v as i64, value, ty, out)
        }
        Type::NUMERIC if v.is_finite() => encode_numeric(&format!("{v}"), out)?,
        _ if is_text(ty) => out.extend_from_slice(format!("{v:?}").as_bytes()),
        _ => return Err(refuse(value, ty)),
    }
    Ok(IsNull::No)
}

/// What psycopg2 says, refusing before anything is sent, of a text holding NUL (PostgreSQL's
/// text cannot hold one); stock's callers see a `ValueError`.
pub const NUL_IN_TEXT: &str = "A string literal cannot contain NUL (0x00) characters.";

fn encode_text(s: &str, value: &Value, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    if *ty != Type::BYTEA && s.contains('\0') {
        return Err(NUL_IN_TEXT.into());
    }
    match *ty {
        Type::JSONB => {
            out.extend_from_slice(&[1]);
            out.extend_from_slice(s.as_bytes());
        }
        Type::BYTEA => out.extend_from_slice(s.as_bytes()),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let micros = parse_sql_datetime(s)
                .ok_or_else(|| format!("invalid input syntax for type timestamp: {s:?}"))?;
            out.extend_from_slice(&(micros - PG_EPOCH_OFFSET * 1_000_000).to_be_bytes());
        }
        Type::INT8 | Type::INT4 | Type::INT2 => {
            let v: i64 = s
                .trim()
                .parse()
                .map_err(|_| format!("invalid input syntax for type {ty}: {s:?}"))?;
            return encode_int(v, value, ty, out);
        }
        Type::FLOAT8 | Type::FLOAT4 => {
            let v: f64 = s
                .trim()
                .parse()
                .map_err(|_| format!("invalid input syntax for type {ty}: {s:?}"))?;
            return encode_real(v, value, ty, out);
        }
        Type::NUMERIC => encode_numeric(s.trim(), out)?,
        Type::BOOL => {
            let v = match s.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "1" | "yes" | "on" => true,
                "f" | "false" | "0" | "no" | "off" => false,
                _ => return Err(format!("invalid input syntax for type boolean: {s:?}").into()),
            };
            out.extend_from_slice(&[u8::from(v)]);
        }
        _ if is_text(ty) => out.extend_from_slice(s.as_bytes()),
        _ => return Err(refuse(value, ty)),
    }
    Ok(IsNull::No)
}

fn encode_timestamp(seconds: f64, out: &mut BytesMut) -> Result<(), BoxError> {
    if !seconds.is_finite() {
        return Err(format!("timestamp {seconds} is not finite").into());
    }
    // Whole seconds plus the fraction's microseconds rounded half to even, as Python's
    // `datetime.fromtimestamp` (and run_launcher's `sql_datetime`) split a float timestamp.
    let whole = seconds.trunc();
    let micros = whole as i64 * 1_000_000 + ((seconds - whole) * 1e6).round_ties_even() as i64;
    out.extend_from_slice(&(micros - PG_EPOCH_OFFSET * 1_000_000).to_be_bytes());
    Ok(())
}

/// A decimal string (`-12.5`, `1e3`) in NUMERIC's binary form: base-10000 digit groups.
fn encode_numeric(text: &str, out: &mut BytesMut) -> Result<(), BoxError> {
    let bad = || -> BoxError { format!("invalid input syntax for type numeric: {text:?}").into() };
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exp) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().map_err(|_| bad())?),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    // All decimal digits and the position of the decimal point after applying the exponent.
    let digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    let point = int_part.len() as i32 + exp;
    let dscale = (digits.len() as i32 - point).max(0) as u16;
    // Pad so the point falls on a group boundary, then group by four.
    let lead = (4 - point.rem_euclid(4)) % 4;
    let mut padded = vec![0u8; lead as usize];
    padded.extend(&digits);
    while padded.len() % 4 != 0 {
        padded.push(0);
    }
    let mut groups: Vec<i16> = padded
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(*d)))
        .collect();
    let mut weight = ((point + lead) / 4 - 1) as i16;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    let sign: u16 = if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Ok(())
}

/// A NUMERIC's binary form as a decimal string.
fn decode_numeric(raw: &[u8]) -> Option<String> {
    let word = |i: usize| raw.get(i..i + 2).map(|b| i16::from_be_bytes([b[0], b[1]]));
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i32;
    let sign = word(4)? as u16;
    let dscale = word(6)? as usize;
    if sign == 0xC000 {
        return Some("NaN".to_owned());
    }
    let groups: Vec<i16> = (0..ndigits)
        .map(|i| word(8 + 2 * i))
        .collect::<Option<_>>()?;
    let mut int_part = String::new();
    for w in 0..=weight.max(-1) {
        let g = groups.get(w as usize).copied().unwrap_or(0);
        if int_part.is_empty() {
            if g != 0 {
                int_part = g.to_string();
            }
        } else {
            int_part.push_str(&format!("{g:04}"));
        }
    }
    if int_part.is_empty() {
        int_part.push('0');
    }
    let mut frac = String::new();
    let mut w = weight + 1;
    while frac.len() < dscale {
        let g = if w < 0 {
            0
        } else {
            groups.get(w as usize).copied().unwrap_or(0)
        };
        frac.push_str(&format!("{g:04}"));
        w += 1;
    }
    frac.truncate(dscale);
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    text.push_str(&int_part);
    if !frac.is_empty() {
        text.push('.');
        text.push_str(&frac);
    }
    Some(text)
}

/// Microseconds since the Unix epoch of SQLite's text timestamp (`YYYY-MM-DD HH:MM:SS[.f]`, a
/// `T` separator, or a bare date), naive UTC.
pub fn parse_sql_datetime(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((d, t)) => (d, t),
        None => (text, "00:00:00"),
    };
    let mut ymd = date.splitn(3, '-');
    let year: i64 = ymd.next()?.parse().ok()?;
    let month: u32 = ymd.next()?.parse().ok()?;
    let day: u32 = ymd.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut parts = hms.splitn(3, ':');
    let hour: i64 = parts.next()?.parse().ok()?;
    let minute: i64 = parts.next()?.parse().ok()?;
    let second: i64 = parts.next().unwrap_or("0").parse().ok()?;
    if hour > 23 || minute > 59 || second > 60 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut micros_text: String = frac.chars().take(6).collect();
    while micros_text.len() < 6 {
        micros_text.push('0');
    }
    let micros: i64 = micros_text.parse().ok()?;
    let days = days_from_civil(year, month, day);
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000) + micros)
}

/// Microseconds since the Unix epoch as SQLAlchemy's SQLite dialect stores a naive `DateTime`:
/// `YYYY-MM-DD HH:MM:SS.ffffff` (always six digits, as `sql_datetime` writes them).
pub fn format_sql_datetime(unix_micros: i64) -> String {
    let secs = unix_micros.div_euclid(1_000_000);
    let micros = unix_micros.rem_euclid(1_000_000);
    let (year, month, day) = crate::store::civil_from_days(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{micros:06}",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// One column's raw binary value, whatever its type (decoded by `Decoded::new`).
pub struct Raw<'a>(pub &'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A column's value in the shape `store::Value` and the Row getters need.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded<'a> {
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(&'a str),
    /// A NUMERIC's decimal text.
    Numeric(String),
    Bytes(&'a [u8]),
    /// Microseconds since the Unix epoch, naive UTC.
    Timestamp(i64),
}

impl<'a> Decoded<'a> {
    pub fn new(ty: &Type, raw: &'a [u8]) -> Result<Decoded<'a>, String> {
        let fixed = |n: usize| -> Result<&'a [u8], String> {
            if raw.len() == n {
                Ok(raw)
            } else {
                Err(format!("{ty} value of {} bytes", raw.len()))
            }
        };
        let text = |bytes: &'a [u8]| {
            std::str::from_utf8(bytes).map_err(|_| format!("{ty} value is not valid UTF-8"))
        };
        Ok(match *ty {
            Type::INT2 => Decoded::Int(i16::from_be_bytes(fixed(2)?.try_into().unwrap()).into()),
            Type::INT4 => Decoded::Int(i32::from_be_bytes(fixed(4)?.try_into().unwrap()).into()),
            Type::INT8 => Decoded::Int(i64::from_be_bytes(fixed(8)?.try_into().unwrap())),
            Type::OID => Decoded::Int(u32::from_be_bytes(fixed(4)?.try_into().unwrap()).into()),
            Type::FLOAT4 => Decoded::Real(f32::from_be_bytes(fixed(4)?.try_into().unwrap()).into()),
            Type::FLOAT8 => Decoded::Real(f64::from_be_bytes(fixed(8)?.try_into().unwrap())),
            Type::BOOL => Decoded::Bool(fixed(1)?[0] != 0),
            Type::NUMERIC => Decoded::Numeric(
                decode_numeric(raw).ok_or_else(|| "malformed numeric value".to_owned())?,
            ),
            Type::BYTEA => Decoded::Bytes(raw),
            Type::TIMESTAMP | Type::TIMESTAMPTZ => {
                let pg = i64::from_be_bytes(fixed(8)?.try_into().unwrap());
                if pg == i64::MAX || pg == i64::MIN {
                    return Err("infinite timestamp".to_owned());
                }
                Decoded::Timestamp(pg + PG_EPOCH_OFFSET * 1_000_000)
            }
            Type::JSONB => match raw.split_first() {
                Some((1, body)) => Decoded::Text(text(body)?),
                _ => return Err("jsonb value of an unknown version".to_owned()),
            },
            _ => Decoded::Text(text(raw)?),
        })
    }

    pub fn into_value(self) -> Value {
        match self {
            Decoded::Int(v) => Value::Int(v),
            Decoded::Real(v) => Value::Real(v),
            Decoded::Bool(v) => Value::Int(i64::from(v)),
            Decoded::Text(s) => Value::Text(s.to_owned()),
            Decoded::Numeric(s) => match s.parse::<i64>() {
                Ok(v) => Value::Int(v),
                Err(_) => Value::Real(s.parse().unwrap_or(f64::NAN)),
            },
            Decoded::Bytes(b) => Value::Blob(b.to_vec()),
            Decoded::Timestamp(us) => Value::Text(format_sql_datetime(us)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_datetimes_round_trip() {
        for text in [
            "1970-01-01 00:00:00.000000",
            "2024-02-29 23:59:59.999999",
            "1999-12-31 12:00:00.500000",
            "2000-01-01 00:00:00.000001",
            "1969-07-20 20:17:40.000000",
        ] {
            assert_eq!(format_sql_datetime(parse_sql_datetime(text).unwrap()), text);
        }
        assert_eq!(
            parse_sql_datetime("2024-01-02 03:04:05"),
            parse_sql_datetime("2024-01-02T03:04:05.000000")
        );
        assert_eq!(
            parse_sql_datetime("2024-01-02"),
            parse_sql_datetime("2024-01-02 00:00:00")
        );
        assert_eq!(parse_sql_datetime("1970-01-01 00:00:01.5"), Some(1_500_000));
        assert_eq!(parse_sql_datetime("not a date"), None);
        assert_eq!(parse_sql_datetime("2024-13-01 00:00:00"), None);
    }

    #[test]
    fn numerics_round_trip_through_the_binary_form() {
        for (input, shown) in [
            ("0", "0"),
            ("1", "1"),
            ("-1", "-1"),
            ("10000", "10000"),
            ("123456789012345678", "123456789012345678"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("12.5", "12.5"),
            ("0.0001", "0.0001"),
            ("0.00012", "0.00012"),
            ("1e3", "1000"),
            ("1.25e-2", "0.0125"),
        ] {
            let mut out = BytesMut::new();
            encode_numeric(input, &mut out).unwrap();
            assert_eq!(decode_numeric(&out).as_deref(), Some(shown), "{input}");
        }
        assert!(encode_numeric("12a", &mut BytesMut::new()).is_err());
    }
}
