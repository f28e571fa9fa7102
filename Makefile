# spladapt: the two commands of a fresh machine are "make setup" and "make test".
GO ?= go
DEBIAN_PACKAGES = libopenblas-dev pkg-config python3-torch python3-numpy chromium nodejs

.PHONY: setup test test-nocgo build bench

## setup: install Debian packages, Go modules and the npm packages of
## tools/onnxcheck (ONNX Runtime for export/onnx's parity test; its
## postinstall would fetch CUDA binaries, which the CPU tests do not need)
## (run as root on Debian)
setup:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEBIAN_PACKAGES)
	command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm
	$(GO) mod download
	cd tools/onnxcheck && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
	$(GO) build -o bin/spladapt ./cmd/spladapt

## build: the spladapt binary in bin/
build:
	$(GO) build -o bin/spladapt ./cmd/spladapt

## test: gofmt clean, vet, every test, with cgo (OpenBLAS, the index's C kernels), then the
## packages with C kernels again on their pure-Go fallbacks, and the batch-invariance tests on
## OpenBLAS kernels that round a row the same whatever its batch (nn.RowInvariantProducts)
test:
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	CGO_ENABLED=0 $(GO) test -count=1 ./nn/... ./index/...
	OPENBLAS_CORETYPE=Sandybridge $(GO) test -count=1 -run 'TestSgemmRowInvariant|TestEncodeCorpusShardSizeInvariant' ./nn/ ./adapt/

## bench: the opt-in benchmarks (long)
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...
