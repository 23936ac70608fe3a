package injection

import "sync"

// scratch holds the buffers of one Score call; they are pooled so that
// steady-state scoring allocates almost nothing.
type scratch struct {
	nfkc, chars, norm []byte // normalisation stages
	tags, vs          []byte // decoded tag characters and variation selectors
	info              normInfo
	ascii             bool     // the input was plain ASCII
	wfeats            []uint32 // word feature buckets, in token order
	wsegs             []int32  // wfeats index per segment
	sums, counts      []int32  // weight and feature-count prefix sums per segment
	toks              []token
	lookups           []lookup // per token
	hitToks           []int32  // tokens with vocabulary hits
	hits              []hit
	rules             ruleResult
	hidden            []byte    // decoded payload bytes
	payloads          []payload // spans of hidden
	starts            []int32   // chunk starts (collapse)
	gaps              []gap     // chunks after unusual whitespace (collapse)
	lines             []int32   // starts of lines (after the first) in norm
	hiddenScan        bool      // the text may hold an encoded payload
}

func newScratch() *scratch {
	return &scratch{
		norm:   make([]byte, 0, 1024),
		wfeats: make([]uint32, 0, 1024),
		wsegs:  make([]int32, 0, 64),
		toks:   make([]token, 0, 256),
	}
}

var scratchPool = sync.Pool{New: func() any { return newScratch() }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

// maxPooledText bounds what a pooled scratch keeps: buffers grown by a huge
// input are left to the garbage collector.
const maxPooledText = 1 << 20

func putScratch(st *scratch) {
	if cap(st.norm) > maxPooledText || cap(st.nfkc) > maxPooledText || cap(st.chars) > maxPooledText ||
		cap(st.toks) > maxPooledText/8 || cap(st.hidden) > maxPooledText {
		return
	}
	scratchPool.Put(st)
}
