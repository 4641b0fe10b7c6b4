//! FEEL through the dsntk engine (parser and evaluator), with Zeebe's conventions on top: JSON
//! variables in, our [`Value`] out, `null` for a missing variable, `now()` and `today()` read the
//! instant in [`Env`], and Camunda's extension functions (see [`EXTENSIONS`]).
//!
//! dsntk's types stay in this module. Every call into dsntk is guarded against panics.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Datelike, NaiveDate};
use dsntk_feel::closure::Closure;
use dsntk_feel::context::FeelContext;
use dsntk_feel::values::Value as Dv;
use dsntk_feel::{FeelNumber, FeelScope, FeelType, FunctionBody, Name};
use rust_decimal::Decimal;

use super::{parse_duration, Env, FeelError, Value};
use cpq_decision::limits;

/// A FEEL text parsed and prepared for evaluation.
pub(super) struct Compiled {
    evaluator: dsntk_feel::Evaluator,
    /// The extension functions the text may call (only those whose name it contains).
    functions: FeelContext,
    /// Whether the text may read the instant (`now()`, `today()`).
    clock: bool,
    /// Built-in names the text calls and never reads as variables: a variable of that name
    /// (`count`) stays out of scope, where dsntk would take it for the function.
    calls_only: Vec<String>,
    /// The text's plain words, sorted: a variable whose name is one word is put in scope when
    /// the text holds it (a look-up instead of a search of the text for every variable).
    words: Vec<String>,
}

/// The hidden variable that holds [`Env::now`]; `@` cannot start or continue a FEEL name.
const NOW: &str = "@now";

thread_local! {
    /// A failed `assert(..)`: FEEL has no exceptions, so the evaluation's error waits here.
    static FAILURE: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the FEEL engine panicked".to_owned())
}

/// Whether `text` holds `name` as a FEEL name (not inside a longer word).
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let word = |c: char| c.is_alphanumeric() || c == '_';
        !text[..at].ends_with(word) && !text[at + name.len()..].starts_with(word)
    })
}

/// Camunda's overloads that DMN's library (and so dsntk) lacks, told apart by their number of
/// arguments: such a call is renamed to the extension of that arity.
const OVERLOADS: [(&str, usize, &str); 3] = [
    // feel-scala: fails with `cause` as the message.
    ("assert", 3, "assert_with_cause"),
    // feel-scala: `number("1500.5")`, the string alone.
    ("number", 1, "number_from_text"),
    // feel-scala: `sort([3, 1, 2])`, in natural order.
    ("sort", 1, "sort_natural"),
];

/// `feel` with the calls of [`OVERLOADS`] renamed (outside string literals; a call is the name
/// after an operator, a bracket, a comma or a keyword, followed by `(`).
fn with_overloads(feel: &str) -> std::borrow::Cow<'_, str> {
    let mut renames: Vec<(usize, usize, &str)> = Vec::new();
    let mut chars = feel.char_indices().peekable();
    let mut previous_word: Option<&str> = None;
    let mut previous_char: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        if c == '"' {
            limits::skip_string_literal(&mut chars);
            previous_char = Some('"');
            previous_word = None;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let end = limits::word_end(&mut chars, i, c);
            let word = &feel[i..end];
            let starts_operand = match (previous_char, previous_word) {
                (None, _) => true,
                (_, Some(w)) => limits::OPERAND_AFTER.contains(&w),
                (Some(p), None) => "([{,+-*/=<>:!".contains(p),
            };
            if starts_operand {
                if let Some((_, arity, to)) = OVERLOADS.iter().find(|(name, ..)| *name == word) {
                    if arguments(&feel[end..]) == Some(*arity) {
                        renames.push((i, end, to));
                    }
                }
            }
            previous_word = Some(word);
            previous_char = None;
            continue;
        }
        if !c.is_whitespace() {
            previous_char = Some(c);
            previous_word = None;
        }
    }
    if renames.is_empty() {
        return std::borrow::Cow::Borrowed(feel);
    }
    let mut out = String::with_capacity(feel.len() + 16 * renames.len());
    let mut at = 0;
    for (start, end, to) in renames {
        out.push_str(&feel[at..start]);
        out.push_str(to);
        at = end;
    }
    out.push_str(&feel[at..]);
    std::borrow::Cow::Owned(out)
}

/// How many arguments the call whose name `rest` follows has: `rest` is `(..)` after optional
/// spaces; `None` when it is no call.
fn arguments(rest: &str) -> Option<usize> {
    let rest = rest.trim_start().strip_prefix('(')?;
    let mut depth = 0usize;
    let mut commas = 0;
    let mut any = false;
    let mut chars = rest.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            '"' => {
                any = true;
                limits::skip_string_literal(&mut chars);
            }
            '(' | '[' | '{' => {
                any = true;
                depth += 1;
            }
            ')' if depth == 0 => return Some(if any { commas + 1 } else { 0 }),
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => commas += 1,
            c if !c.is_whitespace() => any = true,
            _ => {}
        }
    }
    None
}

pub(super) fn parse(feel: &str) -> Result<Compiled, FeelError> {
    let feel = &*with_overloads(feel);
    limits::check_feel(feel).map_err(FeelError)?;
    if let Some(name) = limits::recursive_context_function(feel) {
        return Err(FeelError(format!(
            "the function '{name}' calls itself: recursion is not allowed"
        )));
    }
    if let Some(name) = limits::self_application(feel) {
        return Err(FeelError(format!(
            "the function '{name}' is applied to itself: recursion is not allowed"
        )));
    }
    if has_external_function(feel) {
        return Err(FeelError(
            "external functions (`function(..) external {..}`) are not supported".to_owned(),
        ));
    }
    let instance_of = feel.find("instance of");
    let used: Vec<&Extension> = EXTENSIONS
        .iter()
        .filter(|e| mentions(feel, e.name))
        .collect();
    let text_words = limits::words(feel);
    let run = || {
        let scope = FeelScope::default();
        let mut names = FeelContext::default();
        for e in &used {
            names.set_entry(&Name::from(e.name), Dv::Null(None));
        }
        // dsntk reads names (and paths on them) by the names in scope at parse time; Zeebe's
        // variables are not known at deploy, so every plain word of the text is declared.
        for &word in &text_words {
            if !KEYWORDS.contains(&word)
                && (!BUILT_IN_WORDS.contains(&word) || used_as_variable(feel, word, instance_of))
                && !names.contains_entry(&Name::from(word))
            {
                names.set_entry(&Name::from(word), Dv::Null(None));
            }
        }
        scope.push(names);
        dsntk_feel_parser::parse_expression(&scope, feel, false)
            .map(|node| dsntk_feel_evaluator::prepare(&node))
            .map_err(|e| e.to_string())
    };
    let mut calls_only: Vec<String> = Vec::new();
    let mut read: Vec<&str> = Vec::new();
    for &word in text_words.iter().filter(|w| BUILT_IN_WORDS.contains(w)) {
        if used_as_variable(feel, word, instance_of) {
            read.push(word);
        } else if !calls_only.iter().any(|c| c == word) {
            calls_only.push(word.to_owned());
        }
    }
    calls_only.retain(|c| !read.contains(&c.as_str()));
    let evaluator = catch_unwind(AssertUnwindSafe(run))
        .unwrap_or_else(|p| Err(panic_message(p)))
        .map_err(FeelError)?;
    let mut functions = FeelContext::default();
    for e in &used {
        functions.set_entry(&Name::from(e.name), e.definition());
    }
    let mut text_words: Vec<String> = text_words.into_iter().map(str::to_owned).collect();
    text_words.sort_unstable();
    text_words.dedup();
    Ok(Compiled {
        evaluator,
        functions,
        clock: used.iter().any(|e| e.clock),
        calls_only,
        words: text_words,
    })
}

const KEYWORDS: [&str; 21] = [
    "and",
    "or",
    "not",
    "if",
    "then",
    "else",
    "for",
    "return",
    "some",
    "every",
    "satisfies",
    "in",
    "between",
    "instance",
    "of",
    "function",
    "external",
    "true",
    "false",
    "null",
    "item",
];

/// Words of DMN's built-in function and type names: declaring one as a name would hide the
/// built-in (`string` in `string length`, `sort`).
const BUILT_IN_WORDS: &[&str] = &[
    "abs",
    "after",
    "all",
    "any",
    "append",
    "before",
    "ceiling",
    "coincides",
    "concatenate",
    "contains",
    "context",
    "merge",
    "put",
    "count",
    "date",
    "time",
    "day",
    "week",
    "month",
    "year",
    "decimal",
    "distinct",
    "values",
    "duration",
    "during",
    "ends",
    "starts",
    "with",
    "even",
    "exp",
    "finished",
    "by",
    "finishes",
    "flatten",
    "floor",
    "get",
    "entries",
    "value",
    "includes",
    "index",
    "insert",
    "is",
    "list",
    "replace",
    "log",
    "lower",
    "upper",
    "case",
    "matches",
    "max",
    "mean",
    "median",
    "meets",
    "met",
    "min",
    "mode",
    "modulo",
    "now",
    "number",
    "odd",
    "overlaps",
    "product",
    "range",
    "remove",
    "reverse",
    "round",
    "up",
    "down",
    "half",
    "sort",
    "split",
    "sqrt",
    "stddev",
    "string",
    "join",
    "length",
    "sublist",
    "substring",
    "sum",
    "today",
    "union",
    "years",
    "months",
    "boolean",
    "days",
    "and",
    "trim",
    "extract",
    "uuid",
    "partition",
    "duplicate",
    "blank",
    "empty",
    "defined",
    "assert",
    "random",
    "last",
    "base64",
    "json",
    "from",
    "to",
    "or",
    "else",
    "Any",
    "Null",
    "function",
];

/// Whether a built-in's word (`count`, `sum`, `date`) stands as a variable where it occurs:
/// not called (`count(`), not the first word of a built-in's longer name (`string length`,
/// `date and time`) nor a type (`instance of number`), but followed by an operator, a path, a bracket, the end or a keyword that
/// ends an operand (`count + 1`, `if sum > 0 then sum else 0`). Zeebe's variables often carry
/// such names, and the Scala engine reads them as variables there.
/// `instance_of` is where `instance of` first occurs in `feel` (found once per text: this runs
/// for every word).
fn used_as_variable(feel: &str, word: &str, instance_of: Option<usize>) -> bool {
    const ENDS_OPERAND: [&str; 8] = [
        "then",
        "else",
        "return",
        "satisfies",
        "between",
        "or",
        "in",
        "instance",
    ];
    let start = word.as_ptr() as usize - feel.as_ptr() as usize;
    if instance_of.is_some_and(|at| at < start) {
        return false; // a type: `instance of number`, `instance of context<a: string>`
    }
    let rest = feel[start + word.len()..].trim_start();
    match rest.chars().next() {
        None => true,
        Some('(' | ':') => false, // a call, or a named argument (`string length(string: x)`)
        Some(c) if c.is_alphabetic() || c == '_' => {
            let next: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            ENDS_OPERAND.contains(&next.as_str())
                || (next == "and" && {
                    let after = rest["and".len()..].trim_start();
                    !after.starts_with("time") && !after.starts_with("months")
                })
        }
        Some(_) => true,
    }
}

/// FEEL `function(..) external {..}`: the keyword after a parameter list's `)`.
fn has_external_function(feel: &str) -> bool {
    feel.match_indices(')').any(|(i, _)| {
        let rest = feel[i + 1..].trim_start();
        rest.strip_prefix("external")
            .is_some_and(|r| r.trim_start().starts_with('{'))
    })
}

pub(super) fn evaluate(compiled: &Compiled, feel: &str, env: &Env) -> Result<Value, FeelError> {
    // Only the variables the text names are converted (a job's variables may hold a whole
    // order; a condition reads two of them).
    let mut variables = FeelContext::default();
    let plain = |name: &str| {
        name.starts_with(|c: char| c.is_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    // Innermost scope first: a name an inner scope has hides the outer ones'. A plain name is
    // one of the text's words, looked up; another (`order total`) is found by its text.
    let scopes = || std::iter::once(env.variables).chain(env.outer.iter().copied());
    for word in &compiled.words {
        if compiled.calls_only.contains(word) {
            continue;
        }
        if let Some(value) = scopes().find_map(|scope| scope.get(word.as_str())) {
            variables.set_entry(&Name::from(word.as_str()), from_json(value));
        }
    }
    for (depth, scope) in scopes().enumerate() {
        for (name, value) in scope.iter().filter(|(name, _)| !plain(name)) {
            let key = Name::from(name.as_str());
            if mentions(feel, name)
                && !compiled.calls_only.contains(name)
                && (depth == 0 || !variables.contains_entry(&key))
            {
                variables.set_entry(&key, from_json(value));
            }
        }
    }
    if compiled.clock {
        let now = Dv::try_from_xsd_date_time(&env.now.to_rfc3339()).unwrap_or(Dv::Null(None));
        variables.set_entry(&Name::from(NOW), now);
    }
    let run = || {
        let scope = FeelScope::new();
        if !compiled.functions.is_empty() {
            scope.push(compiled.functions.clone());
        }
        scope.push(variables);
        FAILURE.with(|f| f.borrow_mut().take());
        let result = (compiled.evaluator)(&scope);
        match FAILURE.with(|f| f.borrow_mut().take()) {
            Some(failure) => Err(FeelError(failure)),
            None => to_value(&result),
        }
    };
    catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|p| Err(FeelError(panic_message(p))))
}

/// JSON into FEEL: numbers keep their exact decimal text; strings stay strings (`date(x)`
/// converts, as in Zeebe).
pub(super) fn from_json(json: &serde_json::Value) -> Dv {
    match json {
        serde_json::Value::Null => Dv::Null(None),
        serde_json::Value::Bool(b) => Dv::Boolean(*b),
        serde_json::Value::Number(n) => FeelNumber::from_str(&n.to_string())
            .map(Dv::Number)
            .unwrap_or(Dv::Null(None)),
        serde_json::Value::String(s) => Dv::String(s.clone()),
        serde_json::Value::Array(items) => Dv::List(items.iter().map(from_json).collect()),
        serde_json::Value::Object(map) => {
            let mut ctx = FeelContext::default();
            for (k, v) in map {
                ctx.set_entry(&Name::from(k.as_str()), from_json(v));
            }
            Dv::Context(ctx)
        }
    }
}

/// FEEL into our value. A number past `rust_decimal`'s 28 digits is rounded; one out of its
/// range is `null`. Times, and dates and date-times that chrono cannot hold (a zone id, a year
/// past 9999), become their ISO 8601 text, which is their JSON form anyway.
pub(super) fn to_value(v: &Dv) -> Result<Value, FeelError> {
    Ok(match v {
        Dv::Null(_) => Value::Null,
        Dv::Boolean(b) => Value::Bool(*b),
        Dv::Number(n) => {
            let text = n.to_string();
            Decimal::from_str(&text)
                .or_else(|_| Decimal::from_scientific(&text))
                .map(Value::Number)
                .unwrap_or(Value::Null)
        }
        Dv::String(s) => Value::String(s.clone()),
        Dv::List(items) => Value::List(items.iter().map(to_value).collect::<Result<_, _>>()?),
        Dv::Context(ctx) => Value::Context(
            ctx.iter()
                .map(|(k, v)| Ok((k.to_string(), to_value(v)?)))
                .collect::<Result<_, FeelError>>()?,
        ),
        Dv::Date(d) => {
            let text = d.to_string();
            NaiveDate::from_str(&text)
                .map(Value::Date)
                .unwrap_or(Value::String(text))
        }
        Dv::DateTime(d) => {
            let text = d.to_string();
            DateTime::parse_from_rfc3339(&text)
                .or_else(|_| DateTime::parse_from_rfc3339(&format!("{text}Z")))
                .map(Value::DateTime)
                .unwrap_or(Value::String(text))
        }
        Dv::Time(t) => Value::String(t.to_string()),
        Dv::DaysAndTimeDuration(d) => {
            parse_duration(&d.to_string()).unwrap_or(Value::String(d.to_string()))
        }
        Dv::YearsAndMonthsDuration(d) => match parse_duration(&d.to_string()) {
            Ok(Value::Duration(z)) if z.is_zero() => Value::Months(0),
            Ok(v) => v,
            Err(_) => Value::String(d.to_string()),
        },
        other => {
            return Err(FeelError(format!(
                "the result is a {}, which has no JSON form",
                other.type_of()
            )))
        }
    })
}

/// A Camunda extension function (feel-scala's built-ins beyond DMN 1.5's), implemented in Rust
/// and put in scope as a FEEL function value.
pub(super) struct Extension {
    pub(super) name: &'static str,
    params: &'static [&'static str],
    /// Reads the instant.
    clock: bool,
    body: fn(&[Dv]) -> Dv,
}

impl Extension {
    fn definition(&self) -> Dv {
        let names: Vec<Name> = self.params.iter().map(|p| Name::from(*p)).collect();
        let body = self.body;
        let clock = self.clock;
        let params = names.clone();
        let evaluator: dsntk_feel::Evaluator = Box::new(move |scope: &FeelScope| {
            let mut args: Vec<Dv> = params
                .iter()
                .map(|p| scope.get_value(p).unwrap_or(Dv::Null(None)))
                .collect();
            if clock {
                args.push(scope.get_value(&Name::from(NOW)).unwrap_or(Dv::Null(None)));
            }
            body(&args)
        });
        Dv::FunctionDefinition(
            names.into_iter().map(|n| (n, FeelType::Any)).collect(),
            FunctionBody::LiteralExpression(Arc::new(evaluator)),
            false,
            Closure::default(),
            FeelContext::default(),
            FeelType::Any,
        )
    }
}

fn null() -> Dv {
    Dv::Null(None)
}

fn number(text: &str) -> Dv {
    FeelNumber::from_str(text)
        .map(Dv::Number)
        .unwrap_or(Dv::Null(None))
}

/// A count or size argument as a positive integer.
fn size(v: &Dv) -> Option<usize> {
    match v {
        Dv::Number(n) if n.is_integer() && n.is_positive() => n.to_string().parse().ok(),
        _ => None,
    }
}

/// A context's entry by name, or null (also when `at` is no context).
fn entry(at: &Dv, key: &str) -> Dv {
    match at {
        Dv::Context(ctx) => ctx.get_entry(&Name::from(key)).cloned().unwrap_or(null()),
        _ => null(),
    }
}

fn fail(message: String) -> Dv {
    FAILURE.with(|f| *f.borrow_mut() = Some(message));
    null()
}

/// The instant as a date (the `clock` argument's date part).
fn date_of(now: &Dv) -> Dv {
    match now {
        Dv::DateTime(d) => {
            let text = d.to_string();
            Dv::try_from_xsd_date(text.get(..10).unwrap_or("")).unwrap_or(null())
        }
        _ => null(),
    }
}

/// Camunda's extension functions that DMN's library lacks (feel-scala 1.18, Camunda 8.8), and
/// `now()` / `today()` reading [`Env::now`] instead of the clock.
pub(super) const EXTENSIONS: &[Extension] = &[
    Extension {
        name: "now",
        params: &[],
        clock: true,
        body: |a| a[0].clone(),
    },
    Extension {
        name: "today",
        params: &[],
        clock: true,
        body: |a| date_of(&a[0]),
    },
    Extension {
        // An existing variable or entry, even `null`: a missing one evaluates to a null that
        // carries dsntk's "no value for key" trace, a JSON null to a bare null.
        name: "is defined",
        params: &["value"],
        clock: false,
        body: |a| Dv::Boolean(!matches!(&a[0], Dv::Null(Some(_)))),
    },
    Extension {
        name: "get or else",
        params: &["value", "default"],
        clock: false,
        body: |a| match &a[0] {
            Dv::Null(_) => a[1].clone(),
            v => v.clone(),
        },
    },
    Extension {
        name: "assert",
        params: &["value", "condition"],
        clock: false,
        body: |a| match &a[1] {
            Dv::Boolean(true) => a[0].clone(),
            _ => fail(format!(
                "Assertion failure on evaluate the expression: {}",
                a[0]
            )),
        },
    },
    Extension {
        // `assert(value, condition, cause)` (see [`OVERLOADS`]).
        name: "assert_with_cause",
        params: &["value", "condition", "cause"],
        clock: false,
        body: |a| match (&a[1], &a[2]) {
            (Dv::Boolean(true), _) => a[0].clone(),
            (_, Dv::String(cause)) => fail(cause.clone()),
            (_, cause) => fail(format!("Assertion failure: {cause}")),
        },
    },
    Extension {
        // `number(from)` (see [`OVERLOADS`]): a number written as FEEL writes one, optionally
        // signed; anything else is null.
        name: "number_from_text",
        params: &["from"],
        clock: false,
        body: |a| match &a[0] {
            Dv::String(text) => {
                let t = text.trim();
                let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
                let plain = !digits.is_empty()
                    && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
                    && digits.chars().filter(|c| *c == '.').count() <= 1
                    && digits.chars().any(|c| c.is_ascii_digit());
                if plain {
                    number(t.strip_prefix('+').unwrap_or(t))
                } else {
                    null()
                }
            }
            _ => null(),
        },
    },
    Extension {
        // `sort(list)` (see [`OVERLOADS`]): numbers or strings in ascending order; a list
        // mixing them, or holding other values, is null.
        name: "sort_natural",
        params: &["list"],
        clock: false,
        body: |a| match &a[0] {
            Dv::List(items) => {
                let mut items = items.clone();
                if items.iter().all(|v| matches!(v, Dv::Number(_))) {
                    items.sort_by(|x, y| match (x, y) {
                        (Dv::Number(x), Dv::Number(y)) => {
                            x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal)
                        }
                        _ => std::cmp::Ordering::Equal,
                    });
                    Dv::List(items)
                } else if items.iter().all(|v| matches!(v, Dv::String(_))) {
                    items.sort_by(|x, y| match (x, y) {
                        (Dv::String(x), Dv::String(y)) => x.cmp(y),
                        _ => std::cmp::Ordering::Equal,
                    });
                    Dv::List(items)
                } else {
                    null()
                }
            }
            _ => null(),
        },
    },
    Extension {
        name: "is blank",
        params: &["string"],
        clock: false,
        body: |a| match &a[0] {
            Dv::String(s) => Dv::Boolean(s.trim().is_empty()),
            _ => null(),
        },
    },
    Extension {
        name: "trim",
        params: &["string"],
        clock: false,
        body: |a| match &a[0] {
            Dv::String(s) => Dv::String(s.trim().to_owned()),
            _ => null(),
        },
    },
    Extension {
        name: "extract",
        params: &["string", "pattern"],
        clock: false,
        body: |a| match (&a[0], &a[1]) {
            (Dv::String(s), Dv::String(p)) => match regex::Regex::new(p) {
                Ok(re) => Dv::List(
                    re.find_iter(s)
                        .map(|m| Dv::String(m.as_str().to_owned()))
                        .collect(),
                ),
                Err(_) => null(),
            },
            _ => null(),
        },
    },
    Extension {
        name: "uuid",
        params: &[],
        clock: false,
        body: |_| Dv::String(uuid::Uuid::new_v4().to_string()),
    },
    Extension {
        name: "to base64",
        params: &["value"],
        clock: false,
        body: |a| match &a[0] {
            Dv::String(s) => {
                Dv::String(base64::engine::general_purpose::STANDARD.encode(s.as_bytes()))
            }
            _ => null(),
        },
    },
    Extension {
        name: "random number",
        params: &[],
        clock: false,
        body: |_| {
            // 53 random bits (from a v4 UUID's random bytes) as a number in [0, 1).
            let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
            number(&format!("{}", bits as f64 / (1u64 << 53) as f64))
        },
    },
    Extension {
        name: "is empty",
        params: &["list"],
        clock: false,
        body: |a| match &a[0] {
            Dv::List(items) => Dv::Boolean(items.is_empty()),
            _ => null(),
        },
    },
    Extension {
        name: "duplicate values",
        params: &["list"],
        clock: false,
        body: |a| match &a[0] {
            Dv::List(items) => {
                let mut out: Vec<Dv> = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    if items[..i].contains(v) && !out.contains(v) {
                        out.push(v.clone());
                    }
                }
                Dv::List(out)
            }
            _ => null(),
        },
    },
    Extension {
        name: "partition",
        params: &["list", "size"],
        clock: false,
        body: |a| match (&a[0], size(&a[1])) {
            (Dv::List(items), Some(n)) => {
                Dv::List(items.chunks(n).map(|c| Dv::List(c.to_vec())).collect())
            }
            _ => null(),
        },
    },
    Extension {
        // DMN's `get value(m, key)`, and Camunda's with a list of keys: a path into nested
        // contexts (null where one is missing).
        name: "get value",
        params: &["m", "key"],
        clock: false,
        body: |a| match (&a[0], &a[1]) {
            (Dv::Context(_), Dv::String(key)) => entry(&a[0], key),
            (Dv::Context(_), Dv::List(keys)) => {
                keys.iter().fold(a[0].clone(), |at, key| match key {
                    Dv::String(key) => entry(&at, key),
                    _ => null(),
                })
            }
            _ => null(),
        },
    },
    Extension {
        // Camunda's `to json(value)`: the value's JSON text (null for a value with no JSON form).
        name: "to json",
        params: &["value"],
        clock: false,
        body: |a| match to_value(&a[0]) {
            Ok(v) => serde_json::to_string(&v.to_json())
                .map(Dv::String)
                .unwrap_or(null()),
            Err(_) => null(),
        },
    },
    Extension {
        // Camunda's `from json(value)`: the FEEL value of a JSON text (null when not JSON).
        name: "from json",
        params: &["value"],
        clock: false,
        body: |a| match &a[0] {
            Dv::String(text) => serde_json::from_str::<serde_json::Value>(text)
                .map(|json| from_json(&json))
                .unwrap_or(null()),
            _ => null(),
        },
    },
    Extension {
        name: "last day of month",
        params: &["date"],
        clock: false,
        body: |a| {
            let text = match &a[0] {
                Dv::Date(d) => d.to_string(),
                Dv::DateTime(d) => d.to_string().get(..10).unwrap_or("").to_owned(),
                _ => return null(),
            };
            NaiveDate::from_str(&text)
                .ok()
                .and_then(|d| {
                    let first = d.with_day(1)?;
                    first.checked_add_months(chrono::Months::new(1))?.pred_opt()
                })
                .and_then(|d| Dv::try_from_xsd_date(&d.to_string()).ok())
                .unwrap_or(null())
        },
    },
];
