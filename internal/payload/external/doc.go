// Package external is the client side of external payload processors: services outside the
// gateway that see, and may rewrite or block, a request and its response as one step of the
// payload processor chain.
//
// One interface, [Client] and its per-exchange [Session], fronts two protocols, chosen by
// [Config].Protocol. Every Session call takes a context whose deadline is the processor's
// timeout and returns promptly (with the context's error) when it passes, whether or not the
// processor ever answers. Errors are plain Go errors: the caller decides whether a failure
// lets the exchange through (fail open) or stops it (fail closed). No error message holds a
// header value or a body.
//
// Credentials are never sent to a processor: Authorization, Proxy-Authorization, X-Api-Key,
// Api-Key, Cookie, Set-Cookie and every header egress.IsCredentialHeader names are dropped
// from what the processor sees (they stay on the exchange itself). Config.Header, the
// operator's own credential for the processor, is sent as is and never logged.
//
// # ExtProc: Envoy's External Processing protocol (gRPC)
//
// Each Session is one bidirectional envoy.service.ext_proc.v3.ExternalProcessor/Process
// stream; all Sessions of a Client share one multiplexed *grpc.ClientConn. The Session sends,
// in order and each only when the caller asks for that phase, waiting for the matching answer
// before returning:
//
//   - request_headers: HttpHeaders{headers, end_of_stream: false} with the pseudo-headers
//     :method, :path, :scheme ("https" when X-Forwarded-Proto says so, else "http") and
//     :authority (from Host, when present), then the other headers, lower-cased, one
//     HeaderValue per value, each value in raw_value as current Envoy sends them. Host is
//     only sent as :authority. end_of_stream is always false: request_body always follows.
//   - request_body: HttpBody{body: the whole body, end_of_stream: true}.
//   - response_headers: HttpHeaders{headers with :status, end_of_stream: false}.
//   - response_body: HttpBody{body: one chunk, end_of_stream: on the last chunk}, once per
//     ResponseBody call (a whole answer is one chunk with end_of_stream: true, as Envoy's
//     STREAMED body mode sends it).
//
// Who the exchange belongs to travels in ProcessingRequest.attributes["sluice"], a Struct with
// the string fields requestId, subject, team, model, endpoint and route; it rides on the first
// message of the stream and again on response_headers (as Envoy sends request and response
// attributes). protocol_config and metadata_context are not sent.
//
// Answers are handled as Envoy's ext_proc filter handles them:
//
//   - Each phase expects its own answer (request_headers → request_headers HeadersResponse,
//     request_body → request_body BodyResponse, ...); any other answer is a protocol error
//     (errors.Is(err, ErrProtocol)), and so is a streamed_response body mutation or a
//     streamed_immediate_response (FULL_DUPLEX_STREAMED / GRPC body modes are not spoken).
//   - immediate_response at any point becomes Result.Immediate: the status is
//     HttpStatus.code (200 when unset or outside 200-599, as Envoy does), Header comes from
//     its set_headers, Body from its body (nil when empty, leaving the caller free to build
//     one) and Details from details. Nothing more is sent on the stream afterwards.
//   - CommonResponse.header_mutation: remove_headers then set_headers, in order, as Envoy
//     applies them. A set_headers entry takes raw_value, or value when raw_value is empty
//     (both set is an error, as in Envoy). The default is to overwrite; append_action
//     ADD_IF_ABSENT and OVERWRITE_IF_EXISTS are judged against the headers this Session saw
//     for that direction (with earlier mutations applied), and appending (the deprecated
//     append: true) joins the values with ", ". The outcome is flattened into
//     Result.SetHeaders / RemoveHeaders, which never name the same header, so the order the
//     caller applies them in does not matter. Pseudo-headers and Host are ignored, as
//     Envoy's default mutation rules ignore routing headers. An invalid name or value is a
//     protocol error.
//   - CommonResponse.body_mutation on a body answer: body replaces the body (or chunk),
//     clear_body gives an empty non-nil Result.Body.
//   - status CONTINUE_AND_REPLACE on a headers answer carries its mutations, replaces the
//     body with body_mutation when there is one (Content-Length is then removed, as Envoy
//     does), and, as in Envoy, ends processing of that direction: later body calls for it
//     return an empty Result without sending anything. body_mutation on a headers answer is
//     ignored otherwise (as Envoy ignores it).
//   - A message with no response in it (say, only override_message_timeout) is skipped; the
//     call goes on waiting within its own deadline. mode_override, dynamic_metadata and
//     trailers are ignored.
//   - The processor ending the stream with an OK status (its handler returned; the client
//     sees io.EOF) is Envoy's "processor is done": the current and every later phase pass
//     through with an empty Result. Ending it with any other status is an error.
//
// After a call fails (deadline, transport error, protocol error) the stream is cancelled and
// every later call of the Session fails too, without contacting the processor: the caller's
// fail-open/fail-closed policy then decides the rest of the exchange, as Envoy ignores a
// processor for the rest of a request once a message timed out. Session.Close half-closes
// the stream (when no call is running) and cancels it, so the processor sees io.EOF or
// Canceled; a Session never outlives its Close. The stream is bound to the Session, not to
// the context given to Open, which only bounds the opening.
//
// Messages up to 64 MiB are sent and accepted (gRPC's default is 4 MiB).
//
// # HTTP: JSON webhook
//
// Stateless: RequestHeaders and ResponseHeaders make no call (they remember the headers and
// status for the body calls and return an empty Result); RequestBody makes one POST with the
// whole request body; ResponseBody makes one POST per call, so a streamed answer costs one
// round trip per chunk (SSE event). All calls share one *http.Client, whose Transport keeps
// connections alive and pools them (up to 64 idle per host); redirects are not followed and
// environment proxies are not used.
//
// The POST carries Content-Type: application/json, Config.Header, and this JSON object:
//
//	{
//	  "version":   "v1",
//	  "phase":     "request" | "response",
//	  "requestId": "…",
//	  "principal": {"subject": "…", "team": "…"},
//	  "model":     "…",
//	  "endpoint":  "chat",
//	  "route":     "…",
//	  "status":    200,          // response phase only
//	  "headers":   {"content-type": "application/json"},
//	  "body":      {…},          // the body, when it is valid JSON
//	  "bodyText":  "…",          // the body as a string, when it is not JSON (e.g. an SSE event)
//	  "end":       true          // false for a streamed chunk that is not the last
//	}
//
// headers holds the request headers (request phase) or response headers (response phase),
// names lower-cased, several values joined with ", ", credentials left out; it is omitted when
// the caller gave none. principal's fields, model, endpoint and route are omitted when empty.
// body and bodyText are both omitted when the body (or chunk) is empty; bodyText carries
// non-UTF-8 bytes as U+FFFD. end is always present and always true in the request phase.
//
// The webhook answers 2xx with this JSON object (at most 1 MiB; unknown fields are ignored):
//
//	{
//	  "action":        "allow" | "block" | "modify",
//	  "reason":        "…",                 // for logs (Immediate.Details)
//	  "status":        403,                 // block only: 200-599, default 403
//	  "setHeaders":    {"x-a": "b"},        // modify (and block: headers of the reply)
//	  "removeHeaders": ["x-c"],             // modify
//	  "body":          {…},                 // modify: the new body as JSON; block: the reply body
//	  "bodyText":      "…"                  // the same, as raw text ("" clears the body)
//	}
//
// allow passes the body through unchanged. block stops the exchange: Result.Immediate with the
// status, setHeaders as its headers (plus a Content-Type for a body), body or bodyText as its
// body, or a nil Body when neither is given so the caller builds its own error answer, and
// Details = reason. modify returns setHeaders / removeHeaders (removals first, so a header in
// both is set) and, when body or bodyText is present, the new body (or chunk); giving both
// is an error, as are a non-2xx status, an answer that is not such a JSON object, an unknown
// action and an invalid header name or value.
package external
