package corpora

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// OpenCorpus opens the documents at path, whatever their form:
//
//   - a BEIR directory (it has corpus.jsonl or corpus.jsonl.gz): its corpus;
//   - any other directory: a plain directory of documents (OpenDir);
//   - a file ending in .jsonl or .jsonl.gz: JSONL with BEIR's field names;
//   - a file ending in .tsv or .tsv.gz: "id<TAB>[title<TAB>]text" lines.
//
// Other file names are an error naming the accepted forms.
func OpenCorpus(path string, opts Options) (DocReader, error) {
	return OpenCorpusFields(path, BEIRFields, opts)
}

// OpenCorpusFields is OpenCorpus with the JSONL field names f (used for
// JSONL files, BEIR directories and .jsonl files inside plain directories).
func OpenCorpusFields(path string, f Fields, opts Options) (DocReader, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open corpus: %w", err)
	}
	if fi.IsDir() {
		if IsBEIR(path) {
			return BEIR{Dir: path}.corpus(f, opts)
		}
		return OpenDir(path, f, opts)
	}
	switch fileKind(path) {
	case "jsonl":
		return OpenJSONL(path, f, opts)
	case "tsv":
		return OpenTSV(path, opts)
	}
	return nil, fmt.Errorf("open corpus %s: unknown format (want a BEIR directory, a directory of documents, .jsonl[.gz] or .tsv[.gz])", path)
}

// ReadQueries reads all queries at path:
//
//   - a BEIR directory: its queries.jsonl[.gz];
//   - .jsonl[.gz]: {"_id": ..., "text": ...} per line;
//   - .tsv[.gz]: "id<TAB>text" per line;
//   - any other file: TREC topics (<top> ... </top>), by ReadTopics.
//
// Bad records are errors with file and line, or skipped under
// Options.SkipInvalid, as for OpenJSONL; duplicate ids are errors. Queries
// come back in file order.
func ReadQueries(path string, opts Options) ([]Query, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read queries: %w", err)
	}
	if fi.IsDir() {
		return BEIR{Dir: path}.Queries(opts)
	}
	switch fileKind(path) {
	case "jsonl":
		return readQueriesJSONL(path, opts)
	case "tsv":
		r, err := openRecords(path, opts, newIDSet(), parseTSVQuery)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return readAllQueries(r)
	}
	return ReadTopics(path, opts)
}

var queryFields = Fields{ID: "_id", Text: "text"}

func readQueriesJSONL(path string, opts Options) ([]Query, error) {
	r, err := openRecords(path, opts, newIDSet(), jsonParser(queryFields))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return readAllQueries(r)
}

// fileKind classifies a file name by extension: "jsonl", "tsv" or "".
func fileKind(name string) string {
	name = strings.ToLower(strings.TrimSuffix(name, ".gz"))
	switch filepath.Ext(name) {
	case ".jsonl":
		return "jsonl"
	case ".tsv":
		return "tsv"
	}
	return ""
}

// CountDocs counts the records at path without decoding them, for progress
// bars: the non-blank lines of a JSONL or TSV file (of a BEIR directory's
// corpus), or for a plain directory its .txt/.md/.html files plus the
// non-blank lines of its .jsonl files. Malformed records are counted too,
// so the count is an upper bound on what a reader returns. Cost: one pass
// over the bytes (decompressing gzip), no JSON decoding.
func CountDocs(path string) (int, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("count documents: %w", err)
	}
	if !fi.IsDir() {
		return countLines(path)
	}
	if IsBEIR(path) {
		return countLines(BEIR{Dir: path}.corpusFile())
	}
	n := 0
	err = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		switch docKind(d.Name()) {
		case "text", "html":
			n++
		case "jsonl":
			c, err := countLines(p)
			if err != nil && !errors.Is(err, ErrEmptyFile) {
				return err
			}
			n += c
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count documents in %s: %w", path, err)
	}
	return n, nil
}

// countLines counts non-blank lines.
func countLines(name string) (int, error) {
	lr, err := openLines(name)
	if err != nil {
		return 0, err
	}
	defer lr.Close()
	if b, _ := lr.br.Peek(3); string(b) == "\xef\xbb\xbf" {
		lr.br.Discard(3)
	}
	buf := make([]byte, 1<<16)
	n, lines, nonblank := 0, 0, false
	for {
		k, err := lr.br.Read(buf)
		for _, c := range buf[:k] {
			switch c {
			case '\n':
				lines++
				if nonblank {
					n++
				}
				nonblank = false
			case ' ', '\t', '\r', '\v', '\f':
			default:
				nonblank = true
			}
		}
		if err == io.EOF {
			if nonblank {
				n++
			}
			return n, nil
		}
		if err != nil {
			return 0, &ParseError{File: name, Line: lines + 1, Err: describeReadErr(err)}
		}
	}
}

// WriteFileStamps writes to w one line per file under path (path itself
// when it is a file), in lexical order: its path, size and modification
// time in nanoseconds, "%q %d %d\n". Hashed, it fingerprints a corpus for
// the caches built from it (pretrain's token cache, splade's shards),
// which notice a changed file without reading it. Cost: one stat per file.
func WriteFileStamps(w io.Writer, path string) error {
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%q %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
		return err
	})
}

// ReadTexts reads r to its end and returns the content (Doc.Content: title
// and body) of the documents whose ids are in need, by id; need nil keeps
// every document. It does not close r. Cost: one pass; memory is the kept
// texts.
func ReadTexts(r DocReader, need map[string]bool) (map[string]string, error) {
	docs := map[string]string{}
	for {
		d, err := r.Next()
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if need == nil || need[d.ID] {
			docs[d.ID] = d.Content()
		}
	}
}

// ReadDocs reads every document of the corpora at paths (anything
// OpenCorpus reads), in order, into memory. Cost: the corpora's text.
func ReadDocs(paths []string, opts Options) ([]Doc, error) {
	var docs []Doc
	for _, p := range paths {
		r, err := OpenCorpus(p, opts)
		if err != nil {
			return nil, err
		}
		for {
			d, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				r.Close()
				return nil, err
			}
			docs = append(docs, d)
		}
		if err := r.Close(); err != nil {
			return nil, err
		}
	}
	return docs, nil
}
