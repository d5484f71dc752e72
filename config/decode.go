package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// position is a 1-based line and column in the source text.
type position struct {
	line, col int
}

// source records where the values of a parsed Config came from.
type source struct {
	name   string              // file name used in errors
	text   []byte              // the YAML text parsed, for Text
	pos    map[string]position // schema path -> position of its YAML node
	failed []string            // schema paths whose values could not be decoded
}

// at returns the position of path, or of its nearest ancestor that has one.
func (s *source) at(path string) position {
	if s == nil {
		return position{}
	}
	for {
		if p, ok := s.pos[path]; ok {
			return p
		}
		if path == "" {
			return position{}
		}
		path = parentPath(path)
	}
}

// nodeDecoder is implemented by schema types that decode themselves from
// YAML, such as CPUAffinity. They report problems through d.errorf.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

// maxNodes bounds the work one document may cause, so that aliases cannot
// expand a small file into an enormous tree.
const maxNodes = 1 << 20

// decoder fills a Config from a YAML node tree, collecting every error.
type decoder struct {
	src     *source
	baseDir string // directory that relative conf:"path" values are joined to
	errs    ErrorList
	budget  int // nodes left before the document counts as too large
	// via is the alias (*name) whose anchored value is being decoded, the
	// outermost one when aliases nest; nil outside aliases. Errors and
	// positions inside it point at the alias, where the value is used, and
	// name the anchor: one anchor used twice can be wrong in one place only.
	via *yaml.Node
}

// where returns the position that errors and validation report for node n:
// n's own, or inside an alias the alias's.
func (d *decoder) where(n *yaml.Node) position {
	if d.via != nil {
		return position{d.via.Line, d.via.Column}
	}
	return position{n.Line, n.Column}
}

// through sets via to alias while the value it stands for is decoded, unless an
// outer alias is already being decoded; the returned function restores it.
func (d *decoder) through(alias *yaml.Node) func() {
	if alias == nil || alias.Kind != yaml.AliasNode || d.via != nil {
		return func() {}
	}
	d.via = alias
	return func() { d.via = nil }
}

// errorf records that the value at schema path, written at node n, could
// not be decoded; validation then stays silent about that path.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.keyErrorf(n, path, format, args...)
	d.src.failed = append(d.src.failed, path)
}

// keyErrorf records a problem with a key of the mapping at schema path, such
// as an unknown or duplicate key, which leaves the mapping's other values
// intact.
func (d *decoder) keyErrorf(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if d.via != nil && d.via.Alias != nil {
		msg += fmt.Sprintf(" (written at line %d, column %d, in the value of &%s)", n.Line, n.Column, d.via.Value)
	}
	at := d.where(n)
	d.errs = append(d.errs, &Error{
		File: d.src.name, Line: at.line, Column: at.col,
		Path: path, Msg: msg,
	})
}

// describe names what a node holds, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "an empty value"
		}
		return strconv.Quote(n.Value)
	}
	return "an unsupported YAML node"
}

// isNull reports whether n is an empty value (null, ~ or nothing).
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

var durationType = reflect.TypeFor[time.Duration]()

// value decodes n into v, which is addressable, at schema path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string, o options) {
	defer d.through(n)()
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.errorf(n, path, "document is too large: more than %d values (counting each use of an alias in full)", maxNodes)
			// The rest of the document is not decoded: validating what
			// was would report every value left out as missing.
			d.src.failed = append(d.src.failed, "")
		}
		return
	}
	d.src.pos[path] = d.where(n)
	if nd, ok := v.Addr().Interface().(nodeDecoder); ok {
		nd.decodeNode(d, n, path)
		return
	}
	switch {
	case v.Type() == durationType:
		d.duration(n, v, path)
		return
	case o.size:
		d.size(n, v, path)
		return
	case o.auto:
		d.autoInt(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Pointer:
		p := newDefaulted(v.Type().Elem())
		v.Set(p)
		d.value(n, p.Elem(), path, o)
	case reflect.Slice:
		d.slice(n, v, path, o)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.String:
		d.str(n, v, path, o)
	case reflect.Int, reflect.Int64:
		d.integer(n, v, path)
	case reflect.Bool:
		d.boolean(n, v, path)
	default:
		panic("config: unsupported schema type " + v.Type().String())
	}
}

// pair is one key and value of a mapping.
// via is the alias a merge key (<<) took it through, if any.
type pair struct{ key, value, via *yaml.Node }

// pairs returns the entries of mapping n with YAML merge keys ("<<")
// expanded: entries written in n come first, then merged ones that n does
// not override. Duplicate keys written in n are reported and dropped.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var out []pair
	var merged []pair
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.keyErrorf(k, path, "expected a key, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(val, path)...)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.keyErrorf(k, path, "duplicate key %q (first at line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{key: k, value: val})
	}
	for _, p := range merged {
		if _, ok := seen[p.key.Value]; !ok {
			seen[p.key.Value] = p.key
			out = append(out, p)
		}
	}
	return out
}

// mergeSources returns the entries that a merge key's value contributes: a
// mapping, or a list of mappings where earlier ones win.
func (d *decoder) mergeSources(n *yaml.Node, path string) []pair {
	alias := n
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return viaAlias(d.pairs(n, path), alias)
	case yaml.SequenceNode:
		var out []pair
		for _, m := range n.Content {
			item := m
			for m.Kind == yaml.AliasNode && m.Alias != nil {
				m = m.Alias
			}
			if m.Kind != yaml.MappingNode {
				d.errorf(m, path, "merge key (<<) expects a mapping or a list of mappings, got %s", describe(m))
				continue
			}
			out = append(out, viaAlias(d.pairs(m, path), item)...)
		}
		return viaAlias(out, alias)
	}
	d.errorf(n, path, "merge key (<<) expects a mapping or a list of mappings, got %s", describe(n))
	return nil
}

// viaAlias marks the pairs a merge key took through alias, when it is one; an
// outer alias, marking last, wins over an inner one.
func viaAlias(ps []pair, alias *yaml.Node) []pair {
	if alias.Kind != yaml.AliasNode {
		return ps
	}
	for i := range ps {
		ps[i].via = alias
	}
	return ps
}

// structure decodes a mapping into struct v. Keys that are not fields are
// reported with the nearest field name as a suggestion; absent keys keep
// their current (default) values, and so does an empty value.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	for _, p := range d.pairs(n, path) {
		d.field(p, fields, v, path)
	}
}

// field decodes one entry of a mapping into the field of struct v it names.
func (d *decoder) field(p pair, fields []field, v reflect.Value, path string) {
	defer d.through(p.via)()
	i := 0
	for i < len(fields) && fields[i].name != p.key.Value {
		i++
	}
	if i == len(fields) {
		d.keyErrorf(p.key, path, "unknown key %q%s", p.key.Value, didYouMean(p.key.Value, fieldNames(v.Type())))
		return
	}
	f := fields[i]
	d.value(p.value, v.Field(f.index), joinPath(path, f.name), f.opts)
}

// slice decodes a list. A single scalar stands for a list of one when the
// elements are scalars; an empty value is an empty list.
func (d *decoder) slice(n *yaml.Node, v reflect.Value, path string, o options) {
	elem := v.Type().Elem()
	var items []*yaml.Node
	switch {
	case isNull(n):
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		return
	case n.Kind == yaml.SequenceNode:
		items = n.Content
	case n.Kind == yaml.ScalarNode && elem.Kind() != reflect.Struct:
		items = []*yaml.Node{n}
	default:
		d.errorf(n, path, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, item := range items {
		e := newDefaulted(elem).Elem()
		d.value(item, e, fmt.Sprintf("%s[%d]", path, i), o)
		s.Index(i).Set(e)
	}
	v.Set(s)
}

// mapping decodes a mapping with string keys and string values.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	m := reflect.MakeMap(v.Type())
	v.Set(m)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	for _, p := range d.pairs(n, path) {
		e := reflect.New(v.Type().Elem()).Elem()
		restore := d.through(p.via)
		d.value(p.value, e, joinPath(path, p.key.Value), options{})
		restore()
		m.SetMapIndex(reflect.ValueOf(p.key.Value), e)
	}
}

// str decodes any scalar as its text; an empty value is "". Paths are made
// absolute against the base directory.
func (d *decoder) str(n *yaml.Node, v reflect.Value, path string, o options) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a string, got %s", describe(n))
		return
	}
	s := n.Value
	if isNull(n) {
		s = ""
	}
	if o.path && s != "" && !filepath.IsAbs(s) && !(o.log && (s == LogStdout || s == LogStderr)) {
		s = filepath.Join(d.baseDir, s)
	}
	v.SetString(s)
}

// integer decodes a YAML integer (decimal, 0x, 0o or 0b) that fits v.
func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.errorf(n, path, "expected an integer, got %s", describe(n))
		return
	}
	i, err := strconv.ParseInt(n.Value, 0, 64)
	if err != nil || v.OverflowInt(i) {
		d.errorf(n, path, "integer %s is out of range", n.Value)
		return
	}
	v.SetInt(i)
}

// boolean decodes a YAML boolean; strings such as "yes" are rejected.
func (d *decoder) boolean(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		d.errorf(n, path, "expected true or false, got %s", describe(n))
		return
	}
	v.SetBool(strings.EqualFold(n.Value, "true"))
}

// autoInt decodes "auto" as 0 or a positive integer as itself.
func (d *decoder) autoInt(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && n.Value == "auto" {
		v.SetInt(0)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err == nil && i > 0 && !v.OverflowInt(i) {
			v.SetInt(i)
			return
		}
	}
	d.errorf(n, path, "expected a positive integer or \"auto\", got %s", describe(n))
}

// duration decodes a time.Duration such as "5s" or "1m30s".
func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	d.withUnit(n, v, path, durationHint, func(s string) (int64, error) {
		t, err := parseDuration(s)
		return int64(t), err
	})
}

// size decodes a conf:"size" byte count such as "64KiB".
func (d *decoder) size(n *yaml.Node, v reflect.Value, path string) {
	d.withUnit(n, v, path, sizeHint, parseSize)
}

// withUnit decodes a scalar written with a unit, such as a duration or a
// size, with parse; hint describes the expected form.
func (d *decoder) withUnit(n *yaml.Node, v reflect.Value, path, hint string, parse func(string) (int64, error)) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n, path, "%s, got %s", hint, describe(n))
		return
	}
	i, err := parse(n.Value)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return
	}
	v.SetInt(i)
}
