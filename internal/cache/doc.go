// Package cache is the groundwork of Sluice's response cache (the CachePolicy
// resource): a canonical request [Key], the cached [Entry], two [Store]s (an
// in-process LRU, [Memory], and [Redis]) and the replay of a cached,
// non-streamed answer as the SSE events a streaming client expects
// ([ReplayOpenAIChat], [ReplayOpenAICompletion], [ReplayAnthropic]).
//
// # Keys
//
// A key is a SHA-256 over the endpoint, the tenant scope (for example
// "team:research", "subject:alice" or "global") and a canonical form of the
// JSON body, so that field order, whitespace and the spelling of numbers (1,
// 1.0, 1e0) do not matter but any change to what the model sees does. Fields
// that change delivery, accounting or attribution but not the answer are
// dropped from the top level of the body; see [Key] for the list and why.
//
// # Entries
//
// An [Entry] is a whole, non-streamed answer in the client's wire format. A
// streaming client is served the same entry replayed as SSE, so one upstream
// answer serves both kinds of client. Stores hand out shared entries: callers
// must not modify an entry after Set or one returned by Get.
package cache
