// Package serve answers top-k queries over HTTP with a JSON API and a
// search page:
//
//	GET  /                      the search page (/?q=TEXT runs TEXT; assets under /page/)
//	GET  /search?q=TEXT&k=K     text query through the QueryEncoder
//	POST /search                {"vector": {"<key>": weight, ...}, "k": K} or {"q": "TEXT", "k": K}
//	GET  /explain?q=TEXT&doc=ID the matched terms of one document with q_t, d_t and q_t·d_t
//	GET  /healthz               "ok"
//	GET  /stats                 index counts and served-query counters
//
// With Options.Docs, hits carry the document's title and a snippet.
// Bad requests get a 4xx status and {"error": "..."}; bodies are limited
// to MaxBodyBytes, answers to Timeout, k to MaxK. A request body must
// arrive within Timeout (a read deadline: a client announcing 1 000 bytes
// and sending 10 is cut off, not left holding a connection). k means the
// same in GET and POST: absent is DefaultK, anything outside 1..MaxK
// (0 included) is a 400. A POST body is one JSON object: anything but
// white space after it is a 400. Negative query weights are a 400.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/index"
)

// Options bound what a client may ask.
type Options struct {
	MaxBodyBytes int64
	Timeout      time.Duration
	MaxK         int
	DefaultK     int
	Algorithm    index.Algorithm
	// Docs, when not nil, gives hits their title and snippet and the
	// explanations their title.
	Docs Docs
	// Analyze, when not nil, returns the index terms of a text's own
	// tokens (as the model or analyzer sees them); /explain then marks
	// the matched terms that are not among them as expansion terms.
	Analyze func(text string) []uint32
}

// Server is an http.Handler over one index.
type Server struct {
	r       *index.Reader
	enc     index.QueryEncoder
	resolve index.TermResolver
	opts    Options
	mux     *http.ServeMux
	queries atomic.Int64
	errors  atomic.Int64
	nanos   atomic.Int64
}

// New returns a server; enc encodes text queries (nil: TokenEncoder over
// the index's vocabulary or term ids).
func New(r *index.Reader, enc index.QueryEncoder, opts Options) *Server {
	if opts.DefaultK < 1 {
		opts.DefaultK = 10
	}
	if opts.MaxK < 1 {
		opts.MaxK = 1000
	}
	if opts.MaxBodyBytes < 1 {
		opts.MaxBodyBytes = 1 << 20
	}
	s := &Server{r: r, enc: enc, resolve: index.ReaderResolver(r), opts: opts, mux: http.NewServeMux()}
	if s.enc == nil {
		s.enc = index.TokenEncoder{Resolve: s.resolve}
	}
	s.mux.HandleFunc("/", s.page)
	s.mux.HandleFunc("/search", s.search)
	s.mux.HandleFunc("/explain", s.explain)
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("/stats", s.stats)
	return s
}

// Handler returns the handler with the time limit applied: a read
// deadline of Timeout on the request body, and Timeout to answer.
func (s *Server) Handler() http.Handler {
	if s.opts.Timeout <= 0 {
		return s.mux
	}
	th := http.TimeoutHandler(s.mux, s.opts.Timeout, `{"error":"time limit exceeded"}`)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Set on the connection's own writer (TimeoutHandler's does not
		// unwrap to it). Without it a stalled body blocks the handler
		// and, after the 503, the server's drain of the body, forever.
		// Not supported (HTTP/2, tests' recorders): the limit still
		// bounds the answer.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.opts.Timeout))
		th.ServeHTTP(w, req)
	})
}

// Hit is one result of the JSON API.
type Hit struct {
	ID      string  `json:"id"`
	Score   float64 `json:"score"`
	Title   string  `json:"title,omitempty"`   // with Options.Docs
	Snippet string  `json:"snippet,omitempty"` // with Options.Docs: the text's start
}

// Response is the answer to /search.
type Response struct {
	Hits   []Hit   `json:"hits"`
	TookMS float64 `json:"took_ms"`
}

type request struct {
	Q      string             `json:"q"`
	Vector map[string]float64 `json:"vector"`
	K      *int               `json:"k"` // nil: DefaultK
}

func (s *Server) fail(w http.ResponseWriter, code int, err error) {
	s.errors.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func (s *Server) search(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	var rq request
	switch req.Method {
	case http.MethodGet:
		rq.Q = req.URL.Query().Get("q")
		if ks := req.URL.Query().Get("k"); ks != "" {
			k, err := strconv.Atoi(ks)
			if err != nil {
				s.fail(w, http.StatusBadRequest, fmt.Errorf("k %q is not an integer", ks))
				return
			}
			rq.K = &k
		}
	case http.MethodPost:
		dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, s.opts.MaxBodyBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rq); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.fail(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body over %d bytes", mbe.Limit))
				return
			}
			s.fail(w, http.StatusBadRequest, fmt.Errorf("decode request: %w", err))
			return
		}
		if _, err := dec.Token(); err != io.EOF {
			s.fail(w, http.StatusBadRequest, errors.New("decode request: data after the JSON object"))
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		s.fail(w, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed", req.Method))
		return
	}
	k := s.opts.DefaultK
	if rq.K != nil {
		k = *rq.K
	}
	if k < 1 || k > s.opts.MaxK {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("k = %d, want 1..%d", k, s.opts.MaxK))
		return
	}
	vec, err := s.query(rq)
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	if err := req.Context().Err(); err != nil {
		return // client gone or time limit hit
	}
	hits, err := s.r.Search(vec, k, s.opts.Algorithm)
	if err != nil {
		if errors.Is(err, index.ErrCorrupt) {
			s.fail(w, http.StatusInternalServerError, err)
		} else {
			s.fail(w, http.StatusBadRequest, err)
		}
		return
	}
	resp := Response{Hits: make([]Hit, len(hits))}
	for i, h := range hits {
		resp.Hits[i] = Hit{ID: s.r.DocID(h.Doc), Score: h.Score}
		if d, ok := s.opts.Docs[resp.Hits[i].ID]; ok {
			resp.Hits[i].Title, resp.Hits[i].Snippet = d.Title, snippet(d.Text)
		}
	}
	took := time.Since(start)
	resp.TookMS = float64(took) / 1e6
	s.queries.Add(1)
	s.nanos.Add(int64(took))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// query returns the vector of a request: its vector, or its text encoded.
func (s *Server) query(rq request) ([]index.TermWeight, error) {
	switch {
	case rq.Vector != nil && rq.Q != "":
		return nil, errors.New(`give "q" or "vector", not both`)
	case rq.Vector != nil:
		return index.ParseVector(rq.Vector, s.resolve)
	case rq.Q != "":
		return s.enc.Encode(rq.Q)
	default:
		return nil, errors.New(`missing query: give q (text) or a "vector"`)
	}
}

// explain answers GET /explain?q=TEXT&doc=ID from the query vector and the
// document's stored impacts (index.Reader.Explain).
func (s *Server) explain(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	if req.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		s.fail(w, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed", req.Method))
		return
	}
	id := req.URL.Query().Get("doc")
	if id == "" {
		s.fail(w, http.StatusBadRequest, errors.New("missing doc: give the document id"))
		return
	}
	d, ok := s.r.DocNum(id)
	if !ok {
		s.fail(w, http.StatusNotFound, fmt.Errorf("document %q is not in the index", id))
		return
	}
	vec, err := s.query(request{Q: req.URL.Query().Get("q")})
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	pq, err := s.r.Prepare(vec)
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	score, terms, err := s.r.Explain(vec, d)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	out := Explanation{Doc: id, Score: score, QueryTerms: pq.Len(), Terms: make([]ExplainTerm, len(terms))}
	var own map[uint32]bool
	if doc, ok := s.opts.Docs[id]; ok {
		out.Title = doc.Title
		if s.opts.Analyze != nil {
			own = map[uint32]bool{}
			for _, t := range s.opts.Analyze(corpora.Doc{Title: doc.Title, Text: doc.Text}.Content()) {
				own[t] = true
			}
			out.ExpansionKnown = true
		}
	}
	for i, ts := range terms {
		et := ExplainTerm{Term: ts.Term, Query: ts.Query, Doc: ts.Doc, Product: ts.Score}
		et.Token, _ = s.r.Token(ts.Term)
		if own != nil {
			exp := !own[ts.Term]
			et.Expansion = &exp
		}
		out.Terms[i] = et
	}
	out.TookMS = float64(time.Since(start)) / 1e6
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (s *Server) stats(w http.ResponseWriter, _ *http.Request) {
	m := s.r.Meta()
	q := s.queries.Load()
	mean := 0.0
	if q > 0 {
		mean = float64(s.nanos.Load()) / float64(q) / 1e6
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"num_docs": m.NumDocs, "num_terms": m.NumTerms, "num_postings": m.NumPostings,
		"fingerprint": m.Fingerprint, "algorithm": s.opts.Algorithm.String(), "index_bytes": s.r.Size(),
		"queries": q, "errors": s.errors.Load(), "mean_ms": mean,
	})
}

// ListenAndServe serves on addr until ctx is done, then shuts down
// gracefully (in-flight requests get up to grace to finish). ready, when
// not nil, receives the bound address.
func ListenAndServe(ctx context.Context, addr string, h http.Handler, grace time.Duration, ready func(addr string)) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ln, err := listen(addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}
