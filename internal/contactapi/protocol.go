package contactapi

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/contact-sync/contact-sync/internal/contact"
)

// MaxBodySize is the largest PUT body, in bytes, that the server reads. A
// larger body gets a 400 response with a list detail. The vendor does not
// document its limit; 1 MiB is far above any contact update.
const MaxBodySize = 1 << 20

// errBodyTooLarge is returned by readBody for a body over MaxBodySize.
var errBodyTooLarge = fmt.Errorf("body is larger than %d bytes", MaxBodySize)

// Fixed response bodies, written as the API writes them.
var (
	bodyUpdated              = []byte(`{"detail": "Contact updated successfully"}`)
	bodyInvalidToken         = []byte(`{"detail": "Invalid token."}`)
	bodyUnsupportedMediaType = []byte(`{"detail": "Unsupported media type."}`)
	bodyNotFound             = []byte(`{"detail": "Not found."}`)
	bodyEmailTaken           = []byte(`{"detail": ["Contact with this email already exists."]}`)
)

// jsonContentType is shared by every response, which is safe because
// net/http only reads it.
var jsonContentType = []string{"application/json"}

// readBody reads at most MaxBodySize bytes of the request body. It returns
// errBodyTooLarge for a longer body, and the read error when the client
// breaks the body off.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
	if err != nil {
		return body, fmt.Errorf("read request body: %w", err)
	}
	if len(body) > MaxBodySize {
		return body[:MaxBodySize], errBodyTooLarge
	}
	return body, nil
}

// decodeBody decodes a PUT body into a partial update. The error message is
// the one the API returns in its detail list.
func decodeBody(body []byte, readErr error) (contact.Changes, error) {
	if readErr != nil {
		return contact.Changes{}, readErr
	}

	// encoding/json replaces invalid UTF-8 with U+FFFD without an error,
	// which would store changed data; the API rejects such a body.
	if !utf8.Valid(body) {
		return contact.Changes{}, errors.New("body is not valid UTF-8")
	}

	changes, err := contact.DecodeChanges(body)
	if err != nil {
		// The suffix names the Go sentinel, which means nothing to a client.
		message := strings.TrimSuffix(err.Error(), ": "+contact.ErrInvalidEvent.Error())
		return contact.Changes{}, errors.New(message)
	}
	return changes, nil
}

// authorized reports whether the request carries the current token as
// "Authorization: Bearer <token>", or no token is set. The scheme is
// matched without regard to case, as RFC 9110 section 11.1 specifies.
func (s *Server) authorized(r *http.Request) bool {
	token := *s.token.Load()
	if token == "" {
		return true
	}

	fields := strings.Fields(r.Header.Get("Authorization"))
	if len(fields) != 2 || !strings.EqualFold(fields[0], "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(fields[1]), []byte(token)) == 1
}

// writeUnauthorized counts and writes the 401 response.
func (s *Server) writeUnauthorized(w http.ResponseWriter) int {
	s.counters.unauthorized.Add(1)
	w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
	return writeJSON(w, http.StatusUnauthorized, bodyInvalidToken)
}

// isJSONContentType reports whether a Content-Type header names
// application/json, with or without parameters such as charset.
func isJSONContentType(header string) bool {
	if header == "application/json" {
		return true
	}
	mediaType, _, err := mime.ParseMediaType(header)
	return err == nil && mediaType == "application/json"
}

// writeJSON writes an application/json response and returns its status.
func writeJSON(w http.ResponseWriter, status int, body []byte) int {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(body) // a failed write means the client went away
	return status
}

// detailBody returns {"detail": "<message>"}.
func detailBody(message string) []byte {
	return marshalDetail(message)
}

// detailListBody returns {"detail": ["<message>"]}, the form the API uses
// for validation errors.
func detailListBody(message string) []byte {
	return marshalDetail([]string{message})
}

// contactNotFoundBody returns the API's response body for an unknown contact,
// naming the contact_id as the path spelled it.
func contactNotFoundBody(rawID string) []byte {
	return detailBody(fmt.Sprintf("Contact (%s) not found", rawID))
}

func marshalDetail(detail any) []byte {
	var buf bytes.Buffer
	encoder := json.NewEncoder(&buf)
	encoder.SetEscapeHTML(false)
	_ = encoder.Encode(struct {
		Detail any `json:"detail"`
	}{detail}) // strings and string lists always encode
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
