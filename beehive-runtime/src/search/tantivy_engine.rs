//! [`SearchEngine`] on an embedded tantivy index.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tantivy::collector::sort_key::SortByStaticFastValue;
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, PhraseQuery, Query, TermQuery, TermSetQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::TokenStream;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Searcher, TantivyDocument,
    Term,
};

use super::query::parse_keyword;
use super::tokenizer::{TOKENIZER_NAME, analyzer};
use super::{MessageDocument, SearchEngine, SearchError, SearchHit, SearchPage, SearchQuery};

/// Pause between automatic commits of pending writes.
const COMMIT_INTERVAL: Duration = Duration::from_millis(500);
/// Indexing memory budget per writer thread, in bytes.
const WRITER_MEMORY_PER_THREAD: usize = 64 * 1024 * 1024;
/// Most documents of one `index` call added on the async runtime instead of a blocking task.
const MAX_INLINE_DOCUMENTS: usize = 16;
/// Maximum wait for another writer to release the index lock.
const WRITER_LOCK_WAIT: Duration = Duration::from_secs(5);
/// Indexing threads of the writer. Each thread builds its own segment between commits, with
/// arenas of several MiB allocated at every commit, so a second thread doubled the writer's
/// memory churn and the segments to merge. One thread indexes the chitchat corpus at over
/// 20,000 messages/s (BENCHMARKS.md), far above the send rate that feeds it.
const WRITER_THREADS: usize = 1;
/// Messages longer than this many characters are highlighted as a window around the first
/// match.
pub const MAX_HIGHLIGHT_CHARS: usize = 200;
/// Characters kept before the first match in a highlight window.
const HIGHLIGHT_LEAD_CHARS: usize = 40;

const FIELD_MESSAGE_ID: &str = "message_id";
const FIELD_CONVERSATION_ID: &str = "conversation_id";
const FIELD_SENDER_ID: &str = "sender_id";
const FIELD_CONTENT: &str = "content";
const FIELD_CREATED_AT: &str = "created_at";

/// A tantivy index of messages, in a directory or in memory.
///
/// Writes go to one shared writer and are committed every 500 ms when any are pending (or at
/// once by [`SearchEngine::refresh`]), after which the reader reloads. Dropping the last clone
/// commits what is still pending, so a graceful shutdown keeps every write.
#[derive(Clone)]
pub struct TantivyEngine {
    inner: Arc<Inner>,
    /// Permits for queries, one per core. Each query runs on a blocking thread. Without the
    /// limit, 64 concurrent searches ran on 64 threads at once, and on 2 cores that gave fewer
    /// queries per second than 4 searches at a time, with a p99 of 77 ms.
    query_permits: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for TantivyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TantivyEngine")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: Option<PathBuf>,
    reader: IndexReader,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    fields: Fields,
    dirty: AtomicBool,
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    message_id: Field,
    conversation_id: Field,
    sender_id: Field,
    content: Field,
    created_at: Field,
}

impl TantivyEngine {
    /// Opens the index in `dir`, creating the directory and the index when missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, SearchError> {
        let path = dir.as_ref().to_owned();
        std::fs::create_dir_all(&path).map_err(|err| SearchError::Directory {
            path: path.clone(),
            source: Box::new(err),
        })?;
        let directory = MmapDirectory::open(&path).map_err(|err| SearchError::Directory {
            path: path.clone(),
            source: Box::new(err),
        })?;
        let index =
            Index::open_or_create(directory, schema()).map_err(tantivy_error("open index"))?;
        Self::build(index, Some(path))
    }

    /// Creates an index in memory, for tests and benchmarks.
    pub fn in_memory() -> Result<Self, SearchError> {
        Self::build(Index::create_in_ram(schema()), None)
    }

    fn build(index: Index, path: Option<PathBuf>) -> Result<Self, SearchError> {
        index.tokenizers().register(TOKENIZER_NAME, analyzer());
        let schema = index.schema();
        let field = |name: &str| schema.get_field(name).map_err(tantivy_error("read schema"));
        let fields = Fields {
            message_id: field(FIELD_MESSAGE_ID)?,
            conversation_id: field(FIELD_CONVERSATION_ID)?,
            sender_id: field(FIELD_SENDER_ID)?,
            content: field(FIELD_CONTENT)?,
            created_at: field(FIELD_CREATED_AT)?,
        };

        let writer = open_writer(&index, WRITER_THREADS)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tantivy_error("open reader"))?;

        let inner = Arc::new(Inner {
            path,
            reader,
            writer: Mutex::new(writer),
            fields,
            dirty: AtomicBool::new(false),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(commit_periodically(Arc::downgrade(&inner)));
        } else {
            tracing::warn!("no async runtime: search writes become visible only on refresh");
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Self {
            inner,
            query_permits: Arc::new(tokio::sync::Semaphore::new(cores)),
        })
    }

    /// Number of documents visible to searches.
    pub fn num_docs(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }
}

/// Opens the index writer, waiting up to [`WRITER_LOCK_WAIT`] for a writer that is shutting
/// down (a commit still running in a dropped engine, or a previous process) to release the lock.
fn open_writer(index: &Index, threads: usize) -> Result<IndexWriter<TantivyDocument>, SearchError> {
    let deadline = std::time::Instant::now() + WRITER_LOCK_WAIT;
    loop {
        match index.writer_with_num_threads(threads, threads * WRITER_MEMORY_PER_THREAD) {
            Ok(writer) => return Ok(writer),
            Err(tantivy::TantivyError::LockFailure(_, _))
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(SearchError::Tantivy {
                    operation: "open writer",
                    source,
                });
            }
        }
    }
}

fn schema() -> Schema {
    let mut builder = Schema::builder();
    let id = NumericOptions::default()
        .set_indexed()
        .set_fast()
        .set_stored();
    builder.add_i64_field(FIELD_MESSAGE_ID, id.clone());
    builder.add_i64_field(FIELD_CONVERSATION_ID, id.clone());
    builder.add_i64_field(FIELD_SENDER_ID, NumericOptions::default().set_stored());
    builder.add_i64_field(FIELD_CREATED_AT, id);
    let content = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER_NAME)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    builder.add_text_field(FIELD_CONTENT, content);
    builder.build()
}

impl Inner {
    fn writer(&self) -> MutexGuard<'_, IndexWriter<TantivyDocument>> {
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn commit(&self) -> Result<(), SearchError> {
        self.dirty.store(false, Ordering::SeqCst);
        let result = self.writer().commit();
        if let Err(err) = result {
            self.dirty.store(true, Ordering::SeqCst);
            return Err(SearchError::Tantivy {
                operation: "commit",
                source: err,
            });
        }
        self.reader.reload().map_err(tantivy_error("reload reader"))
    }

    fn add(&self, documents: &[MessageDocument]) -> Result<(), SearchError> {
        self.add_with(&self.writer(), documents)
    }

    /// Adds `documents` when the writer is free at once, and returns them otherwise (a commit
    /// holds the lock). Adding only queues the documents for the indexing thread, so a caller
    /// on the async runtime can do it in place of a blocking task.
    fn try_add<'d>(
        &self,
        documents: &'d [MessageDocument],
    ) -> Result<Option<&'d [MessageDocument]>, SearchError> {
        match self.writer.try_lock() {
            Ok(writer) => self.add_with(&writer, documents).map(|()| None),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => self
                .add_with(&poisoned.into_inner(), documents)
                .map(|()| None),
            Err(std::sync::TryLockError::WouldBlock) => Ok(Some(documents)),
        }
    }

    fn add_with(
        &self,
        writer: &IndexWriter<TantivyDocument>,
        documents: &[MessageDocument],
    ) -> Result<(), SearchError> {
        for document in documents {
            writer.delete_term(Term::from_field_i64(
                self.fields.message_id,
                document.message_id,
            ));
            let mut doc = TantivyDocument::default();
            doc.add_i64(self.fields.message_id, document.message_id);
            doc.add_i64(self.fields.conversation_id, document.conversation_id);
            doc.add_i64(self.fields.sender_id, document.sender_id);
            doc.add_i64(self.fields.created_at, document.created_at);
            doc.add_text(self.fields.content, &document.content);
            writer
                .add_document(doc)
                .map_err(tantivy_error("add document"))?;
        }
        self.dirty.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn remove(&self, message_ids: &[i64]) {
        let writer = self.writer();
        for &message_id in message_ids {
            writer.delete_term(Term::from_field_i64(self.fields.message_id, message_id));
        }
        self.dirty.store(true, Ordering::SeqCst);
    }

    fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError> {
        let parts = parse_keyword(&query.keyword);
        if parts.is_empty() || query.conversation_ids.is_empty() {
            return Ok(SearchPage::default());
        }

        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(parts.len() + 1);
        let mut highlight_terms = HashSet::new();
        for part in &parts {
            let terms: Vec<Term> = part
                .terms
                .iter()
                .map(|term| Term::from_field_text(self.fields.content, term))
                .collect();
            highlight_terms.extend(part.terms.iter().cloned());
            let clause: Box<dyn Query> = match terms.as_slice() {
                [term] => Box::new(TermQuery::new(term.clone(), IndexRecordOption::Basic)),
                _ => Box::new(PhraseQuery::new(terms)),
            };
            clauses.push((Occur::Must, clause));
        }
        let conversations = query
            .conversation_ids
            .iter()
            .map(|id| Term::from_field_i64(self.fields.conversation_id, *id));
        clauses.push((Occur::Must, Box::new(TermSetQuery::new(conversations))));
        let tantivy_query = BooleanQuery::new(clauses);

        let newest_first = (
            (
                SortByStaticFastValue::<i64>::for_field(FIELD_CREATED_AT),
                Order::Desc,
            ),
            (
                SortByStaticFastValue::<i64>::for_field(FIELD_MESSAGE_ID),
                Order::Desc,
            ),
        );
        let searcher = self.reader.searcher();
        let total = searcher
            .search(&tantivy_query, &Count)
            .map_err(tantivy_error("count"))?;
        // Counting first keeps a huge `page` cheap: tantivy's top-docs collector reserves room for
        // offset + limit hits, so a page past the end must never reach it.
        let offset = query.offset();
        if offset >= total {
            return Ok(SearchPage {
                total: total as u64,
                hits: Vec::new(),
            });
        }
        let top = TopDocs::with_limit(query.page_size as usize)
            .and_offset(offset)
            .order_by(newest_first);
        let page = searcher
            .search(&tantivy_query, &top)
            .map_err(tantivy_error("search"))?;

        let mut hits = Vec::with_capacity(page.len());
        for (_, address) in page {
            hits.push(self.load_hit(&searcher, address, &highlight_terms)?);
        }
        Ok(SearchPage {
            total: total as u64,
            hits,
        })
    }

    fn load_hit(
        &self,
        searcher: &Searcher,
        address: DocAddress,
        terms: &HashSet<String>,
    ) -> Result<SearchHit, SearchError> {
        let doc: TantivyDocument = searcher
            .doc(address)
            .map_err(tantivy_error("load document"))?;
        let int = |field: Field| {
            doc.get_first(field)
                .and_then(|value| value.as_i64())
                .unwrap_or_default()
        };
        let content = doc
            .get_first(self.fields.content)
            .and_then(|value| value.as_str())
            .unwrap_or_default()
            .to_owned();
        Ok(SearchHit {
            message_id: int(self.fields.message_id),
            conversation_id: int(self.fields.conversation_id),
            sender_id: int(self.fields.sender_id),
            created_at: int(self.fields.created_at),
            highlight: highlight(&content, terms),
            content,
        })
    }
}

impl Drop for Inner {
    /// Commits the writes made since the last commit; without this, the writer would discard
    /// them when it is dropped.
    fn drop(&mut self) {
        if !self.dirty.load(Ordering::SeqCst) {
            return;
        }
        let writer = self
            .writer
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match writer.commit() {
            Ok(_) => tracing::info!(path = ?self.path, "committed the search index on close"),
            Err(err) => {
                tracing::error!(path = ?self.path, error = %err, "committing the search index on close failed")
            }
        }
    }
}

/// Commits pending writes every [`COMMIT_INTERVAL`] until the engine is dropped.
async fn commit_periodically(inner: Weak<Inner>) {
    let mut ticker = tokio::time::interval(COMMIT_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(engine) = inner.upgrade() else {
            return;
        };
        if !engine.dirty.load(Ordering::SeqCst) {
            continue;
        }
        let outcome = tokio::task::spawn_blocking(move || engine.commit()).await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "committing the search index failed; retrying")
            }
            Err(err) => tracing::error!(error = %err, "the search commit task failed"),
        }
    }
}

/// Wraps every token of `content` whose term is in `terms` in `<em>…</em>`, escaping the rest.
/// Long content is cut to a window that starts shortly before the first match.
pub fn highlight(content: &str, terms: &HashSet<String>) -> String {
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(content);
    while stream.advance() {
        let token = stream.token();
        if terms.contains(&token.text) {
            let range = token.offset_from..token.offset_to;
            match ranges.last_mut() {
                Some(last) if range.start < last.end => last.end = last.end.max(range.end),
                _ => ranges.push(range),
            }
        }
    }

    let (window_start, window_end) = highlight_window(content, ranges.first().map(|r| r.start));
    let mut html = String::with_capacity(content.len() + ranges.len() * 9);
    let mut cursor = window_start;
    for range in ranges {
        if range.start < cursor || range.end > window_end {
            continue;
        }
        escape_into(&mut html, &content[cursor..range.start]);
        html.push_str("<em>");
        escape_into(&mut html, &content[range.clone()]);
        html.push_str("</em>");
        cursor = range.end;
    }
    escape_into(&mut html, &content[cursor..window_end]);
    html
}

/// Byte range of the highlight: all of a short text, or [`MAX_HIGHLIGHT_CHARS`] characters
/// starting [`HIGHLIGHT_LEAD_CHARS`] before the first match.
fn highlight_window(content: &str, first_match: Option<usize>) -> (usize, usize) {
    let starts: Vec<usize> = content.char_indices().map(|(offset, _)| offset).collect();
    if starts.len() <= MAX_HIGHLIGHT_CHARS {
        return (0, content.len());
    }
    let match_char = first_match
        .map(|offset| starts.partition_point(|&start| start < offset))
        .unwrap_or(0);
    let first = match_char
        .saturating_sub(HIGHLIGHT_LEAD_CHARS)
        .min(starts.len() - MAX_HIGHLIGHT_CHARS);
    let last = first + MAX_HIGHLIGHT_CHARS;
    let end = starts.get(last).copied().unwrap_or(content.len());
    (starts[first], end)
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
}

#[async_trait]
impl SearchEngine for TantivyEngine {
    async fn index(&self, documents: &[MessageDocument]) -> Result<(), SearchError> {
        if documents.is_empty() {
            return Ok(());
        }
        let count = documents.len();
        // A small batch (one message event) goes to tantivy's indexing thread without a
        // blocking task, which cost a thread wake-up per message under the send benchmark.
        // Bulk batches could fill tantivy's queue and block, so they keep the blocking task.
        let pending = if documents.len() <= MAX_INLINE_DOCUMENTS {
            self.inner.try_add(documents)?
        } else {
            Some(documents)
        };
        if let Some(documents) = pending {
            let inner = Arc::clone(&self.inner);
            let documents = documents.to_vec();
            tokio::task::spawn_blocking(move || inner.add(&documents))
                .await
                .map_err(SearchError::Task)??;
        }
        tracing::debug!(count, "indexed messages");
        Ok(())
    }

    async fn delete(&self, message_ids: &[i64]) -> Result<(), SearchError> {
        if message_ids.is_empty() {
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        let message_ids = message_ids.to_vec();
        tokio::task::spawn_blocking(move || inner.remove(&message_ids))
            .await
            .map_err(SearchError::Task)?;
        Ok(())
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError> {
        query.validate()?;
        // The semaphore is never closed, so acquiring only waits and `ok()` drops no error.
        let permit = Arc::clone(&self.query_permits).acquire_owned().await.ok();
        let inner = Arc::clone(&self.inner);
        let query = query.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner.search(&query)
        })
        .await
        .map_err(SearchError::Task)?
    }

    async fn refresh(&self) -> Result<(), SearchError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.commit())
            .await
            .map_err(SearchError::Task)?
    }
}

fn tantivy_error(operation: &'static str) -> impl Fn(tantivy::TantivyError) -> SearchError {
    move |source| SearchError::Tantivy { operation, source }
}
