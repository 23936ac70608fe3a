package crdtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/crdtest"
	"github.com/sluice-gateway/sluice/internal/resource"
)

// doc is a one-resource YAML document; spec is a YAML flow mapping.
func doc(kind, spec string) string {
	return "apiVersion: sluice.dev/v1alpha1\nkind: " + kind + "\nmetadata: {name: t, namespace: default}\nspec: " + spec + "\n"
}

const (
	openAI  = `schema: OpenAI, url: "https://api.openai.com/v1"`
	models  = `models: [gpt-4o], backendRefs: [{name: b}]`
	inProc  = `name: p, inProcess: {pii: {}}`
	keyHash = `hash: "sha256:0000000000000000000000000000000000000000000000000000000000000000"`
	oneRule = `{name: r, key: principal.team, limit: {volumeUnits: Requests, volume: 10, timeUnit: Minute}}`
	pool    = `schema: OpenAI, url: "http://vllm/v1", pool: {endpoints: ["10.0.0.1:8000"]`
	apiKey  = `credentials: {apiKey: {secretRef: {name: s}}}`
)

func backendRefs(n int) string {
	refs := make([]string, n)
	for i := range refs {
		refs[i] = fmt.Sprintf("{name: b%d}", i)
	}
	return "[" + strings.Join(refs, ", ") + "]"
}

// invalid are resources the Go validation rejects; the CRDs must reject them too, with
// an error containing want.
var invalid = []struct{ name, doc, want string }{
	// Backend
	{"unknown schema", doc("Backend", `{schema: Nope, url: "https://x.example"}`), `spec.schema: Unsupported value: "Nope"`},
	{"no schema", doc("Backend", `{url: "https://x.example"}`), `set schema for protocol HTTP and none for protocol MCP`},
	{"MCP with schema", doc("Backend", `{protocol: MCP, schema: OpenAI, url: "https://x.example/mcp"}`), `set schema for protocol HTTP and none for protocol MCP`},
	{"url and destination", doc("Backend", `{`+openAI+`, destination: {type: Fqdn, fqdn: {hostname: api.openai.com}}}`), "set exactly one of url and destination"},
	{"neither url nor destination", doc("Backend", `{schema: Anthropic}`), "set exactly one of url and destination"},
	{"url not http", doc("Backend", `{schema: OpenAI, url: "ftp://x.example"}`), "spec.url: Invalid value"},
	{"url with query", doc("Backend", `{schema: OpenAI, url: "https://x.example/v1?a=b"}`), "spec.url: Invalid value"},
	{"url with user", doc("Backend", `{schema: OpenAI, url: "https://u:p@x.example/v1"}`), "spec.url: Invalid value"},
	{"unknown field", doc("Backend", `{`+openAI+`, bogus: 1}`), "spec.bogus: Forbidden: unknown field"},
	{"mock with url", doc("Backend", `{schema: Mock, url: "https://x.example"}`), "schema Mock answers in-process and takes no url or destination"},
	{"mock on OpenAI", doc("Backend", `{`+openAI+`, mock: {chunks: 2}}`), "mock is only for schema Mock"},
	{"mock chunks", doc("Backend", `{schema: Mock, mock: {chunks: 5000}}`), "spec.mock.chunks: Invalid value"},
	{"mock credentials", doc("Backend", `{schema: Mock, `+apiKey+`}`), "schema Mock needs no credentials"},
	{"negative latency", doc("Backend", `{schema: Mock, mock: {latency: -1s}}`), "must be >= 0"},
	{"queue without limit", doc("Backend", `{`+openAI+`, maxQueuedRequests: 5}`), "maxQueuedRequests needs maxConcurrentRequests"},
	{"negative concurrency", doc("Backend", `{`+openAI+`, maxConcurrentRequests: -1}`), "spec.maxConcurrentRequests: Invalid value: -1: spec.maxConcurrentRequests in body should be greater than or equal to 0"},
	{"destination type mismatch", doc("Backend", `{schema: OpenAI, destination: {type: Fqdn, ip: {address: 10.0.0.1}}}`), "the one type names"},
	{"destination type unknown", doc("Backend", `{schema: OpenAI, destination: {type: Dns, fqdn: {hostname: x}}}`), `spec.destination.type: Unsupported value: "Dns"`},
	{"destination bad ip", doc("Backend", `{schema: OpenAI, destination: {type: Ip, ip: {address: 10.0.0}}}`), "not an IP address"},
	{"destination bad hostname", doc("Backend", `{schema: OpenAI, destination: {type: Fqdn, fqdn: {hostname: "API.example"}}}`), "spec.destination.fqdn.hostname: Invalid value"},
	{"destination port", doc("Backend", `{schema: OpenAI, destination: {type: Fqdn, fqdn: {hostname: x.example}, ports: [{number: 70000}]}}`), "should be less than or equal to 65535"},
	{"destination scheme", doc("Backend", `{schema: OpenAI, destination: {type: Fqdn, fqdn: {hostname: x.example}, scheme: ftp}}`), `Unsupported value: "ftp"`},
	{"destination pathPrefix", doc("Backend", `{schema: OpenAI, destination: {type: Fqdn, fqdn: {hostname: x.example}, pathPrefix: v1}}`), "spec.destination.pathPrefix: Invalid value"},
	{"service name", doc("Backend", `{schema: OpenAI, destination: {type: KubernetesService, kubernetesService: {name: My_Svc}}}`), "spec.destination.kubernetesService.name: Invalid value"},
	{"bedrock unsigned", doc("Backend", `{schema: AWSBedrock, url: "https://bedrock-runtime.us-east-1.amazonaws.com"}`), "AWSBedrock requests must be signed"},
	{"bedrock api key", doc("Backend", `{schema: AWSBedrock, url: "https://bedrock-runtime.us-east-1.amazonaws.com", `+apiKey+`}`), "AWSBedrock requests must be signed"},
	{"vertex without account", doc("Backend", `{schema: GCPVertexAI, url: "https://aiplatform.googleapis.com"}`), "GCPVertexAI needs credentials.gcpServiceAccount"},
	{"two credentials", doc("Backend", `{`+openAI+`, credentials: {apiKey: {secretRef: {name: s}}, azure: {apiKey: {secretRef: {name: s}}}}}`), "set exactly one of apiKey, awsSigV4, gcpServiceAccount, azure"},
	{"no credential", doc("Backend", `{`+openAI+`, credentials: {}}`), "set exactly one of apiKey, awsSigV4, gcpServiceAccount, azure"},
	{"sigv4 on OpenAI", doc("Backend", `{`+openAI+`, credentials: {awsSigV4: {secretRef: {name: s}}}}`), "credentials.awsSigV4 is only for schema AWSBedrock"},
	{"azure credentials on OpenAI", doc("Backend", `{`+openAI+`, credentials: {azure: {apiKey: {secretRef: {name: s}}}}}`), "credentials.azure is only for schema AzureOpenAI"},
	{"azure both", doc("Backend", `{schema: AzureOpenAI, url: "https://x.openai.azure.com/openai", credentials: {azure: {apiKey: {secretRef: {name: s}}, clientCredentials: {tenantID: t, clientID: c, secretRef: {name: s}}}}}`), "set exactly one of apiKey, clientCredentials"},
	{"azure tenant", doc("Backend", `{schema: AzureOpenAI, url: "https://x.openai.azure.com/openai", credentials: {azure: {clientCredentials: {tenantID: "a/b", clientID: c, secretRef: {name: s}}}}}`), "tenantID: Invalid value"},
	{"secret name empty", doc("Backend", `{`+openAI+`, credentials: {apiKey: {secretRef: {name: ""}}}}`), "spec.credentials.apiKey.secretRef.name: Invalid value"},
	{"vertex project", doc("Backend", `{schema: GCPVertexAI, url: "https://aiplatform.googleapis.com", credentials: {gcpServiceAccount: {secretRef: {name: s}, project: "..", location: global}}}`), "must not be . or .."},
	{"azure section on OpenAI", doc("Backend", `{`+openAI+`, azure: {apiVersion: "2024-10-21"}}`), "azure is only for schema AzureOpenAI"},
	{"anthropic section on OpenAI", doc("Backend", `{`+openAI+`, anthropic: {version: "2023-06-01"}}`), "anthropic is only for schemas Anthropic and GCPVertexAI"},
	{"anthropic max tokens", doc("Backend", `{schema: Anthropic, url: "https://api.anthropic.com", anthropic: {defaultMaxTokens: -1}}`), "greater than or equal to 0"},
	{"credential header", doc("Backend", `{`+openAI+`, requestHeaders: {set: [{name: Authorization, value: x}]}}`), "credentials are set with spec.credentials"},
	{"header value line break", doc("Backend", `{`+openAI+`, requestHeaders: {set: [{name: x-a, value: "a\nb"}]}}`), "spec.requestHeaders.set[0].value: Invalid value"},
	{"header name", doc("Backend", `{`+openAI+`, requestHeaders: {remove: ["x a"]}}`), "spec.requestHeaders.remove[0]: Invalid value"},
	{"tls version", doc("Backend", `{`+openAI+`, tls: {minVersion: "1.1"}}`), `spec.tls.minVersion: Unsupported value: "1.1"`},
	{"tls pin", doc("Backend", `{`+openAI+`, tls: {pinnedSHA256: [abc]}}`), "spec.tls.pinnedSHA256[0]: Invalid value"},
	{"tls ca name", doc("Backend", `{`+openAI+`, tls: {caBundleRefs: [{name: ""}]}}`), "spec.tls.caBundleRefs[0].name: Invalid value"},
	{"region", doc("Backend", `{`+openAI+`, region: EU}`), "spec.region: Invalid value"},
	{"timeout zero", doc("Backend", `{`+openAI+`, timeouts: {connect: 0s}}`), `spec.timeouts.connect: Invalid value: "0s": must be > 0`},
	{"outlier percent", doc("Backend", `{`+openAI+`, outlierDetection: {failureRatePercent: 101}}`), "less than or equal to 100"},
	{"health check path", doc("Backend", `{`+openAI+`, healthCheck: {path: models}}`), "spec.healthCheck.path: Invalid value"},
	{"health check without ejection", doc("Backend", `{`+openAI+`, healthCheck: {}, outlierDetection: {disabled: true}}`), "healthCheck needs outlierDetection"},
	{"health check on mock", doc("Backend", `{schema: Mock, healthCheck: {}}`), "a Mock backend has nothing to check"},
	{"pricing negative", doc("Backend", `{`+openAI+`, pricing: {input: -1, output: 1}}`), "spec.pricing.input: Invalid value: -1"},
	{"pricing too high", doc("Backend", `{`+openAI+`, pricing: {input: 1000000, output: 1}}`), "spec.pricing.input in body should be less than 1000000"},
	{"pool empty", doc("Backend", `{schema: OpenAI, url: "http://vllm/v1", pool: {endpoints: []}}`), "should have at least 1 items"},
	{"pool endpoint", doc("Backend", `{schema: OpenAI, url: "http://vllm/v1", pool: {endpoints: ["10.0.0.1"]}}`), "spec.pool.endpoints[0]: Invalid value"},
	{"pool port", doc("Backend", `{schema: OpenAI, url: "http://vllm/v1", pool: {endpoints: ["10.0.0.1:65536"]}}`), "spec.pool.endpoints[0]: Invalid value"},
	{"pool duplicate", doc("Backend", `{schema: OpenAI, url: "http://vllm/v1", pool: {endpoints: ["a:1", "a:1"]}}`), `spec.pool.endpoints[1]: Duplicate value: "a:1"`},
	{"pool picker", doc("Backend", `{`+pool+`, picker: Random}}`), `spec.pool.picker: Unsupported value: "Random"`},
	{"pool affinity picker", doc("Backend", `{`+pool+`, prefixAffinity: {prefixBytes: 64}}}`), "prefixAffinity is only for picker PrefixAffinity"},
	{"pool prefix bytes", doc("Backend", `{`+pool+`, picker: PrefixAffinity, prefixAffinity: {prefixBytes: 8}}}`), "must be between 16 and 1048576"},
	{"pool load factor", doc("Backend", `{`+pool+`, picker: PrefixAffinity, prefixAffinity: {loadFactorPercent: 99}}}`), "must be between 100 and 1000"},
	{"pool kv threshold", doc("Backend", `{`+pool+`, kvCacheThresholdPercent: 101}}`), "less than or equal to 100"},
	{"pool stale", doc("Backend", `{`+pool+`, metrics: {interval: 2s, staleAfter: 1s}}}`), "staleAfter (default 5s) must be at least the interval"},
	{"pool stale default interval", doc("Backend", `{`+pool+`, metrics: {staleAfter: 500ms}}}`), "staleAfter (default 5s) must be at least the interval"},
	{"pool stale default", doc("Backend", `{`+pool+`, metrics: {interval: 10s}}}`), "staleAfter (default 5s) must be at least the interval"},
	{"pool on mock", doc("Backend", `{schema: Mock, pool: {endpoints: ["a:1"]}}`), "a Mock backend answers in-process and takes no pool"},

	// ModelRoute
	{"no models", doc("ModelRoute", `{models: [], backendRefs: [{name: b}]}`), "spec.models: Invalid value: 0: spec.models in body should have at least 1 items"},
	{"no backends", doc("ModelRoute", `{models: [m]}`), "spec.backendRefs: Required value"},
	{"too many backends", doc("ModelRoute", `{models: [m], backendRefs: `+backendRefs(65)+`}`), "must have at most 64 items"},
	{"duplicate model", doc("ModelRoute", `{models: [a, a], backendRefs: [{name: b}]}`), `spec.models[1]: Duplicate value: "a"`},
	{"model glob", doc("ModelRoute", `{models: ["gpt-[45]"], backendRefs: [{name: b}]}`), "spec.models[0]: Invalid value"},
	{"empty model", doc("ModelRoute", `{models: [""], backendRefs: [{name: b}]}`), "spec.models[0]: Invalid value"},
	{"negative weight", doc("ModelRoute", `{models: [m], backendRefs: [{name: b, weight: -1}]}`), "spec.backendRefs[0].weight: Invalid value: -1"},
	{"negative priority", doc("ModelRoute", `{models: [m], backendRefs: [{name: b, priority: -1}]}`), "spec.backendRefs[0].priority: Invalid value: -1"},
	{"ref without name", doc("ModelRoute", `{models: [m], backendRefs: [{model: x}]}`), "spec.backendRefs[0].name: Required value"},
	{"ref pricing", doc("ModelRoute", `{models: [m], backendRefs: [{name: b, pricing: {input: 1, output: -2}}]}`), "spec.backendRefs[0].pricing.output: Invalid value"},
	{"route region", doc("ModelRoute", `{`+models+`, regions: [eu_west]}`), "spec.regions[0]: Invalid value"},
	{"retry attempts", doc("ModelRoute", `{`+models+`, retry: {attempts: 11}}`), "spec.retry.attempts: Invalid value: 11"},
	{"retry attempts zero", doc("ModelRoute", `{`+models+`, retry: {attempts: 0}}`), "spec.retry.attempts: Invalid value: 0"},
	{"retry attempts missing", doc("ModelRoute", `{`+models+`, retry: {retryOn: [5xx]}}`), "spec.retry.attempts: Required value"},
	{"retry on", doc("ModelRoute", `{`+models+`, retry: {attempts: 2, retryOn: [4xx]}}`), `spec.retry.retryOn[0]: Unsupported value: "4xx"`},
	{"retry on number", doc("ModelRoute", `{`+models+`, retry: {attempts: 2, retryOn: [500]}}`), `spec.retry.retryOn[0]: Unsupported value: 500`},
	{"retry backoff", doc("ModelRoute", `{`+models+`, retry: {attempts: 2, backoff: {base: 1s, max: 500ms}}}`), "max must be at least base"},
	{"retry backoff default base", doc("ModelRoute", `{`+models+`, retry: {attempts: 2, backoff: {max: 50ms}}}`), "max must be at least base"},
	{"route timeout", doc("ModelRoute", `{`+models+`, timeouts: {request: -5s}}`), "spec.timeouts.request: Invalid value"},

	// APIKey
	{"key hash and secret", doc("APIKey", `{`+keyHash+`, secretRef: {name: s}, subject: alice}`), "set exactly one of hash and secretRef"},
	{"key neither", doc("APIKey", `{subject: alice}`), "set exactly one of hash and secretRef"},
	{"key hash", doc("APIKey", `{hash: "sha256:abc", subject: alice}`), "spec.hash: Invalid value"},
	{"key subject", doc("APIKey", `{`+keyHash+`, subject: "  "}`), "spec.subject: Invalid value"},
	{"key without subject", doc("APIKey", `{`+keyHash+`}`), "spec.subject: Required value"},

	// AccessPolicy
	{"no authentication", doc("AccessPolicy", `{authentication: {}}`), "enable apiKeys, jwt or anonymous"},
	{"anonymous false", doc("AccessPolicy", `{authentication: {anonymous: false}}`), "enable apiKeys, jwt or anonymous"},
	{"no providers", doc("AccessPolicy", `{authentication: {jwt: {providers: []}}}`), "spec.authentication.jwt.providers: Invalid value: 0"},
	{"duplicate issuer", doc("AccessPolicy", `{authentication: {jwt: {providers: [{issuer: i, jwks: "{}"}, {issuer: i, jwks: "{}"}]}}}`), "spec.authentication.jwt.providers[1]: Duplicate value"},
	{"jwks and uri", doc("AccessPolicy", `{authentication: {jwt: {providers: [{issuer: i, jwks: "{}", jwksURI: "https://i/jwks"}]}}}`), "set exactly one of jwksURI and jwks"},
	{"jwks uri", doc("AccessPolicy", `{authentication: {jwt: {providers: [{issuer: i, jwksURI: "file:///jwks"}]}}}`), "jwksURI: Invalid value"},
	{"access default", doc("AccessPolicy", `{authentication: {anonymous: true}, default: Maybe}`), `spec.default: Unsupported value: "Maybe"`},
	{"access endpoint", doc("AccessPolicy", `{authentication: {anonymous: true}, rules: [{name: r, allow: {endpoints: [images]}}]}`), `spec.rules[0].allow.endpoints[0]: Unsupported value: "images"`},
	{"access rule names", doc("AccessPolicy", `{authentication: {anonymous: true}, rules: [{name: r}, {name: r}]}`), "spec.rules[1]: Duplicate value"},
	{"access rule model", doc("AccessPolicy", `{authentication: {anonymous: true}, rules: [{name: r, allow: {models: ["a[b]"]}}]}`), "spec.rules[0].allow.models[0]: Invalid value"},

	// RateLimitPolicy
	{"no rules", doc("RateLimitPolicy", `{rules: []}`), "spec.rules: Invalid value: 0"},
	{"zero volume", doc("RateLimitPolicy", `{rules: [{name: r, key: k, limit: {volumeUnits: Tokens, volume: 0, timeUnit: Minute}}]}`), "spec.rules[0].limit.volume: Invalid value: 0"},
	{"volume units", doc("RateLimitPolicy", `{rules: [{name: r, key: k, limit: {volumeUnits: Bytes, volume: 1, timeUnit: Minute}}]}`), `Unsupported value: "Bytes"`},
	{"time unit", doc("RateLimitPolicy", `{rules: [{name: r, key: k, limit: {volumeUnits: Tokens, volume: 1, timeUnit: Week}}]}`), `Unsupported value: "Week"`},
	{"time value", doc("RateLimitPolicy", `{rules: [{name: r, key: k, limit: {volumeUnits: Tokens, volume: 1, timeUnit: Minute, timeValue: 10001}}]}`), "timeValue: Invalid value: 10001"},
	{"cost of requests", doc("RateLimitPolicy", `{rules: [{name: r, key: k, costExpression: "2", limit: {volumeUnits: Requests, volume: 1, timeUnit: Minute}}]}`), "costExpression is not for a Requests limit"},
	{"rule names", doc("RateLimitPolicy", `{rules: [`+oneRule+`, `+oneRule+`]}`), "spec.rules[1]: Duplicate value"},
	{"rule key", doc("RateLimitPolicy", `{rules: [{name: r, key: "", limit: {volumeUnits: Requests, volume: 1, timeUnit: Minute}}]}`), "spec.rules[0].key: Invalid value"},
	{"redis missing", doc("RateLimitPolicy", `{rules: [`+oneRule+`], storage: {type: Redis}}`), "redis is required for type Redis and only for it"},
	{"redis on memory", doc("RateLimitPolicy", `{rules: [`+oneRule+`], storage: {type: Memory, redis: {url: "redis://r:6379"}}}`), "redis is required for type Redis and only for it"},
	{"redis url", doc("RateLimitPolicy", `{rules: [`+oneRule+`], storage: {type: Redis, redis: {url: "http://r:6379"}}}`), "spec.storage.redis.url: Invalid value"},
	{"failure mode", doc("RateLimitPolicy", `{rules: [`+oneRule+`], failureMode: Retry}`), `Unsupported value: "Retry"`},
	{"target kind", doc("RateLimitPolicy", `{rules: [`+oneRule+`], targetRefs: [{kind: Backend, name: b}]}`), `spec.targetRefs[0].kind: Unsupported value: "Backend"`},
	{"output estimate", doc("RateLimitPolicy", `{rules: [`+oneRule+`], outputTokenEstimate: -1}`), "outputTokenEstimate: Invalid value: -1"},

	// PayloadProcessor
	{"no processors", doc("PayloadProcessor", `{processors: []}`), "spec.processors: Invalid value: 0"},
	{"phase", doc("PayloadProcessor", `{phase: Later, processors: [{`+inProc+`}]}`), `Unsupported value: "Later"`},
	{"processor names", doc("PayloadProcessor", `{processors: [{`+inProc+`}, {`+inProc+`}]}`), "spec.processors[1]: Duplicate value"},
	{"processor name", doc("PayloadProcessor", `{processors: [{name: "a b", inProcess: {pii: {}}}]}`), "spec.processors[0].name: Invalid value"},
	{"neither in nor ext", doc("PayloadProcessor", `{processors: [{name: p}]}`), "set exactly one of inProcess and extProcess, the one type names"},
	{"type mismatch", doc("PayloadProcessor", `{processors: [{name: p, type: ExtProcess, inProcess: {pii: {}}}]}`), "set exactly one of inProcess and extProcess, the one type names"},
	{"two detectors", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {pii: {}, promptInjection: {}}}]}`), "set one detector per processor"},
	{"detector and mutation", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {pii: {}, removeHeaders: [x-a]}}]}`), "a detector and mutations cannot share a processor"},
	{"nothing in process", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {setHeaders: []}}]}`), "set a detector"},
	{"timeout too long", doc("PayloadProcessor", `{processors: [{`+inProc+`, timeout: 2m}]}`), "must be > 0 and at most 60s"},
	{"inspect", doc("PayloadProcessor", `{processors: [{`+inProc+`, inspect: [Everything]}]}`), `Unsupported value: "Everything"`},
	{"injection action", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {promptInjection: {action: Redact}}}]}`), `spec.processors[0].inProcess.promptInjection.action: Unsupported value: "Redact"`},
	{"injection threshold", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {promptInjection: {threshold: 1.5}}}]}`), "threshold: Invalid value: 1.5"},
	{"pii entity", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {pii: {entities: [Name]}}}]}`), `Unsupported value: "Name"`},
	{"pii scope", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {pii: {scope: [Both]}}}]}`), `Unsupported value: "Both"`},
	{"filter deny", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {contentFilter: {deny: []}}}]}`), "deny: Invalid value: 0"},
	{"filter pattern", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {contentFilter: {deny: [{word: a, regex: b}]}}}]}`), "set word or regex, not both"},
	{"filter word", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {contentFilter: {deny: [{word: " a"}]}}}]}`), "deny[0].word: Invalid value"},
	{"signatures half-life", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {signatures: {anomalies: {halfLife: 30s}}}}]}`), "must be at least 1m"},
	{"signatures factor", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {signatures: {anomalies: {rateFactor: 1}}}}]}`), "rateFactor: Invalid value: 1"},
	{"signatures action", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {signatures: {action: Redact}}}]}`), `Unsupported value: "Redact"`},
	{"set model", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {setBodyFields: [{name: model, value: "'x'"}]}}]}`), "model, stream and stream_options are decided"},
	{"remove stream options", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {removeBodyFields: [stream_options.include_usage]}}]}`), "model, stream and stream_options are decided"},
	{"body path", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {removeBodyFields: ["a..b"]}}]}`), "removeBodyFields[0]: Invalid value"},
	{"set header name", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {setHeaders: [{name: "x a", value: "'v'"}]}}]}`), "setHeaders: not a valid header name"},
	{"set header value", doc("PayloadProcessor", `{processors: [{name: p, inProcess: {setHeaders: [{name: x-a, value: ""}]}}]}`), "setHeaders[0].value: Invalid value"},
	{"ext protocol", doc("PayloadProcessor", `{processors: [{name: p, extProcess: {protocol: GRPC, backendRef: {name: b}}}]}`), `Unsupported value: "GRPC"`},
	{"ext backend", doc("PayloadProcessor", `{processors: [{name: p, extProcess: {protocol: HTTP, backendRef: {name: ""}}}]}`), "backendRef.name: Invalid value"},

	// CachePolicy
	{"semantic without settings", doc("CachePolicy", `{mode: Semantic}`), "semantic is required for mode Semantic and only for it"},
	{"settings without semantic", doc("CachePolicy", `{semantic: {backendRef: {name: e}, model: m}}`), "semantic is required for mode Semantic and only for it"},
	{"cache mode", doc("CachePolicy", `{mode: Fuzzy}`), `Unsupported value: "Fuzzy"`},
	{"cache scope", doc("CachePolicy", `{scope: World}`), `Unsupported value: "World"`},
	{"cache entries", doc("CachePolicy", `{maxEntries: -1}`), "maxEntries: Invalid value: -1"},
	{"cache ttl", doc("CachePolicy", `{ttl: 0s}`), "spec.ttl: Invalid value"},
	{"cache threshold", doc("CachePolicy", `{mode: Semantic, semantic: {backendRef: {name: e}, model: m, threshold: 0}}`), "threshold: Invalid value: 0"},
	{"cache model", doc("CachePolicy", `{mode: Semantic, semantic: {backendRef: {name: e}, model: ""}}`), "semantic.model: Invalid value"},
	{"cache storage", doc("CachePolicy", `{storage: {type: Disk}}`), `Unsupported value: "Disk"`},
}

// valid are edge cases the Go validation accepts; the CRDs must accept them too.
var valid = []struct{ name, doc string }{
	{"mock bare", doc("Backend", `{schema: Mock}`)},
	{"mock zero chunks", doc("Backend", `{schema: Mock, mock: {chunks: 0, latency: 0s, tokensPerSecond: 0}}`)},
	{"url upper-case scheme", doc("Backend", `{schema: OpenAI, url: "HTTPS://api.openai.com"}`)},
	{"url with port and path", doc("Backend", `{schema: OpenAI, url: "http://[::1]:8080/v1/x@y"}`)},
	{"empty url with destination", doc("Backend", `{schema: OpenAI, url: "", destination: {type: Ip, ip: {address: "::1"}, ports: [{number: 8443}], scheme: https, pathPrefix: /v1}}`)},
	{"service destination", doc("Backend", `{schema: OpenAI, destination: {type: KubernetesService, kubernetesService: {name: vllm, namespace: models}}}`)},
	{"queue with limit", doc("Backend", `{`+openAI+`, maxConcurrentRequests: 4, maxQueuedRequests: 8, timeouts: {queue: 1s}}`)},
	{"azure entra", doc("Backend", `{schema: AzureOpenAI, url: "https://x.openai.azure.com/openai", azure: {apiVersion: "2024-10-21"}, credentials: {azure: {clientCredentials: {tenantID: contoso.onmicrosoft.com, clientID: c, secretRef: {name: s, key: k}, authorityHost: "https://login.microsoftonline.us"}}}}`)},
	{"vertex claude", doc("Backend", `{schema: GCPVertexAI, url: "https://europe-west4-aiplatform.googleapis.com", anthropic: {defaultMaxTokens: 0}, credentials: {gcpServiceAccount: {secretRef: {name: s}, project: my-project.1, location: europe-west4}}}`)},
	{"header policy", doc("Backend", `{`+openAI+`, requestHeaders: {allow: ["x-request-id", "X-Custom_1"], remove: [traceparent], set: [{name: OpenAI-Organization, value: "org-1"}, {name: x-empty, value: ""}]}}`)},
	{"tls", doc("Backend", `{`+openAI+`, tls: {minVersion: "1.3", sni: api.openai.com, pinnedSHA256: ["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="], subjectAltNames: ["*.openai.com"]}}`)},
	{"health check defaults", doc("Backend", `{`+openAI+`, healthCheck: {unhealthyThreshold: 0}, outlierDetection: {disabled: false, consecutiveFailures: 0}}`)},
	{"pricing", doc("Backend", `{`+openAI+`, pricing: {input: 0, output: 999999.99, cachedInput: 0.125}}`)},
	{"pricing output omitted", doc("Backend", `{`+openAI+`, pricing: {input: 1}}`)},
	{"header value omitted", doc("Backend", `{`+openAI+`, requestHeaders: {set: [{name: x-a}]}}`)},
	{"cache without spec", "apiVersion: sluice.dev/v1alpha1\nkind: CachePolicy\nmetadata: {name: t}\n"},
	{"pool affinity", doc("Backend", `{schema: OpenAI, url: "http://vllm/v1", pool: {endpoints: ["[fe80::1]:8000", "vllm-0.vllm:8000", "10.0.0.1:08000"], picker: PrefixAffinity, prefixAffinity: {prefixBytes: 16, loadFactorPercent: 0}, destinationHeader: Honor, kvCacheThresholdPercent: 100, queueThreshold: 0}}`)},
	{"pool affinity defaulted", doc("Backend", `{schema: OpenAI, url: "http://vllm/v1", pool: {endpoints: ["a:1"], picker: PrefixAffinity}}`)},
	{"pool metrics", doc("Backend", `{schema: OpenAI, url: "http://vllm/v1", pool: {endpoints: ["a:1"], metrics: {path: /metrics, interval: 100ms, staleAfter: 100ms, timeout: 1s}}}`)},
	{"pool metrics default interval", doc("Backend", `{schema: OpenAI, url: "http://vllm/v1", pool: {endpoints: ["a:1"], metrics: {staleAfter: 1s}}}`)},
	{"route bare 429", doc("ModelRoute", `{models: ["gpt-*", "?x", "meta/llama"], backendRefs: [{name: b, weight: 0, priority: 0}], retry: {attempts: 10, retryOn: [429, "429", 5xx, connect-failure, timeout]}}`)},
	{"route backoff max defaulted", doc("ModelRoute", `{`+models+`, retry: {attempts: 1, backoff: {base: 5s}}}`)},
	{"route backoff equal", doc("ModelRoute", `{`+models+`, retry: {attempts: 1, backoff: {base: 1s, max: 1000ms}}}`)},
	{"route many backends", doc("ModelRoute", `{models: [m], backendRefs: `+backendRefs(64)+`}`)},
	{"key secret", doc("APIKey", `{secretRef: {name: s}, subject: " alice", hash: "", roles: [a], expiresAt: "2030-01-01T00:00:00Z", disabled: true}`)},
	{"key hash upper-case", doc("APIKey", `{hash: "sha256:ABCDEF0000000000000000000000000000000000000000000000000000000000", subject: a}`)},
	{"access jwt", doc("AccessPolicy", `{authentication: {apiKeys: {}, jwt: {providers: [{issuer: a, jwksURI: "https://a/jwks", audiences: [x], claims: {team: org.team}}, {issuer: b, jwks: "{}"}]}}, default: Allow, rules: [{name: r, from: {teams: [t]}, allow: {models: ["*"], endpoints: [chat, messages], regions: [eu]}, when: "true"}]}`)},
	{"rate limit", doc("RateLimitPolicy", `{targetRefs: [{kind: ModelRoute, name: r}], rules: [{name: r, key: k, costExpression: "", limit: {volumeUnits: Requests, volume: 1, timeUnit: Month, timeValue: 0}}, {name: s, key: k, costExpression: usage.total, limit: {volumeUnits: Tokens, volume: 9223372036854775807, timeUnit: Second, timeValue: 10000}, shadowMode: true, trafficMatcher: {celMatcher: "true"}}], storage: {type: Redis, redis: {url: "rediss://u:p@redis:6380/0"}}, failureMode: FailClosed, emitRateLimitResponseHeaders: true, outputTokenEstimate: 0}`)},
	{"processors", doc("PayloadProcessor", `{phase: PostRouting, processors: [{name: a.b_c-1, type: InProcess, failureMode: FailOpen, timeout: 60s, inspect: [User, Tool, System, Assistant], inProcess: {setHeaders: [{name: x-team, value: principal.team}], setBodyFields: [{name: metadata.model, value: "'x'"}], removeHeaders: [x-a], removeBodyFields: [models, streaming.x]}}, {name: f, inProcess: {contentFilter: {deny: [{word: "two words"}, {regex: "(?i)x"}], allow: [{word: ok}], action: Redact, scope: [Request, Response]}}}, {name: s, inProcess: {signatures: {action: Throttle, penalty: 1s, anomalies: {halfLife: 1m, rateFactor: 1.5, tokenFactor: 2, duplicatePrompts: 0}}}}, {name: i, inProcess: {promptInjection: {action: Flag, threshold: 0}}}, {name: e, type: ExtProcess, extProcess: {protocol: ExtProc, backendRef: {name: b, namespace: ns}, scope: [Response]}}]}`)},
	{"cache semantic", doc("CachePolicy", `{mode: Semantic, semantic: {backendRef: {name: e}, model: m, threshold: 1, timeout: 1s}, scope: Global, ttl: 1h, maxEntries: 0, storage: {type: Memory}, targetRefs: [{kind: ModelRoute, name: r}]}`)},
	{"cache empty", doc("CachePolicy", `{}`)},
}

// goRejects reports whether the Go side (strict loading, then Default and Validate)
// rejects the document, and why.
func goRejects(t *testing.T, text string) (bool, string) {
	t.Helper()
	set, err := resource.LoadBytes("case.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		return true, err.Error()
	}
	objs := objects(set)
	if len(objs) != 1 {
		t.Fatalf("loaded %d objects", len(objs))
	}
	objs[0].Default()
	if errs := objs[0].Validate(); len(errs) > 0 {
		return true, errs.ToAggregate().Error()
	}
	return false, ""
}

func TestInvalid(t *testing.T) {
	all := crds(t)
	seen := map[string]bool{}
	for _, tc := range invalid {
		if seen[tc.name] {
			t.Fatalf("two cases named %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			if bad, _ := goRejects(t, tc.doc); !bad {
				t.Errorf("the Go validation accepts it; the CRD must not be stricter:\n%s", tc.doc)
			}
			obj := decode(t, []byte(tc.doc))
			errs := all[obj["kind"].(string)].Validate(context.Background(), obj)
			got := crdtest.ErrString(errs)
			if len(errs) == 0 {
				t.Fatalf("the CRD accepts it:\n%s", tc.doc)
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("errors do not contain %q:\n%s", tc.want, got)
			}
		})
	}
}

func TestValid(t *testing.T) {
	all := crds(t)
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			if bad, why := goRejects(t, tc.doc); bad {
				t.Fatalf("not a valid case, the Go validation rejects it: %s", why)
			}
			obj := decode(t, []byte(tc.doc))
			if errs := all[obj["kind"].(string)].Validate(context.Background(), obj); len(errs) > 0 {
				t.Errorf("the CRD rejects it:\n%s", crdtest.ErrString(errs))
			}
			// And as the Go types write it, before and after Default.
			set, err := resource.LoadBytes("case.yaml", []byte(tc.doc), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objects(set) {
				checkTyped(t, all, o)
			}
		})
	}
}
