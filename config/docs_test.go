package config

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// schemaField is one YAML key of the schema with its rendered default.
type schemaField struct {
	path string // like servers[].routes[].static.root
	leaf bool   // a value rather than a mapping or a list of mappings
	def  string // the default as YAML, for leaves
}

// schemaFields walks v, a value whose lists of structs hold one defaulted
// element and whose action pointers are set, and lists every YAML key.
func schemaFields(t *testing.T, v reflect.Value, path string) []schemaField {
	var out []schemaField
	for _, f := range fieldsOf(v.Type()) {
		fv, fp := v.Field(f.index), joinPath(path, f.name)
		if fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				t.Fatalf("%s: set every pointer in the walked value", fp)
			}
			fv = fv.Elem()
		}
		_, custom := fv.Addr().Interface().(nodeEncoder)
		switch {
		case custom || fv.Type() == durationType:
		case fv.Kind() == reflect.Struct:
			out = append(out, schemaField{path: fp})
			out = append(out, schemaFields(t, fv, fp)...)
			continue
		case fv.Kind() == reflect.Map && fv.Type().Elem().Kind() == reflect.Pointer:
			out = append(out, schemaField{path: fp, leaf: true, def: "{}"})
			if fv.Len() != 1 {
				t.Fatalf("%s: the walked value needs exactly one entry", fp)
			}
			iter := fv.MapRange()
			iter.Next()
			out = append(out, schemaFields(t, iter.Value().Elem(), fp+".NAME")...)
			continue
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			out = append(out, schemaField{path: fp, def: "required"})
			if fv.Len() != 1 {
				t.Fatalf("%s: the walked value needs exactly one element", fp)
			}
			out = append(out, schemaFields(t, fv.Index(0), fp+"[]")...)
			continue
		}
		b, err := yaml.Marshal(encode(fv, f.opts))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, schemaField{path: fp, leaf: true, def: strings.TrimSpace(string(b))})
	}
	return out
}

// fullSchema is a Config in which every list of structs has one defaulted
// element, every map of groups one defaulted entry (walked as NAME) and every
// action and optional section is set, so that a walk reaches every field.
func fullSchema() *Config {
	c := New()
	r := Route{Respond: &Respond{}, Static: &Static{}, Proxy: &Proxy{}, WebSocket: &WebSocket{}, PubSub: &PubSub{}}
	r.Respond.SetDefaults()
	r.Static.SetDefaults()
	r.Proxy.SetDefaults()
	r.WebSocket.SetDefaults()
	r.PubSub.SetDefaults()
	r.Proxy.Upstreams = []UpstreamServer{{Weight: 1}}
	r.Proxy.TLS = &UpstreamTLS{}
	r.Proxy.TLS.SetDefaults()
	var s Server
	s.SetDefaults()
	s.Routes = []Route{r}
	tl := &TLS{}
	tl.SetDefaults()
	tl.Certificates = []Certificate{{}}
	tl.ACME = &ACME{}
	tl.ACME.SetDefaults()
	s.TLS = tl
	c.Servers = []Server{s}
	var t TCP
	t.SetDefaults()
	c.TCP = []TCP{t}
	u := &Upstream{}
	u.SetDefaults()
	u.Servers = []UpstreamServer{{Weight: 1}}
	u.HealthCheck = &HealthCheck{}
	u.HealthCheck.SetDefaults()
	u.OutlierDetection = &OutlierDetection{}
	u.OutlierDetection.SetDefaults()
	u.CircuitBreaker = &CircuitBreaker{}
	u.CircuitBreaker.SetDefaults()
	u.TLS = &UpstreamTLS{}
	u.TLS.SetDefaults()
	c.Upstreams = map[string]*Upstream{"NAME": u}
	return c
}

// TestDocsCoverEveryField fails when docs/config.md has no table row for a
// schema field, has a row for a key the schema does not have (renamed or
// removed), or when a row's default differs from the code's default.
func TestDocsCoverEveryField(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := make(map[string]string) // key path -> default cell
	for line := range strings.SplitSeq(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		rows[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.TrimSpace(cells[3])
	}
	fields := schemaFields(t, reflect.ValueOf(fullSchema()).Elem(), "")
	if len(fields) < 40 {
		t.Fatalf("walked only %d fields; the walk is broken", len(fields))
	}
	known := make(map[string]bool, len(fields))
	for _, f := range fields {
		known[f.path] = true
	}
	for key := range rows {
		if !known[key] {
			t.Errorf("docs/config.md has a row for `%s`, which is not a key of the schema", key)
		}
	}
	for _, f := range fields {
		cell, ok := rows[f.path]
		switch {
		case !ok:
			t.Errorf("docs/config.md has no row for `%s`", f.path)
		case !f.leaf:
			if f.def == "required" && cell != "required" {
				t.Errorf("`%s`: default cell is %q, want \"required\"", f.path, cell)
			}
		case f.def == `""` || f.def == "[]" || f.def == "{}":
			if cell != "required" && cell != "none" && cell != "`"+f.def+"`" {
				t.Errorf("`%s`: default cell is %q, want \"required\", \"none\" or `%s`", f.path, cell, f.def)
			}
		case cell != "`"+f.def+"`":
			t.Errorf("`%s`: docs say default %s, code says `%s`", f.path, cell, f.def)
		}
	}
}
