package elastic

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/internal/atomicfile"
)

// Source calls fn for every document, in order, with its id and vector.
type Source func(fn func(id string, vec []Term) error) error

// IndexSource reads the document vectors back from index r: weight =
// impact × scale (the index's quantised weights, within scale/2 of the
// weights indexed), tokens from the index's vocabulary or decimal term ids
// when it has none. Terms are in increasing term-id order. Cost: one pass
// over every posting list and 6 bytes of memory per posting (the postings
// are inverted to documents at once).
func IndexSource(r *index.Reader) Source {
	return func(fn func(id string, vec []Term) error) error {
		meta := r.Meta()
		N := meta.NumDocs
		start := make([]int64, N+1) // CSR offsets per doc
		var docs []uint32
		var imps []uint16
		var err error
		for t := range uint32(meta.NumTerms) {
			if docs, imps, err = r.Postings(t, docs, imps); err != nil {
				return fmt.Errorf("read index vectors: %w", err)
			}
			for _, d := range docs {
				start[d+1]++
			}
		}
		for d := range N {
			start[d+1] += start[d]
		}
		fill := append([]int64(nil), start[:N]...)
		terms := make([]uint32, start[N])
		vals := make([]uint16, start[N])
		for t := range uint32(meta.NumTerms) {
			if docs, imps, err = r.Postings(t, docs, imps); err != nil {
				return fmt.Errorf("read index vectors: %w", err)
			}
			for i, d := range docs {
				terms[fill[d]], vals[fill[d]] = t, imps[i]
				fill[d]++
			}
		}
		names := make([]string, meta.NumTerms)
		for t := range names {
			names[t] = termName(r, uint32(t))
		}
		var vec []Term
		for d := range N {
			vec = vec[:0]
			for j := start[d]; j < start[d+1]; j++ {
				vec = append(vec, Term{Token: names[terms[j]], Weight: float32(float64(vals[j]) * meta.Scale)})
			}
			if err := fn(r.DocID(uint32(d)), vec); err != nil {
				return err
			}
		}
		return nil
	}
}

func termName(r *index.Reader, t uint32) string {
	if r.HasVocab() {
		if tok, ok := r.Token(t); ok {
			return tok
		}
	}
	return fmt.Sprint(t)
}

// Files are the names Export writes.
const (
	MappingFile = "mapping.json"
	BulkPattern = "bulk-%05d.ndjson"
)

// Export writes dir/mapping.json (Mapping) and the documents of src as
// bulk NDJSON files dir/bulk-00000.ndjson, … of at most docsPerFile
// documents each (engines cap a request at 100 MB by default), and returns
// the number of documents and files. dir is written through a temporary
// directory and a rename.
func Export(dir string, e Engine, field string, docsPerFile int, src Source) (docs, files int, err error) {
	if docsPerFile < 1 {
		return 0, 0, fmt.Errorf("export %s %s: %d documents per file, want ≥ 1", e, dir, docsPerFile)
	}
	err = atomicfile.Dir(dir, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, MappingFile), Mapping(e, field), 0o644); err != nil {
			return err
		}
		var f *os.File
		var bw *BulkWriter
		closeFile := func() error {
			if f == nil {
				return nil
			}
			if err := bw.Flush(); err != nil {
				f.Close()
				return err
			}
			docs += bw.Docs()
			err := f.Close()
			f = nil
			return err
		}
		err := src(func(id string, vec []Term) error {
			if f == nil || bw.Docs() == docsPerFile {
				if err := closeFile(); err != nil {
					return err
				}
				var err error
				if f, err = os.Create(filepath.Join(tmp, fmt.Sprintf(BulkPattern, files))); err != nil {
					return err
				}
				files++
				bw = NewBulkWriter(f, field)
			}
			return bw.Add(id, vec)
		})
		if err != nil {
			if f != nil {
				f.Close()
			}
			return err
		}
		return closeFile()
	})
	if err != nil {
		return 0, 0, fmt.Errorf("export %s %s: %w", e, dir, err)
	}
	return docs, files, nil
}
