package nn

import (
	"reflect"
	"testing"
)

// Any config.json either fails to parse or yields a Config that passes
// Validate and survives MarshalHF → ParseConfig unchanged.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"model_type":"bert","vocab_size":30,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16}`))
	f.Add([]byte(`{"model_type":"distilbert","dim":12,"n_heads":3,"n_layers":2,"hidden_dim":20,"vocab_size":10}`))
	f.Add([]byte(`{"model_type":"bert","position_embedding_type":"relative_key"}`))
	f.Add([]byte(`{"model_type":"bert","hidden_size":-4}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config fails Validate: %v", err)
		}
		b, err := c.MarshalHF()
		if err != nil {
			t.Fatal(err)
		}
		c2, err := ParseConfig(b)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, b)
		}
		c.raw, c2.raw = nil, nil
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, c2)
		}
	})
}
