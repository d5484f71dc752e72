package config

import (
	"reflect"
	"strings"
	"sync"
)

// options are the parsed `conf` struct tag of one field.
type options struct {
	size   bool     // int64 byte count written with a unit
	auto   bool     // int where 0 is written "auto"
	path   bool     // file system path, made absolute against the base directory
	log    bool     // like path, but "stdout" and "stderr" stay as written
	action bool     // route action pointer
	enum   []string // accepted string values, when not empty
}

// parseOptions parses a `conf` struct tag.
func parseOptions(tag string) options {
	var o options
	for _, opt := range strings.Split(tag, ",") {
		switch {
		case opt == "size":
			o.size = true
		case opt == "auto":
			o.auto = true
		case opt == "path":
			o.path = true
		case opt == "logpath":
			o.path, o.log = true, true
		case opt == "action":
			o.action = true
		case strings.HasPrefix(opt, "enum="):
			o.enum = strings.Split(strings.TrimPrefix(opt, "enum="), "|")
		}
	}
	return o
}

// field describes one YAML-visible struct field.
type field struct {
	name      string // YAML key
	index     int    // position in the struct
	omitEmpty bool
	opts      options
}

var fieldCache sync.Map // reflect.Type -> []field; written once per type

// fieldsOf lists the YAML-visible fields of struct type t in declaration
// order. Unexported fields and fields tagged yaml:"-" are left out.
func fieldsOf(t reflect.Type) []field {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]field)
	}
	var fields []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if !sf.IsExported() || tag == "-" || tag == "" {
			continue
		}
		name, rest, _ := strings.Cut(tag, ",")
		fields = append(fields, field{
			name:      name,
			index:     i,
			omitEmpty: strings.Contains(rest, "omitempty"),
			opts:      parseOptions(sf.Tag.Get("conf")),
		})
	}
	fieldCache.Store(t, fields)
	return fields
}

// fieldNames lists the YAML keys of struct type t.
func fieldNames(t reflect.Type) []string {
	fields := fieldsOf(t)
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return names
}

// joinPath extends a schema path with a key.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// parentPath removes the last key or index from a schema path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// within reports whether path is p itself or lies below it.
func within(path, p string) bool {
	if !strings.HasPrefix(path, p) {
		return false
	}
	rest := path[len(p):]
	return rest == "" || p == "" || rest[0] == '.' || rest[0] == '['
}

// defaulter is implemented by schema structs that have defaults; the decoder
// calls SetDefaults on every such struct it allocates before filling it in.
type defaulter interface {
	SetDefaults()
}

// newDefaulted returns a pointer to a new value of type t with its defaults
// set, if it has any.
func newDefaulted(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	if d, ok := p.Interface().(defaulter); ok {
		d.SetDefaults()
	}
	return p
}
