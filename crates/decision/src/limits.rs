//! Limits that keep input away from dsntk's recursion. Its parser and evaluator recurse once
//! per nesting level or chained operator; past a few hundred levels (on a 2 MiB thread stack, in
//! debug) the thread overflows its stack, and a stack overflow aborts the whole process, which
//! `catch_unwind` cannot stop. The DMN TCK's deepest FEEL text nests 5 brackets and chains 14
//! operators, its deepest model 12 elements, so these limits leave real models untouched.
//!
//! Recursion is found here too (`calls`, `recursive_context_function`, `self_application`; the
//! model-level check is in lib.rs). The workflow engine's FEEL checks its expressions with the
//! same functions.

/// Brackets (`(`, `[`, `{`) open at once in one FEEL text.
pub(crate) const MAX_FEEL_NESTING: usize = 64;
/// Operators and operator keywords in one FEEL text (each chains one more level).
pub(crate) const MAX_FEEL_OPERATORS: usize = 128;
/// Path steps (`.name` after a name or a bracket) in one FEEL text. dsntk's lexer takes time
/// quadratic in a path's length once the path's names are in scope (the fuzzer's 20,000-step
/// `order.id.id...` ran for minutes in the workflow's FEEL); real expressions hold a handful.
pub(crate) const MAX_FEEL_PATH_STEPS: usize = 256;
/// Element nesting in a DMN file.
pub(crate) const MAX_XML_DEPTH: usize = 64;
/// Nesting of lists and contexts in an input value (our own conversion recurses too).
pub(crate) const MAX_VALUE_DEPTH: usize = 64;

const KEYWORDS: [&str; 13] = [
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
];

/// Checks one FEEL text against the limits; string literals do not count.
pub fn check_feel(text: &str) -> Result<(), String> {
    let (mut depth, mut deepest, mut operators, mut steps) = (0usize, 0usize, 0usize, 0usize);
    let mut previous = ' ';
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let after_operand = previous.is_alphanumeric() || matches!(previous, '_' | ')' | ']');
        previous = c;
        match c {
            '.' if after_operand
                && chars
                    .peek()
                    .is_some_and(|(_, n)| n.is_alphabetic() || *n == '_') =>
            {
                steps += 1
            }
            '"' => skip_string_literal(&mut chars),
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '+' | '-' | '*' | '/' | '<' | '>' | '=' => operators += 1,
            c if c.is_alphabetic() || c == '_' => {
                let end = word_end(&mut chars, i, c);
                if KEYWORDS.contains(&&text[i..end]) {
                    operators += 1;
                }
                previous = 'a';
            }
            _ => {}
        }
    }
    if deepest > MAX_FEEL_NESTING {
        return Err(format!(
            "FEEL expression nests brackets too deep ({deepest} levels, at most {MAX_FEEL_NESTING})"
        ));
    }
    if operators > MAX_FEEL_OPERATORS {
        return Err(format!(
            "FEEL expression has too many operators ({operators}, at most {MAX_FEEL_OPERATORS})"
        ));
    }
    if steps > MAX_FEEL_PATH_STEPS {
        return Err(format!(
            "FEEL expression has too many path steps ({steps}, at most {MAX_FEEL_PATH_STEPS})"
        ));
    }
    Ok(())
}

/// FEEL words after which a name starts a new operand.
pub const OPERAND_AFTER: [&str; 10] = [
    "and",
    "or",
    "not",
    "then",
    "else",
    "return",
    "in",
    "satisfies",
    "if",
    "between",
];

/// Whether `text` calls the function `name` (`name(`, as a whole FEEL name: FEEL names may hold
/// spaces, so `single encode to hex(` does not call `to hex`).
pub fn calls(text: &str, name: &str) -> bool {
    let name = name.trim();
    if name.is_empty() {
        return false;
    }
    text.match_indices(name).any(|(at, _)| {
        let after = text[at + name.len()..].trim_start();
        if !after.starts_with('(') {
            return false;
        }
        let before = text[..at].trim_end();
        match before.chars().last() {
            None => true,
            Some(c) if "([{,+-*/=<>:!".contains(c) => true,
            Some(c) if c.is_alphanumeric() || c == '_' => {
                let word_start = last_word_start(before);
                OPERAND_AFTER.contains(&&before[word_start..])
            }
            Some(_) => false,
        }
    })
}

/// The first recursive function found in one FEEL text: a context entry `f: function(..) ..`
/// whose text afterwards calls `f`.
pub fn recursive_context_function(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(at) = rest.find("function") {
        let before = rest[..at].trim_end();
        if let Some(head) = before.strip_suffix(':') {
            let start = head.rfind(['{', ',']).map_or(0, |i| i + 1);
            let name = head[start..].trim().trim_matches('"');
            if !name.is_empty() && calls(&rest[at..], name) {
                return Some(name.to_string());
            }
        }
        rest = &rest[at + "function".len()..];
    }
    None
}

/// Where the word (`[A-Za-z0-9_]`, any script) that `first`, read at `start`, begins ends:
/// `chars` is moved past it.
pub fn word_end(
    chars: &mut std::iter::Peekable<std::str::CharIndices>,
    start: usize,
    first: char,
) -> usize {
    let mut end = start + first.len_utf8();
    while let Some((j, c)) = chars.peek() {
        if c.is_alphanumeric() || *c == '_' {
            end = j + c.len_utf8();
            chars.next();
        } else {
            break;
        }
    }
    end
}

/// Moves `chars` past a string literal whose opening quote was just read (escapes included).
pub fn skip_string_literal(chars: &mut std::iter::Peekable<std::str::CharIndices>) {
    while let Some((_, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => break,
            _ => {}
        }
    }
}

/// Where the last word (`[A-Za-z0-9_]`, any script) of `text` starts, on a char boundary.
fn last_word_start(text: &str) -> usize {
    text.char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(0, |(at, c)| at + c.len_utf8())
}

/// The first function applied to itself in one FEEL text (`g(g, n - 1)`): how a function passed
/// as an argument recurses (`(function(f, n) f(f, n))(function(g, n) g(g, n + 1), 0)`), which
/// dsntk cannot bound. String literals do not count.
pub fn self_application(text: &str) -> Option<String> {
    for name in words(text) {
        let i = name.as_ptr() as usize - text.as_ptr() as usize;
        let end = i + name.len();
        let Some(args) = text[end..].trim_start().strip_prefix('(') else {
            continue;
        };
        let args = args.trim_start();
        // The whole first argument is the name (`g(g, n)`, `f(f)`): not `date(date and
        // time(..))`, where the argument is another built-in's call.
        let first_is_name =
            args.starts_with(name) && args[name.len()..].trim_start().starts_with([',', ')']);
        // The last word of a longer name (`is empty(empty)`) is no function of its own.
        let before = text[..i].trim_end();
        let previous = &before[last_word_start(before)..];
        let part_of_longer_name = !previous.is_empty() && !OPERAND_AFTER.contains(&previous);
        if first_is_name && !part_of_longer_name && !KEYWORDS.contains(&name) {
            return Some(name.to_string());
        }
    }
    None
}

/// The plain words (`[A-Za-z_][A-Za-z0-9_]*`, any script) of a FEEL text outside string
/// literals and numbers, each a slice of `feel` (so its position is known).
pub fn words(feel: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut chars = feel.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '"' {
            skip_string_literal(&mut chars);
        } else if c.is_alphabetic() || c == '_' {
            let end = word_end(&mut chars, i, c);
            out.push(&feel[i..end]);
        } else if c.is_ascii_digit() {
            while chars.peek().is_some_and(|(_, c)| c.is_alphanumeric()) {
                chars.next();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_applied_to_itself_is_found_outside_strings() {
        let y = "(function(f, n) f(f, n))(function(g, n) if n > 0 then g(g, n - 1) else 0, 5)";
        assert_eq!(self_application(y).as_deref(), Some("f"));
        assert_eq!(self_application("g( g )").as_deref(), Some("g"));
        assert_eq!(
            self_application("if n > 0 then g(g, n)").as_deref(),
            Some("g")
        );
        for fine in [
            "count(counter)",
            "f(x, f)",
            r#"string("f(f)")"#,
            "if(a) then b else c",
            "sum([1, 2])",
            r#"date(date and time("2026-01-01T00:00:00"))"#,
            "string(string length(x))",
            "is empty(empty)",
            "€ f(f€",
            "→g(g",
        ] {
            assert_eq!(self_application(fine), None, "{fine}");
        }
    }

    #[test]
    fn path_steps_are_counted_outside_numbers_and_strings() {
        let path = |n: usize| format!("order{}", ".id".repeat(n));
        assert!(check_feel(&path(256)).is_ok());
        assert!(check_feel(&path(257))
            .unwrap_err()
            .contains("too many path steps (257, at most 256)"));
        assert!(check_feel(&vec!["1.5"; 300].join(",")).is_ok());
        assert!(check_feel(&format!("\"{}\"", "a.b".repeat(300))).is_ok());
    }
}
