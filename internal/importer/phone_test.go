package importer

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizePhoneExportFormats(t *testing.T) {
	// The 16 formats of the Atomic CRM export: four layouts, each bare and
	// with a 3-, 4- or 5-digit extension.
	tests := []struct {
		phone string
		want  string
	}{
		{"415.293.3313", "+14152933313"},
		{"415.293.3313 x371", "+14152933313;ext=371"},
		{"415.293.3313 x4781", "+14152933313;ext=4781"},
		{"415.293.3313 x15317", "+14152933313;ext=15317"},
		{"(415) 293-3313", "+14152933313"},
		{"(415) 293-3313 x371", "+14152933313;ext=371"},
		{"(415) 293-3313 x4781", "+14152933313;ext=4781"},
		{"(415) 293-3313 x15317", "+14152933313;ext=15317"},
		{"1-955-371-0847", "+19553710847"},
		{"1-955-371-0847 x371", "+19553710847;ext=371"},
		{"1-955-371-0847 x4781", "+19553710847;ext=4781"},
		{"1-955-371-0847 x15317", "+19553710847;ext=15317"},
		{"980-494-7423", "+19804947423"},
		{"980-494-7423 x371", "+19804947423;ext=371"},
		{"980-494-7423 x4781", "+19804947423;ext=4781"},
		{"980-494-7423 x15317", "+19804947423;ext=15317"},
	}
	for _, test := range tests {
		got, err := NormalizePhone(test.phone, 1)
		if err != nil {
			t.Errorf("NormalizePhone(%q, 1): %v", test.phone, err)
			continue
		}
		if got != test.want {
			t.Errorf("NormalizePhone(%q, 1) = %q, want %q", test.phone, got, test.want)
		}
	}
}

func TestNormalizePhoneOtherForms(t *testing.T) {
	tests := []struct {
		phone       string
		countryCode int
		want        string
	}{
		{"  4152933313  ", 1, "+14152933313"},
		{"+1 415 293 3313", 1, "+14152933313"},
		{"415-293-3313 ext. 12", 1, "+14152933313;ext=12"},
		{"415-293-3313 EXT 12", 1, "+14152933313;ext=12"},
		{"415-293-3313#12", 1, "+14152933313;ext=12"},
		{"+14152933313;ext=12", 1, "+14152933313;ext=12"},
		{"+44 20 7946 0958", 1, "+442079460958"},
		{"020 7946 0958", 44, "+442079460958"},
		{"030 1234567", 49, "+49301234567"},
	}
	for _, test := range tests {
		got, err := NormalizePhone(test.phone, test.countryCode)
		if err != nil {
			t.Errorf("NormalizePhone(%q, %d): %v", test.phone, test.countryCode, err)
			continue
		}
		if got != test.want {
			t.Errorf("NormalizePhone(%q, %d) = %q, want %q", test.phone, test.countryCode, got, test.want)
		}
	}
}

func TestNormalizePhoneInvalid(t *testing.T) {
	tests := []struct {
		phone       string
		countryCode int
	}{
		{"", 1},
		{"   ", 1},
		{"x371", 1},
		{"415-293-331", 1},               // 9 digits
		{"415-293-33133", 1},             // 11 digits not starting with 1
		{"2-415-293-3313", 1},            // 11 digits with a leading 2
		{"1-415-293-33134", 1},           // 12 digits
		{"(015) 293-3313", 1},            // area code starting with 0
		{"(415) 193-3313", 1},            // exchange starting with 1
		{"+1 415 293 331", 1},            // NANP number one digit short
		{"415-CALL-NOW", 1},              // letters
		{"415/293/3313", 1},              // slash
		{"+", 1},                         // sign only
		{"+1234567", 1},                  // too short for E.164
		{"+1234567890123456", 1},         // 16 digits
		{"415-293-3313 x", 1},            // extension without digits
		{"415-293-3313 x12345678901", 1}, // extension of 11 digits
		{"12345", 44},                    // too short for E.164
		{"4152933313", 0},                // invalid country code
		{"4152933313", 1000},             // invalid country code
	}
	for _, test := range tests {
		got, err := NormalizePhone(test.phone, test.countryCode)
		if err == nil {
			t.Errorf("NormalizePhone(%q, %d) = %q, want an error", test.phone, test.countryCode, got)
			continue
		}
		if !errors.Is(err, ErrInvalidPhone) {
			t.Errorf("NormalizePhone(%q, %d) error %v does not wrap ErrInvalidPhone", test.phone, test.countryCode, err)
		}
		if digits := strings.TrimSpace(test.phone); len(digits) > 3 && strings.Contains(err.Error(), digits) {
			t.Errorf("NormalizePhone(%q) error %q contains the number", test.phone, err)
		}
	}
}
