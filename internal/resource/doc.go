// Package resource loads Sluice's configuration resources from YAML files (with reload)
// and holds the result, the resource Set, which is the input of the translator.
//
// # Files
//
// Load takes files and directories, the way `kubectl apply -f` does. A directory stands
// for every *.yaml and *.yml file below it, recursively, in lexical order; names starting
// with "." (files and directories) are skipped, which also skips the ..data and
// ..TIMESTAMP entries of a mounted Kubernetes ConfigMap while its visible file symlinks
// are read. Symbolic links to files are followed; symbolic links to directories inside a
// walked directory are not (no loops). A file named explicitly is read whatever its
// extension. A file reached twice (repeated -f, or a file inside a given directory) is
// read once.
//
// A file holds any number of YAML documents separated by lines starting with "---"
// (trailing spaces and a comment are fine); a line starting with "..." also ends a
// document. Documents that are empty or hold only comments are skipped and not
// counted: Source.Doc is the 1-based index of a document among the non-empty ones.
//
// # Environment variables
//
// Before a document is parsed, ${VAR} in its raw text, comments included, is replaced
// by the value of the environment variable VAR, and ${VAR:-default} by the default when
// VAR is unset or empty. VAR matches [A-Za-z_][A-Za-z0-9_]*; the default is literal text
// up to the first "}" and cannot contain "${". An unset variable without a default, or
// anything else after "${", is an error that names the variable and the line, never a
// value. "$${" writes a literal "${"; any other "$" is left alone. Values are inserted
// as they are, so quote them in the YAML when they may contain YAML syntax.
//
// # Documents
//
// Each document needs apiVersion and kind; the known kinds are sluice.dev/v1alpha1
// Backend and ModelRoute and v1 Secret. Decoding is strict and case-sensitive: an
// unknown field at any depth and a duplicate key are errors. metadata.name is required
// and metadata.namespace defaults to "default". Defaults and validation of the kinds
// themselves are the translator's business, not the loader's. A Secret's stringData is
// merged into data (stringData wins) and cleared, as the Kubernetes API server does.
// Two documents with the same kind, namespace and name are an error naming both.
//
// Load reports every problem it finds, not just the first, as a *LoadError whose
// entries are sorted by file and document. Messages never contain the value of an
// environment variable or of a Secret.
//
// # Watching
//
// Watch tells when files may have changed so that the caller can Load again. It watches
// directories, not files, so that editors' rename-on-save and ConfigMap symlink swaps
// are seen, and it coalesces bursts of events into one signal. Like Load, it ignores
// hidden names, except the ..-prefixed ones of a ConfigMap mount.
package resource
