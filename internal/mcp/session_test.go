package mcp_test

import (
	"bytes"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/mcp"
)

var (
	keyA = []byte("a-session-key-of-at-least-32-bytes-for-tests")
	keyB = []byte("another-session-key-of-32-bytes-or-more!!")
)

func newSealer(t testing.TB, key []byte) *mcp.Sealer {
	t.Helper()
	s, err := mcp.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testSession(expires int64) *mcp.Session {
	return &mcp.Session{
		Route: "MCPRoute/default/tools", Caller: "apiKey/alice", Protocol: "2025-06-18", Expires: expires,
		Servers: []mcp.ServerSession{
			{Backend: "Backend/default/alpha", ID: "sess-α:1", Protocol: "2025-06-18", Caps: mcp.CapTools | mcp.CapToolsChanged | mcp.CapPrompts},
			{Backend: "Backend/default/beta", Caps: mcp.CapResources | mcp.CapResourceSubscribe},
		},
	}
}

func TestSealerRoundTrip(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	k := newSealer(t, keyA)
	in := testSession(now.Unix() + 60)
	id := k.Seal(in)
	if strings.ContainsAny(id, "+/=\r\n ") {
		t.Errorf("id %q is not URL-safe base64 without padding", id)
	}
	if strings.Contains(id, "alice") || strings.Contains(id, "sess-") {
		t.Errorf("id %q shows the session in clear", id)
	}
	out, err := k.Open(id, now)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("opened %+v, want %+v", out, in)
	}
	if s := out.Server("Backend/default/beta"); s == nil || s.Caps != mcp.CapResources|mcp.CapResourceSubscribe {
		t.Errorf("Server(beta) = %+v", s)
	}
	if s := out.Server("Backend/default/nope"); s != nil {
		t.Errorf("Server(nope) = %+v", s)
	}
	// Every seal draws a new nonce.
	if id2 := k.Seal(in); id2 == id {
		t.Error("two seals of one session gave the same id")
	}
	// A second sealer from the same key (another replica) opens the id, and its own.
	k2 := newSealer(t, bytes.Clone(keyA))
	if out, err := k2.Open(id, now); err != nil || !reflect.DeepEqual(in, out) {
		t.Errorf("replica: %+v, %v", out, err)
	}
	if _, err := k.Open(k2.Seal(in), now); err != nil {
		t.Errorf("replica's id: %v", err)
	}
}

func TestSealerRefuses(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	k := newSealer(t, keyA)
	id := k.Seal(testSession(now.Unix() + 60))
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		tampered := bytes.Clone(raw)
		tampered[i] ^= 0x01
		if s, err := k.Open(base64.RawURLEncoding.EncodeToString(tampered), now); err != mcp.ErrSession {
			t.Errorf("byte %d flipped: opened %+v, %v", i, s, err)
		}
	}
	for name, bad := range map[string]string{
		"another key":      newSealer(t, keyB).Seal(testSession(now.Unix() + 60)),
		"truncated":        id[:len(id)-1],
		"shortened":        base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]),
		"extended":         base64.RawURLEncoding.EncodeToString(append(bytes.Clone(raw), 0)),
		"only a nonce":     base64.RawURLEncoding.EncodeToString(raw[:12]),
		"empty":            "",
		"garbage":          "not a session id!",
		"padded":           id + "==",
		"over-long":        strings.Repeat("A", 8<<10+1),
		"over-long, valid": id + strings.Repeat("A", 8<<10),
	} {
		if s, err := k.Open(bad, now); err != mcp.ErrSession {
			t.Errorf("%s: opened %+v, %v", name, s, err)
		}
	}
	// Expiry: the id works until the second it expires.
	exp := k.Seal(testSession(now.Unix()))
	if _, err := k.Open(exp, now.Add(-time.Second)); err != nil {
		t.Errorf("before expiry: %v", err)
	}
	for _, at := range []time.Time{now, now.Add(time.Second), now.Add(24 * time.Hour)} {
		if s, err := k.Open(exp, at); err != mcp.ErrSession {
			t.Errorf("expired at %v: opened %+v, %v", at, s, err)
		}
	}
	if s, err := k.Open(k.Seal(&mcp.Session{Route: "r"}), now); err != mcp.ErrSession {
		t.Errorf("no expiry: opened %+v, %v", s, err)
	}
}

func TestNewSealerKeyLength(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31} {
		if s, err := mcp.NewSealer(bytes.Repeat([]byte{'k'}, n)); err == nil || s != nil {
			t.Errorf("%d-byte key accepted", n)
		}
	}
	for _, n := range []int{32, 33, 64, 1000} {
		if _, err := mcp.NewSealer(bytes.Repeat([]byte{'k'}, n)); err != nil {
			t.Errorf("%d-byte key: %v", n, err)
		}
	}
	r1, r2 := mcp.RandomSealer(), mcp.RandomSealer()
	now := time.Now()
	id := r1.Seal(testSession(now.Unix() + 60))
	if _, err := r1.Open(id, now); err != nil {
		t.Errorf("RandomSealer's own id: %v", err)
	}
	if _, err := r2.Open(id, now); err != mcp.ErrSession {
		t.Errorf("another RandomSealer opened the id: %v", err)
	}
}

// FuzzSessionOpen: nothing opens without the key. Either the fuzzer's own string (seeded
// with ids sealed under another key and garbage), or an id freshly sealed under the key
// with one byte of its sealed bytes changed.
func FuzzSessionOpen(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	mine := newSealer(f, keyA)
	other := newSealer(f, keyB)
	for _, s := range []string{
		other.Seal(testSession(now.Unix() + 60)),
		other.Seal(&mcp.Session{}),
		"", "A", "AAAA", "not base64!", strings.Repeat("A", 40), strings.Repeat("_-", 100),
	} {
		f.Add(s, uint16(0), byte(0))
	}
	for _, pos := range []uint16{0, 11, 12, 40, 1000} {
		f.Add("", pos, byte(1))
		f.Add("", pos, byte(0x80))
	}
	f.Fuzz(func(t *testing.T, id string, pos uint16, flip byte) {
		if flip != 0 {
			raw, err := base64.RawURLEncoding.DecodeString(mine.Seal(testSession(now.Unix() + 60)))
			if err != nil {
				t.Fatal(err)
			}
			raw[int(pos)%len(raw)] ^= flip
			id = base64.RawURLEncoding.EncodeToString(raw)
		}
		if s, err := mine.Open(id, now); err != mcp.ErrSession || s != nil {
			t.Fatalf("Open(%q) = %+v, %v", id, s, err)
		}
	})
}
