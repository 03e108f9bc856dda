//! A profile's mapping applied to a CSV file: which column (or columns, or
//! constant) feeds each field and how the value is transformed, then, for
//! dated rows, which of a person's rows is valid today.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::formats::FileProblem;
use crate::domain::drop_profile::{parse_date, ColumnRule, DatedRows, Mapping, Rule};

/// How a header cell is compared: trimmed, lower case, spaces as `_`.
pub fn normalise_header(name: &str) -> String {
    name.trim().to_lowercase().replace(' ', "_")
}

enum Source {
    Column(usize),
    Joined(Vec<usize>, String),
    Constant(String),
}

#[derive(Default)]
struct Transform {
    values: HashMap<String, String>,
    otherwise: Option<String>,
    strip_leading_zeros: bool,
    pad_leading_zeros_to: Option<usize>,
}

impl Transform {
    fn of(rule: &Rule) -> Transform {
        Transform {
            values: rule
                .values
                .iter()
                .map(|(from, to)| (from.trim().to_lowercase(), to.clone()))
                .collect(),
            otherwise: rule.otherwise.clone(),
            strip_leading_zeros: rule.strip_leading_zeros,
            pad_leading_zeros_to: rule.pad_leading_zeros_to,
        }
    }

    fn apply(&self, value: String) -> String {
        let value = if self.values.is_empty() && self.otherwise.is_none() {
            value
        } else {
            match self.values.get(&value.trim().to_lowercase()) {
                Some(mapped) => mapped.clone(),
                None => self.otherwise.clone().unwrap_or(value),
            }
        };
        if self.strip_leading_zeros {
            let stripped = value.trim_start_matches('0');
            // "000" is the id 0, not no id.
            if stripped.is_empty() && !value.is_empty() {
                "0".into()
            } else {
                stripped.to_string()
            }
        } else if let Some(width) = self.pad_leading_zeros_to {
            format!("{value:0>width$}")
        } else {
            value
        }
    }
}

struct FieldSource {
    field: &'static str,
    source: Source,
    transform: Transform,
}

/// The dated-row columns and their format.
pub struct DateColumns {
    pub from: usize,
    pub to: usize,
    pub from_name: String,
    pub to_name: String,
    pub format: String,
}

/// A mapping resolved against one file's header.
pub struct Compiled {
    fields: Vec<FieldSource>,
    /// Header columns that feed nothing, for the "ignored columns" warning.
    pub unused: Vec<String>,
    pub dated: Option<DateColumns>,
}

impl Compiled {
    /// Whether `field` is read from the file's columns (not a constant).
    pub fn reads_column_for(&self, field: &str) -> bool {
        self.fields
            .iter()
            .any(|f| f.field == field && matches!(f.source, Source::Column(_) | Source::Joined(..)))
    }

    /// Resolves `mapping` (or none) for `headers`; a rule naming a column the
    /// header lacks refuses the file, naming both.
    pub fn new(
        headers: &[String],
        known: &[&'static str],
        kind: &str,
        mapping: Option<&Mapping>,
    ) -> Result<Compiled, FileProblem> {
        let position = |column: &str, rule_of: &str| {
            let wanted = normalise_header(column);
            headers
                .iter()
                .position(|h| *h == wanted)
                .ok_or_else(|| {
                    FileProblem(format!(
                        "the profile's {rule_of} names column {column:?}, which the header line does not have"
                    ))
                })
        };
        let mut used = vec![false; headers.len()];
        let mut fields = Vec::new();
        for &field in known {
            let rule = mapping.and_then(|m| m.columns.get(field));
            let at = format!("{kind}.columns.{field}");
            let (source, transform) = match rule {
                None => match headers.iter().position(|h| h == field) {
                    Some(index) => (Source::Column(index), Transform::default()),
                    None => continue,
                },
                Some(ColumnRule::Column(column)) => {
                    (Source::Column(position(column, &at)?), Transform::default())
                }
                Some(ColumnRule::Rule(rule)) => {
                    let source = if let Some(constant) = &rule.constant {
                        Source::Constant(constant.clone())
                    } else if let Some(column) = &rule.column {
                        Source::Column(position(column, &at)?)
                    } else {
                        let columns = rule
                            .columns
                            .iter()
                            .map(|c| position(c, &at))
                            .collect::<Result<Vec<_>, _>>()?;
                        Source::Joined(columns, rule.separator.clone().unwrap_or(" ".into()))
                    };
                    (source, Transform::of(rule))
                }
            };
            match &source {
                Source::Column(index) => used[*index] = true,
                Source::Joined(indices, _) => indices.iter().for_each(|&i| used[i] = true),
                Source::Constant(_) => {}
            }
            fields.push(FieldSource {
                field,
                source,
                transform,
            });
        }
        let dated = match mapping.and_then(|m| m.dated_rows.as_ref()) {
            None => None,
            Some(DatedRows {
                valid_from,
                valid_to,
                date_format,
            }) => {
                let at = format!("{kind}.dated_rows");
                let (from, to) = (position(valid_from, &at)?, position(valid_to, &at)?);
                used[from] = true;
                used[to] = true;
                Some(DateColumns {
                    from,
                    to,
                    from_name: valid_from.clone(),
                    to_name: valid_to.clone(),
                    format: date_format.clone(),
                })
            }
        };
        let unused = headers
            .iter()
            .zip(&used)
            .filter(|(h, used)| !**used && !h.is_empty())
            .map(|(h, _)| h.clone())
            .collect();
        Ok(Compiled {
            fields,
            unused,
            dated,
        })
    }

    /// Each fed field's value for one record; blank values are left out.
    pub fn values<'r>(
        &'r self,
        record: &'r csv::StringRecord,
        trim: bool,
    ) -> impl Iterator<Item = (&'static str, String)> + 'r {
        let cell = move |index: usize| {
            let raw = record.get(index).unwrap_or("");
            if trim {
                raw.trim()
            } else {
                raw
            }
        };
        self.fields.iter().filter_map(move |source| {
            let value = match &source.source {
                Source::Column(index) => cell(*index).to_string(),
                Source::Constant(constant) => constant.clone(),
                Source::Joined(indices, separator) => indices
                    .iter()
                    .map(|&i| cell(i))
                    .filter(|part| !part.trim().is_empty())
                    .collect::<Vec<_>>()
                    .join(separator),
            };
            if value.trim().is_empty() {
                return None;
            }
            let value = source.transform.apply(value);
            (!value.trim().is_empty()).then_some((source.field, value))
        })
    }
}

/// A dated row's validity, from its two columns (blank: open-ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl DateColumns {
    /// The validity of a record, or the column whose date cannot be read.
    pub fn validity(&self, record: &csv::StringRecord) -> Result<Validity, (String, String)> {
        let read = |index: usize, name: &str| {
            let text = record.get(index).unwrap_or("").trim();
            if text.is_empty() {
                return Ok(None);
            }
            parse_date(text, &self.format).map(Some).ok_or_else(|| {
                (
                    name.to_string(),
                    format!("{name} {text:?} is not a date written {}", self.format),
                )
            })
        };
        Ok(Validity {
            from: read(self.from, &self.from_name)?,
            to: read(self.to, &self.to_name)?,
        })
    }
}

/// What dated-row selection keeps.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Row indices kept, in file order.
    pub kept: Vec<usize>,
    /// Kept rows whose person's validity ended before today: they are leavers.
    pub ended: Vec<usize>,
    /// Keys whose only rows start after today, left out.
    pub not_started: usize,
}

/// Picks one row per key: the row valid today (the latest start if several);
/// else the latest-ending past row, as a leaver; keys with only future rows are
/// left out. Rows without a key or validity (they carry errors) are all kept.
pub fn select(rows: &[(Option<String>, Option<Validity>)], today: NaiveDate) -> Selection {
    #[derive(Clone, Copy)]
    enum Standing {
        Current(NaiveDate),
        Ended(NaiveDate),
        NotStarted,
    }
    let standing = |v: &Validity| {
        let from = v.from.unwrap_or(NaiveDate::MIN);
        let to = v.to.unwrap_or(NaiveDate::MAX);
        if from > today {
            Standing::NotStarted
        } else if to < today {
            Standing::Ended(to)
        } else {
            Standing::Current(from)
        }
    };
    let mut best: HashMap<&str, (usize, Standing)> = HashMap::new();
    let mut always = Vec::new();
    for (index, (key, validity)) in rows.iter().enumerate() {
        let (Some(key), Some(validity)) = (key, validity) else {
            always.push(index);
            continue;
        };
        let candidate = standing(validity);
        let better = match (best.get(key.as_str()), candidate) {
            (None, _) => true,
            (Some((_, Standing::Current(a))), Standing::Current(b)) => b >= *a,
            (Some((_, Standing::Current(_))), _) => false,
            (Some(_), Standing::Current(_)) => true,
            (Some((_, Standing::Ended(a))), Standing::Ended(b)) => b >= *a,
            (Some((_, Standing::Ended(_))), Standing::NotStarted) => false,
            (Some((_, Standing::NotStarted)), Standing::Ended(_)) => true,
            (Some((_, Standing::NotStarted)), Standing::NotStarted) => true,
        };
        if better {
            best.insert(key, (index, candidate));
        }
    }
    let mut selection = Selection::default();
    let mut kept = always;
    for (index, standing) in best.into_values() {
        match standing {
            Standing::Current(_) => kept.push(index),
            Standing::Ended(_) => {
                kept.push(index);
                selection.ended.push(index);
            }
            Standing::NotStarted => selection.not_started += 1,
        }
    }
    kept.sort_unstable();
    selection.ended.sort_unstable();
    selection.kept = kept;
    selection
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    fn row(
        key: &str,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> (Option<String>, Option<Validity>) {
        (Some(key.into()), Some(Validity { from, to }))
    }

    #[test]
    fn the_row_valid_today_wins_and_ended_people_are_leavers() {
        let today = date(2026, 11, 27).unwrap();
        let rows = [
            row("1", date(2020, 1, 1), date(2025, 12, 31)),
            row("1", date(2026, 1, 1), date(9999, 12, 31)),
            row("2", date(2020, 1, 1), date(2026, 6, 30)),
            row("3", date(2027, 1, 1), None),
            (None, None),
            row("4", date(2026, 1, 1), date(2026, 11, 27)),
            row("4", date(2027, 1, 1), None),
        ];
        let selection = select(&rows, today);
        assert_eq!(selection.kept, [1, 2, 4, 5]);
        assert_eq!(selection.ended, [2]);
        assert_eq!(selection.not_started, 1);
    }

    #[test]
    fn transforms_map_values_then_mind_the_zeros() {
        let rule: Rule = serde_json::from_value(serde_json::json!({
            "column": "x", "values": {"M01": "manager"}, "otherwise": "seller"
        }))
        .unwrap();
        let role = Transform::of(&rule);
        assert_eq!(role.apply("m01".into()), "manager");
        assert_eq!(role.apply("X99".into()), "seller");
        let strip = Transform {
            strip_leading_zeros: true,
            ..Transform::default()
        };
        assert_eq!(strip.apply("00012345".into()), "12345");
        assert_eq!(strip.apply("000".into()), "0");
        let pad = Transform {
            pad_leading_zeros_to: Some(8),
            ..Transform::default()
        };
        assert_eq!(pad.apply("12345".into()), "00012345");
        assert_eq!(pad.apply("123456789".into()), "123456789");
    }
}
