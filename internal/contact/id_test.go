package contact_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/contact-sync/contact-sync/internal/contact"
)

// maxErrorLength bounds every error message of the package, in bytes, so
// that an oversized input never becomes an oversized log line or header.
const maxErrorLength = 1024

func TestParseIDAccepts(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  string
	}{
		{"canonical", "0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5b-d9cb-469f-a165-70867728950e"},
		{"upper case", "0F8FAD5B-D9CB-469F-A165-70867728950E", "0f8fad5b-d9cb-469f-a165-70867728950e"},
		{"mixed case", "0f8FAD5b-d9Cb-469f-A165-70867728950e", "0f8fad5b-d9cb-469f-a165-70867728950e"},
		{"max UUID", "ffffffff-ffff-ffff-ffff-ffffffffffff", "ffffffff-ffff-ffff-ffff-ffffffffffff"},
		{"almost nil", "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000001"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := contact.ParseID(tc.input)
			if err != nil {
				t.Fatalf("ParseID(%q) error: %v", tc.input, err)
			}
			if got != tc.want {
				t.Errorf("ParseID(%q) = %q, want %q", tc.input, got, tc.want)
			}
		})
	}
}

func TestParseIDRejects(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  string
	}{
		{"empty", "", "contact_id is empty"},
		{"path traversal", "../x", "is not a UUID"},
		{"slash", "a/b", "is not a UUID"},
		{"escaped slash", "%2F", "is not a UUID"},
		{"query", "?x=1", "is not a UUID"},
		{"braced", "{0f8fad5b-d9cb-469f-a165-70867728950e}", "is not a UUID"},
		{"urn prefix", "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e", "is not a UUID"},
		{"no hyphens", "0f8fad5bd9cb469fa16570867728950e", "is not a UUID"},
		{"nil UUID", "00000000-0000-0000-0000-000000000000", "nil UUID"},
		{"non-hex character", "0f8fad5b-d9cb-469f-a165-70867728950g", "is not a UUID"},
		{"hyphen moved", "0f8fad5bd-9cb-469f-a165-70867728950e", "is not a UUID"},
		{"slash in 36 chars", "0f8fad5b-d9cb-469f-a165-7086772895/e", "is not a UUID"},
		{"dot in 36 chars", "0f8fad5b-d9cb-469f-a165-7086772895.e", "is not a UUID"},
		{"space in 36 chars", "0f8fad5b-d9cb-469f-a165-70867728950 ", "is not a UUID"},
		{"non-ASCII in 36 bytes", "0f8fad5b-d9cb-469f-a165-708677289\u00e9e", "is not a UUID"},
		{"Kelvin sign", "0f8fad5b-d9cb-469f-a165-708677289\u212a", "is not a UUID"},
		{"NUL byte", "0f8fad5b-d9cb-469f-a165-70867728950\x00", "is not a UUID"},
		{"1 MB", strings.Repeat("a", 1<<20), "is not a UUID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := contact.ParseID(tc.input)
			if err == nil {
				t.Fatalf("ParseID accepted %q as %q", shorten(tc.input), got)
			}
			if !errors.Is(err, contact.ErrInvalidEvent) {
				t.Errorf("ParseID error %q does not wrap ErrInvalidEvent", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseID error %q does not contain %q", shorten(err.Error()), tc.want)
			}
			if len(err.Error()) > maxErrorLength {
				t.Errorf("ParseID error is %d bytes, want at most %d", len(err.Error()), maxErrorLength)
			}
			if got != "" {
				t.Errorf("ParseID returned %q with an error, want \"\"", got)
			}
		})
	}
}

// FuzzParseID checks that an accepted contact_id is always the lower-cased
// input in the 8-4-4-4-12 layout, and that every error is short.
func FuzzParseID(f *testing.F) {
	for _, seed := range []string{
		"", "0f8fad5b-d9cb-469f-a165-70867728950e", "0F8FAD5B-D9CB-469F-A165-70867728950E",
		"00000000-0000-0000-0000-000000000000", "../x", "0f8fad5b-d9cb-469f-a165-708677289\u212a",
		strings.Repeat("\xff", 64), strings.Repeat("\x00", 1<<20),
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, input string) {
		got, err := contact.ParseID(input)
		if err != nil {
			if !errors.Is(err, contact.ErrInvalidEvent) {
				t.Fatalf("ParseID error %q does not wrap ErrInvalidEvent", err)
			}
			if len(err.Error()) > maxErrorLength {
				t.Fatalf("ParseID error is %d bytes, want at most %d", len(err.Error()), maxErrorLength)
			}
			return
		}

		if got != strings.ToLower(input) {
			t.Fatalf("ParseID(%q) = %q, want the lower-cased input", input, got)
		}
		if !isCanonicalUUID(got) {
			t.Fatalf("ParseID(%q) = %q, not a canonical UUID", input, got)
		}
		if got == "00000000-0000-0000-0000-000000000000" {
			t.Fatalf("ParseID accepted the nil UUID")
		}
	})
}

func isCanonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// shorten keeps test failure messages readable when an input is huge.
func shorten(s string) string {
	if len(s) <= 80 {
		return s
	}
	return s[:80] + "..."
}
