package sse

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func collect(t *testing.T, r io.Reader) []Event {
	t.Helper()
	rd := NewReader(r, nil)
	var out []Event
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		// copy: slices alias the buffer
		out = append(out, Event{Raw: append([]byte(nil), ev.Raw...), Name: append([]byte(nil), ev.Name...), Data: append([]byte(nil), ev.Data...), HasData: ev.HasData})
	}
}

func TestReader(t *testing.T) {
	in := "data: {\"a\":1}\n\n: ping\n\nevent: x\r\ndata: l1\r\ndata: l2\r\n\r\ndata:no-space\r\rdata: [DONE]"
	for name, r := range map[string]io.Reader{
		"whole":    strings.NewReader(in),
		"one-byte": iotest.OneByteReader(strings.NewReader(in)),
	} {
		evs := collect(t, r)
		if len(evs) != 5 {
			t.Fatalf("%s: %d events: %+v", name, len(evs), evs)
		}
		want := []string{`{"a":1}`, ``, "l1\nl2", "no-space", "[DONE]"}
		for i, w := range want {
			if string(evs[i].Data) != w {
				t.Errorf("%s: event %d data %q want %q", name, i, evs[i].Data, w)
			}
		}
		if evs[1].HasData || string(evs[2].Name) != "x" {
			t.Errorf("%s: %+v", name, evs)
		}
		if string(evs[0].Raw) != "data: {\"a\":1}\n\n" {
			t.Errorf("%s: raw %q", name, evs[0].Raw)
		}
	}
}

func TestReaderLargeEvent(t *testing.T) {
	big := strings.Repeat("x", 100000)
	evs := collect(t, strings.NewReader("data: "+big+"\n\ndata: y\n\n"))
	if len(evs) != 2 || string(evs[0].Data) != big {
		t.Fatalf("got %d events", len(evs))
	}
}

func TestReaderTooLarge(t *testing.T) {
	rd := NewReader(io.MultiReader(strings.NewReader("data: "), &endless{}), nil)
	if _, err := rd.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

type endless struct{}

func (*endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

func TestReaderNoAllocs(t *testing.T) {
	chunk := "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
	src := strings.NewReader(strings.Repeat(chunk, 50))
	rd := NewReader(src, make([]byte, 16<<10))
	n := testing.AllocsPerRun(20, func() {
		src.Reset(strings.Repeat(chunk, 0))
		src.Reset(strings.Repeat(chunk, 1))
		rd.Reset(src)
		for {
			if _, err := rd.Next(); err != nil {
				break
			}
		}
	})
	if n > 1 { // strings.Repeat
		t.Fatalf("%v allocs", n)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("data: a\n\ndata: b\r\n\r\n"))
	f.Add([]byte("event: e\ndata: 1\ndata: 2\n\n:c\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rd := NewReader(iotest.HalfReader(strings.NewReader(string(in))), make([]byte, 4096))
		for i := 0; i < len(in)+2; i++ {
			if _, err := rd.Next(); err != nil {
				return
			}
		}
		t.Fatal("more events than bytes")
	})
}
