//! The FEEL subset that Zeebe processes use in conditions, mappings, correlation keys and timers.
//!
//! An expression starting with `=` is FEEL; anything else is a static string (as in Zeebe).
//! Supported: literals (numbers, "strings", `true`, `false`, `null`), variables and paths
//! (`order.customer.id`), `[lists]`, `{contexts: 1}`, comparisons (`= != < <= > >=`), `and`,
//! `or`, `not(..)`, `if .. then .. else ..`, `+ - * / **` (numbers; `+` also joins strings and adds
//! durations to dates), indexing (`items[1]`, from 1), and the functions `is defined`, `count`,
//! `sum`, `min`, `max`, `contains`, `string`, `number`, `date`, `date and time`, `duration`, `now`,
//! `today`. Comparisons and arithmetic with `null` give `null`; a condition that is not `true` does
//! not hold. Pure: `now()` and `today()` read the instant passed in [`Env`], never the clock.
//!
//! Why our own: the FEEL crates on crates.io (`dmntk-feel-evaluator`, `dsntk-*`) implement all of
//! DMN/FEEL with a large dependency tree (including an HTTP client for their Java/PMML evaluators)
//! and their own number and scope model; the engine needs this small subset with Zeebe's
//! conventions (`=` prefix, JSON variables, `null` in conditions) and no I/O.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Decimal),
    String(String),
    List(Vec<Value>),
    Context(BTreeMap<String, Value>),
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
    /// Days and time.
    Duration(TimeDelta),
    /// Years and months, in months.
    Months(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FeelError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, FeelError> {
    Err(FeelError(msg.into()))
}

/// Variables and the current instant.
pub struct Env<'a> {
    pub variables: &'a serde_json::Map<String, serde_json::Value>,
    pub now: DateTime<Utc>,
}

impl Value {
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Decimal::from_str(&n.to_string())
                .or_else(|_| Decimal::from_scientific(&n.to_string()))
                .map(Value::Number)
                .unwrap_or(Value::Null),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Context(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The JSON a variable holds after a mapping: temporal values as ISO 8601 strings.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => {
                let n = n.normalize();
                if n.scale() == 0 {
                    n.to_i64()
                        .map(serde_json::Value::from)
                        .unwrap_or_else(|| serde_json::Value::String(n.to_string()))
                } else {
                    n.to_f64()
                        .map(serde_json::Value::from)
                        .unwrap_or(serde_json::Value::Null)
                }
            }
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Context(c) => {
                serde_json::Value::Object(c.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Value::Date(d) => serde_json::Value::String(d.to_string()),
            Value::DateTime(d) => serde_json::Value::String(d.to_rfc3339()),
            Value::Duration(d) => serde_json::Value::String(format_duration(*d)),
            Value::Months(m) => serde_json::Value::String(format!("P{}Y{}M", m / 12, m % 12)),
        }
    }
}

pub fn format_duration(d: TimeDelta) -> String {
    let secs = d.num_seconds();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, (rest % 3600) / 60, rest % 60);
    let mut out = String::from(if secs < 0 { "-P" } else { "P" });
    if days != 0 {
        out.push_str(&format!("{}D", days.abs()));
    }
    out.push('T');
    out.push_str(&format!("{}H{}M{}S", h.abs(), m.abs(), s.abs()));
    out
}

/// Parses an ISO 8601 duration: `P1DT2H30M`, `PT15M`, `PT0.5S`, `P2W` (days and time), or
/// `P1Y6M` (years and months).
pub fn parse_duration(text: &str) -> Result<Value, FeelError> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let body = body
        .strip_prefix('P')
        .ok_or_else(|| FeelError(format!("\"{text}\" is not an ISO 8601 duration")))?;
    let (date_part, time_part) = match body.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    let mut months = 0i64;
    let mut millis = 0i64;
    let mut any = false;
    let mut number = String::new();
    for c in date_part.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number
            .parse()
            .map_err(|_| FeelError(format!("\"{text}\" is not an ISO 8601 duration")))?;
        number.clear();
        any = true;
        let (total, per_unit) = match c {
            'Y' => (&mut months, 12),
            'M' => (&mut months, 1),
            'W' => (&mut millis, 7 * 86_400_000),
            'D' => (&mut millis, 86_400_000),
            _ => return err(format!("\"{text}\" is not an ISO 8601 duration")),
        };
        *total = n
            .checked_mul(per_unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| too_long(text))?;
    }
    if let Some(t) = time_part {
        for c in t.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let n = Decimal::from_str(&number)
                .map_err(|_| FeelError(format!("\"{text}\" is not an ISO 8601 duration")))?;
            number.clear();
            any = true;
            let unit = match c {
                'H' => 3_600_000,
                'M' => 60_000,
                'S' => 1_000,
                _ => return err(format!("\"{text}\" is not an ISO 8601 duration")),
            };
            millis = n
                .checked_mul(Decimal::from(unit))
                .and_then(|v| v.to_i64())
                .and_then(|v| millis.checked_add(v))
                .ok_or_else(|| too_long(text))?;
        }
    }
    if !any || !number.is_empty() {
        return err(format!("\"{text}\" is not an ISO 8601 duration"));
    }
    let sign = if negative { -1 } else { 1 };
    match (months, millis) {
        (m, 0) if m != 0 => Ok(Value::Months(sign * m)),
        (0, ms) => TimeDelta::try_milliseconds(sign * ms)
            .map(Value::Duration)
            .ok_or_else(|| too_long(text)),
        _ => err(format!("\"{text}\" mixes years/months with days/time")),
    }
}

fn too_long(text: &str) -> FeelError {
    FeelError(format!("\"{text}\" is too long a duration"))
}

/// `m` months as chrono's (non-negative, within `u32`), or `None`.
fn months(m: i64) -> Option<chrono::Months> {
    u32::try_from(m.max(0)).ok().map(chrono::Months::new)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Decimal),
    Str(String),
    Name(String),
    Op(&'static str),
    End,
}

const MULTIWORD: [&str; 2] = ["date and time", "is defined"];
const OPS: [&str; 18] = [
    "**", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "(", ")", "[", "]", "{", "}", ",",
];

fn lex(src: &str) -> Result<Vec<Tok>, FeelError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Tok::Num(
                Decimal::from_str(&text).map_err(|_| FeelError(format!("bad number {text}")))?,
            ));
        } else if c == '"' {
            i += 1;
            let mut s = String::new();
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                    s.push(match chars[i] {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    s.push(chars[i]);
                }
                i += 1;
            }
            if i >= chars.len() {
                return err("unterminated string");
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if c.is_alphabetic() || c == '_' || c == '?' {
            let rest: String = chars[i..].iter().collect();
            if let Some(word) = MULTIWORD.iter().find(|w| {
                rest.starts_with(**w)
                    && !rest[w.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            }) {
                out.push(Tok::Name((*word).to_owned()));
                i += word.chars().count();
                continue;
            }
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '?')
            {
                i += 1;
            }
            out.push(Tok::Name(chars[start..i].iter().collect()));
        } else if c == '.' {
            out.push(Tok::Op("."));
            i += 1;
        } else if c == ':' {
            out.push(Tok::Op(":"));
            i += 1;
        } else {
            let rest: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            match OPS.iter().find(|o| rest.starts_with(**o)) {
                Some(o) => {
                    out.push(Tok::Op(o));
                    i += o.len();
                }
                None => return err(format!("unexpected character '{c}'")),
            }
        }
    }
    out.push(Tok::End);
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Lit(Value),
    Var(String),
    Path(Box<Node>, String),
    Index(Box<Node>, Box<Node>),
    List(Vec<Node>),
    Context(Vec<(String, Node)>),
    Call(String, Vec<Node>),
    Neg(Box<Node>),
    Bin(&'static str, Box<Node>, Box<Node>),
    If(Box<Node>, Box<Node>, Box<Node>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }
    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Name(n) if n == w)
    }
    fn expect(&mut self, op: &str) -> Result<(), FeelError> {
        if self.is_op(op) {
            self.pos += 1;
            Ok(())
        } else {
            err(format!("expected '{op}', found {:?}", self.peek()))
        }
    }
    fn expect_word(&mut self, w: &str) -> Result<(), FeelError> {
        if self.is_word(w) {
            self.pos += 1;
            Ok(())
        } else {
            err(format!("expected '{w}'"))
        }
    }

    fn expr(&mut self) -> Result<Node, FeelError> {
        if self.is_word("if") {
            self.pos += 1;
            let c = self.expr()?;
            self.expect_word("then")?;
            let a = self.expr()?;
            self.expect_word("else")?;
            let b = self.expr()?;
            return Ok(Node::If(Box::new(c), Box::new(a), Box::new(b)));
        }
        let mut left = self.conjunction()?;
        while self.is_word("or") {
            self.pos += 1;
            left = Node::Bin("or", Box::new(left), Box::new(self.conjunction()?));
        }
        Ok(left)
    }
    fn conjunction(&mut self) -> Result<Node, FeelError> {
        let mut left = self.comparison()?;
        while self.is_word("and") {
            self.pos += 1;
            left = Node::Bin("and", Box::new(left), Box::new(self.comparison()?));
        }
        Ok(left)
    }
    fn comparison(&mut self) -> Result<Node, FeelError> {
        let left = self.additive()?;
        for op in ["=", "!=", "<=", ">=", "<", ">"] {
            if self.is_op(op) {
                self.pos += 1;
                return Ok(Node::Bin(op, Box::new(left), Box::new(self.additive()?)));
            }
        }
        Ok(left)
    }
    fn additive(&mut self) -> Result<Node, FeelError> {
        let mut left = self.multiplicative()?;
        while let Some(op) = ["+", "-"].into_iter().find(|o| self.is_op(o)) {
            self.pos += 1;
            left = Node::Bin(op, Box::new(left), Box::new(self.multiplicative()?));
        }
        Ok(left)
    }
    fn multiplicative(&mut self) -> Result<Node, FeelError> {
        let mut left = self.power()?;
        while let Some(op) = ["*", "/"].into_iter().find(|o| self.is_op(o)) {
            self.pos += 1;
            left = Node::Bin(op, Box::new(left), Box::new(self.power()?));
        }
        Ok(left)
    }
    fn power(&mut self) -> Result<Node, FeelError> {
        let mut left = self.unary()?;
        while self.is_op("**") {
            self.pos += 1;
            left = Node::Bin("**", Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Node, FeelError> {
        if self.is_op("-") {
            self.pos += 1;
            return Ok(Node::Neg(Box::new(self.unary()?)));
        }
        self.postfix()
    }
    fn postfix(&mut self) -> Result<Node, FeelError> {
        let mut node = self.primary()?;
        loop {
            if self.is_op(".") {
                self.pos += 1;
                match self.next() {
                    Tok::Name(n) => node = Node::Path(Box::new(node), n),
                    other => return err(format!("expected a name after '.', found {other:?}")),
                }
            } else if self.is_op("[") {
                self.pos += 1;
                let index = self.expr()?;
                self.expect("]")?;
                node = Node::Index(Box::new(node), Box::new(index));
            } else {
                return Ok(node);
            }
        }
    }
    fn primary(&mut self) -> Result<Node, FeelError> {
        match self.next() {
            Tok::Num(n) => Ok(Node::Lit(Value::Number(n))),
            Tok::Str(s) => Ok(Node::Lit(Value::String(s))),
            Tok::Name(n) if n == "true" => Ok(Node::Lit(Value::Bool(true))),
            Tok::Name(n) if n == "false" => Ok(Node::Lit(Value::Bool(false))),
            Tok::Name(n) if n == "null" => Ok(Node::Lit(Value::Null)),
            Tok::Name(n) if self.is_op("(") => {
                self.pos += 1;
                let mut args = Vec::new();
                if !self.is_op(")") {
                    loop {
                        args.push(self.expr()?);
                        if self.is_op(",") {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                }
                self.expect(")")?;
                Ok(Node::Call(n, args))
            }
            Tok::Name(n) if ["and", "or", "then", "else"].contains(&n.as_str()) => {
                err(format!("unexpected '{n}'"))
            }
            Tok::Name(n) => Ok(Node::Var(n)),
            Tok::Op("(") => {
                let inner = self.expr()?;
                self.expect(")")?;
                Ok(inner)
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                if !self.is_op("]") {
                    loop {
                        items.push(self.expr()?);
                        if self.is_op(",") {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                }
                self.expect("]")?;
                Ok(Node::List(items))
            }
            Tok::Op("{") => {
                let mut entries = Vec::new();
                if !self.is_op("}") {
                    loop {
                        let key = match self.next() {
                            Tok::Name(n) | Tok::Str(n) => n,
                            other => {
                                return err(format!("expected a context key, found {other:?}"))
                            }
                        };
                        self.expect(":")?;
                        entries.push((key, self.expr()?));
                        if self.is_op(",") {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                }
                self.expect("}")?;
                Ok(Node::Context(entries))
            }
            other => err(format!("unexpected {other:?}")),
        }
    }
}

/// A parsed expression: FEEL (source began with `=`) or a static string.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    source: String,
    node: Node,
}

impl Expression {
    pub fn parse(source: &str) -> Result<Expression, FeelError> {
        let node = match source.trim_start().strip_prefix('=') {
            Some(feel) => {
                let mut p = Parser {
                    toks: lex(feel)?,
                    pos: 0,
                };
                let node = p.expr()?;
                if p.peek() != &Tok::End {
                    return err(format!("unexpected {:?} after the expression", p.peek()));
                }
                node
            }
            None => Node::Lit(Value::String(source.to_owned())),
        };
        Ok(Expression {
            source: source.to_owned(),
            node,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn evaluate(&self, env: &Env) -> Result<Value, FeelError> {
        eval(&self.node, env)
    }

    /// Condition semantics: only `true` holds (`null` and `false` do not); other types are errors.
    pub fn holds(&self, env: &Env) -> Result<bool, FeelError> {
        match self.evaluate(env)? {
            Value::Bool(b) => Ok(b),
            Value::Null => Ok(false),
            other => err(format!(
                "condition '{}' gave {other:?}, not a boolean",
                self.source
            )),
        }
    }
}

fn lookup(env: &Env, name: &str) -> Option<Value> {
    env.variables.get(name).map(Value::from_json)
}

fn defined(node: &Node, env: &Env) -> bool {
    match node {
        Node::Var(n) => env.variables.contains_key(n),
        Node::Path(inner, key) => {
            defined(inner, env)
                && matches!(eval(inner, env), Ok(Value::Context(c)) if c.contains_key(key))
        }
        other => !matches!(eval(other, env), Ok(Value::Null) | Err(_)),
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Some(x.cmp(y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::DateTime(x), Value::DateTime(y)) => Some(x.cmp(y)),
        (Value::Duration(x), Value::Duration(y)) => Some(x.cmp(y)),
        (Value::Months(x), Value::Months(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

fn arithmetic(op: &str, a: Value, b: Value) -> Result<Value, FeelError> {
    use Value::*;
    Ok(match (op, a, b) {
        (_, Null, _) | (_, _, Null) => Null,
        ("+", Number(x), Number(y)) => x.checked_add(y).map(Number).unwrap_or(Null),
        ("-", Number(x), Number(y)) => x.checked_sub(y).map(Number).unwrap_or(Null),
        ("*", Number(x), Number(y)) => x.checked_mul(y).map(Number).unwrap_or(Null),
        ("/", Number(x), Number(y)) => x.checked_div(y).map(Number).unwrap_or(Null),
        ("**", Number(x), Number(y)) => match y.to_i64() {
            Some(e) if y.fract().is_zero() && (0..=64).contains(&e) => (0..e)
                .try_fold(Decimal::ONE, |acc, _| acc.checked_mul(x))
                .map(Number)
                .unwrap_or(Null),
            _ => Null,
        },
        ("+", String(x), String(y)) => String(x + &y),
        // Out of range (past chrono's dates or durations) is null, as for numbers.
        ("+", Date(d), Duration(t)) | ("+", Duration(t), Date(d)) => {
            TimeDelta::try_days(t.num_days())
                .and_then(|t| d.checked_add_signed(t))
                .map(Date)
                .unwrap_or(Null)
        }
        ("-", Date(d), Duration(t)) => TimeDelta::try_days(t.num_days())
            .and_then(|t| d.checked_sub_signed(t))
            .map(Date)
            .unwrap_or(Null),
        ("+", DateTime(d), Duration(t)) | ("+", Duration(t), DateTime(d)) => {
            d.checked_add_signed(t).map(DateTime).unwrap_or(Null)
        }
        ("-", DateTime(d), Duration(t)) => d.checked_sub_signed(t).map(DateTime).unwrap_or(Null),
        ("-", DateTime(x), DateTime(y)) => Duration(x.signed_duration_since(y)),
        ("+", Duration(x), Duration(y)) => x.checked_add(&y).map(Duration).unwrap_or(Null),
        ("-", Duration(x), Duration(y)) => x.checked_sub(&y).map(Duration).unwrap_or(Null),
        ("*", Duration(x), Number(n)) | ("*", Number(n), Duration(x)) => n
            .to_i32()
            .and_then(|n| x.checked_mul(n))
            .map(Duration)
            .unwrap_or(Null),
        ("+", Months(x), Months(y)) => x.checked_add(y).map(Months).unwrap_or(Null),
        ("+", Date(d), Months(m)) => months(m)
            .and_then(|m| d.checked_add_months(m))
            .map(Date)
            .unwrap_or(Null),
        ("+", DateTime(d), Months(m)) => months(m)
            .and_then(|m| d.checked_add_months(m))
            .map(DateTime)
            .unwrap_or(Null),
        (op, x, y) => return err(format!("cannot apply '{op}' to {x:?} and {y:?}")),
    })
}

fn call(name: &str, args: &[Node], env: &Env) -> Result<Value, FeelError> {
    if name == "is defined" {
        return match args {
            [a] => Ok(Value::Bool(defined(a, env))),
            _ => err("is defined() takes one argument"),
        };
    }
    let values: Vec<Value> = args
        .iter()
        .map(|a| eval(a, env))
        .collect::<Result<_, _>>()?;
    let one = |f: &str| -> Result<&Value, FeelError> {
        match values.as_slice() {
            [v] => Ok(v),
            _ => err(format!("{f}() takes one argument")),
        }
    };
    let numbers = |f: &str| -> Result<Vec<Decimal>, FeelError> {
        let list = match values.as_slice() {
            [Value::List(l)] => l.clone(),
            many => many.to_vec(),
        };
        list.into_iter()
            .map(|v| match v {
                Value::Number(n) => Ok(n),
                other => err(format!("{f}() needs numbers, got {other:?}")),
            })
            .collect()
    };
    Ok(match name {
        "not" => match one("not")? {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Null,
        },
        "count" => match one("count")? {
            Value::List(l) => Value::Number(Decimal::from(l.len())),
            _ => Value::Null,
        },
        "sum" => numbers("sum")?
            .into_iter()
            .try_fold(Decimal::ZERO, |acc, n| acc.checked_add(n))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        "min" => numbers("min")?
            .into_iter()
            .min()
            .map(Value::Number)
            .unwrap_or(Value::Null),
        "max" => numbers("max")?
            .into_iter()
            .max()
            .map(Value::Number)
            .unwrap_or(Value::Null),
        "contains" => match values.as_slice() {
            [Value::String(s), Value::String(part)] => Value::Bool(s.contains(part.as_str())),
            [Value::List(l), v] => Value::Bool(l.contains(v)),
            _ => Value::Null,
        },
        "string" => match one("string")? {
            Value::String(s) => Value::String(s.clone()),
            Value::Null => Value::Null,
            other => match other.to_json() {
                serde_json::Value::String(s) => Value::String(s),
                j => Value::String(j.to_string()),
            },
        },
        "number" => match one("number")? {
            Value::String(s) => Decimal::from_str(s)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Value::Number(n) => Value::Number(*n),
            _ => Value::Null,
        },
        "date" => match one("date")? {
            Value::String(s) => NaiveDate::from_str(s)
                .map(Value::Date)
                .map_err(|_| FeelError(format!("\"{s}\" is not a date")))?,
            Value::DateTime(d) => Value::Date(d.date_naive()),
            _ => Value::Null,
        },
        "date and time" => match one("date and time")? {
            Value::String(s) => DateTime::parse_from_rfc3339(s)
                .or_else(|_| DateTime::parse_from_rfc3339(&format!("{s}Z")))
                .map(Value::DateTime)
                .map_err(|_| FeelError(format!("\"{s}\" is not a date and time")))?,
            _ => Value::Null,
        },
        "duration" => match one("duration")? {
            Value::String(s) => parse_duration(s)?,
            _ => Value::Null,
        },
        "now" => Value::DateTime(env.now.fixed_offset()),
        "today" => Value::Date(env.now.date_naive()),
        other => return err(format!("unknown function {other}()")),
    })
}

fn eval(node: &Node, env: &Env) -> Result<Value, FeelError> {
    Ok(match node {
        Node::Lit(v) => v.clone(),
        Node::Var(n) => lookup(env, n).unwrap_or(Value::Null),
        Node::Path(inner, key) => match eval(inner, env)? {
            Value::Context(c) => c.get(key).cloned().unwrap_or(Value::Null),
            Value::List(items) => Value::List(
                items
                    .into_iter()
                    .map(|i| match i {
                        Value::Context(c) => c.get(key).cloned().unwrap_or(Value::Null),
                        _ => Value::Null,
                    })
                    .collect(),
            ),
            _ => Value::Null,
        },
        Node::Index(list, index) => match (eval(list, env)?, eval(index, env)?) {
            (Value::List(items), Value::Number(n)) => {
                let i = n.to_i64().unwrap_or(0);
                let len = items.len() as i64;
                let at = if i > 0 { i - 1 } else { len + i };
                if (0..len).contains(&at) {
                    items[at as usize].clone()
                } else {
                    Value::Null
                }
            }
            _ => Value::Null,
        },
        Node::List(items) => Value::List(
            items
                .iter()
                .map(|i| eval(i, env))
                .collect::<Result<_, _>>()?,
        ),
        Node::Context(entries) => Value::Context(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), eval(v, env)?)))
                .collect::<Result<_, FeelError>>()?,
        ),
        Node::Call(name, args) => call(name, args, env)?,
        Node::Neg(inner) => match eval(inner, env)? {
            Value::Number(n) => Value::Number(-n),
            Value::Duration(d) => Value::Duration(-d),
            _ => Value::Null,
        },
        Node::If(c, a, b) => {
            if truth(&eval(c, env)?) == Some(true) {
                eval(a, env)?
            } else {
                eval(b, env)?
            }
        }
        Node::Bin("and", a, b) => match (truth(&eval(a, env)?), truth(&eval(b, env)?)) {
            (Some(false), _) | (_, Some(false)) => Value::Bool(false),
            (Some(true), Some(true)) => Value::Bool(true),
            _ => Value::Null,
        },
        Node::Bin("or", a, b) => match (truth(&eval(a, env)?), truth(&eval(b, env)?)) {
            (Some(true), _) | (_, Some(true)) => Value::Bool(true),
            (Some(false), Some(false)) => Value::Bool(false),
            _ => Value::Null,
        },
        Node::Bin(op @ ("=" | "!="), a, b) => {
            let (x, y) = (eval(a, env)?, eval(b, env)?);
            let equal = match (&x, &y) {
                (Value::Null, Value::Null) => Some(true),
                (Value::Null, _) | (_, Value::Null) => Some(false),
                _ => match compare(&x, &y) {
                    Some(o) => Some(o == std::cmp::Ordering::Equal),
                    None if std::mem::discriminant(&x) == std::mem::discriminant(&y) => {
                        Some(x == y)
                    }
                    None => None,
                },
            };
            match equal {
                Some(e) => Value::Bool(if *op == "=" { e } else { !e }),
                None => Value::Null,
            }
        }
        Node::Bin(op @ ("<" | "<=" | ">" | ">="), a, b) => {
            match compare(&eval(a, env)?, &eval(b, env)?) {
                Some(o) => Value::Bool(match *op {
                    "<" => o.is_lt(),
                    "<=" => o.is_le(),
                    ">" => o.is_gt(),
                    _ => o.is_ge(),
                }),
                None => Value::Null,
            }
        }
        Node::Bin(op, a, b) => arithmetic(op, eval(a, env)?, eval(b, env)?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn vars() -> serde_json::Map<String, serde_json::Value> {
        json!({
            "total": 120.5, "customer": { "tier": "gold", "id": "C-1" }, "items": [ { "qty": 2 }, { "qty": 3 } ],
            "approved": true, "nothing": null, "due": "2026-12-01"
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn ev(src: &str) -> Value {
        let v = vars();
        let env = Env {
            variables: &v,
            now: DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
                .unwrap()
                .to_utc(),
        };
        Expression::parse(src).unwrap().evaluate(&env).unwrap()
    }

    fn n(x: i64) -> Value {
        Value::Number(Decimal::from(x))
    }

    #[test]
    fn conditions_and_paths() {
        assert_eq!(
            ev("=total > 100 and customer.tier = \"gold\""),
            Value::Bool(true)
        );
        assert_eq!(ev("=not(approved) or total < 10"), Value::Bool(false));
        assert_eq!(ev("=missing > 3"), Value::Null);
        assert_eq!(ev("=is defined(customer.id)"), Value::Bool(true));
        assert_eq!(ev("=is defined(customer.address)"), Value::Bool(false));
        assert_eq!(ev("=is defined(nothing)"), Value::Bool(true));
        assert_eq!(ev("=nothing = null"), Value::Bool(true));
        assert_eq!(
            ev("=if total > 100 then \"big\" else \"small\""),
            Value::String("big".into())
        );
    }

    #[test]
    fn lists_contexts_and_functions() {
        assert_eq!(ev("=sum(items.qty)"), n(5));
        assert_eq!(ev("=count(items)"), n(2));
        assert_eq!(ev("=items[2].qty"), n(3));
        assert_eq!(ev("=items[-1].qty"), n(3));
        assert_eq!(ev("=contains(customer.id, \"C-\")"), Value::Bool(true));
        assert_eq!(ev("={a: 1, \"b c\": [1, 2]}.a"), n(1));
        assert_eq!(
            ev("=\"order-\" + customer.id"),
            Value::String("order-C-1".into())
        );
        assert_eq!(ev("=2 ** 10"), n(1024));
        assert_eq!(ev("plain text"), Value::String("plain text".into()));
    }

    #[test]
    fn dates_durations_and_now() {
        assert_eq!(
            ev("=date(due) + duration(\"P2D\")"),
            Value::Date(NaiveDate::from_ymd_opt(2026, 12, 3).unwrap())
        );
        assert_eq!(
            ev("=now() + duration(\"PT15M\")").to_json(),
            json!("2026-11-22T10:15:00+00:00")
        );
        assert_eq!(ev("=date(due) > today()"), Value::Bool(true));
        assert_eq!(
            ev("=duration(\"P1DT2H\") > duration(\"PT25H\")"),
            Value::Bool(true)
        );
        assert_eq!(parse_duration("P1Y6M").unwrap(), Value::Months(18));
        assert!(parse_duration("P1Y2D").is_err());
        assert!(parse_duration("15M").is_err());
    }

    #[test]
    fn out_of_range_dates_durations_and_sums_are_errors_or_null_never_a_panic() {
        for text in [
            "P9223372036854775807D",
            "P999999999999999999W",
            "PT9999999999999999999999H",
            "P9223372036854775807Y",
        ] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
        assert_eq!(ev("=date(due) + duration(\"P99999999999D\")"), Value::Null);
        assert_eq!(ev("=now() + duration(\"P99999999999D\")"), Value::Null);
        assert_eq!(ev("=duration(\"P99999999999D\") * 99999"), Value::Null);
        assert_eq!(ev("=date(due) + duration(\"P99999999Y\")"), Value::Null);
        assert_eq!(
            ev("=sum([79228162514264337593543950335, 79228162514264337593543950335])"),
            Value::Null
        );
    }

    #[test]
    fn syntax_errors_are_errors() {
        for bad in ["=total >", "=(1 + 2", "=\"open", "=a ? b", "=1 2"] {
            assert!(Expression::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_duration_text_parses_or_is_refused(text in "-?P[0-9]{0,22}[YMWD]?(T[0-9.]{0,24}[HMS]?)?") {
            let _ = parse_duration(&text);
        }

        #[test]
        fn integer_arithmetic_matches(a in -10_000i64..10_000, b in -10_000i64..10_000, c in 1i64..100) {
            prop_assert_eq!(ev(&format!("={a} + {b} * {c} - ({a} - {b})")), n(a + b * c - (a - b)));
            prop_assert_eq!(ev(&format!("={a} < {b}")), Value::Bool(a < b));
        }

        #[test]
        fn any_text_parses_or_fails_without_panicking(src in "=\\PC{0,30}") {
            let v = vars();
            let env = Env { variables: &v, now: Utc::now() };
            if let Ok(e) = Expression::parse(&src) {
                let _ = e.evaluate(&env);
            }
        }
    }
}
