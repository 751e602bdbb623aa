package contactapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contact-sync/contact-sync/internal/contact"
)

const (
	contactA     = "0b9e8f3c-3a55-4c2e-9d8c-2f6f0f4b1a01"
	contactB     = "6f1d2c3b-4a59-4e7d-8c6b-5a4f3e2d1c02"
	unknownID    = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c03"
	entityID     = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e05"
	servicePoint = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f06"
	testToken    = "test-token-1"
)

// response is an HTTP response with its body read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// startServer serves a new Server on 127.0.0.1 until the test ends.
func startServer(t *testing.T, opts Options, ids ...string) (*Server, string) {
	t.Helper()

	server, err := New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	if err := server.AddContacts(ids...); err != nil {
		t.Fatalf("AddContacts: %v", err)
	}

	baseURL, shutdown, err := server.Listen("")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return server, baseURL
}

func newClient(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()

	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	return &http.Client{Transport: transport, Timeout: timeout}
}

func contactURL(baseURL, id string) string {
	return baseURL + "/contact/" + id + "/"
}

// newPut returns a PUT with a JSON body and, unless token is empty, a
// bearer token.
func newPut(t *testing.T, url, token, body string) *http.Request {
	t.Helper()

	request, err := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request for %s: %v", url, err)
	}
	request.Header.Set("Content-Type", "application/json")
	if token != "" {
		request.Header.Set("Authorization", "Bearer "+token)
	}
	return request
}

func send(client *http.Client, request *http.Request) (response, error) {
	resp, err := client.Do(request)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("read response body: %w", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

func mustSend(t *testing.T, client *http.Client, request *http.Request) response {
	t.Helper()

	resp, err := send(client, request)
	if err != nil {
		t.Fatalf("%s %s: %v", request.Method, request.URL, err)
	}
	return resp
}

// put sends a PUT with the test token and returns the response.
func put(t *testing.T, client *http.Client, url, body string) response {
	t.Helper()
	return mustSend(t, client, newPut(t, url, testToken, body))
}

// expectDetail checks the status, the Content-Type and a string detail.
func expectDetail(t *testing.T, resp response, status int, detail string) {
	t.Helper()

	if resp.status != status {
		t.Errorf("status = %d, want %d (body %s)", resp.status, status, resp.body)
	}
	if got := resp.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	var decoded struct {
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(resp.body, &decoded); err != nil {
		t.Fatalf("response body %s is not {\"detail\": string}: %v", resp.body, err)
	}
	if decoded.Detail != detail {
		t.Errorf("detail = %q, want %q", decoded.Detail, detail)
	}
}

// detailList checks a 400 response with a detail list and returns the list.
func detailList(t *testing.T, resp response) []string {
	t.Helper()

	if resp.status != http.StatusBadRequest {
		t.Errorf("status = %d, want 400 (body %s)", resp.status, resp.body)
	}
	var decoded struct {
		Detail []string `json:"detail"`
	}
	if err := json.Unmarshal(resp.body, &decoded); err != nil {
		t.Fatalf("response body %s is not {\"detail\": [string]}: %v", resp.body, err)
	}
	if len(decoded.Detail) != 1 || decoded.Detail[0] == "" {
		t.Errorf("detail = %q, want one non-empty message", decoded.Detail)
	}
	return decoded.Detail
}

func mustContact(t *testing.T, server *Server, id string) contact.State {
	t.Helper()

	state, ok := server.Contact(id)
	if !ok {
		t.Fatalf("Contact(%s) not found", id)
	}
	return state
}

// waitFor polls condition every few milliseconds for up to 5 seconds.
func waitFor(t *testing.T, what string, condition func() bool) {
	t.Helper()

	deadline := time.Now().Add(5 * time.Second)
	ticker := time.NewTicker(5 * time.Millisecond)
	defer ticker.Stop()
	for !condition() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 5s waiting for %s", what)
		}
		<-ticker.C
	}
}

func TestPutAppliesAndClearsFields(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 10*time.Second)

	body := `{"name": "Ada", "surname": "Lovelace", "entity_id": "` + entityID + `",
		"email": "ada@example.com", "phone": "+44 20 7946 0000", "has_customer_portal": true,
		"service_point_id_list": ["` + servicePoint + `"]}`
	expectDetail(t, put(t, client, contactURL(baseURL, contactA), body), http.StatusOK, "Contact updated successfully")

	state := mustContact(t, server, contactA)
	if state.Name != contact.SetTo("Ada") || state.Surname != contact.SetTo("Lovelace") {
		t.Errorf("name, surname = %+v, %+v, want Ada Lovelace", state.Name, state.Surname)
	}
	if state.EntityID != contact.SetTo(entityID) {
		t.Errorf("entity_id = %+v, want %s", state.EntityID, entityID)
	}
	if state.Email != contact.SetTo("ada@example.com") || state.Phone != contact.SetTo("+44 20 7946 0000") {
		t.Errorf("email, phone = %+v, %+v, want the values sent", state.Email, state.Phone)
	}
	if state.HasCustomerPortal != contact.SetTo(true) {
		t.Errorf("has_customer_portal = %+v, want true", state.HasCustomerPortal)
	}
	if got := state.ServicePointIDs.Value; len(got) != 1 || got[0] != servicePoint {
		t.Errorf("service_point_id_list = %v, want [%s]", got, servicePoint)
	}

	clearing := `{"name": null, "phone": null, "service_point_id_list": null}`
	expectDetail(t, put(t, client, contactURL(baseURL, contactA), clearing), http.StatusOK, "Contact updated successfully")

	state = mustContact(t, server, contactA)
	if !state.Name.Null || !state.Phone.Null || !state.ServicePointIDs.Null {
		t.Errorf("name, phone, service_point_id_list = %+v, %+v, %+v, want cleared", state.Name, state.Phone, state.ServicePointIDs)
	}
	if state.Surname != contact.SetTo("Lovelace") || state.Email != contact.SetTo("ada@example.com") {
		t.Errorf("surname, email = %+v, %+v, want unchanged", state.Surname, state.Email)
	}

	stats := server.Stats()
	if stats.Updated != 2 || stats.Requests != 2 {
		t.Errorf("Updated, Requests = %d, %d, want 2, 2", stats.Updated, stats.Requests)
	}
}

func TestPutMergesDynamicFields(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 10*time.Second)
	url := contactURL(baseURL, contactA)

	put(t, client, url, `{"dynamic_field_list": [{"key": "tier", "value": "gold"}, {"key": "visits", "value": 3}]}`)
	put(t, client, url, `{"dynamic_field_list": [{"key": "visits", "value": {"last": "2024-05-01"}}]}`)

	fields := mustContact(t, server, contactA).DynamicFields
	if got := string(fields["tier"]); got != `"gold"` {
		t.Errorf("tier = %s, want \"gold\" kept", got)
	}
	if got := string(fields["visits"]); got != `{"last":"2024-05-01"}` {
		t.Errorf("visits = %s, want the later value", got)
	}
	if len(fields) != 2 {
		t.Errorf("dynamic fields = %v, want 2 keys", fields)
	}

	put(t, client, url, `{"dynamic_field_list": null}`)
	if fields := mustContact(t, server, contactA).DynamicFields; len(fields) != 0 {
		t.Errorf("dynamic fields after null = %v, want none", fields)
	}
}

func TestUnknownContactReturns400(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 10*time.Second)

	resp := put(t, client, contactURL(baseURL, unknownID), `{"name": "Ada"}`)
	expectDetail(t, resp, http.StatusBadRequest, "Contact ("+unknownID+") not found")

	if _, ok := server.Contact(unknownID); ok {
		t.Errorf("Contact(%s) found after a PUT, want only added contacts to exist", unknownID)
	}
	if _, listed := server.Contacts()[unknownID]; listed {
		t.Errorf("Contacts() lists %s, want only added contacts", unknownID)
	}
	stats := server.Stats()
	if stats.NotFound != 1 || stats.BadPaths != 0 {
		t.Errorf("NotFound, BadPaths = %d, %d, want 1, 0", stats.NotFound, stats.BadPaths)
	}
}

func TestContactIDNotUUIDCountsBadPath(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 10*time.Second)

	resp := put(t, client, contactURL(baseURL, "not-a-uuid"), `{"name": "Ada"}`)
	expectDetail(t, resp, http.StatusBadRequest, "Contact (not-a-uuid) not found")

	withoutToken := newPut(t, contactURL(baseURL, "not-a-uuid"), "", `{"name": "Ada"}`)
	expectDetail(t, mustSend(t, client, withoutToken), http.StatusUnauthorized, "Invalid token.")

	stats := server.Stats()
	if stats.BadPaths != 2 || stats.NotFound != 1 || stats.Unauthorized != 1 {
		t.Errorf("BadPaths, NotFound, Unauthorized = %d, %d, %d, want 2, 1, 1", stats.BadPaths, stats.NotFound, stats.Unauthorized)
	}
	requests := server.Requests()
	if len(requests) != 2 || requests[0].ContactID != "not-a-uuid" || requests[0].Status != http.StatusBadRequest {
		t.Errorf("Requests() = %+v, want two entries for not-a-uuid, the first with status 400", requests)
	}
}

func TestInvalidBodyReturnsDetailList(t *testing.T) {
	cases := []struct {
		name        string
		body        string
		wantMessage string
	}{
		{"malformed JSON", `{"name": `, "not valid JSON"},
		{"wrong type", `{"name": 42}`, "name must be a string or null, got a number"},
		{"unknown field", `{"nickname": "Ada"}`, `unknown fields "nickname"`},
		{"entity_id not a UUID", `{"entity_id": "12"}`, "entity_id"},
		{"dynamic field without key", `{"dynamic_field_list": [{"value": 1}]}`, "has no key"},
		{"array body", `[]`, "not a JSON object"},
		{"invalid UTF-8", "{\"name\": \"\xff\"}", "not valid UTF-8"},
		{"too large", `{"name": "` + strings.Repeat("a", MaxBodySize) + `"}`, "larger than"},
	}

	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 10*time.Second)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			detail := detailList(t, put(t, client, contactURL(baseURL, contactA), tc.body))
			if len(detail) == 1 && !strings.Contains(detail[0], tc.wantMessage) {
				t.Errorf("detail = %q, want it to contain %q", detail[0], tc.wantMessage)
			}
			if len(detail) == 1 && strings.Contains(detail[0], contact.ErrInvalidEvent.Error()) {
				t.Errorf("detail = %q, want no Go sentinel text", detail[0])
			}
		})
	}

	if state := mustContact(t, server, contactA); state.Name.Set || state.EntityID.Set {
		t.Errorf("contact = %+v, want unchanged by rejected bodies", state)
	}
	if got := server.Stats().Rejected; got != int64(len(cases)) {
		t.Errorf("Rejected = %d, want %d", got, len(cases))
	}
}

func TestTokenRequired(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 10*time.Second)
	url := contactURL(baseURL, contactA)

	cases := []struct {
		name          string
		authorization string
	}{
		{"missing", ""},
		{"wrong token", "Bearer other-token"},
		{"wrong scheme", "Token " + testToken},
		{"no credentials", "Bearer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			request := newPut(t, url, "", `{"name": "Mallory"}`)
			if tc.authorization != "" {
				request.Header.Set("Authorization", tc.authorization)
			}
			resp := mustSend(t, client, request)
			expectDetail(t, resp, http.StatusUnauthorized, "Invalid token.")
			if resp.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 response has no WWW-Authenticate header")
			}
		})
	}

	lowerCaseScheme := newPut(t, url, "", `{"name": "Ada"}`)
	lowerCaseScheme.Header.Set("Authorization", "bearer "+testToken)
	expectDetail(t, mustSend(t, client, lowerCaseScheme), http.StatusOK, "Contact updated successfully")

	if state := mustContact(t, server, contactA); state.Name != contact.SetTo("Ada") {
		t.Errorf("name = %+v, want Ada and no change from unauthorized requests", state.Name)
	}
	if got := server.Stats().Unauthorized; got != int64(len(cases)) {
		t.Errorf("Unauthorized = %d, want %d", got, len(cases))
	}
}

func TestSetTokenRotates(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: "old-token"}, contactA)
	client := newClient(t, 10*time.Second)
	url := contactURL(baseURL, contactA)

	expectDetail(t, mustSend(t, client, newPut(t, url, "old-token", `{}`)), http.StatusOK, "Contact updated successfully")

	server.SetToken("new-token")
	expectDetail(t, mustSend(t, client, newPut(t, url, "old-token", `{}`)), http.StatusUnauthorized, "Invalid token.")
	expectDetail(t, mustSend(t, client, newPut(t, url, "new-token", `{}`)), http.StatusOK, "Contact updated successfully")

	server.SetToken("")
	expectDetail(t, mustSend(t, client, newPut(t, url, "", `{}`)), http.StatusOK, "Contact updated successfully")
}

func TestContentTypeMustBeJSON(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 10*time.Second)
	url := contactURL(baseURL, contactA)

	cases := []struct {
		contentType string
		wantStatus  int
	}{
		{"application/json; charset=utf-8", http.StatusOK},
		{"Application/JSON", http.StatusOK},
		{"text/plain", http.StatusUnsupportedMediaType},
		{"application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"", http.StatusUnsupportedMediaType},
	}
	for _, tc := range cases {
		request := newPut(t, url, testToken, `{"name": "Ada"}`)
		request.Header.Set("Content-Type", tc.contentType)
		resp := mustSend(t, client, request)
		if resp.status != tc.wantStatus {
			t.Errorf("Content-Type %q: status = %d, want %d", tc.contentType, resp.status, tc.wantStatus)
		}
		if tc.wantStatus == http.StatusUnsupportedMediaType {
			expectDetail(t, resp, tc.wantStatus, "Unsupported media type.")
		}
	}

	if got := server.Stats().UnsupportedMediaType; got != 3 {
		t.Errorf("UnsupportedMediaType = %d, want 3", got)
	}
}

func TestCustomPathTemplate(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken, PathTemplate: "/engagement/contacts/{contact_id}"}, contactA)
	client := newClient(t, 10*time.Second)

	resp := put(t, client, baseURL+"/engagement/contacts/"+contactA, `{"name": "Ada"}`)
	expectDetail(t, resp, http.StatusOK, "Contact updated successfully")
	if state := mustContact(t, server, contactA); state.Name != contact.SetTo("Ada") {
		t.Errorf("name = %+v, want Ada", state.Name)
	}

	for _, path := range []string{"/contact/" + contactA + "/", "/engagement/contacts/" + contactA + "/"} {
		expectDetail(t, put(t, client, baseURL+path, `{"name": "Eve"}`), http.StatusNotFound, "Not found.")
	}
}

func TestOtherPathsReturn404(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 10*time.Second)

	paths := []string{
		"/",
		"/contact/",
		"/contact//",
		"/contact/" + contactA,
		"/contact/" + contactA + "/extra/",
		"/contacts/" + contactA + "/",
	}
	for _, path := range paths {
		expectDetail(t, put(t, client, baseURL+path, `{"name": "Eve"}`), http.StatusNotFound, "Not found.")
	}

	get, err := http.NewRequest(http.MethodGet, contactURL(baseURL, contactA), nil)
	if err != nil {
		t.Fatalf("new GET request: %v", err)
	}
	resp := mustSend(t, client, get)
	expectDetail(t, resp, http.StatusMethodNotAllowed, `Method "GET" not allowed.`)
	if got := resp.header.Get("Allow"); got != http.MethodPut {
		t.Errorf("Allow = %q, want PUT", got)
	}

	stats := server.Stats()
	if stats.NoRoute != int64(len(paths))+1 {
		t.Errorf("NoRoute = %d, want %d", stats.NoRoute, len(paths)+1)
	}
	if stats.BadPaths != 0 {
		t.Errorf("BadPaths = %d, want 0 for paths that do not match the template", stats.BadPaths)
	}
	if requests := server.Requests(); len(requests) != 0 {
		t.Errorf("Requests() = %+v, want no entries for unmatched requests", requests)
	}
	if state := mustContact(t, server, contactA); state.Name.Set {
		t.Errorf("name = %+v, want unchanged", state.Name)
	}
}

func TestNewRejectsInvalidPathTemplate(t *testing.T) {
	templates := []string{
		"contact/{contact_id}/",
		"/contact/",
		"/contact/{contact_id}/{contact_id}/",
		"/contact/id-{contact_id}/",
		"/contact/{contact_id}x/",
		"/contact/{contact_id}/?x=1",
		"/{other}/{contact_id}/",
	}
	for _, template := range templates {
		_, err := New(Options{PathTemplate: template})
		if !errors.Is(err, ErrInvalidPathTemplate) {
			t.Errorf("New(PathTemplate %q) error = %v, want ErrInvalidPathTemplate", template, err)
		}
	}
}

func TestAddContactsValidatesIDs(t *testing.T) {
	server, err := New(Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	err = server.AddContacts(contactA, "not-a-uuid")
	if !errors.Is(err, contact.ErrInvalidEvent) {
		t.Errorf("AddContacts with an invalid id: error = %v, want contact.ErrInvalidEvent", err)
	}
	if _, ok := server.Contact(contactA); ok {
		t.Errorf("Contact(%s) found, want nothing added when one id is invalid", contactA)
	}

	if err := server.AddContacts(strings.ToUpper(contactA)); err != nil {
		t.Fatalf("AddContacts(upper case): %v", err)
	}
	if _, ok := server.Contacts()[contactA]; !ok {
		t.Errorf("Contacts() = %v, want the canonical id %s", server.Contacts(), contactA)
	}
}

func TestContactReturnsDeepCopy(t *testing.T) {
	server, baseURL := startServer(t, Options{}, contactA)
	client := newClient(t, 10*time.Second)
	put(t, client, contactURL(baseURL, contactA), `{"service_point_id_list": ["`+servicePoint+`"], "dynamic_field_list": [{"key": "tier", "value": "gold"}]}`)

	copied := mustContact(t, server, contactA)
	copied.ServicePointIDs.Value[0] = "changed"
	copied.DynamicFields["tier"] = json.RawMessage(`"changed"`)
	listed := server.Contacts()[contactA]
	listed.DynamicFields["other"] = json.RawMessage(`1`)

	state := mustContact(t, server, contactA)
	if state.ServicePointIDs.Value[0] != servicePoint {
		t.Errorf("service_point_id_list = %v, want unchanged by the caller's copy", state.ServicePointIDs.Value)
	}
	if string(state.DynamicFields["tier"]) != `"gold"` || len(state.DynamicFields) != 1 {
		t.Errorf("dynamic fields = %v, want unchanged by the caller's copies", state.DynamicFields)
	}
}

func TestUniqueEmailRejectsWholeUpdate(t *testing.T) {
	server, baseURL := startServer(t, Options{UniqueEmail: true}, contactA, contactB)
	client := newClient(t, 10*time.Second)

	put(t, client, contactURL(baseURL, contactA), `{"email": "shared@example.com"}`)

	resp := put(t, client, contactURL(baseURL, contactB), `{"name": "Bob", "email": "shared@example.com"}`)
	detail := detailList(t, resp)
	if len(detail) == 1 && detail[0] != "Contact with this email already exists." {
		t.Errorf("detail = %q, want %q", detail[0], "Contact with this email already exists.")
	}
	if state := mustContact(t, server, contactB); state.Name.Set || state.Email.Set {
		t.Errorf("contact B = %+v, want no field changed by a rejected update", state)
	}

	expectDetail(t, put(t, client, contactURL(baseURL, contactA), `{"email": "shared@example.com", "name": "Ada"}`),
		http.StatusOK, "Contact updated successfully")

	put(t, client, contactURL(baseURL, contactA), `{"email": "ada@example.com"}`)
	expectDetail(t, put(t, client, contactURL(baseURL, contactB), `{"email": "shared@example.com"}`),
		http.StatusOK, "Contact updated successfully")

	put(t, client, contactURL(baseURL, contactA), `{"email": null}`)
	put(t, client, contactURL(baseURL, contactB), `{"email": "ada@example.com"}`)
	if state := mustContact(t, server, contactB); state.Email != contact.SetTo("ada@example.com") {
		t.Errorf("contact B email = %+v, want the email A cleared", state.Email)
	}

	if got := server.Stats().Rejected; got != 1 {
		t.Errorf("Rejected = %d, want 1", got)
	}
}

func TestDuplicateEmailAllowedByDefault(t *testing.T) {
	server, baseURL := startServer(t, Options{}, contactA, contactB)
	client := newClient(t, 10*time.Second)

	put(t, client, contactURL(baseURL, contactA), `{"email": "shared@example.com"}`)
	expectDetail(t, put(t, client, contactURL(baseURL, contactB), `{"email": "shared@example.com"}`),
		http.StatusOK, "Contact updated successfully")
	if state := mustContact(t, server, contactB); state.Email != contact.SetTo("shared@example.com") {
		t.Errorf("contact B email = %+v, want the shared email", state.Email)
	}
}

func TestFaultStatusAndRetryAfter(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 10*time.Second)

	var mu sync.Mutex
	var seen []FaultRequest
	server.SetFault(func(request FaultRequest) Fault {
		mu.Lock()
		seen = append(seen, request)
		mu.Unlock()

		switch request.Attempt {
		case 1:
			return Fault{Status: http.StatusTooManyRequests, RetryAfter: "2", Body: `{"detail": "Request was throttled."}`}
		case 2:
			return Fault{Status: http.StatusServiceUnavailable}
		}
		return Fault{}
	})

	url := contactURL(baseURL, contactA)
	throttled := put(t, client, url, `{"name": "Ada"}`)
	expectDetail(t, throttled, http.StatusTooManyRequests, "Request was throttled.")
	if got := throttled.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2", got)
	}

	unavailable := put(t, client, url, `{"name": "Ada"}`)
	expectDetail(t, unavailable, http.StatusServiceUnavailable, "Service Unavailable")
	if got := unavailable.header.Get("Retry-After"); got != "" {
		t.Errorf("Retry-After = %q, want none", got)
	}
	if state := mustContact(t, server, contactA); state.Name.Set {
		t.Errorf("name = %+v, want unchanged by fault responses", state.Name)
	}

	expectDetail(t, put(t, client, url, `{"name": "Ada"}`), http.StatusOK, "Contact updated successfully")

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Fatalf("fault function called %d times, want 3", len(seen))
	}
	for i, request := range seen {
		if request.ContactID != contactA || request.Attempt != int64(i+1) || request.Seq != int64(i+1) {
			t.Errorf("call %d: %+v, want contact %s, attempt and seq %d", i+1, request, contactA, i+1)
		}
		if string(request.Body) != `{"name": "Ada"}` {
			t.Errorf("call %d: body = %s, want the request body", i+1, request.Body)
		}
	}

	stats := server.Stats()
	if stats.Faults != 2 || stats.Updated != 1 {
		t.Errorf("Faults, Updated = %d, %d, want 2, 1", stats.Faults, stats.Updated)
	}
}

func TestFaultResetConnection(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 10*time.Second)
	server.SetFault(func(FaultRequest) Fault { return Fault{ResetConnection: true, Status: http.StatusOK} })

	url := contactURL(baseURL, contactA)
	_, err := send(client, newPut(t, url, testToken, `{"name": "Ada"}`))
	if err == nil {
		t.Fatalf("PUT with a reset fault succeeded, want a connection error")
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		t.Errorf("PUT error = %v, want a reset, not a timeout", err)
	}

	if state := mustContact(t, server, contactA); state.Name.Set {
		t.Errorf("name = %+v, want unchanged by a reset request", state.Name)
	}
	requests := server.Requests()
	if len(requests) != 1 || !requests[0].Finished || requests[0].Status != 0 {
		t.Errorf("Requests() = %+v, want one finished entry with status 0", requests)
	}
	stats := server.Stats()
	if stats.Faults != 1 || stats.InFlight != 0 {
		t.Errorf("Faults, InFlight = %d, %d, want 1, 0", stats.Faults, stats.InFlight)
	}

	server.SetFault(nil)
	expectDetail(t, put(t, client, url, `{"name": "Ada"}`), http.StatusOK, "Contact updated successfully")
}

func TestFaultDelayEndsWhenClientGivesUp(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 10*time.Second)
	arrived := make(chan struct{}, 1)
	server.SetFault(func(FaultRequest) Fault {
		arrived <- struct{}{}
		return Fault{Delay: time.Hour}
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	request := newPut(t, contactURL(baseURL, contactA), testToken, `{"name": "Ada"}`).WithContext(ctx)
	result := make(chan error, 1)
	go func() {
		_, err := send(client, request)
		result <- err
	}()

	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatalf("request did not reach the fault function within 5s")
	}
	cancel()
	if err := <-result; !errors.Is(err, context.Canceled) {
		t.Fatalf("PUT error = %v, want context.Canceled", err)
	}

	waitFor(t, "the delayed request to end after the client went away", func() bool {
		stats := server.Stats()
		return stats.Canceled == 1 && stats.InFlight == 0
	})
	if state := mustContact(t, server, contactA); state.Name.Set {
		t.Errorf("name = %+v, want unchanged by a request the client gave up", state.Name)
	}
	requests := server.Requests()
	if len(requests) != 1 || !requests[0].Finished || requests[0].Status != 0 {
		t.Errorf("Requests() = %+v, want one finished entry with status 0", requests)
	}
}

func TestFaultDelayHonoursClientTimeout(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 100*time.Millisecond)
	server.SetFault(func(FaultRequest) Fault { return Fault{Delay: time.Hour} })

	start := time.Now()
	_, err := send(client, newPut(t, contactURL(baseURL, contactA), testToken, `{"name": "Ada"}`))
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("PUT error = %v, want a client timeout", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("PUT took %v, want it to end at the client timeout of 100ms", elapsed)
	}
}

func TestFaultDelayThenNormalResponse(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 10*time.Second)
	const delay = 30 * time.Millisecond
	server.SetFault(func(FaultRequest) Fault { return Fault{Delay: delay} })

	start := time.Now()
	expectDetail(t, put(t, client, contactURL(baseURL, contactA), `{"name": "Ada"}`), http.StatusOK, "Contact updated successfully")
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("PUT took %v, want at least the fault delay %v", elapsed, delay)
	}
	if got := server.Stats().Faults; got != 0 {
		t.Errorf("Faults = %d, want 0 for a delay alone", got)
	}
}

func TestLatencyDelaysEveryResponse(t *testing.T) {
	const latency = 30 * time.Millisecond
	_, baseURL := startServer(t, Options{Token: testToken, Latency: latency}, contactA)
	client := newClient(t, 10*time.Second)

	for _, path := range []string{"/contact/" + contactA + "/", "/nowhere"} {
		start := time.Now()
		put(t, client, baseURL+path, `{}`)
		if elapsed := time.Since(start); elapsed < latency {
			t.Errorf("PUT %s took %v, want at least the latency %v", path, elapsed, latency)
		}
	}
}

// holdFirstRequest returns a fault function that holds the first request
// for holdID in flight until a request for releaseID arrives.
func holdFirstRequest(holdID, releaseID string) (FaultFunc, <-chan struct{}) {
	held := make(chan struct{})
	release := make(chan struct{})
	var holdOnce, releaseOnce sync.Once

	fault := func(request FaultRequest) Fault {
		if request.ContactID == releaseID && (releaseID != holdID || request.Attempt == 2) {
			releaseOnce.Do(func() { close(release) })
			return Fault{}
		}
		if request.ContactID == holdID && request.Attempt == 1 {
			holdOnce.Do(func() { close(held) })
			select {
			case <-release:
			case <-time.After(10 * time.Second):
				return Fault{Status: http.StatusInternalServerError, Body: `{"detail": "second request never arrived"}`}
			}
		}
		return Fault{}
	}
	return fault, held
}

// sendOverlapping sends a PUT for firstID, waits until the server holds it,
// then sends a PUT for secondID, and returns both response statuses.
func sendOverlapping(t *testing.T, client *http.Client, baseURL string, held <-chan struct{}, firstID, secondID string) (int, int) {
	t.Helper()

	firstDone := make(chan response, 1)
	firstErr := make(chan error, 1)
	first := newPut(t, contactURL(baseURL, firstID), testToken, `{"name": "First"}`)
	go func() {
		resp, err := send(client, first)
		firstErr <- err
		firstDone <- resp
	}()

	select {
	case <-held:
	case <-time.After(5 * time.Second):
		t.Fatalf("first request for %s did not reach the server within 5s", firstID)
	}

	second := put(t, client, contactURL(baseURL, secondID), `{"surname": "Second"}`)
	if err := <-firstErr; err != nil {
		t.Fatalf("first PUT: %v", err)
	}
	return (<-firstDone).status, second.status
}

func TestConcurrentRequestsForOneContact(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 20*time.Second)
	fault, held := holdFirstRequest(contactA, contactA)
	server.SetFault(fault)

	firstStatus, secondStatus := sendOverlapping(t, client, baseURL, held, contactA, contactA)
	if firstStatus != http.StatusOK || secondStatus != http.StatusOK {
		t.Errorf("statuses = %d, %d, want 200, 200", firstStatus, secondStatus)
	}

	stats := server.Stats()
	if stats.MaxInFlightPerContact != 2 {
		t.Errorf("MaxInFlightPerContact = %d, want 2", stats.MaxInFlightPerContact)
	}
	if stats.ConcurrentViolations != 1 {
		t.Errorf("ConcurrentViolations = %d, want 1", stats.ConcurrentViolations)
	}
	if stats.InFlight != 0 {
		t.Errorf("InFlight = %d, want 0 after both responses", stats.InFlight)
	}
}

func TestConcurrentRequestsForTwoContacts(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA, contactB)
	client := newClient(t, 20*time.Second)
	fault, held := holdFirstRequest(contactA, contactB)
	server.SetFault(fault)

	firstStatus, secondStatus := sendOverlapping(t, client, baseURL, held, contactA, contactB)
	if firstStatus != http.StatusOK || secondStatus != http.StatusOK {
		t.Errorf("statuses = %d, %d, want 200, 200", firstStatus, secondStatus)
	}

	stats := server.Stats()
	if stats.MaxInFlightPerContact != 1 || stats.ConcurrentViolations != 0 {
		t.Errorf("MaxInFlightPerContact, ConcurrentViolations = %d, %d, want 1, 0 for different contacts",
			stats.MaxInFlightPerContact, stats.ConcurrentViolations)
	}
}

func TestSequentialRequestsNeverConcurrent(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 10*time.Second)

	const count = 50
	for i := range count {
		put(t, client, contactURL(baseURL, contactA), fmt.Sprintf(`{"name": "Ada %d"}`, i))
	}

	stats := server.Stats()
	if stats.MaxInFlightPerContact != 1 || stats.ConcurrentViolations != 0 {
		t.Errorf("MaxInFlightPerContact, ConcurrentViolations = %d, %d, want 1, 0",
			stats.MaxInFlightPerContact, stats.ConcurrentViolations)
	}
	if stats.Updated != count {
		t.Errorf("Updated = %d, want %d", stats.Updated, count)
	}
}

func TestRequestsLogsArrivalOrder(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken}, contactA)
	client := newClient(t, 10*time.Second)

	bodies := []string{`{"name": "One"}`, `{"name": 2}`, `{"name": "Three"}`}
	for _, body := range bodies {
		put(t, client, contactURL(baseURL, contactA), body)
	}
	put(t, client, contactURL(baseURL, unknownID), `{}`)

	requests := server.Requests()
	if len(requests) != 4 {
		t.Fatalf("Requests() has %d entries, want 4: %+v", len(requests), requests)
	}
	wantStatuses := []int{http.StatusOK, http.StatusBadRequest, http.StatusOK, http.StatusBadRequest}
	wantBodies := []string{bodies[0], bodies[1], bodies[2], `{}`}
	wantIDs := []string{contactA, contactA, contactA, unknownID}
	for i, request := range requests {
		if request.Seq != int64(i+1) {
			t.Errorf("entry %d: Seq = %d, want %d", i, request.Seq, i+1)
		}
		if request.ContactID != wantIDs[i] {
			t.Errorf("entry %d: ContactID = %s, want %s", i, request.ContactID, wantIDs[i])
		}
		if string(request.Body) != wantBodies[i] {
			t.Errorf("entry %d: Body = %s, want %s", i, request.Body, wantBodies[i])
		}
		if request.Status != wantStatuses[i] || !request.Finished {
			t.Errorf("entry %d: Status, Finished = %d, %t, want %d, true", i, request.Status, request.Finished, wantStatuses[i])
		}
		if i > 0 && request.Arrived.Before(requests[i-1].Arrived) {
			t.Errorf("entry %d arrived at %v, before entry %d at %v", i, request.Arrived, i-1, requests[i-1].Arrived)
		}
	}

	if got := server.MaxPerWindow(time.Hour); got != 4 {
		t.Errorf("MaxPerWindow(1h) = %d, want 4", got)
	}
}

func TestNoRequestLog(t *testing.T) {
	server, baseURL := startServer(t, Options{Token: testToken, NoRequestLog: true}, contactA)
	client := newClient(t, 10*time.Second)

	put(t, client, contactURL(baseURL, contactA), `{"name": "Ada"}`)
	if requests := server.Requests(); requests != nil {
		t.Errorf("Requests() = %+v, want nil with the log off", requests)
	}
	if got := server.MaxPerWindow(time.Hour); got != 0 {
		t.Errorf("MaxPerWindow(1h) = %d, want 0 with the log off", got)
	}
	if got := server.Stats().Updated; got != 1 {
		t.Errorf("Updated = %d, want 1", got)
	}
}

func TestMaxArrivalsInWindow(t *testing.T) {
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(offsets ...time.Duration) []time.Time {
		times := make([]time.Time, len(offsets))
		for i, offset := range offsets {
			times[i] = base.Add(offset)
		}
		return times
	}
	ms := time.Millisecond

	cases := []struct {
		name   string
		times  []time.Time
		window time.Duration
		want   int
	}{
		{"none", nil, time.Second, 0},
		{"one", at(0), time.Second, 1},
		{"zero window", at(0, 0, 0), 0, 0},
		{"all in window", at(0, 100*ms, 200*ms), time.Second, 3},
		{"even spacing", at(0, 100*ms, 200*ms, 300*ms, 400*ms, 500*ms), 250 * ms, 3},
		{"window end is open", at(0, time.Second), time.Second, 1},
		{"just inside window", at(0, time.Second-time.Nanosecond), time.Second, 2},
		{"burst later", at(0, 2*time.Second, 2100*ms, 2200*ms, 2300*ms, 5*time.Second), time.Second, 4},
		{"unsorted", at(2300*ms, 0, 2100*ms, 5*time.Second, 2*time.Second, 2200*ms), time.Second, 4},
		{"same instant", at(ms, ms, ms), time.Nanosecond, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := maxArrivalsInWindow(tc.times, tc.window); got != tc.want {
				t.Errorf("maxArrivalsInWindow(%v) = %d, want %d", tc.window, got, tc.want)
			}
		})
	}
}

func TestParallelRequestsAreCounted(t *testing.T) {
	const workers = 4
	const perWorker = 50
	ids := []string{contactA, contactB, entityID, servicePoint}
	server, baseURL := startServer(t, Options{Token: testToken, UniqueEmail: true}, ids...)
	client := newClient(t, 10*time.Second)

	var failures atomic.Int64
	var wg sync.WaitGroup
	for worker := range workers {
		wg.Go(func() {
			for i := range perWorker {
				body := fmt.Sprintf(`{"name": "N%d", "email": "e%d@example.com", "dynamic_field_list": [{"key": "k%d", "value": %d}]}`, i, worker, i%3, i)
				request, err := http.NewRequest(http.MethodPut, contactURL(baseURL, ids[worker]), strings.NewReader(body))
				if err != nil {
					failures.Add(1)
					continue
				}
				request.Header.Set("Content-Type", "application/json")
				request.Header.Set("Authorization", "Bearer "+testToken)
				resp, err := send(client, request)
				if err != nil || resp.status != http.StatusOK {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()

	if got := failures.Load(); got != 0 {
		t.Errorf("%d PUTs failed, want all to get 200", got)
	}
	stats := server.Stats()
	if stats.Updated != workers*perWorker || stats.ConcurrentViolations != 0 {
		t.Errorf("Updated, ConcurrentViolations = %d, %d, want %d, 0", stats.Updated, stats.ConcurrentViolations, workers*perWorker)
	}
	for worker, id := range ids {
		state := mustContact(t, server, id)
		wantName := fmt.Sprintf("N%d", perWorker-1)
		if state.Name != contact.SetTo(wantName) || len(state.DynamicFields) != 3 {
			t.Errorf("worker %d contact = %+v, want name %s and 3 dynamic fields", worker, state, wantName)
		}
	}
	if got := len(server.Requests()); got != workers*perWorker {
		t.Errorf("Requests() has %d entries, want %d", got, workers*perWorker)
	}
}

func TestShutdownEndsDelayedRequests(t *testing.T) {
	server, err := New(Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := server.AddContacts(contactA); err != nil {
		t.Fatalf("AddContacts: %v", err)
	}
	baseURL, shutdown, err := server.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	server.SetFault(func(FaultRequest) Fault { return Fault{Delay: time.Hour} })

	client := newClient(t, 10*time.Second)
	request := newPut(t, contactURL(baseURL, contactA), "", `{}`)
	result := make(chan error, 1)
	go func() {
		_, err := send(client, request)
		result <- err
	}()
	waitFor(t, "the request to be in flight", func() bool { return server.Stats().InFlight == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown with a request in flight: error = %v, want context.DeadlineExceeded", err)
	}
	if err := shutdown(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second shutdown: error = %v, want the first call's result", err)
	}

	select {
	case err := <-result:
		if err == nil {
			t.Errorf("PUT got a response after shutdown, want a connection error")
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("PUT still waiting 5s after shutdown closed its connection")
	}
	waitFor(t, "the handler to end", func() bool { return server.Stats().InFlight == 0 })
}

func BenchmarkServePUT(b *testing.B) {
	body := []byte(`{"name": "Ada", "email": "ada@example.com", "has_customer_portal": true, "dynamic_field_list": [{"key": "tier", "value": "gold"}]}`)
	const contacts = 64
	ids := make([]string, contacts)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012x", i+1)
	}
	newServer := func(b *testing.B) *Server {
		server, err := New(Options{Token: testToken, NoRequestLog: true})
		if err != nil {
			b.Fatalf("New: %v", err)
		}
		if err := server.AddContacts(ids...); err != nil {
			b.Fatalf("AddContacts: %v", err)
		}
		return server
	}
	var nextWorker atomic.Int64

	b.Run("handler", func(b *testing.B) {
		server := newServer(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			path := "/contact/" + ids[nextWorker.Add(1)%contacts] + "/"
			for pb.Next() {
				request := httptest.NewRequest(http.MethodPut, path, bytes.NewReader(body))
				request.Header.Set("Content-Type", "application/json")
				request.Header.Set("Authorization", "Bearer "+testToken)
				recorder := httptest.NewRecorder()
				server.ServeHTTP(recorder, request)
				if recorder.Code != http.StatusOK {
					b.Errorf("status = %d, want 200 (body %s)", recorder.Code, recorder.Body)
					return
				}
			}
		})
	})

	b.Run("loopback", func(b *testing.B) {
		server := newServer(b)
		baseURL, shutdown, err := server.Listen("")
		if err != nil {
			b.Fatalf("Listen: %v", err)
		}
		b.Cleanup(func() { _ = shutdown(context.Background()) })
		transport := &http.Transport{MaxIdleConnsPerHost: 64}
		b.Cleanup(transport.CloseIdleConnections)
		client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			url := contactURL(baseURL, ids[nextWorker.Add(1)%contacts])
			for pb.Next() {
				request, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
				if err != nil {
					b.Errorf("new request: %v", err)
					return
				}
				request.Header.Set("Content-Type", "application/json")
				request.Header.Set("Authorization", "Bearer "+testToken)
				resp, err := send(client, request)
				if err != nil || resp.status != http.StatusOK {
					b.Errorf("PUT: status %d, error %v", resp.status, err)
					return
				}
			}
		})
	})
}
