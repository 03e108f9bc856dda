//! The one way list endpoints turn a filter into SQL: a fixed, code-owned query
//! text with `AND` conditions appended for each filter given, every value bound.
//!
//! Two SQLite habits shape it. Equality filters are written `column = +?`: with a
//! plain `= ?` and an ORDER BY, SQLite marks the parameter as plan-relevant and
//! re-prepares the cached statement on every execution (measured: parsing was a
//! fifth of the server's CPU under load); the unary plus keeps the same index
//! plan without that. The LIMIT is a literal for the same reason.

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, Row};

use crate::domain::EnterpriseId;

pub struct ListQuery {
    sql: String,
    args: Vec<Value>,
}

impl ListQuery {
    /// `select` is everything up to the table name, e.g. `SELECT * FROM sync_logs`;
    /// the enterprise condition is always there.
    pub fn new(select: &str, enterprise: EnterpriseId) -> ListQuery {
        ListQuery {
            sql: format!("{select} WHERE enterprise_account_id = +?"),
            args: vec![Value::Text(enterprise.to_string())],
        }
    }

    /// A condition without a value (`run_id IS NULL`).
    pub fn condition(mut self, condition: &str) -> ListQuery {
        self.sql.push_str(" AND ");
        self.sql.push_str(condition);
        self
    }

    /// `column = value` when a value is given.
    pub fn equals(self, column: &str, value: Option<impl Into<Value>>) -> ListQuery {
        match value {
            Some(value) => self.compare(&format!("{column} = +?"), value.into()),
            None => self,
        }
    }

    /// A comparison with one bound value (`id > ?`, `ts >= ?`) when a value is given.
    pub fn compare_opt(self, condition: &str, value: Option<impl Into<Value>>) -> ListQuery {
        match value {
            Some(value) => self.compare(condition, value.into()),
            None => self,
        }
    }

    fn compare(mut self, condition: &str, value: Value) -> ListQuery {
        self.sql.push_str(" AND ");
        self.sql.push_str(condition);
        self.args.push(value);
        self
    }

    pub fn fetch<T>(
        mut self,
        conn: &Connection,
        order_by: &str,
        limit: usize,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        self.sql
            .push_str(&format!(" ORDER BY {order_by} LIMIT {limit}"));
        let mut statement = conn.prepare_cached(&self.sql)?;
        let rows = statement.query_map(params_from_iter(self.args), map)?;
        rows.collect()
    }
}
