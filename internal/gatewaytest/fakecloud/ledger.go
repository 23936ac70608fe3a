package fakecloud

import "sync"

// ledger is what a fake token endpoint remembers: the tokens it minted and the requests
// it refused. The Entra and Google endpoints share it.
type ledger struct {
	mu       sync.Mutex
	tokens   map[string]bool
	mints    int
	problems []string
}

// Valid reports whether tok is an access token this endpoint minted.
func (l *ledger) Valid(tok string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tokens[tok]
}

// Mints is how many tokens were minted.
func (l *ledger) Mints() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mints
}

// Problems lists the token requests refused, and why.
func (l *ledger) Problems() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.problems...)
}

func (l *ledger) minted(tok string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tokens == nil {
		l.tokens = map[string]bool{}
	}
	l.tokens[tok] = true
	l.mints++
}

func (l *ledger) refused(problem string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.problems = append(l.problems, problem)
}
