// Package config holds gale's configuration schema, its defaults, a strict
// YAML decoder and the validation that runs before a configuration is used.
//
// Every problem found in a configuration file is reported as an *Error that
// carries the file name, line and column of the offending node, and all
// problems are reported together as an ErrorList rather than stopping at the
// first one. Decoding is strict: unknown keys (with a "did you mean"
// suggestion), values of the wrong type, malformed durations and sizes,
// duplicate keys and multiple YAML documents are all errors.
//
// The schema is a tree of plain Go structs. Field names in YAML come from the
// `yaml` struct tag; a second tag, `conf`, carries options the decoder,
// encoder and validator share:
//
//	size     an int64 byte count written as 64KiB, 10MiB, 1GB or plain bytes
//	auto     an int where 0 is written and read as "auto"
//	path     a file system path, made absolute against the config file's directory
//	action   a route action; a route must have exactly one non-nil action
//	enum=a|b the only accepted string values
//
// Adding a field is a matter of adding it to a struct with both tags, giving
// it a default in the struct's SetDefaults method, documenting it in
// docs/config.md (a test fails otherwise) and, if needed, checking it in
// validate.go.
package config
