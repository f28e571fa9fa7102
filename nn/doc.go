// Package nn is spladapt's transformer core: float32 tensors, matrix
// products on OpenBLAS (pure Go without cgo), layers with hand-written
// Forward and Backward passes, BERT and DistilBERT with their MLM heads.
package nn
