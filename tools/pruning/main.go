// Command pruning measures, on a synthetic collection (internal/synth),
// what an exact top-k method can skip: for each query the exact k-th score
// θ, the MaxScore essential set, how many blocks of R documents have a
// block-max bound ≥ θ, and how a term-at-a-time pass in decreasing order
// of bound could switch to updating existing candidates only. It prints
// one line per query on stderr and a Markdown table of p10 / p50 / p90 /
// max per measure on stdout:
//
//	go run ./tools/pruning -docs 1000000 -index /work/cache/bench-index/docs=1000000,block=8
//
// -index reuses an index of the same synthetic documents (the benchmarks'
// SPLADAPT_BENCH_INDEX cache); without it the index is built in a
// temporary directory. The figures are in docs/performance.md.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/internal/synth"
)

func main() {
	n := flag.Int("docs", 100000, "synthetic documents")
	nq := flag.Int("queries", 50, "queries")
	k := flag.Int("k", 10, "hits per query")
	kind := flag.String("synth", "independent", "collection: independent (synth.Default) or topical (synth.Topical)")
	order := flag.String("order", "arrival", "doc numbers: arrival, or topic (by main topic; topical only)")
	dir := flag.String("index", "", "an index of the same synthetic documents (default: build one)")
	flag.Parse()
	if err := run(*n, *nq, *k, *kind, *order, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "pruning:", err)
		os.Exit(1)
	}
}

func run(n, nq, k int, kind, order, dir string) error {
	g, err := synth.Named(kind)
	if err != nil {
		return fmt.Errorf("-synth: %w", err)
	}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "pruning")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = filepath.Join(tmp, "idx")
		var ord []int
		switch order {
		case "arrival":
		case "topic":
			ord = g.TopicOrder(n)
		default:
			return fmt.Errorf("-order %q: want arrival or topic", order)
		}
		if _, err := g.WriteIndex(dir, n, ord, index.Options{}); err != nil {
			return err
		}
	}
	r, err := index.Open(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	if r.NumDocs() != n {
		return fmt.Errorf("index %s has %d documents, -docs is %d", dir, r.NumDocs(), n)
	}
	return analyse(r, g, n, nq, k)
}

// analyse prints the measures of nq queries at depth k.
func analyse(r *index.Reader, g *synth.Gen, n, nq, k int) error {
	sizes := []int{8, 16, 32, 64, 128}
	type termData struct {
		docs []uint32
		imps []uint16
		bm8  []uint16 // (N/8) block maxima at R = 8
	}
	cache := map[uint32]*termData{}
	get := func(term uint32) *termData {
		if td := cache[term]; td != nil {
			return td
		}
		docs, imps, err := r.Postings(term, nil, nil)
		if err != nil {
			panic(err) // the index was validated when opened
		}
		td := &termData{docs: docs, imps: imps, bm8: make([]uint16, (n+7)/8)}
		for i, d := range docs {
			td.bm8[d/8] = max(td.bm8[d/8], imps[i])
		}
		cache[term] = td
		return td
	}
	acc := make([]uint64, n)
	mark := make([]bool, n)
	stats := map[string][]float64{}
	add := func(key string, v float64) { stats[key] = append(stats[key], v) }
	kth := func(vals []uint64) uint64 { // k-th largest, 0 if fewer
		if len(vals) < k {
			return 0
		}
		c := slices.Clone(vals)
		slices.Sort(c)
		return c[len(c)-k]
	}
	for qi := range nq {
		pq, err := r.Prepare(g.Query(qi))
		if err != nil {
			return err
		}
		hits, err := r.SearchPrepared(pq, k, index.TAAT)
		if err != nil {
			return err
		}
		if len(hits) < k {
			continue
		}
		theta := hits[k-1].Raw
		terms, qw := pq.Terms()
		type qt struct {
			td     *termData
			q, ub  uint64
			df     int
			maxImp int
			termID uint32
		}
		var ts []qt
		var sumUB, sumDF uint64
		for i, term := range terms {
			df, mi := r.TermStats(term)
			ts = append(ts, qt{td: get(term), q: qw[i], ub: qw[i] * uint64(mi), df: df, maxImp: mi, termID: term})
			sumUB += qw[i] * uint64(mi)
			sumDF += uint64(df)
		}
		add("terms", float64(len(ts)))
		add("Σdf (M)", float64(sumDF)/1e6)
		add("θ/Σub", float64(theta)/float64(sumUB))
		add("top1/Σub", float64(hits[0].Raw)/float64(sumUB))

		// MaxScore: ub ascending; the longest prefix with Σ ub ≤ θ is non-essential.
		slices.SortFunc(ts, func(a, b qt) int { return cmpU(a.ub, b.ub) })
		var pre uint64
		ne := 0
		for ne < len(ts) && pre+ts[ne].ub <= theta {
			pre += ts[ne].ub
			ne++
		}
		var essDF uint64
		clear(mark)
		union := 0
		for _, x := range ts[ne:] {
			essDF += uint64(x.df)
			for _, d := range x.td.docs {
				if !mark[d] {
					mark[d] = true
					union++
				}
			}
		}
		add("essential terms", float64(len(ts)-ne))
		add("Σdf essential (M)", float64(essDF)/1e6)
		add("essential union (k docs)", float64(union)/1e3)
		// Block-max MaxScore: essential docs whose essential score + Σ over
		// non-essential terms of q·blockmax(R=8 / 64) still reaches θ.
		clear(acc)
		for _, x := range ts[ne:] {
			for i, d := range x.td.docs {
				acc[d] += x.q * uint64(x.td.imps[i])
			}
		}
		for _, R := range []int{8, 64} {
			surv := 0
			for d := range n {
				if !mark[d] {
					continue
				}
				s := acc[d]
				for _, x := range ts[:ne] {
					s += x.q * uint64(blockMax(x.td.bm8, d, R))
				}
				if s >= theta {
					surv++
				}
			}
			add(fmt.Sprintf("ess. docs passing non-ess blockmax R=%d", R), float64(surv))
		}

		// Hybrid block bounds: the m terms of largest ub at R = 8, the rest at
		// R = 64 (a cheaper row); cost Σ min(df, blocks) elements.
		{
			byUB := slices.Clone(ts)
			slices.Reverse(byUB) // ub descending
			nb8, nb64 := (n+7)/8, (n+63)/64
			var cost8 float64
			for _, x := range byUB {
				cost8 += float64(min(x.df, nb8))
			}
			add("R=8 bound cost Σmin(df,nb8) (M)", cost8/1e6)
			fine := make([]uint64, nb8)
			coarse := make([]uint64, nb64)
			for _, x := range byUB {
				for b := range nb64 {
					coarse[b] += x.q * uint64(blockMaxBlock(x.td.bm8, b, 64))
				}
			}
			for m := 0; m <= len(byUB); m++ {
				if m > 0 {
					x := byUB[m-1]
					for b := range nb8 {
						fine[b] += x.q * uint64(x.td.bm8[b])
					}
					for b := range nb64 {
						coarse[b] -= x.q * uint64(blockMaxBlock(x.td.bm8, b, 64))
					}
				}
				if m%4 != 0 && m != len(byUB) {
					continue
				}
				cand := 0
				for b := range nb8 {
					if fine[b]+coarse[b/8] >= theta {
						cand++
					}
				}
				var cost float64
				for i, x := range byUB {
					if i < m {
						cost += float64(min(x.df, nb8))
					} else {
						cost += float64(min(x.df, nb64))
					}
				}
				label := fmt.Sprint(m)
				if m == len(byUB) {
					label = "all"
				}
				add(fmt.Sprintf("hybrid m=%s: bound cost (M elements)", label), cost/1e6)
				add(fmt.Sprintf("hybrid m=%s: cand 8-blocks (k)", label), float64(cand)/1e3)
			}
		}

		// Term classes by df: D8 (df ≥ N/8, fine rows would be dense), D64
		// (N/64 ≤ df < N/8), S (df < N/64). Candidate 8-blocks (bound ≥ θ)
		// when each class is bounded at R = 8 ("fine"), R = 64 ("coarse")
		// or by its global ub ("ub").
		{
			nb8, nb64 := (n+7)/8, (n+63)/64
			class := func(df int) int {
				switch {
				case df >= nb8:
					return 0
				case df >= nb64:
					return 1
				}
				return 2
			}
			var cdf [3]float64
			var cnt [3]float64
			var cub [3]uint64
			for _, x := range ts {
				c := class(x.df)
				cdf[c] += float64(x.df)
				cnt[c]++
				cub[c] += x.ub
			}
			for c, name := range []string{"D8", "D64", "S"} {
				add("class "+name+" terms", cnt[c])
				add("class "+name+" Σdf (k)", cdf[c]/1e3)
				add("class "+name+" Σub/θ", float64(cub[c])/float64(theta))
			}
			// per class: fine[b8], coarse[b64]
			var fine [3][]uint64
			var coarse [3][]uint64
			for c := range 3 {
				fine[c] = make([]uint64, nb8)
				coarse[c] = make([]uint64, nb64)
			}
			for _, x := range ts {
				c := class(x.df)
				for b := range nb8 {
					fine[c][b] += x.q * uint64(x.td.bm8[b])
				}
				for b := range nb64 {
					coarse[c][b] += x.q * uint64(blockMaxBlock(x.td.bm8, b, 64))
				}
			}
			for _, v := range []struct {
				name string
				lv   [3]int // 0 fine, 1 coarse, 2 ub
			}{
				{"D8 fine, D64 coarse, S ub", [3]int{0, 1, 2}},
				{"D8 fine, D64 coarse, S fine", [3]int{0, 1, 0}},
				{"D8 fine, D64 coarse, S coarse", [3]int{0, 1, 1}},
				{"D8 fine, D64 fine, S ub", [3]int{0, 0, 2}},
				{"D8 fine, D64 ub, S ub", [3]int{0, 2, 2}},
			} {
				cand := 0
				for b := range nb8 {
					var u uint64
					for c := range 3 {
						switch v.lv[c] {
						case 0:
							u += fine[c][b]
						case 1:
							u += coarse[c][b/8]
						case 2:
							u += cub[c]
						}
					}
					if u >= theta {
						cand++
					}
				}
				add("cand 8-blocks (k): "+v.name, float64(cand)/1e3)
			}
		}

		// Block bounds Σ q·blockmax(t, b) ≥ θ, per block size.
		for _, R := range sizes {
			nb := (n + R - 1) / R
			ub := make([]uint64, nb)
			for _, x := range ts {
				for b := range nb {
					ub[b] += x.q * uint64(blockMaxBlock(x.td.bm8, b, R))
				}
			}
			pass := 0
			for _, u := range ub {
				if u >= theta {
					pass++
				}
			}
			var post int
			for _, x := range ts {
				for _, d := range x.td.docs {
					if ub[int(d)/R] >= theta {
						post++
					}
				}
			}
			add(fmt.Sprintf("blocks ≥θ R=%d (%%)", R), 100*float64(pass)/float64(nb))
			add(fmt.Sprintf("postings in blocks ≥θ R=%d (k)", R), float64(post)/1e3)
		}

		// TAAT in decreasing ub order with the continue switch.
		slices.Reverse(ts) // ub descending
		clear(acc)
		var touched []uint32
		var tv []uint64
		var orDF uint64
		s := len(ts)
		rem := sumUB
		var thPart uint64
		for i, x := range ts {
			for j, d := range x.td.docs {
				if acc[d] == 0 {
					touched = append(touched, d)
				}
				acc[d] += x.q * uint64(x.td.imps[j])
			}
			orDF += uint64(x.df)
			rem -= x.ub
			tv = tv[:0]
			for _, d := range touched {
				tv = append(tv, acc[d])
			}
			thPart = kth(tv)
			if rem < thPart {
				s = i + 1
				break
			}
		}
		add("OR-phase terms", float64(s))
		add("OR-phase Σdf (k)", float64(orDF)/1e3)
		add("candidates at switch (k)", float64(len(touched))/1e3)
		add("θ_partial/θ at switch", float64(thPart)/float64(theta))
		var g1, gb8, gb64, gTheta int
		for _, d := range touched {
			p := acc[d]
			if p+rem >= thPart {
				g1++
			}
			var b8, b64 uint64
			for _, x := range ts[s:] {
				b8 += x.q * uint64(blockMax(x.td.bm8, int(d), 8))
				b64 += x.q * uint64(blockMax(x.td.bm8, int(d), 64))
			}
			if p+b8 >= thPart {
				gb8++
			}
			if p+b64 >= thPart {
				gb64++
			}
			if p+b8 >= theta {
				gTheta++
			}
		}
		add("cands passing global ub", float64(g1))
		add("cands passing blockmax R=64", float64(gb64))
		add("cands passing blockmax R=8", float64(gb8))
		add("cands passing blockmax R=8 vs final θ", float64(gTheta))
		var andDF uint64
		for _, x := range ts[s:] {
			andDF += uint64(x.df)
		}
		add("AND-phase Σdf (M)", float64(andDF)/1e6)
		fmt.Fprintf(os.Stderr, "q%d: %d terms Σdf %.1fM θ/Σub %.3f ess %d (Σdf %.0fk, union %d) OR %d terms Σdf %.0fk, cands %d → %d/%d/%d",
			qi, len(ts), float64(sumDF)/1e6, float64(theta)/float64(sumUB), len(ts)-ne, float64(essDF)/1e3, union, s, float64(orDF)/1e3, len(touched), g1, gb64, gb8)

	}
	var keys []string
	for key := range stats {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n| measure (docs=%d, k=%d, %d queries) | p10 | p50 | p90 | max |\n|---|---:|---:|---:|---:|\n", n, k, nq)
	for _, key := range keys {
		v := slices.Clone(stats[key])
		slices.Sort(v)
		q := func(p float64) float64 { return v[min(len(v)-1, int(p*float64(len(v))))] }
		fmt.Fprintf(&sb, "| %s | %.3g | %.3g | %.3g | %.3g |\n", key, q(0.1), q(0.5), q(0.9), v[len(v)-1])
	}
	_, err := io.WriteString(os.Stdout, sb.String())
	return err
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// blockMax returns the largest impact in doc d's block of R (a multiple of 8) docs.
func blockMax(bm8 []uint16, d, R int) uint16 { return blockMaxBlock(bm8, d/R, R) }

func blockMaxBlock(bm8 []uint16, b, R int) uint16 {
	lo := b * R / 8
	hi := min(len(bm8), lo+R/8)
	var m uint16
	for _, v := range bm8[lo:hi] {
		m = max(m, v)
	}
	return m
}
