package synth

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/spladapt/spladapt/index"
)

// TopicOrder returns documents 0..n−1 stably sorted by main topic (the
// generator's: an ideal clustering). Without topics (Default) it is the
// identity.
func (g *Gen) TopicOrder(n int) []int {
	order := make([]int, n)
	topic := make([]int, n)
	for i := range order {
		order[i], topic[i] = i, g.Topic(i)
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(topic[a], topic[b]) })
	return order
}

// WriteIndex writes documents 0..n−1 of g, each with id strconv.Itoa(i),
// as the index dir with options o, numbering them in order (nil: 0..n−1),
// and returns the time the build took. o.NumTerms defaults to the
// vocabulary size.
func (g *Gen) WriteIndex(dir string, n int, order []int, o index.Options) (time.Duration, error) {
	if order == nil {
		order = make([]int, n)
		for i := range order {
			order[i] = i
		}
	}
	if len(order) != n {
		return 0, fmt.Errorf("synth index %s: order of %d documents for %d", dir, len(order), n)
	}
	if o.NumTerms == 0 && o.Vocab == nil {
		o.NumTerms = g.c.Vocab
	}
	start := time.Now()
	b, err := index.NewBuilder(o)
	if err != nil {
		return 0, err
	}
	for _, i := range order {
		if _, err := b.Add(strconv.Itoa(i), g.Doc(i)); err != nil {
			return 0, err
		}
	}
	if _, err := b.Write(dir); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// Named returns the generator of the collection called name:
// "independent" (Default) or "topical" (Topical), as the benchmarks'
// SPLADAPT_BENCH_SYNTH and the tools' -synth flag name them.
func Named(name string) (*Gen, error) {
	switch name {
	case "independent":
		return New(Default), nil
	case "topical":
		return New(Topical), nil
	}
	return nil, fmt.Errorf("synthetic collection %q: want independent or topical", name)
}
