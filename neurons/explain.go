package neurons

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"

	"github.com/spladapt/spladapt/splade"
)

// TermContribution is one matched term of an explanation.
type TermContribution struct {
	Token string  `json:"token"`
	ID    int     `json:"id"`
	Query float64 `json:"q"`     // q_t
	Doc   float64 `json:"d"`     // d_t
	Score float64 `json:"score"` // q_t·d_t
	// Expansion is true when the term is not among the document's own
	// (truncated) word pieces: the model added it.
	Expansion bool `json:"expansion"`
}

// Explanation decomposes one (query, document) SPLADE score.
type Explanation struct {
	Query string `json:"query"`
	Doc   string `json:"doc"`
	// Score = Σ Terms[i].Score, the score of the vectors as the encoder
	// emits them (top-n pruning included), summed in float64.
	Score float64            `json:"score"`
	Terms []TermContribution `json:"terms"` // by contribution, largest first
	// Neurons are the document-side neurons with the largest |attribution|
	// (Integrated Gradients, zero baseline) for the unpruned document
	// vector; AttributionSum and BaselineScore allow the completeness check
	// against IGScore, the score of the unpruned document vector.
	Neurons        []NeuronStat `json:"neurons,omitempty"`
	IGScore        float64      `json:"ig_score,omitempty"`
	BaselineScore  float64      `json:"baseline_score,omitempty"`
	AttributionSum float64      `json:"attribution_sum,omitempty"`
	Steps          int          `json:"steps,omitempty"`
}

// ExplainOptions configure Explain.
type ExplainOptions struct {
	TopNeurons int   // neurons to list; 0 skips the attribution
	Steps      int   // quadrature steps (default 64)
	Layers     []int // attributed layers; nil for all
}

// Explain encodes query and doc with enc and returns the per-term
// contributions q_t·d_t of their score, largest first (ties by token id),
// marking expansion terms, and, with TopNeurons > 0, the top document
// neurons by |attribution|. Cost: two encodings, plus at most Steps + 2
// forward and Steps backward passes of the document for the neurons.
func Explain(enc *splade.Encoder, query, doc string, opt ExplainOptions) (*Explanation, error) {
	q, err := enc.EncodeQuery(query)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	ds, err := enc.EncodeDocs([]string{doc})
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	d := ds[0]
	ids := enc.Tok.Encode(doc, enc.MaxLen).IDs
	own := map[uint32]bool{}
	for _, id := range ids {
		own[uint32(id)] = true
	}
	ex := &Explanation{Query: query, Doc: doc}
	dw := map[uint32]float32{}
	for _, tw := range d {
		dw[tw.Term] = tw.Weight
	}
	for _, tw := range q {
		w, ok := dw[tw.Term]
		if !ok {
			continue
		}
		c := TermContribution{Token: enc.Tok.Token(int32(tw.Term)), ID: int(tw.Term), Query: float64(tw.Weight), Doc: float64(w),
			Score: float64(tw.Weight) * float64(w), Expansion: !own[tw.Term]}
		ex.Terms = append(ex.Terms, c)
	}
	sort.SliceStable(ex.Terms, func(i, j int) bool {
		if ex.Terms[i].Score != ex.Terms[j].Score {
			return ex.Terms[i].Score > ex.Terms[j].Score
		}
		return ex.Terms[i].ID < ex.Terms[j].ID
	})
	for _, t := range ex.Terms {
		ex.Score += t.Score
	}
	if opt.TopNeurons <= 0 {
		return ex, nil
	}
	m := enc.Model
	layers := opt.Layers
	if layers == nil {
		for l := range m.Config.NumLayers {
			layers = append(layers, l)
		}
	}
	a := &Attributor{Model: m, Layers: layers, Steps: opt.Steps}
	r, err := a.Attribute(ids, denseOf(q, m.Config.VocabSize))
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	ex.IGScore, ex.BaselineScore, ex.AttributionSum, ex.Steps = r.Score, r.BaselineScore, r.Sum, a.Steps
	if ex.Steps == 0 {
		ex.Steps = 64
	}
	var all []NeuronStat
	for li, l := range layers {
		for j, v := range r.Attr[li] {
			all = append(all, NeuronStat{Layer: l, Neuron: j, Value: v})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return math.Abs(all[i].Value) > math.Abs(all[j].Value) })
	ex.Neurons = all[:min(opt.TopNeurons, len(all))]
	return ex, nil
}

// WriteText writes the explanation as plain text.
func (ex *Explanation) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "score %.4f = Σ q_t·d_t over %d matched terms\n", ex.Score, len(ex.Terms))
	fmt.Fprintf(w, "%-20s %9s %9s %9s %6s  %s\n", "term", "q", "d", "q·d", "share", "")
	for _, t := range ex.Terms {
		mark := ""
		if t.Expansion {
			mark = "expansion"
		}
		share := 0.0
		if ex.Score != 0 {
			share = t.Score / ex.Score
		}
		fmt.Fprintf(w, "%-20s %9.4f %9.4f %9.4f %5.1f%%  %s\n", t.Token, t.Query, t.Doc, t.Score, 100*share, mark)
	}
	if len(ex.Neurons) > 0 {
		fmt.Fprintf(w, "\ntop document neurons by |attribution| (Integrated Gradients, %d steps, zero baseline; score %.4f, baseline %.4f, Σ attributions %.4f)\n",
			ex.Steps, ex.IGScore, ex.BaselineScore, ex.AttributionSum)
		for _, n := range ex.Neurons {
			fmt.Fprintf(w, "layer %2d neuron %5d  %+.5f\n", n.Layer, n.Neuron, n.Value)
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}

var explainHTML = template.Must(template.New("x").Funcs(template.FuncMap{
	"pct": func(v, total float64) string {
		if total == 0 {
			return "0"
		}
		return fmt.Sprintf("%.1f", 100*math.Max(0, v)/total)
	},
	"f4": func(v float64) string { return fmt.Sprintf("%.4f", v) },
}).Parse(`<div class="spladapt-explain">
<p>score <b>{{f4 .Score}}</b> = Σ q<sub>t</sub>·d<sub>t</sub> over {{len .Terms}} matched terms</p>
<table>
<thead><tr><th scope="col">term</th><th scope="col">q</th><th scope="col">d</th><th scope="col">q·d</th><th scope="col">share</th><th scope="col"></th></tr></thead>
<tbody>
{{- range .Terms}}
<tr{{if .Expansion}} class="expansion"{{end}}><td>{{.Token}}</td><td>{{f4 .Query}}</td><td>{{f4 .Doc}}</td><td>{{f4 .Score}}</td><td><span style="display:inline-block;background:#4a7ab5;height:0.7em;width:{{pct .Score $.Score}}px"></span> {{pct .Score $.Score}}%</td><td>{{if .Expansion}}expansion{{end}}</td></tr>
{{- end}}
</tbody>
</table>
{{- if .Neurons}}
<p>top document neurons by |attribution| (Integrated Gradients, {{.Steps}} steps, zero baseline)</p>
<table>
<thead><tr><th scope="col">layer</th><th scope="col">neuron</th><th scope="col">attribution</th></tr></thead>
<tbody>
{{- range .Neurons}}
<tr><td>{{.Layer}}</td><td>{{.Neuron}}</td><td>{{printf "%+.5f" .Value}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
</div>
`))

// WriteHTML writes a self-contained HTML fragment (one <div
// class="spladapt-explain">, no scripts or external assets) that a page
// such as the search page can embed.
func (ex *Explanation) WriteHTML(w io.Writer) error { return explainHTML.Execute(w, ex) }
