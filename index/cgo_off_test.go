//go:build !cgo

package index

const cgoEnabled = false
