// Package splade turns an MLM head into a sparse retriever (SPLADE,
// Formal et al.): the losses and regularisers of its training, the training
// data (triples, teacher scores, BM25 hard negatives) and length-bucketed
// batching.
package splade

import (
	"fmt"
	"math"
)

// Shape legend for this file:
//
//	B     queries in the batch
//	NNeg  hard negatives per query
//	V     vocabulary size (30 522 for BERT): the width of a SPLADE vector
//	R     rows of a matrix (B for queries and positives, B·NNeg for negatives)
//
// Every loss below takes dense SPLADE matrices, returns the unweighted value
// of its term in float64, and — when given gradient buffers — adds
// weight·∂term/∂W into them (+=), so that one set of buffers collects the
// gradient of a weighted total. Sums are accumulated in float64 whatever the
// element type.
//
// SPLADE vectors are mostly zeros (tens to a few hundred non-zeros out of V),
// so a Mat carries the column indices of each row's non-zeros, built once by
// NewMat in O(R·V), and every loss iterates those: its cost is stated in nnz,
// never in B·V.

// Float is the element type of SPLADE matrices: float32 in training,
// float64 in gradient checks.
type Float interface{ ~float32 | ~float64 }

// Mat is a dense row-major (Rows, V) matrix of SPLADE vectors together with
// the column indices of each row's non-zero entries.
//
// The index lists are a snapshot taken by NewMat: after changing W, call
// Reindex before using the Mat again.
type Mat[F Float] struct {
	Rows, V int
	W       []F // (Rows, V) row-major

	nzCol []int32 // (nnz) column of every non-zero, row by row, ascending within a row
	nzVal []F     // (nnz) the values W[i, nzCol[·]], packed so that loops read them in order
	nzOff []int   // (Rows+1) row i's non-zeros are nzCol[nzOff[i]:nzOff[i+1]]
}

// NewMat wraps w, a (rows, v) row-major matrix, and indexes its non-zeros.
// It panics when len(w) != rows·v (a programming error, not bad input).
// Cost: O(rows·v) once.
func NewMat[F Float](w []F, rows, v int) *Mat[F] {
	if rows < 0 || v < 0 || len(w) != rows*v {
		panic(fmt.Sprintf("splade: NewMat: len(w)=%d, want rows·v = %d·%d", len(w), rows, v))
	}
	m := &Mat[F]{Rows: rows, V: v, W: w}
	m.Reindex()
	return m
}

// Reindex rebuilds the non-zero lists after W was changed. Cost: O(Rows·V).
func (m *Mat[F]) Reindex() {
	m.nzCol = m.nzCol[:0]
	m.nzVal = m.nzVal[:0]
	if cap(m.nzOff) >= m.Rows+1 {
		m.nzOff = m.nzOff[:m.Rows+1]
	} else {
		m.nzOff = make([]int, m.Rows+1)
	}
	for i := 0; i < m.Rows; i++ {
		m.nzOff[i] = len(m.nzCol)
		row := m.W[i*m.V : (i+1)*m.V]
		for j, x := range row {
			if x != 0 {
				m.nzCol = append(m.nzCol, int32(j))
				m.nzVal = append(m.nzVal, x)
			}
		}
	}
	m.nzOff[m.Rows] = len(m.nzCol)
}

// Row returns row i of W: a slice of length V sharing W's storage.
func (m *Mat[F]) Row(i int) []F { return m.W[i*m.V : (i+1)*m.V] }

// NZ returns the ascending column indices of row i's non-zeros (shared,
// read-only).
func (m *Mat[F]) NZ(i int) []int32 { return m.nzCol[m.nzOff[i]:m.nzOff[i+1]] }

// nzv returns the values of row i's non-zeros, aligned with NZ(i).
func (m *Mat[F]) nzv(i int) []F { return m.nzVal[m.nzOff[i]:m.nzOff[i+1]] }

// NNZ returns the number of non-zero entries of the whole matrix.
func (m *Mat[F]) NNZ() int { return len(m.nzCol) }

// MeanNNZ returns the mean number of non-zero entries per row over all rows
// of all given matrices (0 when there are no rows): the "non-zeros per
// query" and "non-zeros per document" numbers logged during training.
func MeanNNZ[F Float](mats ...*Mat[F]) float64 {
	rows, nnz := 0, 0
	for _, m := range mats {
		rows += m.Rows
		nnz += m.NNZ()
	}
	if rows == 0 {
		return 0
	}
	return float64(nnz) / float64(rows)
}

// dot returns row i of a · row k of b, iterating the non-zeros of the
// sparser row. Cost: O(min(nnz(a_i), nnz(b_k))).
func dot[F Float](a *Mat[F], i int, b *Mat[F], k int) float64 {
	if b.nzOff[k+1]-b.nzOff[k] < a.nzOff[i+1]-a.nzOff[i] {
		a, i, b, k = b, k, a, i
	}
	cols, vals, other := a.NZ(i), a.nzv(i), b.Row(k)
	var s float64
	for n, j := range cols {
		s += float64(vals[n]) * float64(other[j])
	}
	return s
}

// axpy adds alpha·(row k of x) into y (length V), over x's non-zeros.
func axpy[F Float](y []F, alpha float64, x *Mat[F], k int) {
	vals := x.nzv(k)
	for n, j := range x.NZ(k) {
		y[j] += F(alpha * float64(vals[n]))
	}
}

// Batch is one training step's SPLADE vectors: query i's positive is row i
// of P and its hard negatives are rows i·NNeg … i·NNeg+NNeg−1 of N. All
// three share V. With NNeg = 1 this is exactly the layout of the PyTorch
// oracle (q, pos, neg rows aligned).
type Batch[F Float] struct {
	Q *Mat[F] // (B, V) queries
	P *Mat[F] // (B, V) positives
	N *Mat[F] // (B·NNeg, V) hard negatives, grouped by query
}

// B returns the number of queries.
func (b *Batch[F]) B() int { return b.Q.Rows }

// NNeg returns the number of hard negatives per query.
func (b *Batch[F]) NNeg() int {
	if b.Q.Rows == 0 {
		return 0
	}
	return b.N.Rows / b.Q.Rows
}

// Validate checks that the three matrices agree in B and V and that N holds
// a whole number (≥ 1) of negatives per query.
func (b *Batch[F]) Validate() error {
	if b.Q == nil || b.P == nil || b.N == nil {
		return fmt.Errorf("batch: Q, P and N must all be set")
	}
	if b.Q.Rows == 0 {
		return fmt.Errorf("batch: no queries")
	}
	if b.P.Rows != b.Q.Rows {
		return fmt.Errorf("batch: %d positives for %d queries", b.P.Rows, b.Q.Rows)
	}
	if b.N.Rows == 0 || b.N.Rows%b.Q.Rows != 0 {
		return fmt.Errorf("batch: %d negatives is not a positive multiple of %d queries", b.N.Rows, b.Q.Rows)
	}
	if b.P.V != b.Q.V || b.N.V != b.Q.V {
		return fmt.Errorf("batch: vocabulary sizes differ: Q %d, P %d, N %d", b.Q.V, b.P.V, b.N.V)
	}
	return nil
}

// Grads are gradient buffers with the shapes of a Batch's matrices. Losses
// add into them; a nil buffer is not computed. The caller zeroes them
// between steps.
type Grads[F Float] struct {
	Q []F // (B, V)
	P []F // (B, V)
	N []F // (B·NNeg, V)
}

// docRow maps document k of D = [P; N] to its matrix, row and gradient row.
func docRow[F Float](b *Batch[F], g *Grads[F], k int) (*Mat[F], int, []F) {
	B, V := b.B(), b.Q.V
	if k < B {
		var gr []F
		if g != nil && g.P != nil {
			gr = g.P[k*V : (k+1)*V]
		}
		return b.P, k, gr
	}
	k -= B
	var gr []F
	if g != nil && g.N != nil {
		gr = g.N[k*V : (k+1)*V]
	}
	return b.N, k, gr
}

// Scores returns the InfoNCE score matrix s (B, B+B·NNeg), row-major:
// s[i,k] = q_i · D_k with D = [P rows; N rows]. Cost: O(Σ_{i,k}
// min(nnz(q_i), nnz(D_k))).
func Scores[F Float](b *Batch[F]) []float64 {
	B := b.B()
	K := B + b.N.Rows
	s := make([]float64, B*K)
	for i := 0; i < B; i++ {
		for k := 0; k < K; k++ {
			m, r, _ := docRow(b, nil, k)
			s[i*K+k] = dot(b.Q, i, m, r)
		}
	}
	return s
}

// InfoNCE is the contrastive loss of SPLADE v2 (Formal et al.,
// arXiv:2109.10086) with in-batch and hard negatives, temperature 1:
//
//	D = [pos_0 … pos_{B−1}, neg_0 … neg_{B·NNeg−1}]
//	s[i,k] = q_i · D_k
//	L = (1/B) Σ_i [ logsumexp_k s[i,k] − s[i,i] ]
//
// Every query sees every positive and every hard negative of the batch; its
// target is its own positive. With NNeg = 1 this equals the oracle's
// infonce. When g is not nil it adds weight·∂L/∂Q, ∂L/∂P, ∂L/∂N into g.
// The gradient with respect to a query is dense on the union of the
// documents' non-zeros (it is the exact gradient of the dense matrix).
// Cost: scores as in Scores, gradients O(B·nnz(D) + B·nnz(Q)·(1+NNeg)).
func InfoNCE[F Float](b *Batch[F], g *Grads[F], weight float64) float64 {
	B, V := b.B(), b.Q.V
	K := B + b.N.Rows
	s := Scores(b)
	var loss float64
	for i := 0; i < B; i++ {
		row := s[i*K : (i+1)*K]
		mx := math.Inf(-1)
		for _, x := range row {
			mx = math.Max(mx, x)
		}
		var z float64
		for _, x := range row {
			z += math.Exp(x - mx)
		}
		lse := mx + math.Log(z)
		loss += lse - row[i]
		// Turn the row into ∂L/∂s[i,·] = (softmax − onehot(i)) / B.
		for k, x := range row {
			row[k] = math.Exp(x-lse) / float64(B)
		}
		row[i] -= 1 / float64(B)
	}
	loss /= float64(B)
	if g == nil || weight == 0 {
		return loss
	}
	for i := 0; i < B; i++ {
		for k := 0; k < K; k++ {
			gs := weight * s[i*K+k]
			if gs == 0 {
				continue
			}
			m, r, gd := docRow(b, g, k)
			if g.Q != nil {
				axpy(g.Q[i*V:(i+1)*V], gs, m, r)
			}
			if gd != nil {
				axpy(gd, gs, b.Q, i)
			}
		}
	}
	return loss
}

// MarginMSE is the distillation loss of Hofstätter et al. (arXiv:2010.02666):
// the student margin q·pos − q·neg regresses onto the teacher's margin,
//
//	m_{i,n} = q_i·pos_i − q_i·neg_{i,n}
//	L = (1/(B·NNeg)) Σ_{i,n} (m_{i,n} − teacher[i·NNeg+n])²
//
// teacher has one margin per negative, B·NNeg values, in N's row order.
// With NNeg = 1 this equals the oracle's margin_mse. When g is not nil it
// adds weight·∂L into g. It returns an error when len(teacher) ≠ B·NNeg.
// Cost: O(B·NNeg·(nnz(q)+nnz(pos)+nnz(neg))).
func MarginMSE[F Float](b *Batch[F], teacher []F, g *Grads[F], weight float64) (float64, error) {
	B, V, nn := b.B(), b.Q.V, b.NNeg()
	if len(teacher) != b.N.Rows {
		return 0, fmt.Errorf("margin-mse: %d teacher margins for %d negatives", len(teacher), b.N.Rows)
	}
	R := float64(b.N.Rows)
	var loss float64
	for i := 0; i < B; i++ {
		sp := dot(b.Q, i, b.P, i)
		for n := 0; n < nn; n++ {
			r := i*nn + n
			d := sp - dot(b.Q, i, b.N, r) - float64(teacher[r])
			loss += d * d
			if g == nil || weight == 0 {
				continue
			}
			gm := weight * 2 * d / R // ∂(weight·L)/∂m
			if g.Q != nil {
				gq := g.Q[i*V : (i+1)*V]
				axpy(gq, gm, b.P, i)
				axpy(gq, -gm, b.N, r)
			}
			if g.P != nil {
				axpy(g.P[i*V:(i+1)*V], gm, b.Q, i)
			}
			if g.N != nil {
				axpy(g.N[r*V:(r+1)*V], -gm, b.Q, i)
			}
		}
	}
	return loss / R, nil
}

// StudentMargins returns q_i·pos_i − q_i·neg_{i,n} for every negative, in
// N's row order (B·NNeg values).
func StudentMargins[F Float](b *Batch[F]) []float64 {
	nn := b.NNeg()
	out := make([]float64, b.N.Rows)
	for i := 0; i < b.B(); i++ {
		sp := dot(b.Q, i, b.P, i)
		for n := 0; n < nn; n++ {
			out[i*nn+n] = sp - dot(b.Q, i, b.N, i*nn+n)
		}
	}
	return out
}

// Block is one row block of a regularised matrix with its gradient buffer
// (nil: not computed). Several blocks are regularised as one matrix with
// their rows stacked, e.g. D = [P; N] for documents.
type Block[F Float] struct {
	M    *Mat[F]
	Grad []F // (M.Rows, V) or nil
}

// FLOPS is the regulariser of Paria et al. (arXiv:2004.05665), used by
// SPLADE: with W the rows of all blocks stacked (N rows in all),
//
//	FLOPS(W) = Σ_j ( (1/N) Σ_i |W[i,j]| )²
//
// summed over the vocabulary. It adds weight·∂FLOPS/∂W[i,j] =
// weight·2·a_j·sign(W[i,j])/N (a_j the column mean) into each block's Grad;
// the subgradient at W[i,j] = 0 is taken as 0, as PyTorch does, so the
// gradient is as sparse as W. flops_q is FLOPS of the queries (N = B);
// flops_d is FLOPS of [P; N] (N = B + B·NNeg, 2B in the oracle). All blocks
// must share V. Cost: O(nnz + V) (one V-length accumulator).
func FLOPS[F Float](weight float64, blocks ...Block[F]) float64 {
	if len(blocks) == 0 {
		return 0
	}
	V := blocks[0].M.V
	rows := 0
	col := make([]float64, V) // (V) Σ_i |W[i,j]|, then the column mean a_j
	for _, bl := range blocks {
		if bl.M.V != V {
			panic(fmt.Sprintf("splade: FLOPS: blocks of width %d and %d", V, bl.M.V))
		}
		rows += bl.M.Rows
		for i := 0; i < bl.M.Rows; i++ {
			row := bl.M.Row(i)
			for _, j := range bl.M.NZ(i) {
				col[j] += math.Abs(float64(row[j]))
			}
		}
	}
	if rows == 0 {
		return 0
	}
	N := float64(rows)
	var v float64
	for j, c := range col {
		if c != 0 {
			a := c / N
			col[j] = a
			v += a * a
		}
	}
	if weight == 0 {
		return v
	}
	for _, bl := range blocks {
		if bl.Grad == nil {
			continue
		}
		for i := 0; i < bl.M.Rows; i++ {
			row := bl.M.Row(i)
			gr := bl.Grad[i*V : (i+1)*V]
			for _, j := range bl.M.NZ(i) {
				gr[j] += F(weight * 2 * col[j] * sign(float64(row[j])) / N)
			}
		}
	}
	return v
}

// L1 is the mean absolute row sum, with W the rows of all blocks stacked
// (N rows in all):
//
//	L1(W) = (1/N) Σ_i Σ_j |W[i,j]|
//
// It adds weight·sign(W[i,j])/N into each block's Grad (0 at zeros).
// l1_q = L1(Q), l1_d = L1([P; N]). Cost: O(nnz).
func L1[F Float](weight float64, blocks ...Block[F]) float64 {
	rows := 0
	var s float64
	for _, bl := range blocks {
		rows += bl.M.Rows
		for i := 0; i < bl.M.Rows; i++ {
			row := bl.M.Row(i)
			for _, j := range bl.M.NZ(i) {
				s += math.Abs(float64(row[j]))
			}
		}
	}
	if rows == 0 {
		return 0
	}
	N := float64(rows)
	if weight != 0 {
		for _, bl := range blocks {
			if bl.Grad == nil {
				continue
			}
			V := bl.M.V
			for i := 0; i < bl.M.Rows; i++ {
				row := bl.M.Row(i)
				gr := bl.Grad[i*V : (i+1)*V]
				for _, j := range bl.M.NZ(i) {
					gr[j] += F(weight * sign(float64(row[j])) / N)
				}
			}
		}
	}
	return s / N
}

func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

// Lambda is the quadratic warm-up of a regularisation weight used by SPLADE
// (Formal et al., arXiv:2109.10086, following Paria et al.):
//
//	λ_t = λ · min(1, t/T)²
//
// step is t (0-based: the first step has weight 0 when T > 0); warmupT ≤ 0
// means no warm-up (λ from the first step).
func Lambda(step int, lambda float64, warmupT int) float64 {
	if warmupT <= 0 {
		return lambda
	}
	r := math.Min(1, float64(step)/float64(warmupT))
	if r < 0 {
		r = 0
	}
	return lambda * r * r
}

// Weights are the weights of the SPLADE training objective. The four
// regularisation weights are targets reached by the quadratic warm-up
// (Lambda) over WarmupSteps steps; InfoNCE and MarginMSE are not warmed up.
// A zero weight skips the term's gradient; its value is still reported.
type Weights struct {
	InfoNCE   float64
	MarginMSE float64
	FLOPSQ    float64 // λ_q for FLOPS on queries
	FLOPSD    float64 // λ_d for FLOPS on documents (positives and negatives)
	L1Q       float64 // λ for L1 on queries (an alternative to FLOPSQ)
	L1D       float64 // λ for L1 on documents
	// WarmupSteps is T of λ_t = λ·min(1, t/T)²; 0 disables the warm-up.
	WarmupSteps int
}

// Terms are one step's loss terms (unweighted), the weights in force at
// that step, the weighted total and the sparsity of the batch.
type Terms struct {
	InfoNCE, MarginMSE         float64
	FLOPSQ, FLOPSD, L1Q, L1D   float64
	LambdaFLOPSQ, LambdaFLOPSD float64 // warmed-up weights at this step
	LambdaL1Q, LambdaL1D       float64
	Total                      float64
	HasMarginMSE               bool    // teacher margins were given
	MeanNNZQuery, MeanNNZDoc   float64 // mean non-zeros per query / per document (P and N)
}

// Objective evaluates every loss term of one step and adds the gradient of
//
//	Total = w.InfoNCE·InfoNCE + w.MarginMSE·MarginMSE
//	      + λ_t(FLOPSQ)·FLOPS(Q) + λ_t(FLOPSD)·FLOPS([P;N])
//	      + λ_t(L1Q)·L1(Q) + λ_t(L1D)·L1([P;N])
//
// into g (when not nil). teacher holds B·NNeg teacher margins or is nil;
// MarginMSE is then not evaluated, and a non-zero w.MarginMSE is an error.
// step is the 0-based optimiser step for the warm-up.
func Objective[F Float](b *Batch[F], teacher []F, w Weights, step int, g *Grads[F]) (Terms, error) {
	if err := b.Validate(); err != nil {
		return Terms{}, err
	}
	V := b.Q.V
	if g != nil {
		for _, buf := range []struct {
			name string
			s    []F
			rows int
		}{{"Q", g.Q, b.Q.Rows}, {"P", g.P, b.P.Rows}, {"N", g.N, b.N.Rows}} {
			if buf.s != nil && len(buf.s) != buf.rows*V {
				return Terms{}, fmt.Errorf("objective: gradient %s has %d elements, want %d", buf.name, len(buf.s), buf.rows*V)
			}
		}
	}
	var t Terms
	t.LambdaFLOPSQ = Lambda(step, w.FLOPSQ, w.WarmupSteps)
	t.LambdaFLOPSD = Lambda(step, w.FLOPSD, w.WarmupSteps)
	t.LambdaL1Q = Lambda(step, w.L1Q, w.WarmupSteps)
	t.LambdaL1D = Lambda(step, w.L1D, w.WarmupSteps)
	var gq, gp, gn []F
	if g != nil {
		gq, gp, gn = g.Q, g.P, g.N
	}
	q := []Block[F]{{b.Q, gq}}
	d := []Block[F]{{b.P, gp}, {b.N, gn}}

	t.InfoNCE = InfoNCE(b, g, w.InfoNCE)
	if teacher != nil {
		v, err := MarginMSE(b, teacher, g, w.MarginMSE)
		if err != nil {
			return Terms{}, err
		}
		t.MarginMSE, t.HasMarginMSE = v, true
	} else if w.MarginMSE != 0 {
		return Terms{}, fmt.Errorf("objective: margin-mse weight %g but no teacher margins", w.MarginMSE)
	}
	t.FLOPSQ = FLOPS(t.LambdaFLOPSQ, q...)
	t.FLOPSD = FLOPS(t.LambdaFLOPSD, d...)
	t.L1Q = L1(t.LambdaL1Q, q...)
	t.L1D = L1(t.LambdaL1D, d...)
	t.Total = w.InfoNCE*t.InfoNCE + t.LambdaFLOPSQ*t.FLOPSQ + t.LambdaFLOPSD*t.FLOPSD +
		t.LambdaL1Q*t.L1Q + t.LambdaL1D*t.L1D
	if t.HasMarginMSE {
		t.Total += w.MarginMSE * t.MarginMSE
	}
	t.MeanNNZQuery = MeanNNZ(b.Q)
	t.MeanNNZDoc = MeanNNZ(b.P, b.N)
	return t, nil
}
