package contact

import "errors"

// ErrInvalidEvent is returned, wrapped with the reason, when an event or a
// partial update cannot be decoded or breaks the event contract. An event
// that fails with it is never retried: the worker dead-letters it as invalid.
var ErrInvalidEvent = errors.New("invalid event")
