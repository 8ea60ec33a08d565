//! A statement under construction: SQL text plus its bound values, and the places where the
//! dialects differ.
//!
//! `text` is the statement as SQLite reads it, built as the statement is (SQLite is the hot
//! path and its index-layout fitting works on that text). Every part that differs by dialect
//! is built through a method that records it as a [`Piece`] of that text: a placeholder, a
//! plan hint (`INDEXED BY`, `NOT INDEXED`, a join-order `CROSS JOIN`), "no limit", a table of
//! texts. [`Dialect::render`] gives the text for a backend: SQLite's as it is, PostgreSQL's with
//! each piece replaced (`$n` placeholders, no hints, plain `JOIN`, `LIMIT ALL`,
//! `json_array_elements_text`). Domains never write dialect-specific text themselves.

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
    /// The statement as SQLite reads it (read it; extend it only through the methods, which keep
    /// `pieces` in step).
    pub text: String,
    pub params: Vec<Value>,
    /// Planned from the file's own indexes (`store::layout`): its pins need no fitting, unless
    /// SQLite refuses one (a layout changed since).
    pub planned: bool,
    /// The dialect-dependent spans of `text`, in order.
    pieces: Vec<Piece>,
}

/// A span of [`Sql::text`] that another dialect spells otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    at: usize,
    len: usize,
    kind: PieceKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceKind {
    /// A placeholder (`?`; PostgreSQL `$n`, numbered in order).
    Param,
    /// SQLite's text, which PostgreSQL spells as this (empty for a plan hint it has no use for).
    Alt(&'static str),
}

/// The SQL dialect a statement is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The statement's text in this dialect, and its parameters (the same in every dialect).
    pub fn render<'s>(&self, sql: &'s Sql) -> (std::borrow::Cow<'s, str>, &'s [Value]) {
        match self {
            Dialect::Sqlite => (std::borrow::Cow::Borrowed(sql.text.as_str()), &sql.params),
            Dialect::Postgres => (std::borrow::Cow::Owned(sql.postgres_text()), &sql.params),
        }
    }
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            params: Vec::new(),
            planned: false,
            pieces: Vec::new(),
        }
    }

    /// Append `text` as a dialect piece: PostgreSQL reads `postgres` in its place.
    fn piece(&mut self, text: &str, postgres: &'static str) -> &mut Self {
        self.pieces.push(Piece {
            at: self.text.len(),
            len: text.len(),
            kind: PieceKind::Alt(postgres),
        });
        self.text.push_str(text);
        self
    }

    /// Append ` INDEXED BY <index>`: a plan pin SQLite needs (its planner follows statistics a
    /// user's `ANALYZE` leaves); PostgreSQL plans without hints. `None` appends nothing (the
    /// file has no index for the role; SQLite plans the statement as it plans stock's).
    pub fn indexed_by(&mut self, index: Option<&str>) -> &mut Self {
        match index {
            Some(name) => self.piece(&format!(" INDEXED BY {name}"), ""),
            None => self,
        }
    }

    /// Append ` INDEXED BY <index>` for an index every file of the schema has by this name.
    pub fn pin(&mut self, index: &str) -> &mut Self {
        self.indexed_by(Some(index))
    }

    /// Append ` NOT INDEXED`: SQLite reads the table itself; nothing on PostgreSQL.
    pub fn not_indexed(&mut self) -> &mut Self {
        self.piece(" NOT INDEXED", "")
    }

    /// Append ` CROSS JOIN `: SQLite joins in the order written; PostgreSQL reads ` JOIN `
    /// (with the `ON` that follows) and plans the order itself.
    pub fn cross_join(&mut self) -> &mut Self {
        self.piece(" CROSS JOIN ", " JOIN ")
    }

    /// Append a timestamp no stored timestamp precedes: SQLite's timestamps are text, which the
    /// empty text sorts before; PostgreSQL's `timestamp` has `-infinity`.
    pub fn earliest_timestamp(&mut self) -> &mut Self {
        self.piece("''", "'-infinity'::timestamp")
    }

    /// Append ` RETURNING id`: the id of the row an INSERT made, on every backend.
    pub fn returning_id(&mut self) -> &mut Self {
        self.push(" RETURNING id")
    }

    /// The text PostgreSQL reads: every piece replaced, placeholders numbered `$1..$n`.
    fn postgres_text(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 2 * self.params.len());
        let mut from = 0;
        let mut n = 0;
        for piece in &self.pieces {
            out.push_str(&self.text[from..piece.at]);
            match piece.kind {
                PieceKind::Param => {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                }
                PieceKind::Alt(text) => out.push_str(text),
            }
            from = piece.at + piece.len;
        }
        out.push_str(&self.text[from..]);
        out
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
        self.pieces.push(Piece {
            at: self.text.len(),
            len: 1,
            kind: PieceKind::Param,
        });
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
    /// beside an offset: SQLite takes no OFFSET without a LIMIT, and a negative LIMIT means none
    /// (`LIMIT -1`); PostgreSQL says `LIMIT ALL`.
    pub fn limit_offset(&mut self, limit: Option<i64>, offset: Option<i64>) -> &mut Self {
        if limit.is_some() || offset.is_some() {
            self.push(" LIMIT ");
            match limit {
                Some(limit) => self.bind(limit),
                None => self.piece("-1", "ALL"),
            };
            self.push(" OFFSET ").bind(offset.unwrap_or(0));
        }
        self
    }

    /// A table of the texts, one row each in their order, its column `value`: SQLite's
    /// `json_each` over one bound JSON array, PostgreSQL's `json_array_elements_text` over the
    /// same. One parameter for any number of texts, and a statement text that does not grow
    /// with them. None when a text holds NUL, which SQLite's JSON functions cut short (and
    /// PostgreSQL's text refuses).
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
        let mut sql = Sql::default();
        sql.piece("json_each(", "json_array_elements_text(")
            .bind(json)
            .piece(")", "::json)");
        Some(sql)
    }

    /// Append another statement fragment with its parameters.
    pub fn append(&mut self, other: &Sql) -> &mut Self {
        let at = self.text.len();
        self.pieces.extend(other.pieces.iter().map(|p| Piece {
            at: p.at + at,
            ..*p
        }));
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
    fn postgres_renders_every_piece() {
        let mut q = Sql::new("SELECT runs.id FROM run_tags AS driver");
        q.pin("idx_run_tags")
            .cross_join()
            .push("runs")
            .indexed_by(Some("sqlite_autoindex_runs_1"))
            .push(" ON runs.run_id = driver.run_id WHERE driver.key = ")
            .bind("k")
            .push(" AND runs.status IN ")
            .bind_list(&["A", "B"]);
        let mut inner = Sql::new(" AND runs.id IN (SELECT value FROM ");
        inner
            .append(&Sql::text_table(&["x", "y"]).unwrap())
            .push(") AND runs.id > (SELECT min(id) FROM runs")
            .not_indexed()
            .push(")");
        q.append(&inner)
            .indexed_by(None)
            .limit_offset(None, Some(5));
        assert_eq!(
            q.text,
            "SELECT runs.id FROM run_tags AS driver INDEXED BY idx_run_tags CROSS JOIN runs \
             INDEXED BY sqlite_autoindex_runs_1 ON runs.run_id = driver.run_id WHERE \
             driver.key = ? AND runs.status IN (?, ?) AND runs.id IN (SELECT value FROM \
             json_each(?)) AND runs.id > (SELECT min(id) FROM runs NOT INDEXED) LIMIT -1 OFFSET ?"
        );
        let (text, params) = Dialect::Postgres.render(&q);
        assert_eq!(
            text,
            "SELECT runs.id FROM run_tags AS driver JOIN runs ON runs.run_id = driver.run_id \
             WHERE driver.key = $1 AND runs.status IN ($2, $3) AND runs.id IN (SELECT value \
             FROM json_array_elements_text($4::json)) AND runs.id > (SELECT min(id) FROM runs) \
             LIMIT ALL OFFSET $5"
        );
        assert_eq!(params.len(), 5);
        let (text, _) = Dialect::Sqlite.render(&q);
        assert_eq!(text, q.text);
    }

    #[test]
    fn limits_render_alike_when_given() {
        let mut q = Sql::new("SELECT 1");
        q.limit_offset(Some(3), None);
        assert_eq!(q.text, "SELECT 1 LIMIT ? OFFSET ?");
        assert_eq!(q.params, [Value::Int(3), Value::Int(0)]);
        assert_eq!(
            Dialect::Postgres.render(&q).0,
            "SELECT 1 LIMIT $1 OFFSET $2"
        );
    }

    #[test]
    fn option_binds_null() {
        assert_eq!(Value::from(None::<String>), Value::Null);
        assert_eq!(Value::from(Some(2.5)), Value::Real(2.5));
    }
}
