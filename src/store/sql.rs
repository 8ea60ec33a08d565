//! A statement under construction: SQL text plus its bound values, in the backend's dialect.

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};

/// A value bound to a statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(*v),
            Value::Real(v) => ValueRef::Real(*v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

/// `[Value; N]` from expressions of any type a `Value` converts from: one row of an INSERT.
#[macro_export]
macro_rules! row {
    ($($value:expr),* $(,)?) => {
        [$($crate::store::Value::from($value)),*]
    };
}

/// SQL text and parameters built together, so a placeholder is never out of step with its value.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Value>,
    /// Planned from the file's own indexes (`store::layout`): its pins need no fitting, unless
    /// SQLite refuses one (a layout changed since).
    pub planned: bool,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            params: Vec::new(),
            planned: false,
        }
    }

    /// Mark the statement as planned from the file's own indexes (see `planned`).
    pub fn planned(mut self) -> Self {
        self.planned = true;
        self
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Append a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.text.push('?');
        self.params.push(value.into());
        self
    }

    /// Append `(?, ?, ...)` bound to `values`: an IN list, or one row of an INSERT.
    pub fn values(&mut self, values: impl IntoIterator<Item = Value>) -> &mut Self {
        self.text.push('(');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(v);
        }
        self.text.push(')');
        self
    }

    /// Append `(?, ?, ...)` for a list; the caller handles the empty list (no valid SQL for it).
    pub fn bind_list<T: Into<Value> + Clone>(&mut self, values: &[T]) -> &mut Self {
        self.values(values.iter().cloned().map(Into::into))
    }

    /// A condition comparing an expression with one bound value: `compare("id < ", 3)`.
    pub fn compare(expr_and_op: &str, value: impl Into<Value>) -> Sql {
        let mut sql = Sql::new(expr_and_op);
        sql.bind(value);
        sql
    }

    /// The condition `column IN (...)`; as SQLAlchemy renders it, an empty list matches nothing.
    pub fn is_in(column: &str, values: &[String]) -> Sql {
        if values.is_empty() {
            return Sql::new("1 != 1");
        }
        let mut sql = Sql::new(&format!("{column} IN "));
        sql.bind_list(values);
        sql
    }

    /// Append ` LIMIT ? OFFSET ?` for what is given. The dialect decides how "no limit" reads
    /// beside an offset: SQLite takes no OFFSET without a LIMIT, and a negative LIMIT means none.
    pub fn limit_offset(&mut self, limit: Option<i64>, offset: Option<i64>) -> &mut Self {
        if limit.is_some() || offset.is_some() {
            self.push(" LIMIT ")
                .bind(limit.unwrap_or(-1))
                .push(" OFFSET ")
                .bind(offset.unwrap_or(0));
        }
        self
    }

    /// A table of the texts, one row each in their order, its column `value`: SQLite's
    /// `json_each` over one bound JSON array. One parameter for any number of texts, and a
    /// statement text that does not grow with them (PostgreSQL says `unnest(?::text[])`).
    /// None when a text holds NUL, which SQLite's JSON functions cut short.
    pub fn text_table(values: &[&str]) -> Option<Sql> {
        let mut json = String::with_capacity(values.iter().map(|v| v.len() + 3).sum::<usize>() + 2);
        json.push('[');
        for (i, value) in values.iter().enumerate() {
            if value.contains('\0') {
                return None;
            }
            if i > 0 {
                json.push(',');
            }
            json_string(value, &mut json);
        }
        json.push(']');
        let mut sql = Sql::new("json_each(");
        sql.bind(json).push(")");
        Some(sql)
    }

    /// Append another statement fragment with its parameters.
    pub fn append(&mut self, other: &Sql) -> &mut Self {
        self.text.push_str(&other.text);
        self.params.extend(other.params.iter().cloned());
        self
    }
}

/// A JSON string literal of `text` (UTF-8 as it is; quotes, backslashes and control
/// characters escaped).
fn json_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Conditions joined by AND into a WHERE clause.
#[derive(Debug, Default)]
pub struct Where {
    parts: Vec<Sql>,
}

impl Where {
    pub fn and(&mut self, cond: Sql) {
        self.parts.push(cond);
    }

    pub fn write_to(&self, sql: &mut Sql) {
        for (i, cond) in self.parts.iter().enumerate() {
            sql.push(if i == 0 { " WHERE " } else { " AND " });
            sql.append(cond);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_values() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        sql.bind("x").push(" AND b IN ").bind_list(&[1i64, 2, 3]);
        assert_eq!(sql.text, "SELECT 1 WHERE a = ? AND b IN (?, ?, ?)");
        assert_eq!(sql.params.len(), 4);
        assert_eq!(sql.params[0], Value::Text("x".into()));
    }

    #[test]
    fn where_joins_with_and() {
        let mut w = Where::default();
        let mut a = Sql::new("a = ");
        a.bind(1i64);
        w.and(a);
        w.and(Sql::new("b IS NULL"));
        let mut sql = Sql::new("SELECT * FROM t");
        w.write_to(&mut sql);
        assert_eq!(sql.text, "SELECT * FROM t WHERE a = ? AND b IS NULL");
    }

    #[test]
    fn text_tables_are_one_json_array() {
        let t = Sql::text_table(&["a\"b", "c\\d", "tab\there", "ü"]).unwrap();
        assert_eq!(t.text, "json_each(?)");
        assert_eq!(
            t.params,
            vec![Value::Text(r#"["a\"b","c\\d","tab\u0009here","ü"]"#.into())]
        );
        assert!(Sql::text_table(&["nul\0"]).is_none());
    }

    #[test]
    fn option_binds_null() {
        assert_eq!(Value::from(None::<String>), Value::Null);
        assert_eq!(Value::from(Some(2.5)), Value::Real(2.5));
    }
}
