package config

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// nodeEncoder is implemented by schema types that render themselves as YAML,
// the counterpart of nodeDecoder.
type nodeEncoder interface {
	encodeNode() *yaml.Node
}

// MarshalYAML renders the configuration as a YAML node tree with every field
// present, durations and sizes written with units and 0 workers written
// "auto". Parsing the result yields an equal Config.
func (c *Config) MarshalYAML() (any, error) {
	return encode(reflect.ValueOf(c).Elem(), options{}), nil
}

// String renders the effective configuration as YAML, defaults included.
func (c *Config) String() string {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(encode(reflect.ValueOf(c).Elem(), options{})); err != nil {
		// Encoding a node tree built from strings cannot fail; a failure is
		// a bug in encode.
		panic("config: encoding YAML: " + err.Error())
	}
	if err := enc.Close(); err != nil {
		panic("config: encoding YAML: " + err.Error())
	}
	return b.String()
}

// scalar returns a scalar node with the given YAML tag.
func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// encode renders v, whose field options are o, as a YAML node.
func encode(v reflect.Value, o options) *yaml.Node {
	if v.CanAddr() {
		if ne, ok := v.Addr().Interface().(nodeEncoder); ok {
			return ne.encodeNode()
		}
	} else if ne, ok := v.Interface().(nodeEncoder); ok { // a map value (value receiver)
		return ne.encodeNode()
	}
	switch {
	case v.Type() == durationType:
		return scalar("!!str", formatDuration(time.Duration(v.Int())))
	case o.size:
		s := formatSize(v.Int())
		if _, err := strconv.Atoi(s); err == nil {
			return scalar("!!int", s)
		}
		return scalar("!!str", s)
	case o.auto && v.Int() == 0:
		return scalar("!!str", "auto")
	}
	switch v.Kind() {
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode}
		for _, f := range fieldsOf(v.Type()) {
			fv := v.Field(f.index)
			if f.omitEmpty && fv.IsZero() {
				continue
			}
			m.Content = append(m.Content, scalar("!!str", f.name), encode(fv, f.opts))
		}
		if len(m.Content) == 0 {
			m.Style = yaml.FlowStyle
		}
		return m
	case reflect.Pointer:
		if v.IsNil() {
			return scalar("!!null", "null")
		}
		return encode(v.Elem(), o)
	case reflect.Slice:
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		if v.Type().Elem().Kind() != reflect.Struct || v.Len() == 0 {
			seq.Style = yaml.FlowStyle
		}
		for i := 0; i < v.Len(); i++ {
			seq.Content = append(seq.Content, encode(v.Index(i), o))
		}
		return seq
	case reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			m.Content = append(m.Content, scalar("!!str", k.String()), encode(v.MapIndex(k), options{}))
		}
		if len(m.Content) == 0 {
			m.Style = yaml.FlowStyle
		}
		return m
	case reflect.String:
		return scalar("!!str", v.String())
	case reflect.Int, reflect.Int64:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10))
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool()))
	}
	panic("config: unsupported schema type " + v.Type().String())
}
