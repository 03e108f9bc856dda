//! The SCIM filter language (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2).
//!
//! ```text
//! FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
//! valuePath = attrPath "[" valFilter "]"
//! attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
//! logExp    = FILTER SP ("and" / "or") SP FILTER
//! compValue = false / null / true / number / string
//! attrPath  = [URI ":"] ATTRNAME *1subAttr
//! ```
//!
//! `not` binds tighter than `and`, which binds tighter than `or`. Operators,
//! keywords and attribute names are case-insensitive; names are kept as sent
//! and compared with [`AttrPath::is`]. Clients also send a value path followed
//! by a sub-attribute comparison (`emails[type eq "work"].value eq "a@b.c"`),
//! read as the value path whose filter also holds the comparison.
//!
//! The input is untrusted: its length and nesting depth are bounded, and any
//! byte sequence gives a value or an error, never a panic.

use std::fmt;

/// Longest filter read.
pub const MAX_FILTER_BYTES: usize = 4096;
/// Deepest nesting of parentheses, brackets and `not`.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attr pr`
    Present(AttrPath),
    /// `attr op value`
    Compare(AttrPath, CompareOp, Value),
    /// `attr[filter]`: some element of the multi-valued `attr` matches.
    ValuePath(AttrPath, Box<Filter>),
}

/// Most comparisons one filter may make. An identity provider asks for one or
/// two (`userName eq "…"`); each comparison on a multi-valued or JSON-held
/// attribute is a pass over the enterprise's people, so a long filter is
/// refused before it runs rather than left to its time budget.
pub const MAX_FILTER_TERMS: usize = 10;

impl Filter {
    /// The comparisons (`pr` and `op value`) the filter makes; a value path
    /// (`emails[…]`) counts as one more than its own.
    pub fn terms(&self) -> usize {
        match self {
            Filter::And(left, right) | Filter::Or(left, right) => left.terms() + right.terms(),
            Filter::Not(inner) => inner.terms(),
            Filter::Present(_) | Filter::Compare(..) => 1,
            Filter::ValuePath(_, inner) => 1 + inner.terms(),
        }
    }
}

/// `[schema URN ":"] name ["." sub]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub schema: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    pub fn new(name: &str) -> AttrPath {
        AttrPath {
            schema: None,
            name: name.to_string(),
            sub: None,
        }
    }

    pub fn with_sub(name: &str, sub: &str) -> AttrPath {
        AttrPath {
            sub: Some(sub.to_string()),
            ..AttrPath::new(name)
        }
    }

    /// Whether this path names `name` (and `sub`), ignoring case.
    pub fn is(&self, name: &str, sub: Option<&str>) -> bool {
        self.name.eq_ignore_ascii_case(name)
            && match (&self.sub, sub) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            }
    }

    /// Whether the schema URN, if any, is `urn` (ignoring case).
    pub fn in_schema(&self, urn: &str) -> bool {
        self.schema
            .as_deref()
            .is_none_or(|schema| schema.eq_ignore_ascii_case(urn))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<CompareOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    /// Kept as written: SQL compares it as a number.
    Number(String),
    Bool(bool),
    Null,
}

impl Value {
    /// A boolean, including the strings `"True"` / `"False"` some clients send.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
}

/// Why a filter or path could not be read; SCIM answers 400 `invalidFilter`
/// (or `invalidPath`) with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FilterError {}

/// A PATCH operation's target: `attr`, `attr.sub`, `attr[filter]`,
/// `attr[filter].sub`, each with an optional schema URN.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter (`emails[type eq "work"].value`).
    pub sub: Option<String>,
}

pub fn parse_filter(text: &str) -> Result<Filter, FilterError> {
    let mut parser = Parser::new(text)?;
    let filter = parser.or_expr(0)?;
    parser.end()?;
    Ok(filter)
}

pub fn parse_path(text: &str) -> Result<PatchPath, FilterError> {
    let mut parser = Parser::new(text)?;
    let attr = parser.attr_path()?;
    let mut path = PatchPath {
        attr,
        filter: None,
        sub: None,
    };
    if parser.eat(&Token::LBracket) {
        if path.attr.sub.is_some() {
            return Err(FilterError(
                "a value filter applies to an attribute, not to a sub-attribute".into(),
            ));
        }
        path.filter = Some(parser.or_expr(1)?);
        parser.expect(&Token::RBracket)?;
        if let Some(Token::SubAttr(sub)) = parser.peek().cloned() {
            parser.next();
            path.sub = Some(sub);
        }
    }
    parser.end()?;
    Ok(path)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// A name, keyword, operator or attribute path (with its URN and dots).
    Word(String),
    /// `.sub` right after `]`.
    SubAttr(String),
    Str(String),
    Number(String),
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | '$')
}

fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::LParen,
                    ')' => Token::RParen,
                    '[' => Token::LBracket,
                    _ => Token::RBracket,
                });
                // `].sub`
                if c == ']' {
                    if let Some(&(dot, '.')) = chars.peek() {
                        chars.next();
                        let mut end = dot + 1;
                        while let Some(&(i, n)) = chars.peek() {
                            if n.is_ascii_alphanumeric() || n == '-' || n == '_' {
                                end = i + n.len_utf8();
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        let sub = &text[dot + 1..end];
                        if sub.is_empty() {
                            return Err(FilterError("a '.' must be followed by a name".into()));
                        }
                        tokens.push(Token::SubAttr(sub.to_string()));
                    }
                }
            }
            '"' => {
                chars.next();
                tokens.push(Token::Str(string_literal(text, &mut chars, start)?));
            }
            c if c == '-' || c.is_ascii_digit() => {
                let mut end = start;
                while let Some(&(i, n)) = chars.peek() {
                    if n.is_ascii_digit() || matches!(n, '-' | '+' | '.' | 'e' | 'E') {
                        end = i + n.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let number = &text[start..end];
                if number.parse::<f64>().is_err() {
                    return Err(FilterError(format!("{number:?} is not a number")));
                }
                tokens.push(Token::Number(number.to_string()));
            }
            c if c.is_ascii_alphabetic() => {
                let mut end = start;
                while let Some(&(i, n)) = chars.peek() {
                    if is_name_char(n) {
                        end = i + n.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(text[start..end].to_string()));
            }
            other => {
                return Err(FilterError(format!(
                    "unexpected {other:?} at character {}",
                    text[..start].chars().count() + 1
                )))
            }
        }
    }
    Ok(tokens)
}

/// A JSON string literal; the opening quote is consumed.
fn string_literal(
    text: &str,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    start: usize,
) -> Result<String, FilterError> {
    let mut escaped = false;
    for (i, c) in chars.by_ref() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return serde_json::from_str::<String>(&text[start..=i])
                .map_err(|e| FilterError(format!("bad string {}: {e}", &text[start..=i])));
        }
    }
    Err(FilterError("a string is not closed".into()))
}

impl Parser {
    fn new(text: &str) -> Result<Parser, FilterError> {
        if text.len() > MAX_FILTER_BYTES {
            return Err(FilterError(format!("longer than {MAX_FILTER_BYTES} bytes")));
        }
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err(FilterError("empty".into()));
        }
        Ok(Parser { tokens, at: 0 })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &Token) -> Result<(), FilterError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(FilterError(format!(
                "expected {} but found {}",
                describe(Some(token)),
                describe(self.peek())
            )))
        }
    }

    fn end(&self) -> Result<(), FilterError> {
        match self.peek() {
            None => Ok(()),
            Some(token) => Err(FilterError(format!(
                "unexpected {} after the end",
                describe(Some(token))
            ))),
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn or_expr(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut left = self.and_expr(depth)?;
        while self.keyword("or") {
            self.next();
            let right = self.and_expr(depth)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut left = self.unary(depth)?;
        while self.keyword("and") {
            self.next();
            let right = self.unary(depth)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Filter, FilterError> {
        if depth > MAX_DEPTH {
            return Err(FilterError(format!("nested deeper than {MAX_DEPTH}")));
        }
        if self.keyword("not") && self.tokens.get(self.at + 1) == Some(&Token::LParen) {
            self.next();
            self.next();
            let inner = self.or_expr(depth + 1)?;
            self.expect(&Token::RParen)?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.eat(&Token::LParen) {
            let inner = self.or_expr(depth + 1)?;
            self.expect(&Token::RParen)?;
            return Ok(inner);
        }
        let path = self.attr_path()?;
        if self.eat(&Token::LBracket) {
            if path.sub.is_some() {
                return Err(FilterError(
                    "a value filter applies to an attribute, not to a sub-attribute".into(),
                ));
            }
            let inner = self.or_expr(depth + 1)?;
            self.expect(&Token::RBracket)?;
            let mut inner = inner;
            // `emails[type eq "work"].value eq "x"`: the element must match both.
            if let Some(Token::SubAttr(sub)) = self.peek().cloned() {
                self.next();
                let element = AttrPath::new(&sub);
                inner = Filter::And(Box::new(inner), Box::new(self.attr_exp(element)?));
            }
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        self.attr_exp(path)
    }

    /// The operator and value after an attribute path.
    fn attr_exp(&mut self, path: AttrPath) -> Result<Filter, FilterError> {
        let op = match self.next() {
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("pr") => {
                return Ok(Filter::Present(path))
            }
            Some(Token::Word(word)) => CompareOp::parse(&word)
                .ok_or_else(|| FilterError(format!("{word:?} is not an operator")))?,
            other => {
                return Err(FilterError(format!(
                    "expected an operator after {} but found {}",
                    path_text(&path),
                    describe(other.as_ref())
                )))
            }
        };
        let value = match self.next() {
            Some(Token::Str(s)) => Value::String(s),
            Some(Token::Number(n)) => Value::Number(n),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Value::Null,
            other => {
                return Err(FilterError(format!(
                    "expected a value after {} but found {}",
                    op.as_str(),
                    describe(other.as_ref())
                )))
            }
        };
        Ok(Filter::Compare(path, op, value))
    }

    fn attr_path(&mut self) -> Result<AttrPath, FilterError> {
        match self.next() {
            Some(Token::Word(word)) => split_path(&word),
            other => Err(FilterError(format!(
                "expected an attribute but found {}",
                describe(other.as_ref())
            ))),
        }
    }
}

/// `urn:…:User:name.sub` → schema, name, sub. A URN holds dots (`2.0`), so the
/// schema ends at the last ':'.
fn split_path(word: &str) -> Result<AttrPath, FilterError> {
    let (schema, rest) = if word.len() > 4 && word[..4].eq_ignore_ascii_case("urn:") {
        match word.rfind(':') {
            Some(colon) => (Some(word[..colon].to_string()), &word[colon + 1..]),
            None => (None, word),
        }
    } else {
        (None, word)
    };
    let (name, sub) = match rest.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (rest, None),
    };
    let valid = |part: &str| {
        part.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$'))
    };
    if !valid(name) || sub.is_some_and(|s| !valid(s)) {
        return Err(FilterError(format!("{word:?} is not an attribute path")));
    }
    Ok(AttrPath {
        schema,
        name: name.to_string(),
        sub: sub.map(str::to_string),
    })
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&path_text(self))
    }
}

fn path_text(path: &AttrPath) -> String {
    let mut text = String::new();
    if let Some(schema) = &path.schema {
        text.push_str(schema);
        text.push(':');
    }
    text.push_str(&path.name);
    if let Some(sub) = &path.sub {
        text.push('.');
        text.push_str(sub);
    }
    text
}

fn describe(token: Option<&Token>) -> String {
    match token {
        None => "the end".into(),
        Some(Token::LParen) => "'('".into(),
        Some(Token::RParen) => "')'".into(),
        Some(Token::LBracket) => "'['".into(),
        Some(Token::RBracket) => "']'".into(),
        Some(Token::Word(w)) => format!("{w:?}"),
        Some(Token::SubAttr(s)) => format!("'.{s}'"),
        Some(Token::Str(s)) => format!("the string {s:?}"),
        Some(Token::Number(n)) => format!("the number {n}"),
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Value::Number(n) => f.write_str(n),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Null => f.write_str("null"),
        }
    }
}

impl fmt::Display for Filter {
    /// Written back in the grammar, every group parenthesised: parsing the
    /// text gives the same filter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::And(a, b) => write!(f, "({a} and {b})"),
            Filter::Or(a, b) => write!(f, "({a} or {b})"),
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::Present(path) => write!(f, "{} pr", path_text(path)),
            Filter::Compare(path, op, value) => {
                write!(f, "{} {} {value}", path_text(path), op.as_str())
            }
            Filter::ValuePath(path, inner) => write!(f, "{}[{inner}]", path_text(path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmp(name: &str, op: CompareOp, value: Value) -> Filter {
        Filter::Compare(AttrPath::new(name), op, value)
    }

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    #[test]
    fn terms_count_every_comparison() {
        let filter = parse_filter(
            r#"userName eq "a" or (emails[value co "x" or type pr] and not (active eq true))"#,
        )
        .unwrap();
        assert_eq!(filter.terms(), 5);
    }

    #[test]
    fn what_okta_and_entra_send() {
        assert_eq!(
            parse_filter(r#"userName eq "Alice@Example.com""#).unwrap(),
            cmp("userName", CompareOp::Eq, s("Alice@Example.com"))
        );
        assert_eq!(
            parse_filter(r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#).unwrap(),
            cmp(
                "externalId",
                CompareOp::Eq,
                s("0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef")
            )
        );
        assert_eq!(
            parse_filter(r#"emails[type eq "work"].value eq "a@b.example""#).unwrap(),
            Filter::ValuePath(
                AttrPath::new("emails"),
                Box::new(Filter::And(
                    Box::new(cmp("type", CompareOp::Eq, s("work"))),
                    Box::new(cmp("value", CompareOp::Eq, s("a@b.example")))
                ))
            )
        );
        assert_eq!(
            parse_filter(r#"(ActiVe eq true) AND (userName Sw "J")"#).unwrap(),
            Filter::And(
                Box::new(cmp("ActiVe", CompareOp::Eq, Value::Bool(true))),
                Box::new(cmp("userName", CompareOp::Sw, s("J")))
            )
        );
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let parsed = parse_filter(r#"a eq 1 or b eq 2 and not (c pr)"#).unwrap();
        assert_eq!(
            parsed,
            Filter::Or(
                Box::new(cmp("a", CompareOp::Eq, Value::Number("1".into()))),
                Box::new(Filter::And(
                    Box::new(cmp("b", CompareOp::Eq, Value::Number("2".into()))),
                    Box::new(Filter::Not(Box::new(Filter::Present(AttrPath::new("c")))))
                ))
            )
        );
    }

    #[test]
    fn urn_prefixed_and_dotted_paths() {
        let parsed = parse_filter(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m1""#,
        )
        .unwrap();
        let Filter::Compare(path, _, _) = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(
            path.schema.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert!(path.is("Manager", Some("VALUE")));
        let parsed = parse_filter(r#"name.familyName co "ar""#).unwrap();
        assert_eq!(
            parsed,
            Filter::Compare(
                AttrPath::with_sub("name", "familyName"),
                CompareOp::Co,
                s("ar")
            )
        );
    }

    #[test]
    fn every_operator_and_literal() {
        for op in ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"] {
            let parsed = parse_filter(&format!("meta.lastModified {op} \"2026-01-01T00:00:00Z\""));
            assert!(parsed.is_ok(), "{op}: {parsed:?}");
        }
        assert_eq!(
            parse_filter("x eq null").unwrap(),
            cmp("x", CompareOp::Eq, Value::Null)
        );
        assert_eq!(
            parse_filter("x gt -1.5e3").unwrap(),
            cmp("x", CompareOp::Gt, Value::Number("-1.5e3".into()))
        );
        assert_eq!(
            parse_filter(r#"x eq "quote \" and \\ and \u00e9""#).unwrap(),
            cmp("x", CompareOp::Eq, s("quote \" and \\ and é"))
        );
        assert_eq!(s("True").as_bool(), Some(true));
        assert_eq!(s("FALSE").as_bool(), Some(false));
    }

    #[test]
    fn mistakes_are_named() {
        for (filter, expected) in [
            ("", "empty"),
            ("userName", "expected an operator"),
            ("userName eq", "expected a value"),
            ("userName equals \"x\"", "is not an operator"),
            ("(userName eq \"x\"", "expected ')'"),
            ("userName eq \"x\" )", "after the end"),
            ("userName eq \"x", "not closed"),
            ("emails[type eq \"work\"", "expected ']'"),
            ("name.givenName[value eq \"x\"]", "not to a sub-attribute"),
            ("a eq 1 and", "expected an attribute"),
            ("a eq 1 # b", "unexpected '#'"),
            ("a eq 1.2.3", "not a number"),
        ] {
            let error = parse_filter(filter).unwrap_err();
            assert!(
                error.0.contains(expected),
                "{filter:?} gave {error:?}, expected {expected:?}"
            );
        }
        let deep = format!("{}a pr{}", "(".repeat(40), ")".repeat(40));
        assert!(parse_filter(&deep).unwrap_err().0.contains("nested deeper"));
        let long = format!("a eq \"{}\"", "x".repeat(MAX_FILTER_BYTES));
        assert!(parse_filter(&long).unwrap_err().0.contains("longer than"));
    }

    #[test]
    fn patch_paths() {
        assert_eq!(
            parse_path("members").unwrap(),
            PatchPath {
                attr: AttrPath::new("members"),
                filter: None,
                sub: None
            }
        );
        assert_eq!(
            parse_path(r#"members[value eq "2819c223"]"#).unwrap(),
            PatchPath {
                attr: AttrPath::new("members"),
                filter: Some(cmp("value", CompareOp::Eq, s("2819c223"))),
                sub: None
            }
        );
        assert_eq!(
            parse_path(r#"emails[type eq "work"].value"#).unwrap(),
            PatchPath {
                attr: AttrPath::new("emails"),
                filter: Some(cmp("type", CompareOp::Eq, s("work"))),
                sub: Some("value".into())
            }
        );
        assert_eq!(
            parse_path(r#"roles[primary eq "True"].display"#)
                .unwrap()
                .sub
                .as_deref(),
            Some("display")
        );
        let urn =
            parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")
                .unwrap();
        assert!(urn.attr.is("department", None));
        assert!(urn
            .attr
            .in_schema("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
        assert!(parse_path("name.givenName")
            .unwrap()
            .attr
            .is("name", Some("givenName")));
        assert!(parse_path("members extra").is_err());
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z][a-zA-Z0-9_-]{0,8}"
    }

    fn attr_path() -> impl Strategy<Value = AttrPath> {
        (
            prop::option::of(Just(
                "urn:ietf:params:scim:schemas:core:2.0:User".to_string(),
            )),
            name(),
            prop::option::of(name()),
        )
            .prop_map(|(schema, name, sub)| AttrPath { schema, name, sub })
            // Keywords and literals are not attribute names.
            .prop_filter("a keyword", |p| {
                !["and", "or", "not", "pr", "true", "false", "null"]
                    .iter()
                    .any(|k| p.name.eq_ignore_ascii_case(k))
            })
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<String>().prop_map(Value::String),
            (-1_000_000i64..1_000_000).prop_map(|n| Value::Number(n.to_string())),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ]
    }

    fn op() -> impl Strategy<Value = CompareOp> {
        prop_oneof![
            Just(CompareOp::Eq),
            Just(CompareOp::Ne),
            Just(CompareOp::Co),
            Just(CompareOp::Sw),
            Just(CompareOp::Ew),
            Just(CompareOp::Gt),
            Just(CompareOp::Ge),
            Just(CompareOp::Lt),
            Just(CompareOp::Le),
        ]
    }

    fn filter() -> impl Strategy<Value = Filter> {
        let leaf = prop_oneof![
            attr_path().prop_map(Filter::Present),
            (attr_path(), op(), value()).prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
        ];
        leaf.prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                inner.clone().prop_map(|f| Filter::Not(Box::new(f))),
                (
                    attr_path().prop_filter("no sub", |p| p.sub.is_none()),
                    inner
                )
                    .prop_map(|(p, f)| Filter::ValuePath(p, Box::new(f))),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_input_gives_a_filter_or_an_error(text in any::<String>()) {
            let _ = parse_filter(&text);
            let _ = parse_path(&text);
        }

        #[test]
        fn grammar_shaped_noise_never_panics(text in r#"[a-z\[\]\(\)"\. ]{0,64}"#) {
            let _ = parse_filter(&text);
            let _ = parse_path(&text);
        }

        #[test]
        fn a_written_filter_parses_back_to_itself(filter in filter()) {
            let text = filter.to_string();
            let parsed = parse_filter(&text);
            prop_assert_eq!(parsed.as_ref(), Ok(&filter), "{}", text);
        }
    }
}
