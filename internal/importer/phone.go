package importer

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// extensionPattern splits a phone number from a trailing extension written
// as " x371", " ext. 371", " #371" or ";ext=371", case-insensitively.
var extensionPattern = regexp.MustCompile(`(?i)^(.*?)\s*(?:x|ext\.?|extension|#|;ext=)\s*(\d{1,10})$`)

// NormalizePhone writes a phone number in E.164 ("+14152933313"), with an
// extension in the RFC 3966 form ";ext=371" appended when there is one.
//
// The number may contain digits, spaces, dots, hyphens and parentheses, and
// may start with "+". A number with "+" already carries its country code.
// Without "+", countryCode (for example 1 for the North American Numbering
// Plan) is prepended. For countryCode 1, the number must be 10 digits, or 11
// digits starting with 1, whose area code and exchange start with 2 to 9.
// So "415.293.3313", "(415) 293-3313", "1-415-293-3313" and
// "415-293-3313 x371" are all accepted. For other country codes one leading
// trunk "0" is dropped, and only the length is checked.
//
// Errors wrap ErrInvalidPhone and never contain the number, which is
// personal data.
func NormalizePhone(phone string, countryCode int) (string, error) {
	if countryCode < 1 || countryCode > 999 {
		return "", fmt.Errorf("%w: country code %d is not 1 to 999", ErrInvalidPhone, countryCode)
	}

	number := strings.TrimSpace(phone)
	extension := ""
	if match := extensionPattern.FindStringSubmatch(number); match != nil {
		number, extension = match[1], match[2]
	}

	digits, international, err := phoneDigits(number)
	if err != nil {
		return "", err
	}

	e164, err := toE164(digits, international, strconv.Itoa(countryCode))
	if err != nil {
		return "", err
	}

	if extension != "" {
		return "+" + e164 + ";ext=" + extension, nil
	}
	return "+" + e164, nil
}

// phoneDigits returns the digits of a number written with separators, and
// whether it started with "+".
func phoneDigits(number string) (digits string, international bool, err error) {
	if number == "" {
		return "", false, fmt.Errorf("%w: empty", ErrInvalidPhone)
	}

	rest, international := strings.CutPrefix(number, "+")
	var builder strings.Builder
	for _, r := range rest {
		switch {
		case r >= '0' && r <= '9':
			builder.WriteRune(r)
		case r == ' ' || r == '.' || r == '-' || r == '(' || r == ')':
		default:
			return "", false, fmt.Errorf("%w: contains a character that is not a digit, space, dot, hyphen or parenthesis", ErrInvalidPhone)
		}
	}
	return builder.String(), international, nil
}

// toE164 returns the E.164 digits without "+".
func toE164(digits string, international bool, countryCode string) (string, error) {
	var e164 string
	switch {
	case international:
		e164 = digits
	case countryCode == "1" && len(digits) == 11 && digits[0] == '1':
		e164 = digits
	case countryCode == "1":
		if len(digits) != 10 {
			return "", fmt.Errorf("%w: has %d digits, expected 10, or 11 starting with 1", ErrInvalidPhone, len(digits))
		}
		e164 = "1" + digits
	default:
		e164 = countryCode + strings.TrimPrefix(digits, "0")
	}

	// E.164 allows at most 15 digits; fewer than 8 is no full number in
	// any numbering plan.
	if len(e164) < 8 || len(e164) > 15 || e164[0] == '0' {
		return "", fmt.Errorf("%w: has %d digits with the country code, expected 8 to 15 not starting with 0", ErrInvalidPhone, len(e164))
	}

	if e164[0] == '1' {
		return e164, checkNANP(e164)
	}
	return e164, nil
}

// checkNANP checks a North American number: 1, then a 3-digit area code
// and a 3-digit exchange that each start with 2 to 9, then 4 digits.
func checkNANP(e164 string) error {
	if len(e164) != 11 {
		return fmt.Errorf("%w: has %d digits after country code 1, expected 10", ErrInvalidPhone, len(e164)-1)
	}
	if e164[1] < '2' {
		return fmt.Errorf("%w: area code starts with 0 or 1, expected 2 to 9", ErrInvalidPhone)
	}
	if e164[4] < '2' {
		return fmt.Errorf("%w: exchange code starts with 0 or 1, expected 2 to 9", ErrInvalidPhone)
	}
	return nil
}
