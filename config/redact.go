package config

import (
	"net/url"
	"strings"
)

// redactURLs strips passwords from a comma-separated list of URLs.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, part := range parts {
		parsed, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			parts[i] = "(unparsable URL)"
			continue
		}
		parts[i] = parsed.Redacted()
	}
	return strings.Join(parts, ",")
}
