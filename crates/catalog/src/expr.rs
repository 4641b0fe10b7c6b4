//! Rule expressions: the small language of `when` and `then` in configuration rules.
//!
//! ```text
//! bandwidth >= 500 and sla in ['gold', 'platinum'] or not managed
//! ```
//! Literals: decimal numbers, 'single' or "double" quoted strings, `true`, `false`, lists
//! `[a, b]`. Identifiers name characteristics of the rule's offering. Operators, loosest first:
//! `or`, `and`, `not`, comparisons (`== != < <= > >= in`), `+ -`, `* /`, unary `-`.
//! A characteristic without a value is *missing*: arithmetic on it is missing, and every
//! comparison involving it is false (so `x != 1` is false while `x` is unset). Pure: parsing and
//! evaluation do no I/O.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Num(Decimal),
    Str(String),
    Bool(bool),
    List(Vec<Value>),
    Missing,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Num(n) => write!(f, "{}", n.normalize()),
            Value::Str(s) => write!(f, "'{s}'"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::List(items) => {
                write!(f, "[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{v}")?;
                }
                write!(f, "]")
            }
            Value::Missing => write!(f, "(not set)"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Lit(Value),
    Ident(String),
    List(Vec<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    Bin(BinOp, Box<Node>, Box<Node>),
}

/// A parsed expression and the characteristics it reads. Serialized as its source text, and
/// parsed again when deserialized.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
    root: Node,
    idents: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {position}: {message}")]
pub struct ParseError {
    pub position: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Decimal),
    Str(String),
    Ident(String),
    Op(&'static str),
    End,
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |position: usize, message: String| ParseError { position, message };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let n =
                Decimal::from_str(&text).map_err(|_| err(start, format!("bad number {text}")))?;
            out.push((start, Tok::Num(n)));
        } else if c == '\'' || c == '"' {
            i += 1;
            let mut s = String::new();
            while i < chars.len() && chars[i] != c {
                s.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err(err(start, "unterminated string".into()));
            }
            i += 1;
            out.push((start, Tok::Str(s)));
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((start, Tok::Ident(chars[start..i].iter().collect())));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = ["==", "!=", "<=", ">="].into_iter().find(|o| *o == two);
            let op = match op {
                Some(o) => {
                    i += 2;
                    o
                }
                None => {
                    i += 1;
                    match c {
                        '<' => "<",
                        '>' => ">",
                        '+' => "+",
                        '-' => "-",
                        '*' => "*",
                        '/' => "/",
                        '(' => "(",
                        ')' => ")",
                        '[' => "[",
                        ']' => "]",
                        ',' => ",",
                        other => return Err(err(start, format!("unexpected character '{other}'"))),
                    }
                }
            };
            out.push((start, Tok::Op(op)));
        }
    }
    out.push((chars.len(), Tok::End));
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    idents: BTreeSet<String>,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].1
    }

    fn at(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].0
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            position: self.at(),
            message: message.into(),
        })
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w == word)
    }

    fn op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    fn expect(&mut self, op: &str) -> Result<(), ParseError> {
        if self.op(op) {
            self.pos += 1;
            Ok(())
        } else {
            self.error(format!("expected '{op}'"))
        }
    }

    fn or(&mut self) -> Result<Node, ParseError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            left = Node::Bin(BinOp::Or, Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, ParseError> {
        let mut left = self.not()?;
        while self.keyword("and") {
            self.pos += 1;
            left = Node::Bin(BinOp::And, Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Node, ParseError> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Node::Not(Box::new(self.not()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, ParseError> {
        let left = self.sum()?;
        let op = match self.peek() {
            Tok::Op("==") => BinOp::Eq,
            Tok::Op("!=") => BinOp::Ne,
            Tok::Op("<") => BinOp::Lt,
            Tok::Op("<=") => BinOp::Le,
            Tok::Op(">") => BinOp::Gt,
            Tok::Op(">=") => BinOp::Ge,
            Tok::Ident(w) if w == "in" => BinOp::In,
            _ => return Ok(left),
        };
        self.pos += 1;
        Ok(Node::Bin(op, Box::new(left), Box::new(self.sum()?)))
    }

    fn sum(&mut self) -> Result<Node, ParseError> {
        let mut left = self.product()?;
        loop {
            let op = match self.peek() {
                Tok::Op("+") => BinOp::Add,
                Tok::Op("-") => BinOp::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            left = Node::Bin(op, Box::new(left), Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Node, ParseError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Op("*") => BinOp::Mul,
                Tok::Op("/") => BinOp::Div,
                _ => return Ok(left),
            };
            self.pos += 1;
            left = Node::Bin(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        if self.op("-") {
            self.pos += 1;
            return Ok(Node::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        match self.bump() {
            Tok::Num(n) => Ok(Node::Lit(Value::Num(n))),
            Tok::Str(s) => Ok(Node::Lit(Value::Str(s))),
            Tok::Ident(w) if w == "true" => Ok(Node::Lit(Value::Bool(true))),
            Tok::Ident(w) if w == "false" => Ok(Node::Lit(Value::Bool(false))),
            Tok::Ident(w) if ["and", "or", "not", "in"].contains(&w.as_str()) => {
                self.pos -= 1;
                self.error(format!("unexpected keyword '{w}'"))
            }
            Tok::Ident(w) => {
                self.idents.insert(w.clone());
                Ok(Node::Ident(w))
            }
            Tok::Op("(") => {
                let inner = self.or()?;
                self.expect(")")?;
                Ok(inner)
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                if !self.op("]") {
                    loop {
                        items.push(self.or()?);
                        if self.op(",") {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                }
                self.expect("]")?;
                Ok(Node::List(items))
            }
            Tok::End => {
                self.pos -= 1;
                self.error("unexpected end of expression")
            }
            Tok::Op(o) => {
                self.pos -= 1;
                self.error(format!("unexpected '{o}'"))
            }
        }
    }
}

impl Expr {
    pub fn parse(source: &str) -> Result<Expr, ParseError> {
        let mut p = Parser {
            toks: lex(source)?,
            pos: 0,
            idents: BTreeSet::new(),
        };
        let root = p.or()?;
        if p.peek() != &Tok::End {
            return p.error("unexpected text after the expression");
        }
        Ok(Expr {
            source: source.to_owned(),
            root,
            idents: p.idents,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The characteristics the expression reads.
    pub fn identifiers(&self) -> &BTreeSet<String> {
        &self.idents
    }

    /// Evaluates with `lookup` giving each characteristic's value ([`Value::Missing`] if unset).
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Value) -> Result<Value, EvalError> {
        eval(&self.root, lookup)
    }

    /// Evaluates to a truth value; anything but `true` is false, a type error is an error.
    pub fn holds(&self, lookup: &dyn Fn(&str) -> Value) -> Result<bool, EvalError> {
        match self.eval(lookup)? {
            Value::Bool(b) => Ok(b),
            Value::Missing => Ok(false),
            other => Err(EvalError(format!(
                "'{}' gives {other}, not true or false",
                self.source
            ))),
        }
    }
}

impl serde::Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        Expr::parse(&source)
            .map_err(|e| serde::de::Error::custom(format!("expression '{source}' {e}")))
    }
}

fn truth(v: &Value) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Missing => Ok(false),
        other => Err(EvalError(format!("{other} is not true or false"))),
    }
}

fn compare(op: BinOp, a: &Value, b: &Value) -> Result<bool, EvalError> {
    use std::cmp::Ordering;
    if matches!(a, Value::Missing) || matches!(b, Value::Missing) {
        return Ok(false);
    }
    if op == BinOp::In {
        return match b {
            Value::List(items) => Ok(items.iter().any(|i| i == a)),
            other => Err(EvalError(format!("'in' needs a list, got {other}"))),
        };
    }
    let ord: Option<Ordering> = match (a, b) {
        (Value::Num(x), Value::Num(y)) => Some(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    };
    match (op, ord) {
        (BinOp::Eq, o) => Ok(o == Some(Ordering::Equal)),
        (BinOp::Ne, o) => Ok(o != Some(Ordering::Equal)),
        (_, None) => Err(EvalError(format!("cannot order {a} and {b}"))),
        (BinOp::Lt, Some(o)) => Ok(o == Ordering::Less),
        (BinOp::Le, Some(o)) => Ok(o != Ordering::Greater),
        (BinOp::Gt, Some(o)) => Ok(o == Ordering::Greater),
        (BinOp::Ge, Some(o)) => Ok(o != Ordering::Less),
        _ => Err(EvalError("not a comparison".into())),
    }
}

fn eval(node: &Node, lookup: &dyn Fn(&str) -> Value) -> Result<Value, EvalError> {
    Ok(match node {
        Node::Lit(v) => v.clone(),
        Node::Ident(name) => lookup(name),
        Node::List(items) => Value::List(
            items
                .iter()
                .map(|i| eval(i, lookup))
                .collect::<Result<_, _>>()?,
        ),
        Node::Not(inner) => match eval(inner, lookup)? {
            Value::Missing => Value::Missing,
            v => Value::Bool(!truth(&v)?),
        },
        Node::Neg(inner) => match eval(inner, lookup)? {
            Value::Num(n) => Value::Num(-n),
            Value::Missing => Value::Missing,
            other => return Err(EvalError(format!("cannot negate {other}"))),
        },
        Node::Bin(BinOp::And, a, b) => {
            // Short-circuit: a false left side decides.
            if !truth(&eval(a, lookup)?)? {
                Value::Bool(false)
            } else {
                Value::Bool(truth(&eval(b, lookup)?)?)
            }
        }
        Node::Bin(BinOp::Or, a, b) => {
            if truth(&eval(a, lookup)?)? {
                Value::Bool(true)
            } else {
                Value::Bool(truth(&eval(b, lookup)?)?)
            }
        }
        Node::Bin(op @ (BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div), a, b) => {
            match (eval(a, lookup)?, eval(b, lookup)?) {
                (Value::Missing, _) | (_, Value::Missing) => Value::Missing,
                (Value::Num(x), Value::Num(y)) => Value::Num(
                    match op {
                        BinOp::Add => x.checked_add(y),
                        BinOp::Sub => x.checked_sub(y),
                        BinOp::Mul => x.checked_mul(y),
                        _ => x.checked_div(y),
                    }
                    .ok_or_else(|| EvalError("arithmetic overflow or division by zero".into()))?,
                ),
                (Value::Str(x), Value::Str(y)) if *op == BinOp::Add => Value::Str(x + &y),
                (x, y) => return Err(EvalError(format!("cannot compute {x} and {y}"))),
            }
        }
        Node::Bin(op, a, b) => Value::Bool(compare(*op, &eval(a, lookup)?, &eval(b, lookup)?)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(name: &str) -> Value {
        match name {
            "bandwidth" => Value::Num(Decimal::from(500)),
            "sla" => Value::Str("gold".into()),
            "managed" => Value::Bool(true),
            _ => Value::Missing,
        }
    }

    fn holds(src: &str) -> bool {
        Expr::parse(src).unwrap().holds(&env).unwrap()
    }

    #[test]
    fn evaluates_the_documented_language() {
        assert!(holds("bandwidth >= 500 and sla in ['gold', 'platinum']"));
        assert!(holds("not (bandwidth < 100) or managed"));
        assert!(holds("bandwidth * 2 + 1 == 1001"));
        assert!(holds("sla == \"gold\" and managed == true"));
        assert!(
            !holds("static_ips > 0"),
            "comparisons with a missing value are false"
        );
        assert!(!holds("static_ips != 0"));
        assert!(holds("not managed == false"));
        assert_eq!(
            Expr::parse("bandwidth > 1 and sla == 'x' or ips < 2")
                .unwrap()
                .identifiers()
                .iter()
                .collect::<Vec<_>>(),
            ["bandwidth", "ips", "sla"]
        );
    }

    #[test]
    fn parse_errors_say_where() {
        for (src, pos) in [
            ("bandwidth >", 11),
            ("(a == 1", 7),
            ("a == 'x", 5),
            ("a # b", 2),
            ("a == 1 b", 7),
            ("and a", 0),
        ] {
            let e = Expr::parse(src).unwrap_err();
            assert_eq!(e.position, pos, "{src}: {e}");
        }
    }

    #[test]
    fn type_errors_are_errors_not_answers() {
        assert!(Expr::parse("sla + 1 > 2").unwrap().holds(&env).is_err());
        assert!(Expr::parse("bandwidth").unwrap().holds(&env).is_err());
        assert!(Expr::parse("sla in 'gold'").unwrap().holds(&env).is_err());
    }

    proptest! {
        #[test]
        fn integer_arithmetic_matches_rust(a in -1000i64..1000, b in -1000i64..1000, c in 1i64..50) {
            let src = format!("{a} + {b} * {c} - ({a} - {b})");
            let v = Expr::parse(&src).unwrap().eval(&env).unwrap();
            prop_assert_eq!(v, Value::Num(Decimal::from(a + b * c - (a - b))));
        }

        #[test]
        fn arbitrary_text_never_panics(src in "\\PC{0,40}") {
            if let Ok(e) = Expr::parse(&src) {
                let _ = e.eval(&env);
            }
        }
    }
}
