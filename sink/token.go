package sink

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
)

// TokenSource supplies the bearer token of each request. Implementations
// must be safe for concurrent use.
type TokenSource interface {
	// Token returns the token to send. An error fails the attempt as
	// transient, so the request is retried.
	Token(ctx context.Context) (string, error)

	// Invalidate reports that the API rejected the token the source last
	// returned, so the next Token call should fetch a fresh one.
	Invalidate()
}

// StaticToken is a TokenSource that always returns the same token.
type StaticToken string

// Token returns the token.
func (t StaticToken) Token(context.Context) (string, error) { return string(t), nil }

// Invalidate does nothing: a static token cannot be refreshed.
func (StaticToken) Invalidate() {}

// FileToken is a TokenSource that reads the token from a file, such as a
// Kubernetes Secret mounted as a volume, which the kubelet updates in place
// when the Secret rotates. It reads the file on first use and again after
// each Invalidate. Leading and trailing white space is trimmed.
// Use NewFileToken; the zero value has no path. Safe for concurrent use.
type FileToken struct {
	path string

	mu     sync.Mutex
	token  string
	loaded bool
}

// NewFileToken returns a source reading path. It does not read the file.
func NewFileToken(path string) *FileToken {
	return &FileToken{path: path}
}

// ErrEmptyToken is returned when a token file holds only white space.
var ErrEmptyToken = errors.New("token file is empty")

// Token returns the token, reading the file if needed.
func (f *FileToken) Token(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()

	if f.loaded {
		return f.token, nil
	}

	token, err := ReadTokenFile(f.path)
	if err != nil {
		return "", err
	}
	f.token, f.loaded = token, true
	return token, nil
}

// Invalidate makes the next Token call read the file again.
func (f *FileToken) Invalidate() {
	f.mu.Lock()
	f.loaded = false
	f.mu.Unlock()
}

// ReadTokenFile reads and trims a token file. Errors name the path, never
// the content.
func ReadTokenFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("read token file %s: %w", path, ErrEmptyToken)
	}
	return token, nil
}
