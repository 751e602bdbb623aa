package contactapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/contact-sync/contact-sync/internal/contact"
)

// DefaultPathTemplate is the documented path of Update Contact. The vendor
// also documents "/engagement/contacts/{contact_id}".
const DefaultPathTemplate = "/contact/{contact_id}/"

// contactIDPlaceholder marks the path segment that carries the contact_id.
const contactIDPlaceholder = "{contact_id}"

// ErrInvalidPathTemplate is returned by New, wrapped with the template, when
// Options.PathTemplate does not start with "/", does not contain
// {contact_id} exactly once as a whole path segment, or contains another
// brace, "?" or "#".
var ErrInvalidPathTemplate = errors.New("invalid path template")

// Options configures a Server. The zero value serves DefaultPathTemplate
// without a token, uniqueness check or latency, and keeps the request log.
type Options struct {
	// PathTemplate is the path of Update Contact, where {contact_id} stands
	// for one path segment. The empty string means DefaultPathTemplate.
	PathTemplate string

	// Token is the bearer token that every request must carry. The empty
	// string turns the check off. SetToken changes it while the server runs.
	Token string

	// UniqueEmail rejects a PUT that sets an email held by another contact,
	// as the API does when the platform enforces unique emails.
	UniqueEmail bool

	// Latency is added to every request before the response. Zero adds
	// none. A request whose client goes away during it gets no response.
	Latency time.Duration

	// NoRequestLog turns the request log off, for benchmarks and long demo
	// runs: the log keeps every body for the life of the server. Without
	// the log, Requests returns nil and MaxPerWindow returns 0.
	NoRequestLog bool
}

// Server is the in-memory contact API. Create it with New; it serves HTTP
// as an http.Handler, directly or through Listen. All methods are safe for
// concurrent use.
type Server struct {
	pathPrefix  string
	pathSuffix  string
	uniqueEmail bool
	latency     time.Duration
	logRequests bool

	token atomic.Pointer[string]
	fault atomic.Pointer[FaultFunc]

	// contacts maps a canonical contact_id to its *record. Records are
	// created on the first request for an id, known or not, and never
	// removed, so that attempts and in-flight requests are counted for
	// unknown contacts too.
	contacts sync.Map

	// emailMu guards emailOwners and is taken before any record's mu.
	emailMu     sync.Mutex
	emailOwners map[string]string

	counters counters

	// seq numbers the PUTs on the contact path. While the log is on, it
	// is incremented under logMu, so that log[i] is the request with Seq
	// i+1.
	seq   atomic.Int64
	logMu sync.Mutex
	log   []Request
}

// New returns a Server configured by opts, with no contacts. It returns an
// error wrapping ErrInvalidPathTemplate when opts.PathTemplate is invalid.
func New(opts Options) (*Server, error) {
	template := opts.PathTemplate
	if template == "" {
		template = DefaultPathTemplate
	}
	prefix, suffix, err := splitPathTemplate(template)
	if err != nil {
		return nil, err
	}

	s := &Server{
		pathPrefix:  prefix,
		pathSuffix:  suffix,
		uniqueEmail: opts.UniqueEmail,
		latency:     opts.Latency,
		logRequests: !opts.NoRequestLog,
		emailOwners: make(map[string]string),
	}
	s.SetToken(opts.Token)
	return s, nil
}

func splitPathTemplate(template string) (prefix, suffix string, err error) {
	if !strings.HasPrefix(template, "/") {
		return "", "", fmt.Errorf("path template %q does not start with \"/\": %w", template, ErrInvalidPathTemplate)
	}
	if strings.Count(template, contactIDPlaceholder) != 1 {
		return "", "", fmt.Errorf("path template %q must contain %s exactly once: %w", template, contactIDPlaceholder, ErrInvalidPathTemplate)
	}

	prefix, suffix, _ = strings.Cut(template, contactIDPlaceholder)
	if !strings.HasSuffix(prefix, "/") || (suffix != "" && !strings.HasPrefix(suffix, "/")) {
		return "", "", fmt.Errorf("path template %q must have %s as a whole path segment: %w", template, contactIDPlaceholder, ErrInvalidPathTemplate)
	}
	if strings.ContainsAny(prefix+suffix, "{}?#") {
		return "", "", fmt.Errorf("path template %q contains a brace, \"?\" or \"#\" outside %s: %w", template, contactIDPlaceholder, ErrInvalidPathTemplate)
	}
	return prefix, suffix, nil
}

// SetToken sets the bearer token that later requests must carry; the empty
// string turns the check off. Requests already past the check keep going.
func (s *Server) SetToken(token string) {
	s.token.Store(&token)
}

// ServeHTTP responds to one request as the contact API does. A PUT on the
// contact path goes through Latency, then any injected fault, then checks of
// the token, the contact's existence, Content-Type, the body and the email
// uniqueness, in that order. The vendor does not document the order of its
// checks. This one checks the token first, so that a client without it
// learns nothing about which contacts exist.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.counters.requests.Add(1)

	rawID, onPath := s.matchPath(r.URL.Path)
	if !onPath || r.Method != http.MethodPut {
		s.serveNoRoute(w, r, onPath)
		return
	}

	id, err := contact.ParseID(rawID)
	if err != nil {
		seq := s.logArrival(rawID)
		status := s.serveBadPath(w, r, rawID)
		s.logResponse(seq, nil, status)
		return
	}

	rec := s.record(id)
	seq := s.logArrival(id)
	s.enter(rec)
	var body []byte
	status := 0
	defer func() {
		// Deferred so that a reset connection, which aborts the handler
		// with a panic when it cannot hijack, is still counted and logged.
		s.leave(rec)
		s.logResponse(seq, body, status)
	}()

	body, status = s.serveUpdate(w, r, rec, rawID, seq)
}

// matchPath returns the contact_id segment of a path that matches the
// template. The segment must be non-empty and contain no "/".
func (s *Server) matchPath(path string) (rawID string, ok bool) {
	if len(path) <= len(s.pathPrefix)+len(s.pathSuffix) ||
		!strings.HasPrefix(path, s.pathPrefix) || !strings.HasSuffix(path, s.pathSuffix) {
		return "", false
	}

	rawID = path[len(s.pathPrefix) : len(path)-len(s.pathSuffix)]
	if strings.Contains(rawID, "/") {
		return "", false
	}
	return rawID, true
}

// serveNoRoute responds 405 to another method on the contact path and 404
// for any other path.
func (s *Server) serveNoRoute(w http.ResponseWriter, r *http.Request, onPath bool) {
	if !sleepContext(r.Context(), s.latency) {
		s.counters.canceled.Add(1)
		return
	}

	s.counters.noRoute.Add(1)
	if onPath {
		w.Header().Set("Allow", http.MethodPut)
		writeJSON(w, http.StatusMethodNotAllowed, detailBody(fmt.Sprintf("Method %q not allowed.", r.Method)))
		return
	}
	writeJSON(w, http.StatusNotFound, bodyNotFound)
}

// serveBadPath responds to a contact_id that is not a UUID as the API does
// to an unknown contact, and counts it in BadPaths because the worker must
// never send one. Faults are not injected into such requests.
func (s *Server) serveBadPath(w http.ResponseWriter, r *http.Request, rawID string) int {
	s.counters.badPaths.Add(1)
	if !sleepContext(r.Context(), s.latency) {
		s.counters.canceled.Add(1)
		return 0
	}

	if !s.authorized(r) {
		return s.writeUnauthorized(w)
	}

	s.counters.notFound.Add(1)
	writeJSON(w, http.StatusBadRequest, contactNotFoundBody(rawID))
	return http.StatusBadRequest
}

// serveUpdate responds to a PUT for a contact_id that is a UUID. It returns
// the body it read and the status it sent, or 0 when it sent no response.
func (s *Server) serveUpdate(w http.ResponseWriter, r *http.Request, rec *record, rawID string, seq int64) ([]byte, int) {
	attempt := rec.attempts.Add(1)

	body, readErr := readBody(r)
	if readErr != nil && !errors.Is(readErr, errBodyTooLarge) {
		// The client went away or broke the body off, so no response can
		// reach it.
		s.counters.canceled.Add(1)
		return body, 0
	}

	if !sleepContext(r.Context(), s.latency) {
		s.counters.canceled.Add(1)
		return body, 0
	}

	faultRequest := FaultRequest{ContactID: rec.id, Attempt: attempt, Seq: seq, Body: body}
	if status, finished := s.injectFault(w, r, faultRequest); finished {
		return body, status
	}

	return body, s.serveValidated(w, r, rec, rawID, body, readErr)
}

// serveValidated runs the API's own checks, applies the update when they
// pass, and returns the status it sent.
func (s *Server) serveValidated(w http.ResponseWriter, r *http.Request, rec *record, rawID string, body []byte, readErr error) int {
	if !s.authorized(r) {
		return s.writeUnauthorized(w)
	}

	if !rec.known.Load() {
		s.counters.notFound.Add(1)
		return writeJSON(w, http.StatusBadRequest, contactNotFoundBody(rawID))
	}

	if !isJSONContentType(r.Header.Get("Content-Type")) {
		s.counters.unsupportedMediaType.Add(1)
		return writeJSON(w, http.StatusUnsupportedMediaType, bodyUnsupportedMediaType)
	}

	changes, err := decodeBody(body, readErr)
	if err != nil {
		s.counters.rejected.Add(1)
		return writeJSON(w, http.StatusBadRequest, detailListBody(err.Error()))
	}

	if err := s.update(rec, &changes); err != nil {
		s.counters.rejected.Add(1)
		return writeJSON(w, http.StatusBadRequest, bodyEmailTaken)
	}

	s.counters.updated.Add(1)
	return writeJSON(w, http.StatusOK, bodyUpdated)
}

// sleepContext waits for d, and reports false when ctx ends first.
func sleepContext(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}

	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
