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

use std::{
    ops::Bound,
    sync::{Arc, Mutex},
};

use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader,
    TantivyDocument, Term,
    collector::TopDocs,
    query::{
        AllQuery, BooleanQuery, ConstScoreQuery, EmptyQuery, FuzzyTermQuery, Occur, PhraseQuery,
        Query, RangeQuery, TermQuery,
    },
    schema::{
        FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
    },
    tokenizer::{
        Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter,
        TextAnalyzer,
    },
};
use uuid::Uuid;

use super::syntax::{self, Clause};

/// What a query word scores where it occurs.
pub const TITLE: Score = 1.0;
pub const TAGS: Score = 0.4;
pub const DESCRIPTION: Score = 0.2;
pub const TYPO: Score = 0.1;

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
        index.tokenizers().register(ENGLISH, english);
        index.tokenizers().register(WORDS, words);
        // One indexing thread: updates are small batches, and the full build runs once per
        // start on a blocking thread, beside the requests being served.
        let mut writer = index.writer_with_num_threads(1, WRITER_MEMORY)?;
        for document in documents {
            writer.add_document(to_tantivy(&fields, &document))?;
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
        let mut writer = self.writer.lock().expect("a panic while indexing");
        for id in upserts.iter().map(|d| &d.id).chain(removals) {
            writer.delete_term(Term::from_field_text(f.id, &id.to_string()));
        }
        for document in upserts {
            writer.add_document(to_tantivy(f, document))?;
        }
        writer.commit()?;
        self.reader.reload()
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
        let order = request.order;
        let after = request.after;
        let collector = TopDocs::with_limit(request.limit.max(1)).tweak_score(
            move |segment: &SegmentReader| {
                let fast = segment.fast_fields();
                let published = fast.i64("published").ok();
                let hi = fast.u64("id_hi").ok();
                let lo = fast.u64("id_lo").ok();
                move |doc: DocId, score: Score| {
                    let read = |c: &Option<tantivy::columnar::Column<u64>>| {
                        c.as_ref().and_then(|c| c.first(doc)).unwrap_or(0)
                    };
                    let key = (
                        if order == Order::Relevance {
                            score
                        } else {
                            0.0
                        },
                        published.as_ref().and_then(|c| c.first(doc)).unwrap_or(0),
                        read(&hi),
                        read(&lo),
                    );
                    match after {
                        Some(after) if key >= tuple(&after) => BEFORE_CURSOR,
                        _ => key,
                    }
                }
            },
        );
        let found: Vec<(SortKey, DocAddress)> = searcher.search(&query, &collector)?;
        Ok(found
            .into_iter()
            .filter(|(key, _)| *key != BEFORE_CURSOR)
            .map(|((score, published, hi, lo), _)| Key {
                score,
                published,
                id: Uuid::from_u64_pair(hi, lo),
            })
            .take(request.limit)
            .collect())
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
                for (field, score) in weighted {
                    let term = Term::from_field_text(field, token);
                    fields.push((Occur::Should, constant(term_query(term), score)));
                }
                let word = clause.text.to_lowercase();
                let long = word.chars().count();
                if !clause.quoted
                    && !clause.negated
                    && long >= 4
                    && word.chars().all(char::is_alphanumeric)
                    && !self.is_known(searcher, &word, token)?
                {
                    let distance = if long >= 8 { 2 } else { 1 };
                    let term = Term::from_field_text(f.words, &word);
                    let fuzzy = FuzzyTermQuery::new(term, distance, true);
                    fields.push((Occur::Should, constant(Box::new(fuzzy), TYPO)));
                }
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

    /// Whether a query word occurs anywhere in the index (then it is not a typo).
    fn is_known(
        &self,
        searcher: &tantivy::Searcher,
        word: &str,
        stem: &str,
    ) -> tantivy::Result<bool> {
        let f = &self.fields;
        let terms = [
            Term::from_field_text(f.words, word),
            Term::from_field_text(f.description, stem),
        ];
        for term in &terms {
            if searcher.doc_freq(term)? > 0 {
                return Ok(true);
            }
        }
        Ok(false)
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
        let mut analyzer = self
            .index
            .tokenizers()
            .get(analyzer)
            .expect("registered in build");
        let mut stream = analyzer.token_stream(text);
        let mut tokens = Vec::new();
        while stream.advance() {
            let token = stream.token();
            tokens.push((token.position, token.text.clone()));
        }
        tokens
    }
}

/// (score, published, id high bits, id low bits): what the collector orders by.
type SortKey = (Score, i64, u64, u64);
/// Below every real key: what results at or before the cursor become.
const BEFORE_CURSOR: SortKey = (Score::NEG_INFINITY, i64::MIN, 0, 0);

fn tuple(key: &Key) -> SortKey {
    let (hi, lo) = key.id.as_u64_pair();
    (key.score, key.published, hi, lo)
}

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
        words: s.add_text_field("words", text(WORDS, IndexRecordOption::Basic)),
        tag: s.add_text_field("tag", STRING),
        category: s.add_text_field("category", STRING),
        published: s.add_i64_field("published", INDEXED | FAST),
        duration: s.add_u64_field("duration", INDEXED | FAST),
    };
    (s.build(), fields)
}

fn to_tantivy(f: &Fields, d: &Document) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
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
