package mcp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// Session is what the gateway must remember of a client's MCP session: which servers it
// initialized, the session each gave, what each can do. It travels sealed in the session
// id itself, so any replica holding the same key continues it and no replica stores
// anything.
type Session struct {
	// Route is the MCPRoute the session belongs to.
	Route string `json:"r"`
	// Caller binds the session to the principal that opened it ("method/subject"): a
	// session id read off a log is useless with another credential.
	Caller string `json:"c"`
	// Protocol is the version agreed with the client.
	Protocol string `json:"p"`
	// Expires is when the id stops working (Unix seconds).
	Expires int64 `json:"e"`
	// Servers are the initialized servers, in route order.
	Servers []ServerSession `json:"s"`
}

// ServerSession is one server's side of a session.
type ServerSession struct {
	// Backend is the server's Backend ref.
	Backend string `json:"b"`
	// ID is the server's Mcp-Session-Id ("" for a stateless server).
	ID string `json:"i,omitempty"`
	// Protocol is the version the server agreed.
	Protocol string `json:"p,omitempty"`
	// Caps is what the server offers (Cap bits).
	Caps Caps `json:"k,omitempty"`
}

// Caps are a server's capabilities as bits.
type Caps uint16

// Capabilities.
const (
	CapTools Caps = 1 << iota
	CapResources
	CapResourceSubscribe
	CapPrompts
	CapLogging
	CapCompletions
	CapToolsChanged
	CapResourcesChanged
	CapPromptsChanged
)

// Server returns the session's side of the server with Backend ref, or nil.
func (s *Session) Server(ref string) *ServerSession {
	for i := range s.Servers {
		if s.Servers[i].Backend == ref {
			return &s.Servers[i]
		}
	}
	return nil
}

// Sealer seals and opens session ids with AES-256-GCM.
type Sealer struct{ aead cipher.AEAD }

// MinKeyBytes is the shortest session key accepted.
const MinKeyBytes = 32

// NewSealer derives the sealing key from key (at least MinKeyBytes; a Secret's bytes).
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) < MinKeyBytes {
		return nil, errors.New("an MCP session key needs at least 32 bytes")
	}
	h := sha256.New()
	h.Write([]byte("sluice mcp session v1\x00"))
	h.Write(key)
	block, err := aes.NewCipher(h.Sum(nil))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// RandomSealer is a Sealer with a key drawn for this process alone.
func RandomSealer() *Sealer {
	key := make([]byte, 32)
	rand.Read(key)
	s, _ := NewSealer(key)
	return s
}

// Seal returns the session id for s.
func (k *Sealer) Seal(s *Session) string {
	plain, _ := json.Marshal(s)
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(k.aead.Seal(nonce, nonce, plain, nil))
}

// ErrSession is any session id that does not open: forged, damaged, sealed with another
// key, or expired. Clients are told only that the session is unknown.
var ErrSession = errors.New("unknown or expired MCP session")

// maxSessionID bounds what Open decodes.
const maxSessionID = 8 << 10

// Open returns the session sealed in id, if it is valid at now.
func (k *Sealer) Open(id string, now time.Time) (*Session, error) {
	if len(id) > maxSessionID {
		return nil, ErrSession
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(id) // one spelling per id
	if err != nil || len(raw) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, ErrSession
	}
	ns := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:ns], raw[ns:], nil)
	if err != nil {
		return nil, ErrSession
	}
	var s Session
	if json.Unmarshal(plain, &s) != nil || now.Unix() >= s.Expires {
		return nil, ErrSession
	}
	return &s, nil
}
