//! The web-search syntax users type, as PostgreSQL's `websearch_to_tsquery` reads it:
//! words that must all match, `"an exact phrase"`, `-excluded` words or phrases, and `or`
//! between alternatives (`and` binds tighter: `a b or c` is `(a and b) or c`).
//!
//! Parsing never fails: anything that is not syntax is text, and text without a letter or
//! digit is dropped. What a word means (stemming, stop words) is the index's business
//! (super::index); this module only splits the query.

/// One clause of an alternative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// The clause's text as typed (one word, or a phrase's words).
    pub text: String,
    /// `"in quotes"`: the words must appear in this order.
    pub quoted: bool,
    /// `-prefixed`: videos matching this clause are left out.
    pub negated: bool,
}

/// Clauses that must all hold (the negated ones must not).
pub type Alternative = Vec<Clause>;

/// The alternatives of `query`; a video matches when it matches any of them. Empty when the
/// query has no searchable text.
pub fn parse(query: &str) -> Vec<Alternative> {
    let mut alternatives: Vec<Alternative> = vec![Vec::new()];
    let mut chars = query.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let negated = first == '-';
        if negated {
            chars.next();
        }
        let quoted = chars.next_if_eq(&'"').is_some();
        let mut text = String::new();
        if quoted {
            // Up to the closing quote, or the end of an unbalanced one.
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                text.push(c);
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '"') {
                text.push(c);
            }
        }
        if !quoted && !negated && text.eq_ignore_ascii_case("or") {
            if alternatives.last().is_some_and(|a| !a.is_empty()) {
                alternatives.push(Vec::new());
            }
            continue;
        }
        if text.chars().any(char::is_alphanumeric) {
            alternatives.last_mut().expect("never empty").push(Clause {
                text,
                quoted,
                negated,
            });
        }
    }
    alternatives.retain(|a| !a.is_empty());
    alternatives
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(text: &str, quoted: bool, negated: bool) -> Clause {
        Clause {
            text: text.into(),
            quoted,
            negated,
        }
    }

    #[test]
    fn words_phrases_exclusions_and_alternatives() {
        assert_eq!(
            parse("  rust \"async await\" -java or Go  "),
            vec![
                vec![
                    clause("rust", false, false),
                    clause("async await", true, false),
                    clause("java", false, true),
                ],
                vec![clause("Go", false, false)],
            ]
        );
        assert_eq!(
            parse("-\"bad phrase\" ok"),
            vec![vec![
                clause("bad phrase", true, true),
                clause("ok", false, false)
            ]]
        );
    }

    #[test]
    fn hostile_or_empty_input_parses_to_little_or_nothing() {
        assert!(parse("").is_empty());
        assert!(parse("or OR or").is_empty());
        assert!(parse("& | ! :* <-> ( -- \"\"").is_empty());
        assert_eq!(
            parse("\"unbalanced phrase"),
            vec![vec![clause("unbalanced phrase", true, false)]]
        );
        assert_eq!(
            parse("nul\u{0}byte"),
            vec![vec![clause("nul\u{0}byte", false, false)]]
        );
    }
}
