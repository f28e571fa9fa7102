package trainloop

import (
	"hash/fnv"
	"math/rand/v2"
	"strconv"
)

// Order is the order in which a run visits its n examples: the endless
// sequence of per-epoch permutations, epoch e permuted with PCG(Seed, e).
// Step s of batch size B takes positions s·B … s·B+B−1 of it, so the batch
// of a step depends only on (Seed, n, B, s) — what exact resume needs.
type Order struct {
	N    int
	Seed uint64

	perm  []int
	epoch int
	valid bool
}

// Batch returns the example indices of 0-based step s with batch size b.
func (o *Order) Batch(s, b int) []int {
	idx := make([]int, b)
	for i := range idx {
		pos := s*b + i
		e := pos / o.N
		if !o.valid || e != o.epoch {
			o.perm = rand.New(rand.NewPCG(o.Seed, uint64(e))).Perm(o.N)
			o.epoch, o.valid = e, true
		}
		idx[i] = o.perm[pos%o.N]
	}
	return idx
}

// StepSeed derives the seed of one use (salt: "negatives", "dropout", …)
// of randomness at step from the run's seed.
func StepSeed(seed uint64, step int, salt string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(salt))
	h.Write([]byte(strconv.Itoa(step)))
	return seed ^ h.Sum64()
}
