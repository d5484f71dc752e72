package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultName is the name the embedded default configuration is parsed
// under; it appears in errors and in Config.Name.
const DefaultName = "<default>"

// Default returns the embedded default configuration: the current working
// directory served as static files, with directory listings, on
// 127.0.0.1:8080. Its root is the absolute path of the working directory at
// the time of the call.
func Default() *Config {
	c, err := parse(DefaultName, defaultYAML, workingDir())
	if err != nil {
		// The embedded file is tested; failing here means the working
		// directory itself is gone.
		panic("config: embedded default configuration is invalid: " + err.Error())
	}
	return c
}

// Load reads and parses the configuration file at path. Relative paths in
// the file (such as a static root) are resolved against the directory that
// holds the file. Errors name the file as path was written.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return LoadText(path, data)
}

// LoadText parses data as the text of the configuration file at path, which
// is not read: errors name path, and relative paths in the text are resolved
// against the directory that holds it, as Load does.
func LoadText(path string, data []byte) (*Config, error) {
	dir := filepath.Dir(path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return parse(path, data, dir)
}

// MaxFileSize is the largest configuration file Load reads. A larger one is
// not a configuration (a log, a device such as /dev/zero named by mistake),
// and reading it whole could exhaust memory.
const MaxFileSize = 64 << 20

// readFile reads the file at path, refusing one larger than MaxFileSize.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d MiB: not a configuration file", path, MaxFileSize>>20)
	}
	return data, nil
}

// Parse parses and validates a configuration held in memory. name is used
// in error messages in place of a file name. Relative paths in the text are
// resolved against the current working directory. On failure the error is
// an ErrorList and the Config is nil.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data, workingDir())
}

// workingDir returns the absolute working directory, or "." when it is unknown.
func workingDir() string {
	if wd, err := os.Getwd(); err == nil {
		return wd
	}
	return "."
}

// parse decodes and validates data; relative paths are joined to baseDir.
// Validation problems below a value that failed to decode are left out.
func parse(name string, data []byte, baseDir string) (*Config, error) {
	c := New()
	c.src = &source{name: name, text: data, pos: map[string]position{"": {1, 1}}}
	root, errs := parseYAML(name, data)
	if errs != nil {
		return nil, errs.errOrNil()
	}
	d := &decoder{src: c.src, baseDir: baseDir, budget: maxNodes}
	if root != nil {
		d.value(root, reflect.ValueOf(c).Elem(), "", options{})
	}
	errs = d.errs
	c.deriveDefaults()
	for _, e := range c.validate() {
		if !c.src.hasFailed(e.Path) {
			errs = append(errs, e)
		}
	}
	if err := errs.errOrNil(); err != nil {
		return nil, err
	}
	return c, nil
}

// hasFailed reports whether path lies at or below a value that could not be
// decoded, so that validation does not repeat a decoding error.
func (s *source) hasFailed(path string) bool {
	for _, f := range s.failed {
		if within(path, f) {
			return true
		}
	}
	return false
}

var (
	yamlLineRe   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchorRe = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// parseYAML parses data into its single document's root node; nil means an
// empty document. YAML syntax errors carry only a line, so they are reported
// at column 1 of it, except unknown anchors, which are found in the text.
func parseYAML(name string, data []byte) (*yaml.Node, ErrorList) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, ErrorList{syntaxError(name, data, err)}
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, ErrorList{syntaxError(name, data, err)}
		}
		return nil, ErrorList{{File: name, Line: next.Line, Column: next.Column,
			Msg: "the file holds more than one YAML document; gale reads exactly one"}}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// syntaxError turns a yaml.v3 parse error into a positioned *Error.
func syntaxError(name string, data []byte, err error) *Error {
	e := &Error{File: name, Line: 1, Column: 1, Msg: err.Error()}
	if m := yamlLineRe.FindStringSubmatch(e.Msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "YAML syntax: " + m[2]
		if isParserProblem(m[2]) {
			e.Line++
		}
	} else if m := yamlAnchorRe.FindStringSubmatch(e.Msg); m != nil {
		e.Msg = "YAML syntax: unknown anchor " + strconv.Quote(m[1])
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			e.Line = 1 + bytes.Count(data[:i], []byte("\n"))
			e.Column = 1 + len([]rune(string(data[bytes.LastIndexByte(data[:i], '\n')+1:i])))
		}
	} else {
		e.Msg = "YAML syntax: " + strings.TrimPrefix(e.Msg, "yaml: ")
		if line, col, what, ok := badCharacter(data); ok && isReaderProblem(e.Msg) {
			// yaml.v3's reader reports no position for bytes it cannot
			// read; the first such byte is the one it stopped at.
			e.Line, e.Column, e.Msg = line, col, "YAML syntax: "+what
		}
	}
	placeTab(data, e)
	return e
}

// isReaderProblem reports whether msg is one of the messages yaml.v3's
// reader gives for text it cannot decode.
func isReaderProblem(msg string) bool {
	return strings.Contains(msg, "UTF-8") || strings.Contains(msg, "UTF-16") ||
		strings.Contains(msg, "control characters are not allowed")
}

// badCharacter finds the first byte sequence of data that a YAML reader
// refuses, invalid UTF-8 or a character outside YAML's printable set, and
// returns its 1-based line and column (in characters) with a description.
// Input that starts with a UTF-16 byte order mark is not looked at.
func badCharacter(data []byte) (line, col int, what string, ok bool) {
	if bytes.HasPrefix(data, []byte{0xFE, 0xFF}) || bytes.HasPrefix(data, []byte{0xFF, 0xFE}) {
		return 0, 0, "", false
	}
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, col, fmt.Sprintf("invalid UTF-8 byte 0x%02X (the file must be UTF-8 text)", data[i]), true
		case !yamlPrintable(r) && !(i == 0 && r == 0xFEFF):
			return line, col, fmt.Sprintf("control character %U is not allowed (write it as an escape in a double-quoted string)", r), true
		case r == '\n':
			line, col = line+1, 1
		default:
			col++
		}
		i += size
	}
	return 0, 0, "", false
}

// yamlPrintable reports whether YAML text may hold r as it is (YAML 1.2
// section 5.1): tab, line breaks and the printable characters.
func yamlPrintable(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
	case r >= 0x20 && r <= 0x7E:
	case r >= 0xA0 && r <= 0xD7FF:
	case r >= 0xE000 && r <= 0xFFFD && r != 0xFEFF:
	case r >= 0x10000 && r <= 0x10FFFF:
	default:
		return false
	}
	return true
}

// placeTab points a YAML syntax error that a tab caused at the tab. yaml.v3
// reports such errors at the line where the token being scanned began (a
// plain scalar continued on the next lines, say), without a column; the
// culprit is the first tab in the indentation of that line or a later one.
func placeTab(data []byte, e *Error) {
	tabProblem := strings.HasSuffix(e.Msg, "found a tab character that violates indentation")
	if !tabProblem && !strings.HasSuffix(e.Msg, "found character that cannot start any token") {
		return
	}
	lines := bytes.Split(data, []byte("\n"))
	for i := e.Line - 1; i >= 0 && i < len(lines); i++ {
		indent := lines[i][:len(lines[i])-len(bytes.TrimLeft(lines[i], " \t"))]
		if tab := bytes.IndexByte(indent, '\t'); tab >= 0 {
			e.Line, e.Column = i+1, tab+1
			e.Msg += " (a tab in the indentation: YAML indents with spaces only)"
			return
		}
		if !tabProblem {
			// The character that cannot start a token is on the reported
			// line itself.
			return
		}
	}
}

// parserProblems are the messages of yaml.v3's parser (as opposed to its
// scanner). yaml.v3 adds one to the 0-based line of scanner errors only, so
// the line it reports for these is one less than the 1-based line.
var parserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// isParserProblem reports whether msg is one of parserProblems.
func isParserProblem(msg string) bool {
	return slices.Contains(parserProblems, msg)
}
