package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/viper"
)

// The repository's config.yaml documents every key with its default.
func TestRepositoryConfigMatchesDefaults(t *testing.T) {
	fv := viper.New()
	fv.SetConfigFile("../config.yaml")
	if err := fv.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	keys := Keys()
	for k := range keys {
		if !fv.IsSet(k) {
			t.Errorf("config.yaml lacks key %q", k)
		}
	}
	v := New()
	if err := ReadFile(v, "../config.yaml", true); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("config.yaml values differ from Default():\n got %+v\nwant %+v", got, want)
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUnknownKeyNamed(t *testing.T) {
	p := writeFile(t, "bm25:\n  k3: 1\n")
	err := ReadFile(New(), p, true)
	if err == nil || !strings.Contains(err.Error(), `"bm25.k3"`) || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v, want unknown key bm25.k3 in %s", err, p)
	}
}

func TestInvalidValueNamed(t *testing.T) {
	for _, tc := range []struct{ body, key string }{
		{"bm25:\n  b: 1.5\n", "bm25.b"},
		{"index:\n  algorithm: magic\n", "index.algorithm"},
		{"index:\n  quant_bits: notanumber\n", "quant_bits"},
		{"threads: -1\n", "threads"},
		{"pretrain:\n  pair_task: sop\n", "pretrain.pair_task"},
		{"pretrain:\n  arch: distilbert\n  pair_task: nsp\n", "pretrain.pair_task"},
		{"pretrain:\n  pair_weight: 0\n", "pretrain.pair_weight"},
		{"pretrain:\n  pair_weight: -1\n", "pretrain.pair_weight"},
		{"adapt:\n  rerank: models/ce\n  rerank_depth: 0\n", "adapt.rerank_depth"},
	} {
		v := New()
		if err := ReadFile(v, writeFile(t, tc.body), true); err != nil {
			t.Fatal(err)
		}
		_, err := Decode(v)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: err = %v, want it to name %s", tc.body, err, tc.key)
		}
	}
	// adapt.rerank_depth matters only with a re-ranker.
	v := New()
	if err := ReadFile(v, writeFile(t, "adapt:\n  rerank_depth: 0\n"), true); err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(v); err != nil {
		t.Errorf("adapt.rerank_depth 0 without adapt.rerank: %v", err)
	}
}

func TestPrecedence(t *testing.T) {
	p := writeFile(t, "bm25:\n  k1: 1.5\n  b: 0.5\n")
	v := New()
	if err := ReadFile(v, p, true); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SPLADAPT_BM25_K1", "1.7")
	t.Setenv("SPLADAPT_BM25_DEPTH", "77")
	v.Set("bm25.depth", 99) // what a bound, changed flag does
	c, err := Decode(v)
	if err != nil {
		t.Fatal(err)
	}
	if c.BM25.K1 != 1.7 || c.BM25.B != 0.5 || c.BM25.Depth != 99 || c.Index.QuantBits != 8 {
		t.Errorf("got k1=%g b=%g depth=%d bits=%d, want env 1.7, file 0.5, flag 99, default 8",
			c.BM25.K1, c.BM25.B, c.BM25.Depth, c.Index.QuantBits)
	}
}

func TestMissingOptionalFile(t *testing.T) {
	if err := ReadFile(New(), filepath.Join(t.TempDir(), "none.yaml"), false); err != nil {
		t.Fatal(err)
	}
	if err := ReadFile(New(), filepath.Join(t.TempDir(), "none.yaml"), true); err == nil {
		t.Fatal("required missing file: no error")
	}
}

// Issue 20: NaN, Inf and non-positive rates, weights and sizes are refused
// with the key named (NaN compares false with everything, so "lr <= 0"
// let it through).
func TestNonFiniteRefused(t *testing.T) {
	for _, tc := range []struct{ body, key string }{
		{"pretrain:\n  lr: .nan\n", "pretrain.lr"},
		{"pretrain:\n  lr: .inf\n", "pretrain.lr"},
		{"adapt:\n  mlm_lr: .nan\n", "adapt.mlm_lr"},
		{"splade:\n  lr: .inf\n", "splade.lr"},
		{"splade:\n  lambda_d: .nan\n", "splade.lambda_d"},
		{"splade:\n  margin_mse: .inf\n", "splade.margin_mse"},
		{"pretrain:\n  weight_decay: .nan\n", "pretrain.weight_decay"},
		{"pretrain:\n  mask_prob: .nan\n", "pretrain.mask_prob"},
		{"bm25:\n  b: .nan\n", "bm25.b"},
		{"bm25:\n  k1: .inf\n", "bm25.k1"},
		{"pretrain:\n  max_grad_norm: .nan\n", "pretrain.max_grad_norm"},
		{"pretrain:\n  max_positions: 0\n", "pretrain.max_positions"},
		{"splade:\n  query_idf: bm25\n", "splade.query_idf"},
	} {
		v := New()
		if err := ReadFile(v, writeFile(t, tc.body), true); err != nil {
			t.Fatal(err)
		}
		_, err := Decode(v)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: err = %v, want it to name %s", tc.body, err, tc.key)
		}
	}
}

// Issue 20: a misspelled SPLADAPT_* variable is an error naming it, as an
// unknown key in a file is; so is an invalid measure name from the
// environment.
func TestEnvironmentChecked(t *testing.T) {
	t.Setenv("SPLADAPT_EVAL_MEASURE", "AP")
	_, err := Decode(New())
	if err == nil || !strings.Contains(err.Error(), "SPLADAPT_EVAL_MEASURE") {
		t.Fatalf("misspelled variable: err = %v, want it named", err)
	}
	os.Unsetenv("SPLADAPT_EVAL_MEASURE")
	t.Setenv("SPLADAPT_EVAL_MEASURES", "nonsense")
	_, err = Decode(New())
	if err == nil || !strings.Contains(err.Error(), "SPLADAPT_EVAL_MEASURES") || !strings.Contains(err.Error(), "nonsense") {
		t.Fatalf("bad measure: err = %v, want the variable and the name", err)
	}
	t.Setenv("SPLADAPT_EVAL_MEASURES", "nDCG@10,AP")
	t.Setenv("SPLADAPT_BENCH_DOCS", "1000") // read by benchmarks, not a setting
	if _, err := Decode(New()); err != nil {
		t.Fatal(err)
	}
}
