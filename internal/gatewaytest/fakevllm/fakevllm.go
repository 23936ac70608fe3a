// Package fakevllm is a fake self-hosted model server for tests, shaped like vLLM's
// OpenAI-compatible server: chat and completions (answered by the Mock backend's
// handler), embeddings whose vectors count words, and a Prometheus /metrics page whose
// queue depth and KV-cache use the test sets. It records what reached it.
package fakevllm

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/provider/mock"
)

// Server is one fake model server.
type Server struct {
	*httptest.Server
	// Addr is its host:port, as a pool lists it.
	Addr string

	mu         sync.Mutex
	fail       int
	waiting    int
	kv         float64
	answers    int
	embeddings int
	dest       []string
	auth       []string
}

// Start serves a fake for models until the test ends.
func Start(t testing.TB, models ...string) *Server {
	s := &Server{}
	chat := mock.NewHandler(v1alpha1.MockSpec{Chunks: 3}, models)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.fail != 0 && r.URL.Path != "/metrics" {
			s.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(s.fail)
			w.Write([]byte(`{"error":{"message":"the fake is failing","type":"server_error"}}`))
			return
		}
		switch r.URL.Path {
		case "/metrics":
			fmt.Fprintf(w, "# HELP vllm:num_requests_waiting Requests waiting to be processed.\n"+
				"# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=%q} %d\n"+
				"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=%q} 0\n"+
				"# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{model_name=%q} %g\n",
				models[0], s.waiting, models[0], models[0], s.kv)
			s.mu.Unlock()
			return
		case "/v1/embeddings":
			s.embeddings++
			s.auth = append(s.auth, r.Header.Get("Authorization"))
			s.mu.Unlock()
			embed(w, r)
			return
		case "/v1/chat/completions", "/v1/completions":
			s.answers++
			s.dest = append(s.dest, r.Header.Get("X-Gateway-Destination-Endpoint"))
			s.auth = append(s.auth, r.Header.Get("Authorization"))
		}
		s.mu.Unlock()
		chat.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	s.Addr = strings.TrimPrefix(s.URL, "http://")
	return s
}

// SetLoad sets what /metrics reports: requests waiting, and KV-cache use (0..1).
func (s *Server) SetLoad(waiting int, kvCache float64) {
	s.mu.Lock()
	s.waiting, s.kv = waiting, kvCache
	s.mu.Unlock()
}

// Fail makes every request but /metrics answer status (0: serve normally again).
func (s *Server) Fail(status int) {
	s.mu.Lock()
	s.fail = status
	s.mu.Unlock()
}

// Answers is the number of chat and completion requests served.
func (s *Server) Answers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answers
}

// Embeddings is the number of embeddings requests served.
func (s *Server) Embeddings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.embeddings
}

// Destinations are the x-gateway-destination-endpoint headers of the answered requests.
func (s *Server) Destinations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.dest...)
}

// Authorizations are the Authorization headers of every request but /metrics.
func (s *Server) Authorizations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...)
}

// Dimensions is the length of the fake's embeddings.
const Dimensions = 64

// Embedding is the fake's vector for text: its words (lower-cased, split at anything
// but letters and digits) counted in Dimensions hashed buckets. A rewording with the
// same words is identical; each different word lowers the cosine similarity.
func Embedding(text string) []float32 {
	vec := make([]float32, Dimensions)
	for _, w := range words(text) {
		h := fnv.New32a()
		h.Write([]byte(w))
		vec[h.Sum32()%Dimensions]++
	}
	return vec
}

func words(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

func embed(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
		Input string `json:"input"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model == "" {
		http.Error(w, `{"error":{"message":"bad request","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	n := len(words(req.Input))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"object": "list", "model": req.Model,
		"data":  []map[string]any{{"object": "embedding", "index": 0, "embedding": Embedding(req.Input)}},
		"usage": map[string]any{"prompt_tokens": n, "total_tokens": n},
	})
}
