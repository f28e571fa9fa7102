package main

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/adapt"
	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/index/serve"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/rerank"
	"github.com/spladapt/spladapt/splade"
	"github.com/spladapt/spladapt/tokenize"
)

// spladeToy is a toy BEIR collection: two documents per topic, queries
// naming a topic, qrels train = dev = each query's document.
var spladeToy = struct {
	docs    map[string]string
	queries map[string][2]string // id → text, relevant doc
}{
	docs: map[string]string{
		"cat1": "the cat sat on the warm mat and purred", "cat2": "a small cat chased a mouse around the house",
		"ship1": "the ship sailed across the cold ocean with its crew", "ship2": "a large ship carried cargo over the sea",
		"bread1": "fresh bread is baked in a hot oven every morning", "bread2": "the baker sold warm bread and butter rolls",
		"star1": "a bright star shines in the night sky above the hills", "star2": "astronomers watched the distant star through a telescope",
		"rain1": "heavy rain fell on the city and flooded the streets", "rain2": "the storm brought rain and wind to the valley",
	},
	queries: map[string][2]string{
		"q1": {"cat mouse", "cat2"}, "q2": {"cat purred mat", "cat1"}, "q3": {"ship ocean crew", "ship1"},
		"q4": {"ship cargo sea", "ship2"}, "q5": {"bread oven", "bread1"}, "q6": {"baker butter", "bread2"},
		"q7": {"star night sky", "star1"}, "q8": {"star telescope", "star2"}, "q9": {"rain flooded streets", "rain1"},
		"q10": {"storm rain wind", "rain2"},
	},
}

func writeSpladeToy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var corpus, queries strings.Builder
	for id, text := range spladeToy.docs {
		b, _ := json.Marshal(map[string]string{"_id": id, "title": "", "text": text})
		corpus.Write(append(b, '\n'))
	}
	qrels := "query-id\tcorpus-id\tscore\n"
	for id, q := range spladeToy.queries {
		b, _ := json.Marshal(map[string]string{"_id": id, "text": q[0]})
		queries.Write(append(b, '\n'))
		qrels += id + "\t" + q[1] + "\t1\n"
	}
	os.MkdirAll(filepath.Join(dir, "qrels"), 0o755)
	for name, data := range map[string]string{"corpus.jsonl": corpus.String(), "queries.jsonl": queries.String(),
		"qrels/train.tsv": qrels, "qrels/dev.tsv": qrels} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeTinyModel saves a random tiny BERT with a word vocabulary of the toy
// collection (plus extra tokens) as an HF checkpoint.
func writeTinyModel(t *testing.T, seed uint64, extra ...string) string {
	t.Helper()
	seen := map[string]bool{}
	for _, d := range spladeToy.docs {
		for _, w := range strings.Fields(d) {
			seen[w] = true
		}
	}
	for _, q := range spladeToy.queries {
		for _, w := range strings.Fields(q[0]) {
			seen[w] = true
		}
	}
	var words []string
	for w := range seen {
		words = append(words, w)
	}
	sort.Strings(words)
	vocab := append(append([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}, extra...), words...)
	tok, err := tokenize.FromVocab(vocab, true)
	if err != nil {
		t.Fatal(err)
	}
	tokDir := filepath.Join(t.TempDir(), "tok")
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	m, err := nn.NewModel(nn.BERTConfig(len(vocab), 32, 2, 4, 64, 64), seed)
	if err != nil {
		t.Fatal(err)
	}
	m.TokenizerDir = tokDir
	dir := filepath.Join(t.TempDir(), "model")
	if err := m.SaveHF(dir, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTrainEncodeSearch runs the whole pipeline through the CLI on the toy
// collection: train splade (BM25-mined negatives, dev selection), encode
// into an index, search with text queries through the model, evaluate;
// then checks the vocabulary refusal and resume refusal.
func TestTrainEncodeSearch(t *testing.T) {
	toy := writeSpladeToy(t)
	init := writeTinyModel(t, 11)
	dir := t.TempDir()
	best := filepath.Join(dir, "best")
	env := map[string]string{
		"SPLADAPT_SPLADE_WARMUP_STEPS": "3", "SPLADAPT_SPLADE_MINE_NEGATIVES": "2", "SPLADAPT_SPLADE_MINE_DEPTH": "6",
		"SPLADAPT_SPLADE_DROPOUT": "false",
	}
	trainArgs := []string{"train", "splade", "--train", toy, "--init", init, "--out", best, "--dev", toy,
		"--steps", "30", "--batch-size", "4", "--lr", "0.002", "--eval-every", "10", "--checkpoint-every", "10",
		"--max-length", "16", "--query-max-length", "8"}
	out, errOut, err := bm25CLI(t, env, trainArgs...)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "trained 30 steps") || !strings.Contains(errOut, "triples from 10 judged queries") {
		t.Errorf("train output %q\nstderr %q", out, errOut)
	}
	raw, err := os.ReadFile(filepath.Join(best, "splade.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta splade.TrainMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.Steps != 30 || meta.DevMetrics["nDCG@10"] < 0.6 || meta.Triples < 8 {
		t.Errorf("splade.json: %+v", meta)
	}
	// Toy BM25 finds no negative for a query or two ("skipped"), hence
	// ≥ 8 triples.
	// Rerun without --resume: refused; with --resume: nothing left to do.
	if _, _, err := bm25CLI(t, env, trainArgs...); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("rerun without --resume: %v", err)
	}
	if out, _, err := bm25CLI(t, env, append(trainArgs, "--resume")...); err != nil || !strings.Contains(out, "trained 30 steps") {
		t.Errorf("resume of a finished run: %q %v", out, err)
	}

	idx := filepath.Join(dir, "idx")
	out, errOut, err = bm25CLI(t, nil, "encode", "--model", best, "--corpus", toy, "--out", idx, "--shard-size", "4",
		"--max-length", "16", "--stats", filepath.Join(dir, "stats.json"))
	if err != nil {
		t.Fatalf("encode: %v\n%s", err, errOut)
	}
	if !strings.HasPrefix(out, "encoded 10 documents (0 resumed shards of 3)") {
		t.Errorf("encode output %q", out)
	}
	runPath := filepath.Join(dir, "run.trec")
	out, errOut, err = bm25CLI(t, nil, "search", "--index", idx, "--model", best, "--queries", toy, "--run", runPath, "-k", "10")
	if err != nil {
		t.Fatalf("search: %v\n%s", err, errOut)
	}
	run, err := corpora.ReadRun(runPath)
	if err != nil {
		t.Fatal(err)
	}
	qrels, _ := corpora.BEIR{Dir: toy}.Qrels("dev")
	ms, _ := eval.ParseMeasures("nDCG@10")
	res, err := eval.Evaluate(qrels, run, ms, eval.Options{AllQueries: true})
	if err != nil {
		t.Fatal(err)
	}
	// The index quantises weights to 8 bits; ranks may move a little from
	// the exact dev search of training.
	if math.Abs(res.All[0]-meta.DevMetrics["nDCG@10"]) > 0.1 {
		t.Errorf("search nDCG@10 %.4f, dev nDCG@10 at training %.4f", res.All[0], meta.DevMetrics["nDCG@10"])
	}
	// The server answers text queries through the same encoder: its hits
	// for q1 are the run's.
	r, err := index.Open(idx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	enc, err := spladeQueryEncoder(config.Default(), best, idx, r)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve.New(r, enc, serve.Options{Algorithm: index.BlockMax})
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/search?k=3&q="+url.QueryEscape(spladeToy.queries["q1"][0]), nil))
	var resp struct {
		Hits []serve.Hit `json:"hits"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || rec.Code != 200 {
		t.Fatalf("serve: %d %s", rec.Code, rec.Body)
	}
	if len(resp.Hits) != 3 || len(run["q1"]) < 3 {
		t.Fatalf("serve hits %v, run %v", resp.Hits, run["q1"])
	}
	for i, h := range resp.Hits {
		if h.ID != run["q1"][i].DocID || math.Abs(h.Score-run["q1"][i].Score) > 1e-5 {
			t.Errorf("serve hit %d = %+v, search run %+v", i, h, run["q1"][i])
		}
	}
	// Another vocabulary (one more token) is refused.
	other := writeTinyModel(t, 1, "[unused0]")
	_, _, err = bm25CLI(t, nil, "search", "--index", idx, "--model", other, "--queries", toy, "--run", runPath)
	if err == nil || !strings.Contains(err.Error(), "another model") {
		t.Errorf("search with another vocabulary: %v", err)
	}
}

// TestSpladeTable runs "splade table" on two toy collections and checks
// every figure of table.json against an independent evaluation of the runs
// it kept, and the fused run against eval.Fuse of the other two.
func TestSpladeTable(t *testing.T) {
	data := t.TempDir()
	for _, name := range []string{"alpha", "beta"} {
		toy := writeSpladeToy(t)
		dst := filepath.Join(data, name)
		if err := os.Rename(toy, dst); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(filepath.Join(dst, "qrels", "dev.tsv"))
		os.WriteFile(filepath.Join(dst, "qrels", "test.tsv"), raw, 0o644)
	}
	model := writeTinyModel(t, 3)
	work := t.TempDir()
	args := []string{"splade", "table", "--model", model, "--data", data, "--work", work}
	out, errOut, err := bm25CLI(t, map[string]string{"SPLADAPT_MODEL_MAX_LENGTH": "16"}, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(out, "| alpha | test | 10 | 10 |") || !strings.Contains(out, "| beta | test | 10 | 10 |") || !strings.Contains(out, "| mean |") {
		t.Errorf("table:\n%s", out)
	}
	raw, err := os.ReadFile(filepath.Join(work, "table.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []adapt.TableRow
	if err := json.Unmarshal(raw, &rows); err != nil || len(rows) != 2 {
		t.Fatalf("table.json: %v, %d rows", err, len(rows))
	}
	ms, _ := eval.ParseMeasures(adapt.TableMeasures...)
	for _, row := range rows {
		qrels, _ := corpora.BEIR{Dir: filepath.Join(data, row.Name)}.Qrels("test")
		runs := map[string]corpora.Run{}
		for _, name := range []string{"bm25", "splade", "fused"} {
			r, err := corpora.ReadRun(filepath.Join(work, row.Name, name+".trec"))
			if err != nil {
				t.Fatal(err)
			}
			runs[name] = r
		}
		fused, _ := eval.Fuse([]corpora.Run{runs["bm25"], runs["splade"]}, eval.FuseOptions{Method: eval.FuseRRF, RRFK: 60, Depth: 1000})
		for name, want := range map[string]map[string]float64{"bm25": row.BM25, "splade": row.Splade, "fused": row.Fused} {
			run := runs[name]
			if name == "fused" {
				run = fused
			}
			res, err := eval.Evaluate(qrels, run, ms, eval.Options{AllQueries: true})
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range ms {
				if math.Abs(res.All[i]-want[m.Name()]) > 1e-4 {
					t.Errorf("%s %s %s: table %.6f, recomputed %.6f", row.Name, name, m.Name(), want[m.Name()], res.All[i])
				}
			}
		}
		if row.NNZDoc <= 0 || row.NNZQuery <= 0 || row.Encode == nil || row.Encode.IndexBytes <= 0 || row.Encode.DocsPerSec <= 0 {
			t.Errorf("%s: %+v", row.Name, row)
		}
	}
	// A second run reuses the indexes (same model): same numbers.
	out2, _, err := bm25CLI(t, map[string]string{"SPLADAPT_MODEL_MAX_LENGTH": "16"}, args...)
	if err != nil || out2 != out {
		t.Errorf("second run: %v\n%s\nfirst:\n%s", err, out2, out)
	}
	// Another document length encodes the indexes again (encode.json
	// records the length an index was built at).
	if _, errOut, err := bm25CLI(t, map[string]string{"SPLADAPT_MODEL_MAX_LENGTH": "8"}, args...); err != nil {
		t.Fatalf("max_length 8: %v\n%s", err, errOut)
	}
	raw, _ = os.ReadFile(filepath.Join(work, "table.json"))
	rows = nil
	if err := json.Unmarshal(raw, &rows); err != nil || len(rows) != 2 {
		t.Fatalf("table.json: %v, %d rows", err, len(rows))
	}
	for _, row := range rows {
		if row.Encode.MaxLength != 8 {
			t.Errorf("%s: index of max_length %d reused for max_length 8", row.Name, row.Encode.MaxLength)
		}
	}
	if _, _, err := bm25CLI(t, map[string]string{"SPLADAPT_MODEL_MAX_LENGTH": "16"}, args...); err != nil {
		t.Fatal(err)
	}
	// With a re-ranker: reranked.trec is rerank.Rerank of the fused run's
	// top 5, and its row figures are that run's.
	ce := filepath.Join("..", "..", "testdata", "ceoracle", "ce-bert", "model")
	out3, errOut, err := bm25CLI(t, map[string]string{"SPLADAPT_MODEL_MAX_LENGTH": "16"}, append(args, "--rerank", ce, "--rerank-depth", "5")...)
	if err != nil {
		t.Fatalf("with --rerank: %v\n%s", err, errOut)
	}
	if !strings.Contains(out3, "re-ranked nDCG@10") {
		t.Errorf("table with --rerank lacks the re-ranked columns:\n%s", out3)
	}
	raw, _ = os.ReadFile(filepath.Join(work, "table.json"))
	rows = nil
	if err := json.Unmarshal(raw, &rows); err != nil || len(rows) != 2 {
		t.Fatalf("table.json: %v, %d rows", err, len(rows))
	}
	cfg := config.Default()
	sc, err := rerank.LoadScorer(ce, cfg.Rerank.MaxLength, cfg.Rerank.ScoreBatchSize)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		dir := filepath.Join(data, row.Name)
		fused, err := corpora.ReadRun(filepath.Join(work, row.Name, "fused.trec"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := corpora.ReadRun(filepath.Join(work, row.Name, "reranked.trec"))
		if err != nil {
			t.Fatal(err)
		}
		qs, _ := corpora.BEIR{Dir: dir}.Queries(corpora.Options{})
		qtext := map[string]string{}
		for _, q := range qs {
			qtext[q.ID] = q.Text
		}
		docs, err := rerank.DocTexts(dir, nil, corpora.Options{})
		if err != nil {
			t.Fatal(err)
		}
		want, err := rerank.Rerank(sc, qtext, docs, fused, 5, nil)
		if err != nil {
			t.Fatal(err)
		}
		for qid, hits := range want {
			if len(got[qid]) != len(hits) {
				t.Fatalf("%s query %s: %d re-ranked hits, want %d", row.Name, qid, len(got[qid]), len(hits))
			}
			for i := range hits {
				if got[qid][i].DocID != hits[i].DocID {
					t.Errorf("%s query %s rank %d: %s, want %s", row.Name, qid, i+1, got[qid][i].DocID, hits[i].DocID)
				}
			}
		}
		qrels, _ := corpora.BEIR{Dir: dir}.Qrels("test")
		res, err := eval.Evaluate(qrels, got, ms, eval.Options{AllQueries: true})
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range ms {
			if math.Abs(res.All[i]-row.Reranked[m.Name()]) > 1e-4 {
				t.Errorf("%s re-ranked %s: table %.6f, recomputed %.6f", row.Name, m.Name(), row.Reranked[m.Name()], res.All[i])
			}
		}
	}
}
