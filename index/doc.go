// Package index is spladapt's sparse inverted index: a writer (Builder), the
// on-disk format (docs/format/index.md), a memory-mapped Reader and exact
// top-k query processing.
//
// Terms are uint32 ids (vocabulary ids for SPLADE, dictionary ids for BM25);
// the package knows nothing of models: it takes (doc id, []TermWeight).
// Postings of a term are chunks of 128: Rice-coded doc-number gaps with
// the quantised impacts beside them, and a directory of each chunk's last
// doc for skipping; per-term maxima over doc-number blocks drive
// block-max pruning.
//
// Every query algorithm returns exactly the top k of brute-force scoring of
// every document on the same integer impacts, ties broken toward the
// smaller doc number.
package index
