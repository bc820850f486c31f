//! `lego-demo wordfreq`: the words of a text and how often each comes.
//!
//! A word is a run of letters and digits (any script: `char::is_alphanumeric`),
//! with apostrophes inside it ("don't", "o’clock"), compared in lower case.
//! Text that is not UTF-8 counts its bad bytes as separators. The whole text
//! is read into memory first, then counted in a hash table (with a fixed
//! hash, FNV-1a: no random seed, so no getrandom and the same table on every
//! run).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{Read, Write};

use crate::human_size;

/// What a text held.
#[derive(Debug, PartialEq, Eq)]
pub struct Words {
    pub bytes: u64,
    /// Newlines, as `wc -l` counts them.
    pub lines: u64,
    pub words: u64,
    /// Every different word and its count, the most frequent first (ties in
    /// the order of the words' bytes).
    pub table: Vec<(String, u64)>,
    /// The text and the table, roughly.
    pub memory: u64,
}

pub fn run(input: &mut impl Read, top: usize, out: &mut impl Write) -> Result<(), String> {
    let mut text = Vec::new();
    input
        .read_to_end(&mut text)
        .map_err(|e| format!("reading stdin: {e}"))?;
    let words = count(&text);
    drop(text);

    let mut report = format!(
        "lego-demo wordfreq: {} bytes, {} lines, {} words, {} different\n",
        words.bytes,
        words.lines,
        words.words,
        words.table.len()
    );
    let shown = &words.table[..top.min(words.table.len())];
    if let Some(&(_, most)) = shown.first() {
        report += &format!("the {} most frequent:\n", shown.len());
        let width = most.to_string().len();
        for (word, n) in shown {
            report += &format!("  {n:>width$}  {word}\n");
        }
    }
    report += &format!(
        "checksum of all {} words and their counts: {:016x}\n",
        words.table.len(),
        checksum(&words.table)
    );
    report += &format!(
        "memory: about {} (the text and the table)\n",
        human_size(words.memory)
    );
    out.write_all(report.as_bytes()).map_err(|e| e.to_string())
}

pub fn count(text: &[u8]) -> Words {
    let lines = text.iter().filter(|&&b| b == b'\n').count() as u64;
    let text = String::from_utf8_lossy(text);
    let mut table: HashMap<String, u64, BuildHasherDefault<Fnv1a>> = HashMap::default();
    let mut word = String::new();
    let mut words = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
            if let Some(&next) = chars.peek() {
                if next.is_alphanumeric() {
                    continue;
                }
                // An apostrophe joins two parts of a word.
                if matches!(next, '\'' | '’') {
                    let mut ahead = chars.clone();
                    ahead.next();
                    if ahead.peek().is_some_and(|c| c.is_alphanumeric()) {
                        word.push('\'');
                        chars.next();
                        continue;
                    }
                }
            }
            words += 1;
            match table.get_mut(word.as_str()) {
                Some(n) => *n += 1,
                None => {
                    table.insert(word.clone(), 1);
                }
            }
            word.clear();
        }
    }
    let memory = text.len()
        + table.capacity() * (size_of::<(String, u64)>() + 1)
        + table.keys().map(String::len).sum::<usize>();
    let mut table: Vec<(String, u64)> = table.into_iter().collect();
    table.sort_unstable_by(|(a, m), (b, n)| n.cmp(m).then_with(|| a.cmp(b)));
    Words {
        bytes: text.len() as u64,
        lines,
        words,
        table,
        memory: memory as u64,
    }
}

/// FNV-1a of the table as lines "word count\n", in its order.
fn checksum(table: &[(String, u64)]) -> u64 {
    let mut hash = Fnv1a::default();
    for (word, n) in table {
        hash.write(format!("{word} {n}\n").as_bytes());
    }
    hash.finish()
}

/// The 64-bit FNV-1a hash.
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Vec<(String, u64)> {
        count(text.as_bytes()).table
    }

    fn owned(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
        pairs.iter().map(|&(w, n)| (w.to_string(), n)).collect()
    }

    #[test]
    fn words_and_order() {
        let words = count(b"The cat; the DOG.\nthe cat's toy, don't 'quoted' o\xe2\x80\x99clock\n");
        assert_eq!(words.lines, 2);
        assert_eq!(words.words, 10);
        assert_eq!(
            words.table,
            owned(&[
                ("the", 3),
                ("cat", 1),
                ("cat's", 1),
                ("dog", 1),
                ("don't", 1),
                ("o'clock", 1),
                ("quoted", 1),
                ("toy", 1),
            ])
        );
    }

    #[test]
    fn other_scripts_numbers_and_bad_bytes() {
        assert_eq!(
            table("Ünïcode ünÏcode 42 x42 ß"),
            owned(&[("ünïcode", 2), ("42", 1), ("x42", 1), ("ß", 1)])
        );
        assert_eq!(count(b"ab\xffcd").table, owned(&[("ab", 1), ("cd", 1)]));
        assert_eq!(count(b"").words, 0);
        assert_eq!(table("''' - ' a'"), owned(&[("a", 1)]));
    }

    #[test]
    fn report() {
        let mut out = Vec::new();
        run(&mut &b"b a b c b a\n"[..], 2, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "lego-demo wordfreq: 12 bytes, 1 lines, 6 words, 3 different"
        );
        assert_eq!(lines[1..4], ["the 2 most frequent:", "  3  b", "  2  a"]);
        assert!(lines[4].starts_with("checksum of all 3 words and their counts: "));
        let mut hash = Fnv1a::default();
        hash.write(b"b 3\na 2\nc 1\n");
        assert!(lines[4].ends_with(&format!("{:016x}", hash.finish())));
    }
}
