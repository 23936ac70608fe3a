// Package injection detects prompt-injection and jailbreak attempts in text
// sent to a model: user prompts, retrieved documents, tool results.
//
// A Detector combines three layers into one score in [0,1] (Result.Score;
// callers flag a text at DefaultThreshold) and names the strongest signals
// in Result.Reasons ("rule:ignore-previous-instructions", "classifier",
// "hidden:base64", ...):
//
//   - Normalisation (normalize.go, chunks.go) undoes obfuscation before
//     anything looks at the text: Unicode NFKC, case and diacritic folding,
//     removal of zero-width, bidi and tag characters, Cyrillic and Greek
//     look-alikes inside Latin words, leetspeak, spaced-out letters and
//     repeated-token floods. Plain ASCII, the common case, takes a fast
//     path that works on eight bytes at a time.
//   - Weighted signature rules (rules.go) over multilingual concepts
//     (vocab.go): instruction overrides, persona switches, "no
//     restrictions" role-play, system-prompt and secret extraction, fake
//     chat-template turns and delimiters, text addressed to "the AI reading
//     this", in fifteen languages (and the commonest terms in Ukrainian,
//     Vietnamese and Indonesian). A rule is a sequence of concepts, so one
//     rule covers every language.
//   - A linear classifier (logistic regression) over hashed character
//     4-grams and words of the normalised text (features.go). Texts are
//     scored in 512-byte windows, each window's weights summed and divided
//     by the square root of its feature count, and the text scores as its
//     highest window: a long benign document does not score high for its
//     length, and an attack buried in one still counts in full.
//
// The rule logit is added to the classifier's logit. The classifier was
// trained with the rule logit as a fixed offset, so it learned what the
// rules miss rather than repeating them.
//
// Encoded payloads (base64, hex, binary octets, percent-encoding, rot13,
// reversed text, Unicode tag characters, variation-selector smuggling) are
// decoded and scored as text of their own (hidden.go); tag characters that
// spell text flag on their own, since a human reviewer cannot see them.
//
// # Regenerating the model
//
// model.bin (about 256 KiB: one int8 weight per feature bucket) is produced
// deterministically by
//
//	go run ./tools/train-injection --data ../shared/evaldata --out internal/payload/injection/model.bin
//
// from the public evaluation data (only the rows evaldata.Heldout leaves
// for training) and the examples in tools/train-injection/corpus; the
// command prints training statistics and the held-out figures. Retrain
// after changing normalisation, features, vocabulary or rules, since the
// classifier learned on top of them; ParseModel rejects a model built for
// a different feature set.
package injection
