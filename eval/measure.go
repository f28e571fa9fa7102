package eval

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Kind is a family of measures; a Measure adds its cutoff and relevance
// threshold.
type Kind uint8

// The measure families, in trec_eval's output order.
const (
	NumQ      Kind = iota // queries evaluated (trec_eval num_q, ir_measures NumQ)
	NumRet                // documents retrieved (num_ret, NumRet)
	NumRel                // relevant documents judged (num_rel, NumRel)
	NumRelRet             // relevant documents retrieved (num_rel_ret, NumRelRet)
	AP                    // average precision (map; with a cutoff map_cut.k; AP, AP@k)
	Rprec                 // precision at rank R = num_rel (Rprec)
	RR                    // reciprocal rank of the first relevant (recip_rank; RR, RR@k)
	P                     // precision at k (P.k, P@k)
	Recall                // recall at k (recall.k, R@k)
	NDCG                  // nDCG, linear gain = grade (ndcg; ndcg_cut.k, nDCG@k)
	Judged                // judged fraction of the top min(k, retrieved) (ir_measures Judged@k; 0 for an empty ranking)
)

// Measure is one evaluation measure: a family, an optional cutoff and an
// optional relevance threshold. Its zero Cutoff means the whole ranking;
// its zero Rel means Options.RelThreshold. IR records the naming style it
// was asked for, so results are printed under the name the user gave.
type Measure struct {
	Kind   Kind
	Cutoff int  // rank cutoff k; 0: the whole ranking
	Rel    int  // grade >= Rel is relevant for binary measures; 0: Options.RelThreshold
	IR     bool // named in ir_measures style ("nDCG@10"), not trec_eval's ("ndcg_cut_10")
}

// trecNames and irNames are the base names of each Kind ("" where the
// style has no such measure).
var (
	trecNames = [...]string{NumQ: "num_q", NumRet: "num_ret", NumRel: "num_rel", NumRelRet: "num_rel_ret", AP: "map", Rprec: "Rprec", RR: "recip_rank", P: "P", Recall: "recall", NDCG: "ndcg", Judged: ""}
	irNames   = [...]string{NumQ: "NumQ", NumRet: "NumRet", NumRel: "NumRel", NumRelRet: "NumRelRet", AP: "AP", Rprec: "Rprec", RR: "RR", P: "P", Recall: "R", NDCG: "nDCG", Judged: "Judged"}
)

// defaultCutoffs are trec_eval's cutoffs for P, recall, ndcg_cut and
// map_cut named without parameters.
var defaultCutoffs = []int{5, 10, 15, 20, 30, 100, 200, 500, 1000}

// ErrMeasure is the error of every unknown or malformed measure name.
var ErrMeasure = errors.New("unknown measure")

// Name is the measure's name as printed: trec_eval's ("ndcg_cut_10",
// "P_5", "map") or ir_measures' ("nDCG@10", "AP(rel=2)@100").
func (m Measure) Name() string {
	if !m.IR {
		base := trecNames[m.Kind]
		switch {
		case m.Kind == AP && m.Cutoff > 0:
			return "map_cut_" + strconv.Itoa(m.Cutoff)
		case m.Kind == NDCG && m.Cutoff > 0:
			return "ndcg_cut_" + strconv.Itoa(m.Cutoff)
		case m.Cutoff > 0:
			return base + "_" + strconv.Itoa(m.Cutoff)
		}
		return base
	}
	s := irNames[m.Kind]
	if m.Rel != 0 {
		s += "(rel=" + strconv.Itoa(m.Rel) + ")"
	}
	if m.Cutoff > 0 {
		s += "@" + strconv.Itoa(m.Cutoff)
	}
	return s
}

func (m Measure) String() string { return m.Name() }

// IsCount reports whether the measure is a count (num_q, num_ret, num_rel,
// num_rel_ret): printed as an integer and summed, not averaged, over
// queries.
func (m Measure) IsCount() bool { return m.Kind <= NumRelRet }

// validate checks the combination of family, cutoff and threshold.
func (m Measure) validate() error {
	if m.Kind > Judged {
		return fmt.Errorf("%w: kind %d", ErrMeasure, m.Kind)
	}
	if m.Cutoff < 0 || m.Rel < 0 {
		return fmt.Errorf("%w %s: cutoff and rel must be positive", ErrMeasure, m.Name())
	}
	switch m.Kind {
	case P, Recall, Judged:
		if m.Cutoff == 0 {
			return fmt.Errorf("%w %s: needs a cutoff (e.g. %s@10)", ErrMeasure, irNames[m.Kind], irNames[m.Kind])
		}
	case NumQ, NumRet, NumRel, NumRelRet, Rprec:
		if m.Cutoff != 0 {
			return fmt.Errorf("%w %s: takes no cutoff", ErrMeasure, irNames[m.Kind])
		}
	}
	switch m.Kind {
	case NumQ, NumRet, NDCG, Judged:
		if m.Rel != 0 {
			return fmt.Errorf("%w %s: takes no rel= threshold (it is not a binary measure)", ErrMeasure, irNames[m.Kind])
		}
	}
	if !m.IR && (m.Kind == Judged || m.Rel != 0 || (m.Kind == RR && m.Cutoff > 0)) {
		return fmt.Errorf("%w: trec_eval has no name for %s", ErrMeasure, Measure{m.Kind, m.Cutoff, m.Rel, true}.Name())
	}
	return nil
}

// ParseMeasure parses one measure name in either style:
//
//	trec_eval:   num_q num_ret num_rel num_rel_ret map map_cut.100 Rprec
//	             recip_rank P.10 recall.100 ndcg ndcg_cut.10
//	             (the printed forms P_10, ndcg_cut_10, ... too)
//	ir_measures: NumQ NumRet NumRel NumRelRet AP AP@100 Rprec RR RR@10
//	             P@10 R@100 nDCG nDCG@10 Judged@10, and a threshold
//	             for binary measures: AP(rel=2), P(rel=2)@10
//
// A trec_eval name must name one measure here; lists ("P.5,10") and bare
// families ("P") are for ParseMeasures. Errors wrap ErrMeasure.
func ParseMeasure(name string) (Measure, error) {
	ms, err := parseOne(name)
	if err != nil {
		return Measure{}, err
	}
	if len(ms) != 1 {
		return Measure{}, fmt.Errorf("%w %q: names %d measures; use ParseMeasures", ErrMeasure, name, len(ms))
	}
	return ms[0], nil
}

// ParseMeasures parses measure names as trec_eval's -m does: each name may
// be a comma list of cutoffs ("ndcg_cut.5,10,20") or a bare cutoff family
// ("P", "recall", "ndcg_cut", "map_cut": trec_eval's default cutoffs 5, 10,
// 15, 20, 30, 100, 200, 500, 1000). The result keeps the order given, with
// repeats removed; TrecOrder sorts it as trec_eval prints.
func ParseMeasures(names ...string) ([]Measure, error) {
	var out []Measure
	seen := map[string]bool{}
	for _, name := range names {
		ms, err := parseOne(name)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if !seen[m.Name()] {
				seen[m.Name()] = true
				out = append(out, m)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no measure named", ErrMeasure)
	}
	return out, nil
}

// trecFamilies maps trec_eval's measure names to a Kind and whether the
// name takes cutoffs.
var trecFamilies = map[string]struct {
	kind Kind
	cut  bool
}{
	"num_q": {NumQ, false}, "num_ret": {NumRet, false}, "num_rel": {NumRel, false}, "num_rel_ret": {NumRelRet, false},
	"map": {AP, false}, "Rprec": {Rprec, false}, "recip_rank": {RR, false}, "ndcg": {NDCG, false},
	"P": {P, true}, "recall": {Recall, true}, "ndcg_cut": {NDCG, true}, "map_cut": {AP, true},
}

var irFamilies = map[string]Kind{
	"NumQ": NumQ, "NumRet": NumRet, "NumRel": NumRel, "NumRelRet": NumRelRet, "AP": AP, "Rprec": Rprec,
	"RR": RR, "P": P, "R": Recall, "nDCG": NDCG, "Judged": Judged,
}

func parseOne(name string) ([]Measure, error) {
	name = strings.TrimSpace(name)
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrMeasure, name, why) }
	if name == "" {
		return nil, bad("empty name")
	}
	// trec_eval style: family[.c1,c2,...] or the printed family_c.
	fam, params, hasParams := strings.Cut(name, ".")
	if f, ok := trecFamilies[fam]; ok {
		if !f.cut {
			if hasParams {
				return nil, bad("trec_eval's " + fam + " takes no parameters")
			}
			return []Measure{{Kind: f.kind}}, nil
		}
		cuts := defaultCutoffs
		if hasParams {
			var err error
			if cuts, err = parseCutoffs(params); err != nil {
				return nil, bad(err.Error())
			}
		}
		out := make([]Measure, len(cuts))
		for i, c := range cuts {
			out[i] = Measure{Kind: f.kind, Cutoff: c}
		}
		return out, nil
	}
	if i := strings.LastIndexByte(name, '_'); i > 0 && !hasParams {
		if f, ok := trecFamilies[name[:i]]; ok && f.cut {
			c, err := strconv.Atoi(name[i+1:])
			if err != nil || c <= 0 {
				return nil, bad("cutoff must be a positive integer")
			}
			return []Measure{{Kind: f.kind, Cutoff: c}}, nil
		}
	}
	// ir_measures style: Family[(rel=N)][@k].
	m := Measure{IR: true}
	rest := name
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		c, err := strconv.Atoi(rest[at+1:])
		if err != nil || c <= 0 {
			return nil, bad("cutoff after @ must be a positive integer")
		}
		m.Cutoff, rest = c, rest[:at]
	}
	if open := strings.IndexByte(rest, '('); open >= 0 {
		if !strings.HasSuffix(rest, ")") {
			return nil, bad("unclosed parameter list")
		}
		for _, kv := range strings.Split(rest[open+1:len(rest)-1], ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			if k != "rel" {
				return nil, bad("only the rel=N parameter is supported")
			}
			r, err := strconv.Atoi(v)
			if err != nil || r < 1 {
				return nil, bad("rel must be an integer >= 1")
			}
			m.Rel = r
		}
		rest = rest[:open]
	}
	k, ok := irFamilies[rest]
	if !ok {
		return nil, bad("not a trec_eval or ir_measures measure (try nDCG@10, AP, RR@10, R@100, P@10, Rprec, Judged@10, ndcg_cut.10, map, recall.100, P.10)")
	}
	m.Kind = k
	if k == Rprec && m.Rel == 0 {
		m.IR = false // same name in both styles; print it trec_eval's way
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return []Measure{m}, nil
}

// parseCutoffs reads "5,10,20" as trec_eval does: sorted, positive, no
// repeats.
func parseCutoffs(s string) ([]int, error) {
	var cuts []int
	for _, f := range strings.Split(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c <= 0 {
			return nil, fmt.Errorf("cutoff %q must be a positive integer", f)
		}
		cuts = append(cuts, c)
	}
	slices.Sort(cuts)
	for i := 1; i < len(cuts); i++ {
		if cuts[i] == cuts[i-1] {
			return nil, fmt.Errorf("cutoff %d given twice", cuts[i])
		}
	}
	return cuts, nil
}

// rank orders measures as trec_eval prints them: its measure table
// (num_q, num_ret, num_rel, num_rel_ret, map, Rprec, recip_rank, P,
// recall, ndcg, ndcg_cut, map_cut), then Judged.
func (m Measure) rank() int {
	switch {
	case m.Kind == AP && m.Cutoff > 0:
		return 20
	case m.Kind == NDCG && m.Cutoff > 0:
		return 19
	case m.Kind == Judged:
		return 21
	}
	return int(m.Kind)
}

// TrecOrder sorts measures in place in trec_eval's output order: by
// family as in trec_eval's measure table, then by cutoff.
func TrecOrder(ms []Measure) {
	slices.SortStableFunc(ms, func(a, b Measure) int {
		return cmp.Or(cmp.Compare(a.rank(), b.rank()), cmp.Compare(a.Cutoff, b.Cutoff), cmp.Compare(a.Rel, b.Rel))
	})
}
