package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/config"
)

// Two commands binding the same key each see their own flag.
func TestSharedKeyBindsPerCommand(t *testing.T) {
	for _, which := range []string{"one", "two"} {
		a := &app{v: config.New()}
		root := &cobra.Command{Use: "x", PersistentPreRunE: func(cmd *cobra.Command, args []string) error { return a.bindFor(cmd) }}
		var got int
		for _, name := range []string{"one", "two"} {
			c := &cobra.Command{Use: name, RunE: func(cmd *cobra.Command, args []string) error {
				cfg, err := a.config()
				got = cfg.BM25.Depth
				return err
			}}
			c.Flags().Int("k", 5, "")
			a.bind(c.Flags(), "k", "bm25.depth")
			root.AddCommand(c)
		}
		root.SetArgs([]string{which, "--k", "42"})
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		if got != 42 {
			t.Errorf("command %s: bm25.depth = %d, want the flag's 42", which, got)
		}
	}
}

func TestConfigShowPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("bm25:\n  k1: 1.5\n  b: 0.6\nthreads: 1\n"), 0o644)
	t.Setenv("SPLADAPT_BM25_K1", "1.1")
	root := NewRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"--config", cfg, "--threads", "2", "config", "show"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bm25.k1: 1.1\n", "bm25.b: 0.6\n", "threads: 2\n", "index.quant_bits: 8\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("config show lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUnknownConfigKeyRejected(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("bm25:\n  kone: 1\n"), 0o644)
	root := NewRootCommand()
	root.SetOut(&bytes.Buffer{})
	root.SetArgs([]string{"--config", cfg, "config", "show"})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "bm25.kone") {
		t.Fatalf("err = %v, want unknown key bm25.kone", err)
	}
}
