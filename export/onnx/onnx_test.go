package onnx

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/spladapt/spladapt/export/onnx/onnxpb"
	"github.com/spladapt/spladapt/nn"
)

const oracleDir = "../../testdata/oracle"
const checkDir = "../../tools/onnxcheck"

// oracleCases lists the checkpoints of testdata/oracle (both architectures,
// F32/F16/BF16, head sizes 8 and 16).
func oracleCases(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(oracleDir)
	if err != nil {
		t.Fatalf("read %s: %v", oracleDir, err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) == 0 {
		t.Fatalf("no oracle cases in %s", oracleDir)
	}
	return out
}

// testBatch is B=3 rows of T=12 with real lengths 12, 7 and 1, random ids
// and, for BERT, random token types.
func testBatch(m *nn.Model, seed uint64) nn.Batch {
	rng := rand.New(rand.NewPCG(seed, 1))
	B, T := 3, 12
	b := nn.Batch{B: B, T: T, InputIDs: make([]int32, B*T), Mask: make([]float32, B*T)}
	if m.Config.ModelType == "bert" {
		b.TypeIDs = make([]int32, B*T)
	}
	for r, n := range []int{12, 7, 1} {
		for t := range T {
			i := r*T + t
			if t < n {
				b.InputIDs[i] = int32(1 + rng.IntN(m.Config.VocabSize-1))
				b.Mask[i] = 1
				if b.TypeIDs != nil && t >= n/2 {
					b.TypeIDs[i] = 1
				}
			}
		}
	}
	return b
}

// TestBuildGraph checks the graph's interface and that every weight is in
// it, as ONNX's schema decodes it back.
func TestBuildGraph(t *testing.T) {
	for _, c := range oracleCases(t) {
		t.Run(c, func(t *testing.T) {
			m, err := nn.LoadHF(filepath.Join(oracleDir, c, "model"))
			if err != nil {
				t.Fatal(err)
			}
			mp, err := Build(m)
			if err != nil {
				t.Fatal(err)
			}
			data, err := proto.Marshal(mp)
			if err != nil {
				t.Fatal(err)
			}
			var got onnxpb.ModelProto
			if err := proto.Unmarshal(data, &got); err != nil {
				t.Fatal(err)
			}
			if v := got.GetOpsetImport()[0].GetVersion(); v < 17 {
				t.Errorf("opset %d, want ≥ 17", v)
			}
			var ins []string
			for _, vi := range got.GetGraph().GetInput() {
				ins = append(ins, vi.GetName())
				tt := vi.GetType().GetTensorType()
				dims := tt.GetShape().GetDim()
				if tt.GetElemType() != int32(onnxpb.TensorProto_INT64) || len(dims) != 2 ||
					dims[0].GetDimParam() != "batch" || dims[1].GetDimParam() != "seq" {
					t.Errorf("input %s: type %v dims %v, want int64 [batch, seq]", vi.GetName(), tt.GetElemType(), dims)
				}
			}
			want := []string{"input_ids", "attention_mask"}
			if m.Config.ModelType == "bert" {
				want = append(want, "token_type_ids")
			}
			if !slices.Equal(ins, want) {
				t.Errorf("inputs %v, want %v", ins, want)
			}
			outs := got.GetGraph().GetOutput()
			if len(outs) != 1 || outs[0].GetName() != "splade" ||
				outs[0].GetType().GetTensorType().GetShape().GetDim()[1].GetDimValue() != int64(m.Config.VocabSize) {
				t.Errorf("outputs %v, want splade [batch, %d]", outs, m.Config.VocabSize)
			}
			inits := map[string]*onnxpb.TensorProto{}
			for _, ti := range got.GetGraph().GetInitializer() {
				inits[ti.GetName()] = ti
			}
			for _, p := range m.Params {
				ti := inits[p.Name]
				transposed := false
				if ti == nil {
					ti, transposed = inits[p.Name+".T"], true
				}
				if ti == nil {
					t.Errorf("parameter %s is not an initializer", p.Name)
					continue
				}
				raw := ti.GetRawData()
				if len(raw) != 4*len(p.W) {
					t.Errorf("%s: %d bytes, want %d", p.Name, len(raw), 4*len(p.W))
					continue
				}
				for i, w := range p.W {
					j := i
					if transposed {
						r, c := i/p.Shape[1], i%p.Shape[1]
						j = c*p.Shape[0] + r
					}
					if g := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:])); g != w {
						t.Fatalf("%s[%d] = %g, want %g", p.Name, i, g, w)
					}
				}
			}
		})
	}
}

// TestONNXRuntimeParity exports every oracle checkpoint, runs it in ONNX
// Runtime (tools/onnxcheck, installed by "make setup") on a padded batch
// and compares with nn.SpladeEncode: max |ORT − Go| ≤ 1e-4 × the largest
// SPLADE weight of the batch.
func TestONNXRuntimeParity(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found in PATH: install Node.js and run \"make setup\" to run ONNX Runtime parity")
	}
	if _, err := os.Stat(filepath.Join(checkDir, "node_modules", "onnxruntime-node")); err != nil {
		t.Skipf("onnxruntime-node not installed in %s/node_modules: run \"make setup\"", checkDir)
	}
	type job struct {
		Model  string             `json:"model"`
		Batch  int                `json:"batch"`
		Seq    int                `json:"seq"`
		Inputs map[string][]int64 `json:"inputs"`
	}
	var jobs []job
	var wants [][]float32
	// Every oracle case, and the first again as a sum-pooled model.
	var cases []string
	var models []*nn.Model
	for i, c := range oracleCases(t) {
		for _, pool := range []string{nn.PoolMax, nn.PoolSum} {
			if pool == nn.PoolSum && i > 0 {
				continue
			}
			m, err := nn.LoadHF(filepath.Join(oracleDir, c, "model"))
			if err != nil {
				t.Fatal(err)
			}
			m.Config.SpladePooling = pool
			cases = append(cases, c+map[string]string{nn.PoolMax: "", nn.PoolSum: "-sum"}[pool])
			models = append(models, m)
		}
	}
	tmp := t.TempDir()
	for i, c := range cases {
		m := models[i]
		dir := filepath.Join(tmp, c)
		if err := Export(m, dir); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{FileName, "config.json", "vocab.txt"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: %v", c, err)
			}
		}
		b := testBatch(m, uint64(i))
		want := make([]float32, b.B*m.Config.VocabSize)
		nn.SpladeEncode(m, b, want, nil)
		wants = append(wants, want)
		in := map[string][]int64{"input_ids": make([]int64, b.B*b.T), "attention_mask": make([]int64, b.B*b.T)}
		for k := range b.InputIDs {
			in["input_ids"][k] = int64(b.InputIDs[k])
			in["attention_mask"][k] = int64(b.Mask[k])
		}
		if b.TypeIDs != nil {
			in["token_type_ids"] = make([]int64, b.B*b.T)
			for k, v := range b.TypeIDs {
				in["token_type_ids"][k] = int64(v)
			}
		}
		abs, _ := filepath.Abs(filepath.Join(dir, FileName))
		jobs = append(jobs, job{Model: abs, Batch: b.B, Seq: b.T, Inputs: in})
	}
	jb, _ := json.Marshal(jobs)
	jobsPath := filepath.Join(tmp, "jobs.json")
	if err := os.WriteFile(jobsPath, jb, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(checkDir, "run.js"), jobsPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("onnxruntime: %v\n%s", err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<26)
	for i, c := range cases {
		if !sc.Scan() {
			t.Fatalf("onnxruntime printed %d results, want %d\n%s", i, len(cases), stderr.String())
		}
		var res struct {
			Dims   []int     `json:"dims"`
			Splade []float64 `json:"splade"`
		}
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		want := wants[i]
		if len(res.Splade) != len(want) {
			t.Fatalf("%s: ORT output dims %v (%d values), want %d", c, res.Dims, len(res.Splade), len(want))
		}
		var maxErr, maxW float64
		nz := 0
		for k, w := range want {
			maxErr = max(maxErr, math.Abs(res.Splade[k]-float64(w)))
			maxW = max(maxW, math.Abs(float64(w)))
			if w > 0 {
				nz++
			}
		}
		t.Logf("%s: max |ORT − Go| = %.3g, largest weight %.3g, relative %.3g, %d non-zeros", c, maxErr, maxW, maxErr/maxW, nz)
		if nz == 0 {
			t.Errorf("%s: Go vectors are all zero; the comparison would prove nothing", c)
		}
		if maxErr > 1e-4*maxW {
			t.Errorf("%s: max |ORT − Go| = %g > 1e-4 × %g", c, maxErr, maxW)
		}
	}
}
