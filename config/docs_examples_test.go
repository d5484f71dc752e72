package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// yamlFence matches one fenced YAML example of a Markdown page.
var yamlFence = regexp.MustCompile("(?ms)^```yaml\n(.*?)^```")

// completeExample turns a documentation example into a whole configuration: a
// fragment that is a route list is put under a server, and an example without
// servers or tcp entries (upstreams alone, say) gets a server to be valid.
func completeExample(t *testing.T, text string) []byte {
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return []byte(text) // let Parse report the syntax error with its position
	}
	if doc == nil {
		doc = map[string]any{}
	}
	route := map[string]any{"match": map[string]any{"path": "/"}, "respond": map[string]any{"status": 200}}
	switch _, servers := doc["servers"]; {
	case servers:
	case doc["routes"] != nil:
		doc["servers"] = []any{map[string]any{"listen": []any{"127.0.0.1:0"}, "routes": doc["routes"]}}
		delete(doc, "routes")
	case doc["tcp"] == nil:
		doc["servers"] = []any{map[string]any{"listen": []any{"127.0.0.1:0"}, "routes": []any{route}}}
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forgiven reports whether a problem is one an example may have on purpose: a
// file it names (a certificate, a static root, a log directory) that does not
// exist here, or routes left out of a server that shows other keys.
func forgiven(e *Error) bool {
	return strings.Contains(e.Msg, "no such file or directory") ||
		strings.HasSuffix(e.Path, ".routes") && e.Msg == "at least one route is required"
}

// TestDocsExamplesAreValid decodes and validates every YAML example of docs/,
// completed into a whole configuration, so that an example with a syntax
// error, an unknown key, a value of the wrong type or out of range fails here
// instead of in an operator's gale check. Only files the examples name that
// do not exist on this machine, and routes left out, are forgiven.
func TestDocsExamplesAreValid(t *testing.T) {
	pages, err := filepath.Glob("../docs/*.md")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no pages in ../docs: %v", err)
	}
	examples := 0
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range yamlFence.FindAllStringSubmatchIndex(string(text), -1) {
			examples++
			block := string(text[m[2]:m[3]])
			line := 1 + strings.Count(string(text[:m[2]]), "\n")
			name := filepath.Base(page) + " example " + strconv.Itoa(i+1) + " (line " + strconv.Itoa(line) + ")"
			_, err := Parse(name, completeExample(t, block))
			var list ErrorList
			if err != nil && !errors.As(err, &list) {
				t.Errorf("%s: %v", name, err)
				continue
			}
			for _, e := range list {
				if !forgiven(e) {
					t.Errorf("%v\n%s", e, block)
				}
			}
		}
	}
	if examples < 5 {
		t.Fatalf("found only %d YAML examples in docs/; the search is broken", examples)
	}
}
