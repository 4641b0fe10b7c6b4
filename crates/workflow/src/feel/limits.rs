//! Limits that keep FEEL text away from dsntk's recursion (copied from `cpq-decision`'s
//! `limits.rs`, which explains them): its parser and evaluator recurse once per nesting level or
//! chained operator, and a stack overflow aborts the whole engine process, which `catch_unwind`
//! cannot stop. Real expressions stay far below: the DMN TCK's deepest FEEL text nests 5
//! brackets and chains 14 operators.

/// Brackets (`(`, `[`, `{`) open at once in one FEEL text.
const MAX_FEEL_NESTING: usize = 64;
/// Operators and operator keywords in one FEEL text (each chains one more level).
const MAX_FEEL_OPERATORS: usize = 128;
/// Path steps (`.name` after a name or a bracket) in one FEEL text. dsntk's lexer takes time
/// quadratic in a path's length once the path's names are in scope (the fuzzer's 20,000-step
/// `order.id.id...` ran for minutes); real expressions hold a handful.
const MAX_FEEL_PATH_STEPS: usize = 256;

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
pub(super) fn check_feel(text: &str) -> Result<(), String> {
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
            '"' => {
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
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '+' | '-' | '*' | '/' | '<' | '>' | '=' => operators += 1,
            c if c.is_alphabetic() || c == '_' => {
                let mut end = i + c.len_utf8();
                while let Some((j, c)) = chars.peek() {
                    if c.is_alphanumeric() || *c == '_' {
                        end = j + c.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
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
const OPERAND_AFTER: [&str; 10] = [
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
pub(super) fn calls(text: &str, name: &str) -> bool {
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
                let word_start = before
                    .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map_or(0, |i| i + 1);
                OPERAND_AFTER.contains(&&before[word_start..])
            }
            Some(_) => false,
        }
    })
}

/// The first recursive function found in one FEEL text: a context entry `f: function(..) ..`
/// whose text afterwards calls `f`.
pub(super) fn recursive_context_function(text: &str) -> Option<String> {
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
