//! The nesting limit of a BPMN file, checked on its text before it is parsed. roxmltree 0.20
//! parses element content recursively, one call per nesting level (0.21.2 no longer does), and
//! the reader recurses once per embedded subprocess: a file nested some thousands deep overflowed
//! the thread's stack, which aborts the whole process (`catch_unwind` cannot stop it). Found by
//! the `bpmn_read` fuzz target (docs/fuzzing.md). Camunda Modeler's files nest about a dozen
//! deep (definitions, process, subprocesses, extension elements, mappings); the limit is the one
//! `cpq-decision` has for DMN files.

/// Element nesting in a BPMN file.
pub(super) const MAX_XML_DEPTH: usize = 64;

/// Refuses `xml` when its elements nest more than [`MAX_XML_DEPTH`] deep. Counts start tags
/// (`<name`) against end tags (`</name>`, `/>`), skipping attribute values, comments, CDATA
/// sections, processing instructions and declarations. Text that is not well-formed may be
/// miscounted, but only ever deeper than it is: the XML parser refuses it next.
pub(super) fn check_depth(xml: &str) -> Result<(), String> {
    let b = xml.as_bytes();
    let after = |from: usize, end: &[u8]| {
        b.get(from..)
            .and_then(|rest| rest.windows(end.len()).position(|w| w == end))
            .map_or(b.len(), |at| from + at + end.len())
    };
    let (mut i, mut depth) = (0usize, 0usize);
    while let Some(at) = b
        .get(i..)
        .and_then(|rest| rest.iter().position(|&c| c == b'<'))
    {
        i += at + 1;
        let rest = &b[i..];
        if rest.starts_with(b"!--") {
            i = after(i, b"-->");
        } else if rest.starts_with(b"![CDATA[") {
            i = after(i, b"]]>");
        } else if rest.starts_with(b"?") {
            i = after(i, b"?>");
        } else if rest.starts_with(b"!") || rest.starts_with(b"/") {
            if rest.starts_with(b"/") {
                depth = depth.saturating_sub(1);
            }
            i = after(i, b">");
        } else {
            depth += 1;
            if depth > MAX_XML_DEPTH {
                return Err(format!("elements nested more than {MAX_XML_DEPTH} deep"));
            }
            // To the tag's `>`, past quoted attribute values; `/>` closes it at once.
            let mut quote = None;
            while let Some(&c) = b.get(i) {
                i += 1;
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c == b'"' || c == b'\'' => quote = Some(c),
                    None if c == b'>' => {
                        if i >= 2 && b[i - 2] == b'/' {
                            depth -= 1;
                        }
                        break;
                    }
                    None => {}
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        format!("{}{}", "<a x='/>' y=\"<b>\">".repeat(n), "</a>".repeat(n))
    }

    #[test]
    fn nesting_is_counted_past_attributes_comments_and_cdata() {
        assert!(check_depth(&nested(MAX_XML_DEPTH)).is_ok());
        assert!(check_depth(&nested(MAX_XML_DEPTH + 1)).is_err());
        let siblings = format!(
            "<r>{}</r>",
            "<a/><b></b><!-- <c> --><![CDATA[<d>]]>".repeat(500)
        );
        assert!(check_depth(&siblings).is_ok());
        assert!(check_depth("<?xml version=\"1.0\"?><!DOCTYPE r><r>text</r>").is_ok());
        assert!(check_depth("<").is_ok() && check_depth("<a x='").is_ok());
    }
}
