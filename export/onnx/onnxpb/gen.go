// Package onnxpb holds the Go types of ONNX's protobuf schema (onnx.proto,
// Apache-2.0, from github.com/onnx/onnx at commit
// f7546912001bc31e92a238b17068a21b373d882e, unchanged), generated with
// protoc-gen-go. Both files are committed so that building needs no protoc.
//
// To regenerate (Debian: apt-get install protobuf-compiler; protoc 3.21.12
// made the committed file):
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.6
//	cd export/onnx/onnxpb && go generate
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto=github.com/spladapt/spladapt/export/onnx/onnxpb onnx.proto
