// Package index is spladapt's sparse inverted index: a writer (Builder), the
// on-disk format (docs/format/index.md), a memory-mapped Reader and exact
// top-k query processing.
//
// Terms are uint32 ids (vocabulary ids for SPLADE, dictionary ids for BM25);
// the package knows nothing of models: it takes (doc id, []TermWeight).
// A term's doc numbers are a roaring bitmap (portable format, read in
// place from the mapped file; github.com/RoaringBitmap/roaring/v2 checks it
// in Validate), its quantised impacts sit beside them in doc order,
// bit-packed per 128-posting chunk; per-term maxima over doc-number blocks
// drive block-max pruning.
//
// Every query algorithm returns exactly the top k of brute-force scoring of
// every document on the same integer impacts, ties broken toward the
// smaller doc number.
package index
