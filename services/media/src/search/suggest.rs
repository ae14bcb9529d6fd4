//! Completions while the user types: titles, tags and channel names that start with what
//! was typed, or have a word that does ("tut" → "Rust tutorial for beginners").
//!
//! The candidates live in a finite-state transducer (the `fst` crate): every word start of
//! every candidate is a key, so a completion is a prefix walk of the set, and a
//! typo-tolerant one (4+ characters typed) is a walk with a Levenshtein automaton that
//! accepts keys *starting with* something within 1 edit of the prefix (2 from 8
//! characters; a transposition is one edit). The automaton comes from
//! `levenshtein_automata` (tantivy's), whose builder is made once per distance and then
//! gives a prefix's automaton in microseconds. `fst`'s own automaton is built from scratch
//! for each prefix, up to 2.7 ms for an 11-character one: it made the slowest completions
//! (p99 0.9 ms against 0.3 ms now in `bench/tools` search-index; bench/RESULTS.md). The set is immutable: super::sync builds a new one when the catalogue has
//! changed (at most every few seconds, see there) and swaps it in.
//!
//! Ranking: exact before typo-tolerant, a match at the start of the candidate before one
//! inside it, then popularity (views for a title, videos for a tag or a channel), then
//! the shorter text. One- and two-character prefixes match a large part of the set, so
//! their best candidates are computed when the set is built instead of on each request.

use std::{cmp::Reverse, collections::HashMap};

use fst::{Automaton, IntoStreamer, Map, Streamer, automaton::Str};
use levenshtein_automata::{DFA, Distance, LevenshteinAutomatonBuilder, SINK_STATE};
use uuid::Uuid;

/// What kind of thing a suggestion completes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Title,
    Tag,
    Channel,
}

/// One candidate.
#[derive(Debug, Clone)]
pub struct Entry {
    /// As shown (a title's or channel's own spelling).
    pub text: String,
    pub kind: Kind,
    /// Popularity: higher first.
    pub weight: u64,
    /// The listed videos with this title (a title is suggested while one of them is still
    /// listed), or the channel's owner.
    pub videos: Vec<Uuid>,
    pub channel: Option<Uuid>,
}

/// Word starts indexed per candidate, at most (long titles rarely complete from word 9).
const MAX_WORD_STARTS: usize = 8;
/// Candidates precomputed per one- and two-character prefix.
const PRECOMPUTED: usize = 64;
/// Keys read per request, at most: bounds the cost of a prefix that matches a lot.
const SCAN_CAP: usize = 20_000;

/// Candidates and their keys. Cheap to share (`Arc`), never changed after `build`.
pub struct Suggestions {
    keys: Map<Vec<u8>>,
    entries: Vec<Entry>,
    /// The best candidates for each one- and two-character prefix, best first.
    short: HashMap<String, Vec<(Match, u32)>>,
}

/// How a candidate matched: ordered so that a greater value ranks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Match {
    exact: bool,
    at_start: bool,
    weight: u64,
    shorter: Reverse<usize>,
}

impl Default for Suggestions {
    fn default() -> Self {
        Self::build(Vec::new())
    }
}

impl Suggestions {
    pub fn build(entries: Vec<Entry>) -> Self {
        // Made once per process (milliseconds), here rather than on a user's request.
        std::sync::LazyLock::force(&TYPO_BUILDERS);
        // key = normalised text from a word start, 0, at_start flag, entry index
        // (unique, so the same text in several entries is kept).
        let mut keys: Vec<(Vec<u8>, u64)> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let text = normalise(&entry.text);
            for (n, start) in word_starts(&text).take(MAX_WORD_STARTS).enumerate() {
                let mut key = text.as_bytes()[start..].to_vec();
                key.push(0);
                key.push(u8::from(n != 0));
                key.extend_from_slice(&(i as u32).to_be_bytes());
                keys.push((key, i as u64));
            }
        }
        keys.sort_unstable();
        let map = Map::from_iter(keys.iter().map(|(k, v)| (k, *v))).expect("sorted, unique");
        let mut short: HashMap<String, Vec<(Match, u32)>> = HashMap::new();
        for (key, i) in &keys {
            let entry = &entries[*i as usize];
            let m = Match {
                exact: true,
                at_start: key_at_start(key),
                weight: entry.weight,
                shorter: Reverse(entry.text.len()),
            };
            let text = key_text(key);
            for len in [1, 2] {
                let Some((end, _)) = text.char_indices().nth(len - 1) else {
                    continue;
                };
                let end = end + text[end..].chars().next().map_or(0, char::len_utf8);
                let list = short.entry(text[..end].to_owned()).or_default();
                list.push((m, *i as u32));
                if list.len() >= PRECOMPUTED * 8 {
                    best_unique(list);
                }
            }
        }
        let short = short
            .into_iter()
            .map(|(prefix, mut list)| {
                best_unique(&mut list);
                (prefix, list)
            })
            .collect();
        Self {
            keys: map,
            entries,
            short,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Up to `first` completions of `prefix`, best first, among the entries `visible`
    /// accepts; the same text and kind once.
    pub fn complete(
        &self,
        prefix: &str,
        first: usize,
        visible: impl Fn(&Entry) -> bool,
    ) -> Vec<&Entry> {
        let prefix = normalise_prefix(prefix);
        if prefix.is_empty() {
            return Vec::new();
        }
        let chars = prefix.chars().count();
        let mut found: Vec<(Match, u32)> = match self.short.get(&prefix) {
            Some(best) if chars <= 2 => best.clone(),
            _ => self.scan(Str::new(&prefix).starts_with(), true),
        };
        found.retain(|(_, i)| visible(&self.entries[*i as usize]));
        if found.len() < first && chars >= 4 {
            let mut typos = self.scan(Typos::of(&prefix, chars), false);
            typos.retain(|(_, i)| visible(&self.entries[*i as usize]));
            found.extend(typos);
        }
        best_unique(&mut found);
        let mut seen = std::collections::HashSet::new();
        found
            .into_iter()
            .map(|(_, i)| &self.entries[i as usize])
            .filter(|e| seen.insert((normalise(&e.text), e.kind)))
            .take(first)
            .collect()
    }

    fn exact(&self, i: u32, at_start: bool) -> Match {
        let entry = &self.entries[i as usize];
        Match {
            exact: true,
            at_start,
            weight: entry.weight,
            shorter: Reverse(entry.text.len()),
        }
    }

    fn scan<A: Automaton>(&self, automaton: A, exact: bool) -> Vec<(Match, u32)> {
        let mut stream = self.keys.search(automaton).into_stream();
        let mut found = Vec::new();
        let mut read = 0;
        while let Some((key, i)) = stream.next() {
            read += 1;
            if read > SCAN_CAP {
                break;
            }
            let mut m = self.exact(i as u32, key_at_start(key));
            m.exact = exact;
            found.push((m, i as u32));
        }
        found
    }
}

/// Levenshtein automata builders for 1 and 2 edits, transpositions counting one.
static TYPO_BUILDERS: std::sync::LazyLock<[LevenshteinAutomatonBuilder; 2]> =
    std::sync::LazyLock::new(|| {
        [
            LevenshteinAutomatonBuilder::new(1, true),
            LevenshteinAutomatonBuilder::new(2, true),
        ]
    });

/// Keys starting with something within 1 edit of a prefix (2 edits from 8 characters).
struct Typos(DFA);

impl Typos {
    fn of(prefix: &str, chars: usize) -> Self {
        let builder = &TYPO_BUILDERS[usize::from(chars >= 8)];
        Self(builder.build_prefix_dfa(prefix))
    }
}

impl Automaton for Typos {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(self.0.distance(*state), Distance::Exact(_))
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}

/// Keeps each entry once (its best match), best first, at most [`PRECOMPUTED`].
fn best_unique(list: &mut Vec<(Match, u32)>) {
    list.sort_unstable_by(|a, b| b.cmp(a));
    let mut seen = std::collections::HashSet::new();
    list.retain(|(_, i)| seen.insert(*i));
    list.truncate(PRECOMPUTED);
}

fn key_text(key: &[u8]) -> &str {
    let end = key.len() - 6;
    std::str::from_utf8(&key[..end]).expect("keys are built from strings")
}

fn key_at_start(key: &[u8]) -> bool {
    key[key.len() - 5] == 0
}

/// Lowercase words separated by single spaces: what keys and prefixes are compared as.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// A typed prefix, normalised; a trailing separator stays (a space), because "rust "
/// asks for the next word.
fn normalise_prefix(prefix: &str) -> String {
    let mut out = normalise(prefix);
    if !out.is_empty() && prefix.ends_with(|c: char| !c.is_alphanumeric()) {
        out.push(' ');
    }
    out
}

/// Byte offsets where the words of a normalised text start.
fn word_starts(text: &str) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0).chain(text.match_indices(' ').map(|(i, _)| i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str, kind: Kind, weight: u64) -> Entry {
        Entry {
            text: text.into(),
            kind,
            weight,
            videos: vec![Uuid::from_u128(weight as u128)],
            channel: None,
        }
    }

    fn texts(s: &Suggestions, prefix: &str) -> Vec<String> {
        s.complete(prefix, 5, |_| true)
            .iter()
            .map(|e| e.text.clone())
            .collect()
    }

    fn sample() -> Suggestions {
        Suggestions::build(vec![
            entry("Rust tutorial for beginners", Kind::Title, 50),
            entry("rust", Kind::Tag, 900),
            entry("Rusty Cooking", Kind::Channel, 10),
            entry("Advanced Rust: traits", Kind::Title, 500),
            entry("Sourdough baking", Kind::Title, 7),
            entry("Café au lait", Kind::Title, 3),
        ])
    }

    #[test]
    fn completes_from_the_start_then_inside_by_popularity() {
        let s = sample();
        assert_eq!(
            texts(&s, "ru"),
            [
                "rust",
                "Rust tutorial for beginners",
                "Rusty Cooking",
                "Advanced Rust: traits"
            ]
        );
        // The next word: exact matches first, then near ones (4+ characters typed).
        assert_eq!(
            texts(&s, "RUST ")[..2],
            ["Rust tutorial for beginners", "Advanced Rust: traits"]
        );
        assert_eq!(texts(&s, "tut"), ["Rust tutorial for beginners"]);
        assert_eq!(texts(&s, "caf"), ["Café au lait"]);
        assert_eq!(texts(&s, "xyz"), Vec::<String>::new());
        assert_eq!(texts(&s, "  "), Vec::<String>::new());
    }

    #[test]
    fn typos_from_four_characters() {
        let s = sample();
        assert_eq!(texts(&s, "sourd"), ["Sourdough baking"]);
        assert_eq!(texts(&s, "sowrdo"), ["Sourdough baking"]);
        assert_eq!(texts(&s, "tutroial"), ["Rust tutorial for beginners"]);
        // Three characters are too few to guess from.
        assert_eq!(texts(&s, "sud"), Vec::<String>::new());
    }

    #[test]
    fn hidden_entries_and_duplicates_are_left_out() {
        let s = Suggestions::build(vec![
            entry("Rust", Kind::Title, 1),
            entry("rust", Kind::Title, 2),
            entry("rust", Kind::Tag, 3),
        ]);
        let found = s.complete("ru", 5, |e| e.kind != Kind::Tag);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].weight, 2);
    }
}
