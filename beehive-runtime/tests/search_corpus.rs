//! The tantivy engine on real Chinese dialogue lines: every CJK substring of two or more
//! characters finds exactly the lines that contain it.

use std::path::Path;

use beehive_runtime::search::tokenizer::is_cjk;
use beehive_runtime::search::{MessageDocument, SearchEngine, SearchQuery, TantivyEngine};

const CORPUS_DIR: &str = "../../shared/data/chatterbot-chinese";
/// Substrings checked per line; keeps the test fast while covering every line.
const SUBSTRINGS_PER_LINE: usize = 2;

/// Reads the dialogue lines of every `.yml` file (the list items under `conversations:`).
fn corpus_lines() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS_DIR);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();

    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut in_conversations = false;
        for line in text.lines() {
            if line.starts_with("conversations:") {
                in_conversations = true;
                continue;
            }
            if !in_conversations {
                continue;
            }
            let item = line
                .strip_prefix("- - ")
                .or_else(|| line.strip_prefix("  - "))
                .map(str::trim);
            if let Some(item) = item
                && !item.is_empty()
            {
                lines.push(item.to_owned());
            }
        }
    }
    lines
}

/// CJK substrings of a line to search for: the first two characters and up to three from the
/// middle of each CJK run of two or more characters.
fn substrings(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut current = Vec::new();
    for &c in &chars {
        if is_cjk(c) {
            current.push(c);
        } else if !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }

    let mut found = Vec::new();
    for run in runs.iter().filter(|run| run.len() >= 2) {
        found.push(run[..2].iter().collect());
        if run.len() >= 4 {
            let middle = run.len() / 2 - 1;
            found.push(run[middle..(middle + 3).min(run.len())].iter().collect());
        }
    }
    found.truncate(SUBSTRINGS_PER_LINE);
    found
}

#[tokio::test]
async fn every_substring_finds_its_lines() {
    let lines = corpus_lines();
    assert!(
        lines.len() > 500,
        "only {} corpus lines were read",
        lines.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let engine = TantivyEngine::open(dir.path()).unwrap();
    let documents: Vec<MessageDocument> = lines
        .iter()
        .enumerate()
        .map(|(index, line)| MessageDocument {
            message_id: index as i64 + 1,
            conversation_id: index as i64 + 1,
            sender_id: 1,
            content: line.clone(),
            created_at: index as i64,
        })
        .collect();
    engine.index(&documents).await.unwrap();
    engine.refresh().await.unwrap();
    let every_conversation: Vec<i64> = (1..=lines.len() as i64).collect();

    let mut checked = 0;
    for (index, line) in lines.iter().enumerate() {
        for keyword in substrings(line) {
            let own = engine
                .search(&SearchQuery {
                    keyword: keyword.clone(),
                    conversation_ids: vec![index as i64 + 1],
                    page: 1,
                    page_size: 10,
                })
                .await
                .unwrap();
            assert_eq!(own.total, 1, "{keyword:?} did not find {line:?}");
            assert!(
                own.hits[0].highlight.contains(&format!("<em>{keyword}")),
                "{keyword:?} is not highlighted in {:?}",
                own.hits[0].highlight
            );

            let everywhere = engine
                .search(&SearchQuery {
                    keyword: keyword.clone(),
                    conversation_ids: every_conversation.clone(),
                    page: 1,
                    page_size: 1,
                })
                .await
                .unwrap();
            let expected = lines
                .iter()
                .filter(|other| other.contains(&keyword))
                .count();
            assert_eq!(everywhere.total, expected as u64, "total for {keyword:?}");
            checked += 1;
        }
    }
    assert!(checked > 500, "only {checked} substrings were checked");
}
