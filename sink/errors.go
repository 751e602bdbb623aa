package sink

import (
	"errors"
	"fmt"
)

// Sentinel errors. Put wraps them in *StatusError; test with errors.Is.
var (
	// ErrNotFound is returned when the API does not know the contact.
	ErrNotFound = errors.New("contact not found")

	// ErrRejected is returned when the API rejects the update for good,
	// for example a validation error on a duplicate email.
	ErrRejected = errors.New("update rejected")

	// ErrUnauthorized marks an attempt refused with 401 or 403. Put retries
	// such attempts, so it only reaches callers through Attempt.Err.
	ErrUnauthorized = errors.New("token rejected")

	// ErrTransient marks an attempt that failed in a way worth retrying. Put
	// retries such attempts, so it only reaches callers through Attempt.Err.
	ErrTransient = errors.New("transient failure")
)

// StatusError is a response of the API that was not a success. Kind is one
// of the sentinel errors above, and Unwrap returns it.
type StatusError struct {
	// ContactID is the contact the request was for.
	ContactID string

	// Status is the HTTP status code.
	Status int

	// Detail is the API's detail message, joined with "; " when the API
	// sent a list, and empty when the body had none.
	Detail string

	// Kind is ErrNotFound, ErrRejected, ErrUnauthorized or ErrTransient.
	Kind error
}

func (e *StatusError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("PUT contact %s: HTTP %d: %v", e.ContactID, e.Status, e.Kind)
	}
	return fmt.Sprintf("PUT contact %s: HTTP %d: %v: %s", e.ContactID, e.Status, e.Kind, e.Detail)
}

func (e *StatusError) Unwrap() error { return e.Kind }
