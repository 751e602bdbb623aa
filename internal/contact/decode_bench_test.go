package contact_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/contact-sync/contact-sync/internal/contact"
	"github.com/contact-sync/contact-sync/internal/eventgen"
)

// BenchmarkDecodeEvent decodes typical events from eventgen: a random subset
// of fields, with nulls, service points and dynamic fields. One op is one
// event, so ns/op, B/op and allocs/op are per event.
func BenchmarkDecodeEvent(b *testing.B) {
	events := eventgen.New(1).Events(eventgen.ContactIDs(1000), 1000)
	bodies := make([][]byte, len(events))
	totalBytes := 0
	for i, event := range events {
		bodies[i] = event.Body
		totalBytes += len(event.Body)
	}
	b.SetBytes(int64(totalBytes / len(bodies)))
	b.ReportAllocs()

	i := 0
	for b.Loop() {
		if _, err := contact.DecodeEvent(bodies[i]); err != nil {
			b.Fatalf("DecodeEvent of event %d: %v", i, err)
		}
		i = (i + 1) % len(bodies)
	}
}

// notValidJSON starts the error DecodeChanges returns for a body that is
// not valid JSON.
const notValidJSON = "changes is not valid JSON"

// FuzzDecodeChangesValidity checks that DecodeChanges reports invalid JSON
// exactly when encoding/json does, because DecodeChanges validates bodies
// with its own scanner.
func FuzzDecodeChangesValidity(f *testing.F) {
	for _, body := range []string{
		`{}`,
		` {"name" : "a\"\\\/\b\f\n\r\t\u00e9\uD800" , "x":[-0.5e+7, 1E-2, 0, true, false, null, {}, []]} `,
		`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":.5}`, `{"a":+1}`,
		`{"a":"\a"}`, `{"a":"\u12"}`, `{"a":"\u12G4"}`, "{\"a\":\"\x01\"}", "{\"a\":\"\x1f\"}", "{\"a\":\"\x7f\xff\"}",
		`{"a":tru}`, `{"a":nulll}`, `{"a":[1,]}`, `{"a":[,1]}`, `{"a":[1 2]}`, `{"a":{"b":1,}}`,
		`{"a" 1}`, `{"a":1 "b":2}`, `{a:1}`, `{"a":1}}`, `{"a":1} x`, "{\"a\":1}\xff",
		"\u00a0{\"name\":\"a\"}\u2003",
	} {
		f.Add([]byte(body))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := contact.DecodeChanges(data)
		reportedInvalid := err != nil && strings.HasPrefix(err.Error(), notValidJSON)

		// DecodeChanges trims Unicode spaces, which encoding/json rejects.
		valid := json.Valid(bytes.TrimSpace(data))
		if reportedInvalid == valid {
			t.Fatalf("json.Valid returns %v, but DecodeChanges returns %v", valid, err)
		}
	})
}

// TestDecodeChangesNestingLimit checks that DecodeChanges accepts the
// deepest nesting of arrays and objects that encoding/json accepts, 10000
// levels with the changes object counted, and rejects one more.
func TestDecodeChangesNestingLimit(t *testing.T) {
	const maxDepth = 10000

	cases := []struct {
		name   string
		nested func(depth int) string
	}{
		{"arrays", func(depth int) string {
			return strings.Repeat("[", depth) + strings.Repeat("]", depth)
		}},
		{"objects", func(depth int) string {
			return strings.Repeat(`{"a":`, depth-1) + "{}" + strings.Repeat("}", depth-1)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			atLimit := `{"dynamic_field_list":[{"key":"k","value":` + tc.nested(maxDepth-3) + `}]}`
			if !json.Valid([]byte(atLimit)) {
				t.Fatalf("test body at the limit is not valid for encoding/json")
			}
			changes, err := contact.DecodeChanges([]byte(atLimit))
			if err != nil {
				t.Fatalf("DecodeChanges rejected %d levels: %.200v", maxDepth, err)
			}
			if len(changes.DynamicFields) != 1 {
				t.Errorf("DecodeChanges returned %d dynamic fields, want 1", len(changes.DynamicFields))
			}

			overLimit := `{"dynamic_field_list":[{"key":"k","value":` + tc.nested(maxDepth-2) + `}]}`
			if json.Valid([]byte(overLimit)) {
				t.Fatalf("test body over the limit is valid for encoding/json")
			}
			_, err = contact.DecodeChanges([]byte(overLimit))
			if err == nil || !strings.HasPrefix(err.Error(), notValidJSON) {
				t.Errorf("DecodeChanges of %d levels returned %.200v, want an error starting %q", maxDepth+1, err, notValidJSON)
			}
		})
	}
}
