package config

import (
	"reflect"
	"testing"
)

// fill sets every field of the struct v points to a value of its own
// (field i: i+1, "s<i>", true), so that a field a conversion forgets is
// left at its zero value.
func fill(t *testing.T, v any) {
	t.Helper()
	s := reflect.ValueOf(v).Elem()
	for i := range s.NumField() {
		f := s.Field(i)
		switch f.Kind() {
		case reflect.Int:
			f.SetInt(int64(i + 1))
		case reflect.Uint64:
			f.SetUint(uint64(i + 1))
		case reflect.Float64:
			f.SetFloat(float64(i+1) / 8)
		case reflect.String:
			f.SetString("s" + string(rune('a'+i)))
		case reflect.Bool:
			f.SetBool(true)
		default:
			t.Fatalf("field %s: kind %s not filled", s.Type().Field(i).Name, f.Kind())
		}
	}
}

// TestPretrainSettings: every field of section pretrain reaches
// pretrain.Settings under its own name, and Settings has no other field.
func TestPretrainSettings(t *testing.T) {
	var p Pretrain
	fill(t, &p)
	got := reflect.ValueOf(p.Settings())
	want := reflect.ValueOf(p)
	if got.NumField() != want.NumField() {
		t.Fatalf("pretrain.Settings has %d fields, section pretrain %d", got.NumField(), want.NumField())
	}
	for i := range want.NumField() {
		name := want.Type().Field(i).Name
		g := got.FieldByName(name)
		if !g.IsValid() || !reflect.DeepEqual(g.Interface(), want.Field(i).Interface()) {
			t.Errorf("pretrain.%s: %v, want %v", name, g, want.Field(i))
		}
	}
}
