//! SCIM filters translated to SQL. A filter becomes a WHERE clause with bound
//! parameters: attribute names only ever select one of the fixed expressions
//! below, and values are always parameters, never SQL text.

use chrono::Utc;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, Row};

use super::scim::ListError;
use super::ts;
use crate::domain::scim::filter::{AttrPath, CompareOp, Filter, Value};
use crate::domain::EnterpriseId;

/// A filter that names an attribute we cannot filter on, or compares it in a
/// way its type does not allow; SCIM answers 400 `invalidFilter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterSqlError(pub String);

const ENTERPRISE_EXTENSION: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Which resource a filter runs over.
pub(super) enum Subject {
    User,
    Group,
}

/// How an attribute is reached in SQL.
enum Column {
    /// A text expression; case-exact or compared ignoring (ASCII) case.
    Text(String, bool),
    Bool(&'static str),
    /// RFC 3339 text in our format, compared as such.
    Time(&'static str),
    /// A multi-valued attribute: a JSON array expression, or the store's members.
    Multi(MultiSource),
    /// `userName`: indexed equality on user_name, else the email.
    UserName,
}

enum MultiSource {
    Json {
        array: String,
        subs: &'static [crate::domain::scim::schema::Attribute],
    },
    Members,
}

/// A JSON path into scim_attributes for a (known, static) attribute name.
fn json_attr(extension: Option<&str>, name: &str, sub: Option<&str>) -> String {
    let mut path = String::from("$");
    if let Some(urn) = extension {
        path.push_str(&format!(".\"{urn}\""));
    }
    path.push('.');
    path.push_str(name);
    if let Some(sub) = sub {
        path.push('.');
        path.push_str(sub);
    }
    format!("json_extract(u.scim_attributes, '{path}')")
}

fn user_column(path: &AttrPath) -> Result<Column, FilterSqlError> {
    use crate::domain::scim::schema::{self as s, Type};
    let unknown = || FilterSqlError(format!("cannot filter on {path}"));
    let urn = path.schema.as_deref();
    let in_core = urn.is_none_or(|u| u.eq_ignore_ascii_case(s::USER));
    if in_core {
        let name = path.name.as_str();
        let lower = name.to_ascii_lowercase();
        let sub = path.sub.as_deref();
        match (lower.as_str(), sub) {
            ("id", None) => return Ok(Column::Text("u.id".into(), true)),
            ("externalid", None) => return Ok(Column::Text("u.external_id".into(), true)),
            ("username", None) => return Ok(Column::UserName),
            ("active", None) => return Ok(Column::Bool("u.active")),
            ("displayname", None) => {
                return Ok(Column::Text(
                    "(CASE WHEN u.scim_attributes IS NULL THEN u.name ELSE json_extract(u.scim_attributes, '$.displayName') END)".into(),
                    false,
                ))
            }
            ("meta", Some(m)) if m.eq_ignore_ascii_case("created") => {
                return Ok(Column::Time("u.created_at"))
            }
            ("meta", Some(m)) if m.eq_ignore_ascii_case("lastModified") => {
                return Ok(Column::Time("u.updated_at"))
            }
            _ => {}
        }
        let attribute = s::find(s::USER_ATTRIBUTES, name).ok_or_else(unknown)?;
        let multi = |array: String| -> Result<Column, FilterSqlError> {
            let column = Column::Multi(MultiSource::Json {
                array,
                subs: attribute.sub_attributes(),
            });
            Ok(column)
        };
        return match (attribute.name, attribute.ty, sub) {
            ("emails", _, _) => multi(
                "(CASE WHEN json_extract(u.scim_attributes, '$.emails') IS NULL
                   THEN json_array(json_object('value', u.email, 'type', 'work', 'primary', json('true')))
                   ELSE json_extract(u.scim_attributes, '$.emails') END)"
                    .into(),
            ),
            ("groups", _, _) => multi(
                "(CASE WHEN u.store_id IS NULL THEN json_array()
                   ELSE json_array(json_object('value', u.store_id, 'type', 'direct',
                        'display', (SELECT s.name FROM stores s WHERE s.id = u.store_id))) END)"
                    .into(),
            ),
            (_, _, _) if attribute.multi_valued => {
                multi(format!("coalesce({}, json_array())", json_attr(None, attribute.name, None)))
            }
            (_, Type::Complex(_), Some(sub)) => {
                let sub = attribute.sub(sub).ok_or_else(unknown)?;
                Ok(Column::Text(json_attr(None, attribute.name, Some(sub.name)), sub.case_exact))
            }
            (_, Type::Complex(_), None) => Err(unknown()),
            (_, Type::Boolean, None) => Err(unknown()),
            (_, _, None) => Ok(Column::Text(json_attr(None, attribute.name, None), attribute.case_exact)),
            _ => Err(unknown()),
        };
    }
    let urn = urn.unwrap_or_default();
    if urn.eq_ignore_ascii_case(s::ENTERPRISE_USER) {
        let attribute = s::find(s::ENTERPRISE_USER_ATTRIBUTES, &path.name).ok_or_else(unknown)?;
        return match (attribute.name, path.sub.as_deref()) {
            ("manager", Some(sub)) if sub.eq_ignore_ascii_case("value") => Ok(Column::Text(
                format!(
                    "coalesce({}, u.manager_id)",
                    json_attr(Some(ENTERPRISE_EXTENSION), "manager", Some("value"))
                ),
                true,
            )),
            ("manager", _) => Err(unknown()),
            (name, None) => Ok(Column::Text(
                json_attr(Some(ENTERPRISE_EXTENSION), name, None),
                false,
            )),
            _ => Err(unknown()),
        };
    }
    if urn.eq_ignore_ascii_case(s::RETAIL_USER) && path.sub.is_none() {
        if path.name.eq_ignore_ascii_case("role") {
            return Ok(Column::Text("u.role".into(), false));
        }
        if path.name.eq_ignore_ascii_case("store") {
            return Ok(Column::Text("u.store_id".into(), true));
        }
    }
    Err(unknown())
}

fn group_column(path: &AttrPath) -> Result<Column, FilterSqlError> {
    use crate::domain::scim::schema as s;
    let unknown = || FilterSqlError(format!("cannot filter on {path}"));
    if !path.in_schema(s::GROUP) {
        return Err(unknown());
    }
    let lower = path.name.to_ascii_lowercase();
    Ok(match (lower.as_str(), path.sub.as_deref()) {
        ("id", None) => Column::Text("s.id".into(), true),
        ("externalid", None) => Column::Text("s.external_id".into(), true),
        ("displayname", None) => Column::Text("s.name".into(), false),
        ("members", _) => Column::Multi(MultiSource::Members),
        ("meta", Some(m)) if m.eq_ignore_ascii_case("created") => Column::Time("s.created_at"),
        ("meta", Some(m)) if m.eq_ignore_ascii_case("lastModified") => Column::Time("s.updated_at"),
        _ => return Err(unknown()),
    })
}

/// A WHERE clause under construction with its parameters, in order.
pub(super) struct Sql {
    enterprise: EnterpriseId,
    /// The number of matches when known without counting them.
    pub(super) known_total: Option<usize>,
    pub(super) where_sql: String,
    params: Vec<SqlValue>,
    /// Aliases of nested json_each scans.
    depth: usize,
}

fn text_param(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
    }
}

/// A filter's date in our stored form, so text comparison orders it.
fn time_param(value: &Value) -> Result<String, FilterSqlError> {
    let Value::String(text) = value else {
        return Err(FilterSqlError(format!("{value} is not a date")));
    };
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| ts(t.with_timezone(&Utc)))
        .map_err(|_| FilterSqlError(format!("{text:?} is not an RFC 3339 date")))
}

impl Sql {
    pub(super) fn new(enterprise: EnterpriseId) -> Sql {
        Sql {
            enterprise,
            known_total: None,
            where_sql: String::new(),
            params: vec![SqlValue::Text(enterprise.to_string())],
            depth: 0,
        }
    }

    fn push(&mut self, sql: &str) {
        self.where_sql.push_str(sql);
    }

    fn param(&mut self, value: impl Into<SqlValue>) {
        self.params.push(value.into());
    }

    /// Writes `and`/`or`/`not` around the comparisons, which `leaf` writes.
    fn logic(
        &mut self,
        filter: &Filter,
        leaf: &mut dyn FnMut(&mut Sql, &Filter) -> Result<(), FilterSqlError>,
    ) -> Result<(), FilterSqlError> {
        match filter {
            Filter::And(a, b) | Filter::Or(a, b) => {
                let joiner = if matches!(filter, Filter::And(..)) {
                    " AND "
                } else {
                    " OR "
                };
                self.push("(");
                self.logic(a, leaf)?;
                self.push(joiner);
                self.logic(b, leaf)?;
                self.push(")");
            }
            // NULL (an absent attribute) counts as false, so `not` matches it.
            Filter::Not(inner) => {
                self.push("NOT coalesce(");
                self.logic(inner, leaf)?;
                self.push(", 0)");
            }
            comparison => leaf(self, comparison)?,
        }
        Ok(())
    }

    pub(super) fn filter(
        &mut self,
        filter: &Filter,
        subject: &Subject,
    ) -> Result<(), FilterSqlError> {
        self.logic(filter, &mut |sql, leaf| match leaf {
            Filter::Present(path) => {
                let column = sql.column(path, subject)?;
                sql.present(&column, path.sub.as_deref())
            }
            Filter::Compare(path, op, value) => {
                let column = sql.column(path, subject)?;
                sql.compare(&column, path.sub.as_deref(), *op, value)
            }
            Filter::ValuePath(path, inner) => {
                let column = sql.column(path, subject)?;
                let Column::Multi(source) = column else {
                    return Err(FilterSqlError(format!("{path} is not multi-valued")));
                };
                sql.exists(&source, |sql, element| sql.element_filter(inner, element))
            }
            Filter::And(..) | Filter::Or(..) | Filter::Not(_) => Ok(()),
        })
    }

    fn column(&self, path: &AttrPath, subject: &Subject) -> Result<Column, FilterSqlError> {
        match subject {
            Subject::User => user_column(path),
            Subject::Group => group_column(path),
        }
    }

    /// `EXISTS (SELECT 1 FROM <elements> WHERE <condition>)`.
    fn exists(
        &mut self,
        source: &MultiSource,
        condition: impl FnOnce(&mut Sql, &Element) -> Result<(), FilterSqlError>,
    ) -> Result<(), FilterSqlError> {
        self.depth += 1;
        let alias = format!("e{}", self.depth);
        let element = match source {
            MultiSource::Json { array, subs } => {
                self.push(&format!(
                    "EXISTS (SELECT 1 FROM json_each({array}) AS {alias} WHERE "
                ));
                Element::Json {
                    alias: alias.clone(),
                    subs,
                }
            }
            MultiSource::Members => {
                self.push(&format!(
                    "EXISTS (SELECT 1 FROM users {alias} WHERE {alias}.enterprise_account_id = s.enterprise_account_id
                       AND {alias}.store_id = s.id AND {alias}.role <> 'it_admin'
                       AND {alias}.scim_deleted_at IS NULL AND "
                ));
                Element::Member {
                    alias: alias.clone(),
                }
            }
        };
        condition(self, &element)?;
        self.push(")");
        self.depth -= 1;
        Ok(())
    }

    fn element_filter(&mut self, filter: &Filter, element: &Element) -> Result<(), FilterSqlError> {
        self.logic(filter, &mut |sql, leaf| match leaf {
            Filter::Present(path) => {
                let (field, _) = element.field(path.sub.as_deref().unwrap_or(&path.name))?;
                sql.push(&format!("({field} IS NOT NULL AND {field} <> '')"));
                Ok(())
            }
            Filter::Compare(path, op, value) => {
                let (field, case_exact) =
                    element.field(path.sub.as_deref().unwrap_or(&path.name))?;
                sql.text_compare(&field, case_exact, *op, value)
            }
            Filter::ValuePath(..) => Err(FilterSqlError("value filters do not nest".into())),
            Filter::And(..) | Filter::Or(..) | Filter::Not(_) => Ok(()),
        })
    }

    fn present(&mut self, column: &Column, sub: Option<&str>) -> Result<(), FilterSqlError> {
        match column {
            Column::Text(sql, _) => self.push(&format!("({sql} IS NOT NULL AND {sql} <> '')")),
            Column::Bool(sql) | Column::Time(sql) => self.push(&format!("{sql} IS NOT NULL")),
            Column::UserName => self.push("1"),
            Column::Multi(source) => {
                let sub = sub.map(str::to_string);
                self.exists(source, |sql, element| {
                    match sub {
                        Some(sub) => {
                            let (field, _) = element.field(&sub)?;
                            sql.push(&format!("({field} IS NOT NULL AND {field} <> '')"));
                        }
                        None => sql.push("1"),
                    }
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    fn compare(
        &mut self,
        column: &Column,
        sub: Option<&str>,
        op: CompareOp,
        value: &Value,
    ) -> Result<(), FilterSqlError> {
        match column {
            Column::Text(sql, case_exact) => self.text_compare(sql, *case_exact, op, value),
            Column::UserName if op == CompareOp::Eq => {
                let Some(text) = text_param(value) else {
                    self.push("0");
                    return Ok(());
                };
                // Two index probes (the SCIM name's, then the email's) in a
                // subquery: written as an OR, SQLite scans the enterprise.
                self.push(
                    "u.id IN (SELECT id FROM users WHERE enterprise_account_id = ?
                                 AND user_name = ? COLLATE NOCASE AND scim_deleted_at IS NULL
                              UNION ALL
                              SELECT id FROM users WHERE enterprise_account_id = ?
                                 AND email = ? AND user_name IS NULL)",
                );
                self.param(self.enterprise.to_string());
                self.param(text.clone());
                self.param(self.enterprise.to_string());
                self.param(text.trim().to_lowercase());
                Ok(())
            }
            Column::UserName => {
                self.text_compare("coalesce(u.user_name, u.email)", false, op, value)
            }
            Column::Bool(sql) => {
                let wanted = value
                    .as_bool()
                    .ok_or_else(|| FilterSqlError(format!("{value} is not true or false")))?;
                match op {
                    CompareOp::Eq => self.push(&format!("{sql} = ?")),
                    CompareOp::Ne => self.push(&format!("{sql} <> ?")),
                    _ => {
                        return Err(FilterSqlError(format!(
                            "{} does not apply to a boolean",
                            op.as_str()
                        )))
                    }
                }
                self.param(i64::from(wanted));
                Ok(())
            }
            Column::Time(sql) => {
                let when = time_param(value)?;
                let operator = match op {
                    CompareOp::Eq => "=",
                    CompareOp::Ne => "<>",
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                    CompareOp::Lt => "<",
                    CompareOp::Le => "<=",
                    _ => {
                        return Err(FilterSqlError(format!(
                            "{} does not apply to a date",
                            op.as_str()
                        )))
                    }
                };
                self.push(&format!("{sql} {operator} ?"));
                self.param(when);
                Ok(())
            }
            Column::Multi(source) => {
                let sub = sub.unwrap_or("value").to_string();
                let value = value.clone();
                self.exists(source, |sql, element| {
                    let (field, case_exact) = element.field(&sub)?;
                    sql.text_compare(&field, case_exact, op, &value)
                })
            }
        }
    }

    fn text_compare(
        &mut self,
        sql: &str,
        case_exact: bool,
        op: CompareOp,
        value: &Value,
    ) -> Result<(), FilterSqlError> {
        let collate = if case_exact { "" } else { " COLLATE NOCASE" };
        if let Value::Bool(b) = value {
            // A boolean sub-attribute (primary) inside JSON reads back as 0/1.
            match op {
                CompareOp::Eq => self.push(&format!("({sql} = ? OR {sql} = ?)")),
                CompareOp::Ne => self.push(&format!("NOT coalesce({sql} = ? OR {sql} = ?, 0)")),
                _ => {
                    return Err(FilterSqlError(format!(
                        "{} does not apply to a boolean",
                        op.as_str()
                    )))
                }
            }
            self.param(i64::from(*b));
            self.param(b.to_string());
            return Ok(());
        }
        let Some(text) = text_param(value) else {
            match op {
                CompareOp::Eq => self.push(&format!("{sql} IS NULL")),
                CompareOp::Ne => self.push(&format!("{sql} IS NOT NULL")),
                _ => {
                    return Err(FilterSqlError(format!(
                        "{} does not apply to null",
                        op.as_str()
                    )))
                }
            }
            return Ok(());
        };
        match op {
            CompareOp::Eq => self.push(&format!("{sql} = ?{collate}")),
            CompareOp::Ne => self.push(&format!("({sql} IS NULL OR {sql} <> ?{collate})")),
            CompareOp::Gt => self.push(&format!("{sql} > ?{collate}")),
            CompareOp::Ge => self.push(&format!("{sql} >= ?{collate}")),
            CompareOp::Lt => self.push(&format!("{sql} < ?{collate}")),
            CompareOp::Le => self.push(&format!("{sql} <= ?{collate}")),
            CompareOp::Co if case_exact => self.push(&format!("instr({sql}, ?) > 0")),
            CompareOp::Co => self.push(&format!("instr(lower({sql}), lower(?)) > 0")),
            CompareOp::Sw | CompareOp::Ew => {
                // substr(x, -0) is the whole text: an empty suffix needs no test.
                if text.is_empty() {
                    self.push(&format!("{sql} IS NOT NULL"));
                    return Ok(());
                }
                let part = if op == CompareOp::Sw {
                    "substr({sql}, 1, length(?))"
                } else {
                    "substr({sql}, -length(?))"
                };
                self.push(&format!("{} = ?{collate}", part.replace("{sql}", sql)));
                self.param(text.clone());
            }
        }
        self.param(text);
        Ok(())
    }

    /// Counts the matches, then reads one page of them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn page<T>(
        self,
        conn: &Connection,
        select: &str,
        live: &str,
        order: &str,
        offset: usize,
        limit: usize,
        read: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<(usize, Vec<T>), ListError> {
        let total = match self.known_total {
            Some(total) => total,
            None => {
                let from = if order.starts_with("u.") {
                    "users u"
                } else {
                    "stores s"
                };
                let count_sql =
                    format!("SELECT count(*) FROM {from} WHERE {live}{}", self.where_sql);
                let counted: i64 = conn
                    .prepare_cached(&count_sql)?
                    .query_row(params_from_iter(self.params.iter()), |row| row.get(0))?;
                usize::try_from(counted).unwrap_or(0)
            }
        };
        if limit == 0 {
            return Ok((total, Vec::new()));
        }
        // Literal LIMIT and OFFSET: SQLite plans a bound LIMIT worse.
        let page_sql = format!(
            "{select} WHERE {live}{} ORDER BY {order} LIMIT {limit} OFFSET {offset}",
            self.where_sql
        );
        let mut statement = conn.prepare_cached(&page_sql)?;
        let rows = statement.query_map(params_from_iter(self.params.iter()), read)?;
        Ok((total, rows.collect::<rusqlite::Result<Vec<T>>>()?))
    }
}

/// One element of a multi-valued attribute inside an EXISTS.
enum Element {
    Json {
        alias: String,
        subs: &'static [crate::domain::scim::schema::Attribute],
    },
    Member {
        alias: String,
    },
}

impl Element {
    /// The SQL of a sub-attribute and whether it compares case-exactly.
    fn field(&self, name: &str) -> Result<(String, bool), FilterSqlError> {
        match self {
            Element::Json { alias, subs } => {
                let sub = crate::domain::scim::schema::find(subs, name)
                    .ok_or_else(|| FilterSqlError(format!("no sub-attribute {name}")))?;
                Ok((
                    format!("json_extract({alias}.value, '$.{}')", sub.name),
                    sub.case_exact,
                ))
            }
            Element::Member { alias } => match name.to_ascii_lowercase().as_str() {
                "value" => Ok((format!("{alias}.id"), true)),
                "display" => Ok((format!("{alias}.name"), false)),
                "type" => Ok(("'User'".into(), false)),
                _ => Err(FilterSqlError(format!("no sub-attribute {name}"))),
            },
        }
    }
}
