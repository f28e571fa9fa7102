package serve

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/spladapt/spladapt/corpora"
)

// The search page: plain HTML, CSS and JS, embedded, no external assets.
//
//go:embed page
var pageFS embed.FS

// Doc is the text of one document, shown on the search page.
type Doc struct {
	Title, Text string
}

// Docs holds documents' texts by external id.
type Docs map[string]Doc

// LoadDocs reads every document next gives into Docs, keeping those for
// which keep is true (all when keep is nil); io.EOF ends the stream. Cost:
// the texts kept, in memory.
func LoadDocs(next func() (corpora.Doc, error), keep func(id string) bool) (Docs, error) {
	docs := Docs{}
	for {
		d, err := next()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("load documents: %w", err)
		}
		if keep == nil || keep(d.ID) {
			docs[d.ID] = Doc{Title: d.Title, Text: d.Text}
		}
	}
}

// snippetBytes bounds a hit's snippet.
const snippetBytes = 280

// snippet cuts text to about snippetBytes at a space, with "…" when cut.
func snippet(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	if len(text) <= snippetBytes {
		return text
	}
	cut := snippetBytes
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	if i := strings.LastIndexByte(text[:cut], ' '); i > snippetBytes/2 {
		cut = i
	}
	return text[:cut] + "…"
}

// page serves the search page at "/" and its assets under "/page/".
func (s *Server) page(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.fail(w, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed", req.Method))
		return
	}
	// Everything the page loads is its own: no external scripts, styles,
	// fonts or images.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if req.URL.Path == "/" {
		b, _ := pageFS.ReadFile("page/index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b)
		return
	}
	if strings.HasPrefix(req.URL.Path, "/page/") {
		sub, _ := fs.Sub(pageFS, "page")
		http.StripPrefix("/page/", http.FileServerFS(sub)).ServeHTTP(w, req)
		return
	}
	s.fail(w, http.StatusNotFound, fmt.Errorf("no page %s (the search page is /, the API /search and /explain)", req.URL.Path))
}

// ExplainTerm is one matched term of an explanation.
type ExplainTerm struct {
	Term    uint32  `json:"term"`
	Token   string  `json:"token,omitempty"`
	Query   float64 `json:"query"`   // q_t, the query weight (quantised as for search)
	Doc     float64 `json:"doc"`     // d_t, the document weight as indexed
	Product float64 `json:"product"` // q_t·d_t, the term's share of the score
	// Expansion is true for a term that is not among the tokens of the
	// document's own text (the model added it); nil when unknown (no text
	// or no analyzer).
	Expansion *bool `json:"expansion,omitempty"`
}

// Explanation is the answer to /explain.
type Explanation struct {
	Doc   string  `json:"doc"`
	Title string  `json:"title,omitempty"`
	Score float64 `json:"score"`
	// Terms are the matched terms by decreasing product; they add up to
	// Score.
	Terms []ExplainTerm `json:"terms"`
	// QueryTerms is the number of query terms the index knows; those not
	// in Terms do not occur in the document.
	QueryTerms int `json:"query_terms"`
	// ExpansionKnown says whether Terms carry the expansion mark.
	ExpansionKnown bool    `json:"expansion_known"`
	TookMS         float64 `json:"took_ms"`
}
