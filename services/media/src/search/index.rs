//! The full-text index of listed videos: a tantivy index in memory, one per media replica,
//! kept in step with the catalogue by super::sync.
//!
//! Why not PostgreSQL's `ts_rank`: ranking reads every matching document's `tsvector`
//! before the best 20 can be taken, ~1.8 ms of a core per search at 100,000 videos, plus a
//! round trip for the typo check (issue 25). Here a search walks posting
//! lists in memory and keeps the top of the page as it goes; PostgreSQL is asked only for
//! the page's rows, by primary key.
//!
//! Relevance is deliberately simple and independent of the rest of the catalogue, so a
//! cursor stays valid while videos come and go (BM25 would shift every score whenever a
//! video is added): each query word scores by where it occurs, title
//! [`TITLE`], tags [`TAGS`], description [`DESCRIPTION`], summed over the words (and over
//! the fields it occurs in). Ties — most results of a short query — go to the newest
//! video, then the highest id. A word that occurs nowhere in the index, 4+ characters
//! long, also matches title and tag words within 1 edit (2 from 8 characters): that is
//! the typo tolerance, and scores [`TYPO`].
//!
//! How a word is matched and scored cheaply: besides the title, tags and description
//! fields (kept for phrases), every document has one `weighted` field holding each of its
//! words once per [`UNIT`] of that word's score in the document (a title word 5 times, a
//! word in the title and the description 6). A query word is then one posting list,
//! read with its term frequencies ([`WeightedWord`]), and a query of several words an
//! intersection of such lists. Asking the three fields instead made every word a union of
//! three lists, which tantivy buffers 4,096 documents at a time: a two-word search cost
//! 3.3 times the CPU that way (`bench/tools` search-index at 100,000 videos: 221 µs
//! against 67 µs; bench/RESULTS.md).

use std::{
    cmp::{Ordering, Reverse},
    collections::BinaryHeap,
    ops::Bound,
    sync::{Arc, Mutex},
};

use tantivy::{
    DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentOrdinal, SegmentReader,
    TantivyDocument, Term,
    collector::{Collector, SegmentCollector},
    columnar::Column,
    postings::{Postings, SegmentPostings},
    query::{
        AllQuery, BooleanQuery, ConstScoreQuery, EmptyQuery, EmptyScorer, EnableScoring,
        Explanation, FuzzyTermQuery, Occur, PhraseQuery, Query, RangeQuery, Scorer, TermQuery,
        Weight,
    },
    schema::{
        FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
    },
    tokenizer::{
        Language, LowerCaser, PreTokenizedString, RemoveLongFilter, SimpleTokenizer, Stemmer,
        StopWordFilter, TextAnalyzer, Token,
    },
};
use uuid::Uuid;

use super::syntax::{self, Clause};

/// What a query word scores where it occurs.
pub const TITLE: Score = 1.0;
pub const TAGS: Score = 0.4;
pub const DESCRIPTION: Score = 0.2;
pub const TYPO: Score = 0.1;
/// The weighted field counts a word's score in these units: [`TITLE`], [`TAGS`] and
/// [`DESCRIPTION`] are whole multiples of it.
const UNIT: Score = 0.2;

/// English words: split on anything not a letter or digit, lowercased, stop words out,
/// stemmed (as PostgreSQL's `english` configuration did).
const ENGLISH: &str = "kino_english";
/// Whole lowercased words, for the typo vocabulary.
const WORDS: &str = "kino_words";
/// Words longer than this are not indexed (nobody searches for them).
const LONGEST_WORD: usize = 40;
/// The writer's indexing memory. Tantivy's minimum is 15 MB; a full catalogue build
/// flushes segments as it fills.
const WRITER_MEMORY: usize = 50_000_000;

/// One listed video as the index holds it.
#[derive(Debug, Clone)]
pub struct Document {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub category: Option<String>,
    /// Microseconds since the epoch.
    pub published: i64,
    pub duration_seconds: Option<f64>,
}

/// What narrows a search, besides its words.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filters {
    /// All of these tags (normalised: lowercase).
    pub tags: Vec<String>,
    pub category: Option<String>,
    /// Published at or after / strictly before, in microseconds.
    pub published_after: Option<i64>,
    pub published_before: Option<i64>,
    /// Duration in whole seconds: at least / less than.
    pub duration: Option<(Option<u64>, Option<u64>)>,
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The order a search comes back in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    /// Score, then newest.
    Relevance,
    /// Newest first, whatever the score.
    Date,
}

/// A result's place in the order: (score, published, id), compared in that order. Under
/// [`Order::Date`] every score is 0.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Key {
    pub score: Score,
    pub published: i64,
    pub id: Uuid,
}

/// One search.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub text: &'a str,
    pub filters: &'a Filters,
    pub order: Order,
    /// Only results strictly after this key (the page cursor).
    pub after: Option<Key>,
    pub limit: usize,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    id_hi: Field,
    id_lo: Field,
    title: Field,
    tags_text: Field,
    description: Field,
    weighted: Field,
    words: Field,
    tag: Field,
    category: Field,
    published: Field,
    duration: Field,
}

/// The index, its reader and its single writer.
pub struct Engine {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
}

impl Engine {
    /// An index holding `documents`, ready to search.
    pub fn build(documents: impl IntoIterator<Item = Document>) -> tantivy::Result<Self> {
        let (schema, fields) = schema();
        let index = Index::create_in_ram(schema);
        let english = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(LONGEST_WORD))
            .filter(LowerCaser)
            .filter(StopWordFilter::new(Language::English).expect("tantivy ships English"))
            .filter(Stemmer::new(Language::English))
            .build();
        let words = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(LONGEST_WORD))
            .filter(LowerCaser)
            .build();
        index.tokenizers().register(ENGLISH, english.clone());
        index.tokenizers().register(WORDS, words);
        // One indexing thread: updates are small batches, and the full build runs once per
        // start on a blocking thread, beside the requests being served.
        let mut writer = index.writer_with_num_threads(1, WRITER_MEMORY)?;
        let mut english = english;
        for document in documents {
            writer.add_document(to_tantivy(&fields, &mut english, &document))?;
        }
        writer.commit()?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            index,
            reader,
            writer: Mutex::new(writer),
            fields,
        })
    }

    /// Replaces `upserts` (added when new) and removes `removals`, then makes the change
    /// visible to searches.
    pub fn apply(&self, upserts: &[Document], removals: &[Uuid]) -> tantivy::Result<()> {
        let f = &self.fields;
        let mut english = self.analyzer(ENGLISH);
        let mut writer = self.writer.lock().expect("a panic while indexing");
        for id in upserts.iter().map(|d| &d.id).chain(removals) {
            writer.delete_term(Term::from_field_text(f.id, &id.to_string()));
        }
        for document in upserts {
            writer.add_document(to_tantivy(f, &mut english, document))?;
        }
        writer.commit()?;
        self.reader.reload()
    }

    /// How many segments the index is in (each costs every search a little: logged with
    /// the build, and printed by bench/tools search-index).
    pub fn segments(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// The best `limit` results after `after`, best first.
    pub fn search(&self, request: &Request<'_>) -> tantivy::Result<Vec<Key>> {
        let searcher = self.reader.searcher();
        let text = self.text_query(&searcher, request.text)?;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text)];
        for filter in self.filter_queries(request.filters) {
            // Filters select; they add nothing to the score.
            clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(filter, 0.0))));
        }
        let query = BooleanQuery::new(clauses);
        let collector = TopKeys {
            relevance: request.order == Order::Relevance,
            after: request.after,
            limit: request.limit,
        };
        searcher.search(&query, &collector)
    }

    /// The query for the text the user typed: everything when it is blank, nothing when
    /// it has no searchable word.
    fn text_query(
        &self,
        searcher: &tantivy::Searcher,
        text: &str,
    ) -> tantivy::Result<Box<dyn Query>> {
        if text.trim().is_empty() {
            return Ok(Box::new(ConstScoreQuery::new(Box::new(AllQuery), 0.0)));
        }
        let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for alternative in syntax::parse(text) {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for clause in &alternative {
                if let Some(query) = self.clause_query(searcher, clause)? {
                    let occur = if clause.negated {
                        Occur::MustNot
                    } else {
                        Occur::Must
                    };
                    clauses.push((occur, query));
                }
            }
            if clauses.iter().all(|(occur, _)| *occur == Occur::MustNot) {
                if clauses.is_empty() {
                    continue;
                }
                // Only exclusions: everything else matches (as in websearch_to_tsquery).
                let all = ConstScoreQuery::new(Box::new(AllQuery), 0.0);
                clauses.push((Occur::Must, Box::new(all)));
            }
            alternatives.push((Occur::Should, Box::new(BooleanQuery::new(clauses))));
        }
        Ok(match alternatives.len() {
            0 => Box::new(EmptyQuery),
            1 => alternatives.pop().expect("one").1,
            _ => Box::new(BooleanQuery::new(alternatives)),
        })
    }

    /// One word or phrase, scored by the fields it occurs in; `None` when it has nothing
    /// searchable (a stop word, punctuation).
    fn clause_query(
        &self,
        searcher: &tantivy::Searcher,
        clause: &Clause,
    ) -> tantivy::Result<Option<Box<dyn Query>>> {
        let f = &self.fields;
        let tokens = self.analyse(ENGLISH, &clause.text);
        let weighted = [
            (f.title, TITLE),
            (f.tags_text, TAGS),
            (f.description, DESCRIPTION),
        ];
        let mut fields: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        match tokens.as_slice() {
            [] => return Ok(None),
            [(_, token)] => {
                let term = Term::from_field_text(f.weighted, token);
                let word = clause.text.to_lowercase();
                let long = word.chars().count();
                let typo = !clause.quoted
                    && !clause.negated
                    && long >= 4
                    && word.chars().all(char::is_alphanumeric)
                    && searcher.doc_freq(&term)? == 0;
                let exact = Box::new(WeightedWord(term));
                if !typo {
                    return Ok(Some(exact));
                }
                // Not a word of the index: also its neighbours in titles and tags.
                let distance = if long >= 8 { 2 } else { 1 };
                let term = Term::from_field_text(f.words, &word);
                let fuzzy = FuzzyTermQuery::new(term, distance, true);
                fields.push((Occur::Should, exact));
                fields.push((Occur::Should, constant(Box::new(fuzzy), TYPO)));
            }
            // Several words (a phrase, or `a-b`): in this order, in one field.
            _ => {
                for (field, score) in weighted {
                    let terms = tokens
                        .iter()
                        .map(|(position, token)| (*position, Term::from_field_text(field, token)))
                        .collect();
                    let phrase = PhraseQuery::new_with_offset(terms);
                    fields.push((Occur::Should, constant(Box::new(phrase), score)));
                }
            }
        }
        Ok(Some(Box::new(BooleanQuery::new(fields))))
    }

    fn filter_queries(&self, filters: &Filters) -> Vec<Box<dyn Query>> {
        let f = &self.fields;
        let mut queries: Vec<Box<dyn Query>> = Vec::new();
        for tag in &filters.tags {
            queries.push(term_query(Term::from_field_text(f.tag, tag)));
        }
        if let Some(category) = &filters.category {
            queries.push(term_query(Term::from_field_text(f.category, category)));
        }
        if filters.published_after.is_some() || filters.published_before.is_some() {
            let bound = |v: Option<i64>, included: bool| match v {
                None => Bound::Unbounded,
                Some(v) if included => Bound::Included(Term::from_field_i64(f.published, v)),
                Some(v) => Bound::Excluded(Term::from_field_i64(f.published, v)),
            };
            queries.push(Box::new(RangeQuery::new(
                bound(filters.published_after, true),
                bound(filters.published_before, false),
            )));
        }
        if let Some((at_least, below)) = filters.duration {
            let bound = |v: Option<u64>, included: bool| match v {
                None => Bound::Unbounded,
                Some(v) if included => Bound::Included(Term::from_field_u64(f.duration, v)),
                Some(v) => Bound::Excluded(Term::from_field_u64(f.duration, v)),
            };
            queries.push(Box::new(RangeQuery::new(
                bound(at_least, true),
                bound(below, false),
            )));
        }
        queries
    }

    /// The tokens of `text` (with their positions) as `analyzer` indexes them.
    fn analyse(&self, analyzer: &str, text: &str) -> Vec<(usize, String)> {
        let mut analyzer = self.analyzer(analyzer);
        let mut stream = analyzer.token_stream(text);
        let mut tokens = Vec::new();
        while stream.advance() {
            let token = stream.token();
            tokens.push((token.position, token.text.clone()));
        }
        tokens
    }

    fn analyzer(&self, name: &str) -> TextAnalyzer {
        self.index
            .tokenizers()
            .get(name)
            .expect("registered in build")
    }
}

/// One query word anywhere in a document, scored by the fields it occurs in: the
/// `weighted` field's term frequency, in [`UNIT`]s. One posting list, so an intersection
/// of words seeks cheaply (see the module's documentation).
#[derive(Clone, Debug)]
struct WeightedWord(Term);

impl Query for WeightedWord {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        visitor(&self.0, false);
    }
}

impl Weight for WeightedWord {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let postings = reader
            .inverted_index(self.0.field())?
            .read_postings(&self.0, IndexRecordOption::WithFreqs)?;
        Ok(match postings {
            Some(postings) => Box::new(WeightedPostings(postings)),
            None => Box::new(EmptyScorer),
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} does not hold the word"
            )));
        }
        Ok(Explanation::new(
            "weights of the fields holding the word",
            scorer.score(),
        ))
    }
}

struct WeightedPostings(SegmentPostings);

impl tantivy::DocSet for WeightedPostings {
    fn advance(&mut self) -> DocId {
        self.0.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.0.seek(target)
    }

    fn doc(&self) -> DocId {
        self.0.doc()
    }

    fn size_hint(&self) -> u32 {
        self.0.size_hint()
    }
}

impl Scorer for WeightedPostings {
    fn score(&mut self) -> Score {
        self.0.term_freq() as Score * UNIT
    }
}

/// The best `limit` keys strictly after `after` (the cursor), best first. A document's
/// `published` is read only when its score could still make the page, and its id only
/// when its score and date do (or tie the cursor's): reading all three for every match
/// took more of a search's time in the index than the posting lists did (perf, issue 25).
struct TopKeys {
    relevance: bool,
    after: Option<Key>,
    limit: usize,
}

impl Collector for TopKeys {
    type Fruit = Vec<Key>;
    type Child = SegmentTopKeys;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        let fast = segment.fast_fields();
        Ok(SegmentTopKeys {
            relevance: self.relevance,
            after: self.after.map(Ranked),
            limit: self.limit,
            published: fast.i64("published")?,
            hi: fast.u64("id_hi")?,
            lo: fast.u64("id_lo")?,
            best: BinaryHeap::with_capacity(self.limit + 1),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.relevance
    }

    fn merge_fruits(&self, segments: Vec<Vec<Key>>) -> tantivy::Result<Vec<Key>> {
        let mut all: Vec<Ranked> = segments.into_iter().flatten().map(Ranked).collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        all.truncate(self.limit);
        Ok(all.into_iter().map(|r| r.0).collect())
    }
}

struct SegmentTopKeys {
    relevance: bool,
    after: Option<Ranked>,
    limit: usize,
    published: Column<i64>,
    hi: Column<u64>,
    lo: Column<u64>,
    /// The best keys so far, the worst of them on top.
    best: BinaryHeap<Reverse<Ranked>>,
}

impl SegmentCollector for SegmentTopKeys {
    type Fruit = Vec<Key>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if self.limit == 0 {
            return;
        }
        let score = if self.relevance { score } else { 0.0 };
        let worst = match self.best.peek() {
            Some(Reverse(worst)) if self.best.len() >= self.limit => Some(*worst),
            _ => None,
        };
        if worst.is_some_and(|w| score < w.0.score) {
            return;
        }
        let published = self.published.first(doc).unwrap_or(0);
        let partial = Ranked(Key {
            score,
            published,
            id: Uuid::nil(),
        });
        if worst.is_some_and(|w| partial.before(&w) == Ordering::Less)
            || self
                .after
                .is_some_and(|a| partial.before(&a) == Ordering::Greater)
        {
            return;
        }
        let (hi, lo) = (self.hi.first(doc), self.lo.first(doc));
        let key = Ranked(Key {
            id: Uuid::from_u64_pair(hi.unwrap_or(0), lo.unwrap_or(0)),
            ..partial.0
        });
        if self.after.is_some_and(|a| key >= a) || worst.is_some_and(|w| key <= w) {
            return;
        }
        if worst.is_some() {
            self.best.pop();
        }
        self.best.push(Reverse(key));
    }

    fn harvest(self) -> Vec<Key> {
        self.best.into_iter().map(|Reverse(r)| r.0).collect()
    }
}

/// A [`Key`] in its total order: score, then published, then id (scores are never NaN).
#[derive(Debug, Clone, Copy)]
struct Ranked(Key);

impl Ranked {
    /// Compared by score and published only.
    fn before(&self, other: &Self) -> Ordering {
        (self.0.score.total_cmp(&other.0.score)).then(self.0.published.cmp(&other.0.published))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.before(other).then(self.0.id.cmp(&other.0.id))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

fn term_query(term: Term) -> Box<dyn Query> {
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

fn constant(query: Box<dyn Query>, score: Score) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(query, score))
}

fn schema() -> (Schema, Fields) {
    let mut s = Schema::builder();
    let text = |tokenizer: &str, record: IndexRecordOption| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(record),
        )
    };
    // Positions, for phrases.
    let english = text(ENGLISH, IndexRecordOption::WithFreqsAndPositions);
    let fields = Fields {
        id: s.add_text_field("id", STRING),
        id_hi: s.add_u64_field("id_hi", FAST),
        id_lo: s.add_u64_field("id_lo", FAST),
        title: s.add_text_field("title", english.clone()),
        tags_text: s.add_text_field("tags_text", english.clone()),
        description: s.add_text_field("description", english),
        // Written pre-tokenized (to_tantivy); frequencies carry the weights.
        weighted: s.add_text_field("weighted", text(ENGLISH, IndexRecordOption::WithFreqs)),
        words: s.add_text_field("words", text(WORDS, IndexRecordOption::Basic)),
        tag: s.add_text_field("tag", STRING),
        category: s.add_text_field("category", STRING),
        published: s.add_i64_field("published", INDEXED | FAST),
        duration: s.add_u64_field("duration", INDEXED | FAST),
    };
    (s.build(), fields)
}

fn to_tantivy(f: &Fields, english: &mut TextAnalyzer, d: &Document) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_pre_tokenized_text(f.weighted, weighted_words(english, d));
    let (hi, lo) = d.id.as_u64_pair();
    doc.add_text(f.id, d.id.to_string());
    doc.add_u64(f.id_hi, hi);
    doc.add_u64(f.id_lo, lo);
    doc.add_text(f.title, &d.title);
    doc.add_text(f.description, &d.description);
    doc.add_text(f.words, &d.title);
    for tag in &d.tags {
        doc.add_text(f.tags_text, tag);
        doc.add_text(f.words, tag);
        doc.add_text(f.tag, tag.to_lowercase());
    }
    if let Some(category) = &d.category {
        doc.add_text(f.category, category.trim().to_lowercase());
    }
    doc.add_i64(f.published, d.published);
    if let Some(seconds) = d.duration_seconds {
        doc.add_u64(f.duration, seconds.max(0.0) as u64);
    }
    doc
}

/// The `weighted` field of a document: each English word of its title, tags and
/// description, repeated once per [`UNIT`] of the word's score in this document.
fn weighted_words(english: &mut TextAnalyzer, d: &Document) -> PreTokenizedString {
    let mut units: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    let tags = d.tags.join(" ");
    for (text, weight) in [
        (d.title.as_str(), TITLE),
        (tags.as_str(), TAGS),
        (d.description.as_str(), DESCRIPTION),
    ] {
        let mut seen = std::collections::HashSet::new();
        let mut stream = english.token_stream(text);
        while stream.advance() {
            let word = &stream.token().text;
            if seen.insert(word.clone()) {
                *units.entry(word.clone()).or_default() += (weight / UNIT).round() as u32;
            }
        }
    }
    let mut tokens = Vec::new();
    for (word, n) in units {
        for _ in 0..n {
            tokens.push(Token {
                position: tokens.len(),
                text: word.clone(),
                ..Token::default()
            });
        }
    }
    PreTokenizedString {
        text: String::new(),
        tokens,
    }
}

/// A shared handle on the current engine (replaced whole when sync rebuilds it).
pub type Shared = Arc<Engine>;

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: u128, title: &str, tags: &[&str], description: &str, published: i64) -> Document {
        Document {
            id: Uuid::from_u128(n),
            title: title.into(),
            description: description.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            category: Some("Cooking".into()),
            published,
            duration_seconds: Some(n as f64 * 100.0),
        }
    }

    fn ids(engine: &Engine, text: &str, filters: &Filters) -> Vec<u128> {
        let request = Request {
            text,
            filters,
            order: Order::Relevance,
            after: None,
            limit: 10,
        };
        let keys = engine.search(&request).unwrap();
        keys.iter().map(|k| k.id.as_u128()).collect()
    }

    fn engine() -> Engine {
        Engine::build([
            doc(1, "Sourdough baking", &["bread"], "Flour and water.", 10),
            doc(
                2,
                "Football tactics",
                &["sport"],
                "Pressing; sourdough jokes.",
                20,
            ),
            doc(3, "Programming in Rust", &["code"], "Ownership.", 30),
            doc(4, "Baking with kids", &["bread", "family"], "Fun.", 40),
        ])
        .unwrap()
    }

    #[test]
    fn fields_weigh_in_and_ties_go_to_the_newest() {
        let e = engine();
        let none = Filters::default();
        assert_eq!(ids(&e, "sourdough", &none), vec![1, 2]);
        assert_eq!(ids(&e, "baking", &none), vec![4, 1]);
        assert_eq!(ids(&e, "bread", &none), vec![4, 1]);
        assert_eq!(ids(&e, "progrmming", &none), vec![3]);
        assert_eq!(ids(&e, "footbal taktics", &none), vec![2]);
        assert_eq!(ids(&e, "\"football tactics\" -rust", &none), vec![2]);
        assert_eq!(ids(&e, "\"tactics football\"", &none), Vec::<u128>::new());
        assert_eq!(ids(&e, "sourdough -football", &none), vec![1]);
        assert_eq!(ids(&e, "rust or kids", &none), vec![4, 3]);
        assert_eq!(ids(&e, "the", &none), Vec::<u128>::new());
        assert_eq!(ids(&e, "-bread", &none), vec![3, 2]);
    }

    #[test]
    fn a_word_scores_the_weights_of_the_fields_holding_it_once_each() {
        let e = Engine::build([
            doc(1, "Pasta night", &["pasta"], "Pasta with more pasta.", 10),
            doc(2, "Night bus", &[], "A pasta stop.", 20),
            doc(3, "Quiet", &["pasta", "night"], "", 30),
        ])
        .unwrap();
        let scores = |text: &str| -> Vec<(u128, f32)> {
            let filters = Filters::default();
            let request = Request {
                text,
                filters: &filters,
                order: Order::Relevance,
                after: None,
                limit: 10,
            };
            let keys = e.search(&request).unwrap();
            keys.iter().map(|k| (k.id.as_u128(), k.score)).collect()
        };
        let near = |found: Vec<(u128, f32)>, expected: &[(u128, f32)]| {
            assert_eq!(found.len(), expected.len(), "{found:?}");
            for ((id, score), (want_id, want)) in found.iter().zip(expected) {
                assert_eq!(id, want_id, "{found:?}");
                assert!((score - want).abs() < 1e-5, "{found:?}");
            }
        };
        // Title + tags + description, however often it occurs in each.
        near(scores("pasta"), &[(1, 1.6), (3, 0.4), (2, 0.2)]);
        // Summed over the words; a video must hold every word.
        near(scores("pasta night"), &[(1, 2.6), (2, 1.2), (3, 0.8)]);
        near(scores("night -pasta"), &[]);
    }

    #[test]
    fn filters_narrow_without_scoring() {
        let e = engine();
        let tags = Filters {
            tags: vec!["bread".into(), "family".into()],
            ..Filters::default()
        };
        assert_eq!(ids(&e, "", &tags), vec![4]);
        let dates = Filters {
            published_after: Some(20),
            published_before: Some(40),
            ..Filters::default()
        };
        assert_eq!(ids(&e, "", &dates), vec![3, 2]);
        let long = Filters {
            duration: Some((Some(300), None)),
            category: Some("cooking".into()),
            ..Filters::default()
        };
        assert_eq!(ids(&e, "", &long), vec![4, 3]);
    }

    #[test]
    fn pages_follow_the_cursor_and_updates_apply() {
        let e = engine();
        let none = Filters::default();
        let mut request = Request {
            text: "",
            filters: &none,
            order: Order::Date,
            after: None,
            limit: 3,
        };
        let first = e.search(&request).unwrap();
        assert_eq!(first.len(), 3);
        request.after = first.last().copied();
        let rest = e.search(&request).unwrap();
        assert_eq!(rest.iter().map(|k| k.id.as_u128()).collect::<Vec<_>>(), [1]);

        e.apply(&[doc(1, "Rye bread", &[], "", 10)], &[Uuid::from_u128(2)])
            .unwrap();
        assert_eq!(ids(&e, "sourdough", &none), Vec::<u128>::new());
        assert_eq!(ids(&e, "rye", &none), vec![1]);
    }
}
