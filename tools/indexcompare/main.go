// Command indexcompare times the same queries on several indexes of one
// synthetic collection (internal/synth), e.g. two block sizes or two
// builds of the same documents: one query on each index in turn, the order
// rotating so that all see the same load, three rounds, one thread. It
// prints p50 / p99 per index and the median per-query time ratio to the
// first, and fails when an index's hits differ from the first's:
//
//	go run ./tools/indexcompare -alg blockmax /work/cache/bench-index/docs=1000000,block=8 /tmp/block16
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/internal/synth"
)

func main() {
	algName := flag.String("alg", "blockmax", "exhaustive, maxscore, blockmax, taat or auto")
	nq := flag.Int("queries", 200, "queries")
	kind := flag.String("synth", "independent", "the collection's generator: independent or topical")
	flag.Parse()
	if err := run(flag.Args(), *algName, *nq, *kind); err != nil {
		fmt.Fprintln(os.Stderr, "indexcompare:", err)
		os.Exit(1)
	}
}

func run(dirs []string, algName string, nq int, kind string) error {
	if len(dirs) < 2 {
		return fmt.Errorf("give two or more index directories")
	}
	alg, err := index.ParseAlgorithm(algName)
	if err != nil {
		return err
	}
	g, err := synth.Named(kind)
	if err != nil {
		return fmt.Errorf("-synth: %w", err)
	}
	runtime.GOMAXPROCS(1)
	var rs []*index.Reader
	for _, d := range dirs {
		r, err := index.Open(d)
		if err != nil {
			return err
		}
		defer r.Close()
		rs = append(rs, r)
	}
	for _, k := range []int{10, 1000} {
		lat := make([][]time.Duration, len(rs))
		ratio := make([][]float64, len(rs))
		for rep := range 3 {
			for qi := range nq {
				q := g.Query(qi)
				d := make([]time.Duration, len(rs))
				h := make([][]index.Hit, len(rs))
				for j := range rs {
					i := (j + rep + qi) % len(rs)
					start := time.Now()
					h[i], err = rs[i].Search(q, k, alg)
					d[i] = time.Since(start)
					if err != nil {
						return err
					}
				}
				for i := range rs {
					if !sameRaw(h[i], h[0]) {
						return fmt.Errorf("query %d k=%d: index %s differs from %s", qi, k, dirs[i], dirs[0])
					}
					lat[i] = append(lat[i], d[i])
					ratio[i] = append(ratio[i], float64(d[i])/float64(d[0]))
				}
			}
		}
		for i, r := range rs {
			slices.Sort(lat[i])
			slices.Sort(ratio[i])
			p50, p99 := lat[i][len(lat[i])/2], lat[i][min(len(lat[i])-1, len(lat[i])*99/100)]
			fmt.Printf("k=%d %v %s (block_size %d, %d dense terms): p50 %.3f ms p99 %.3f ms, median time ratio to the first %.2f\n",
				k, alg, dirs[i], r.Meta().BlockSize, r.Meta().DenseTerms, float64(p50)/1e6, float64(p99)/1e6, ratio[i][len(ratio[i])/2])
		}
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average: %s", la)
	}
	return nil
}

func sameRaw(a, b []index.Hit) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Doc != b[i].Doc || a[i].Raw != b[i].Raw {
			return false
		}
	}
	return true
}
