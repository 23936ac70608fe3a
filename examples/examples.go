// Package examples embeds the example resource files, so `sluice serve` can run the
// quickstart with no files on disk. The files themselves are the documentation; every one
// is loaded by a test.
package examples

import _ "embed"

// Quickstart is quickstart.yaml.
//
//go:embed quickstart.yaml
var Quickstart []byte

// QuickstartName is the name errors and logs give the embedded file.
const QuickstartName = "examples/quickstart.yaml (embedded)"
