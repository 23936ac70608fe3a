package cache

import (
	"context"
	"time"
)

// Store keeps entries by key. Get and Set errors mean the store is
// unavailable; the caller should bypass the cache rather than fail the request.
type Store interface {
	// Get returns the entry stored under key, if any and not expired. The entry
	// is shared: do not modify it.
	Get(ctx context.Context, key [32]byte) (*Entry, bool, error)
	// Set stores e under key for ttl, replacing any entry there. A ttl ≤ 0
	// stores nothing; an entry over [MaxEntryBytes] is not stored and Set
	// returns [ErrTooLarge]. e must not be modified afterwards.
	Set(ctx context.Context, key [32]byte, e *Entry, ttl time.Duration) error
	// Len is the number of entries, exact or approximate as the store documents.
	Len() int
}

var (
	_ Store = (*Memory)(nil)
	_ Store = (*Redis)(nil)
)
