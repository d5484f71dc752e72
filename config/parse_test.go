package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// okServers completes a snippet into a valid file; snippets come first so
// that their line numbers are those written in the test.
const okServers = `
servers:
  - listen: ["127.0.0.1:8080"]
    routes:
      - respond: {}
`

// errorLines parses src and returns each error as a string; it fails the
// test when parsing succeeds or returns something other than an ErrorList.
func errorLines(t *testing.T, src string) []string {
	t.Helper()
	c, err := Parse("gale.yaml", []byte(src))
	if err == nil {
		t.Fatalf("parse succeeded, want errors; effective config:\n%s", c)
	}
	if c != nil {
		t.Error("Parse returned a Config along with errors")
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want ErrorList: %v", err, err)
	}
	lines := make([]string, len(list))
	for i, e := range list {
		lines[i] = e.Error()
	}
	return lines
}

func TestBadConfigs(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"misspelt top-level key", "wokers: 4\n" + okServers,
			[]string{`gale.yaml:1:1: unknown key "wokers" (did you mean "workers"?)`}},
		{"misspelt nested key", "timeouts:\n  idle: 5s\n  hedaer: 5s\n" + okServers,
			[]string{`gale.yaml:3:3: timeouts: unknown key "hedaer" (did you mean "header"?)`}},
		{"wrong case key", "Workers: 4\n" + okServers,
			[]string{`gale.yaml:1:1: unknown key "Workers" (did you mean "workers"?)`}},
		{"unknown key without suggestion", "zzz: 1\n" + okServers,
			[]string{`gale.yaml:1:1: unknown key "zzz"`}},
		{"duplicate key", "workers: 2\nworkers: 3\n" + okServers,
			[]string{`gale.yaml:2:1: duplicate key "workers" (first at line 1)`}},
		{"integer expected", "processes: two\n" + okServers,
			[]string{`gale.yaml:1:12: processes: expected an integer, got "two"`}},
		{"mapping expected", "timeouts: 5s\n" + okServers,
			[]string{`gale.yaml:1:11: timeouts: expected a mapping, got "5s"`}},
		{"list expected", "servers: {listen: x}\n",
			[]string{`gale.yaml:1:10: servers: expected a list, got a mapping`}},
		{"bool expected", "servers:\n  - listen: :80\n    routes:\n      - static: {root: ., browse: yes}\n",
			[]string{`gale.yaml:4:35: servers[0].routes[0].static.browse: expected true or false, got "yes"`}},
		{"workers zero", "workers: 0\n" + okServers,
			[]string{`gale.yaml:1:10: workers: expected a positive integer or "auto", got "0"`}},
		{"processes zero", "processes: 0\n" + okServers,
			[]string{`gale.yaml:1:12: processes: must be at least 1, got 0`}},
		{"processes huge", "processes: 100000\n" + okServers,
			[]string{`gale.yaml:1:12: processes: 100000 is out of range 1-1024`}},
		{"workers huge", "workers: 5000\n" + okServers,
			[]string{`gale.yaml:1:10: workers: 5000 is out of range 1-1024 (or auto: one per CPU)`}},
		{"duration without unit", "timeouts: {idle: 5}\n" + okServers,
			[]string{`gale.yaml:1:18: timeouts.idle: invalid duration "5": expected a duration like 250ms, 5s, 1m30s or 2h (units ns, us, ms, s, m, h)`}},
		{"duration in days", "timeouts:\n  write: 1d\n" + okServers,
			[]string{`gale.yaml:2:10: timeouts.write: invalid duration "1d": expected a duration like 250ms, 5s, 1m30s or 2h (units ns, us, ms, s, m, h)`}},
		{"negative duration", "timeouts:\n  shutdown_grace: -5s\n" + okServers,
			[]string{`gale.yaml:2:19: timeouts.shutdown_grace: duration must not be negative`}},
		{"zero header timeout", "timeouts:\n  header: 0s\n" + okServers,
			[]string{`gale.yaml:2:11: timeouts.header: must be greater than zero`}},
		{"size with wrong-case unit", "limits: {body_bytes: 10mb}\n" + okServers,
			[]string{`gale.yaml:1:22: limits.body_bytes: invalid size "10mb": unknown unit "mb" (did you mean "MB"?); expected a byte count like 512, 64KiB, 10MiB or 1GB (units B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)`}},
		{"size without number", "limits:\n  header_bytes: KiB\n" + okServers,
			[]string{`gale.yaml:2:17: limits.header_bytes: invalid size "KiB": expected a byte count like 512, 64KiB, 10MiB or 1GB (units B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)`}},
		{"size overflow", "limits:\n  body_bytes: 9000000TiB\n" + okServers,
			[]string{`gale.yaml:2:15: limits.body_bytes: size "9000000TiB" is too large`}},
		{"size out of range", "limits:\n  request_line: 2MiB\n  header_fields: 0\n" + okServers,
			[]string{
				`gale.yaml:2:17: limits.request_line: 2MiB is out of range 1-94KiB`,
				`gale.yaml:3:18: limits.header_fields: 0 is out of range 1-10000`,
			}},
		{"head over engine input", "limits:\n  request_line: 64KiB\n  header_bytes: 64KiB\n" + okServers,
			[]string{`gale.yaml:3:17: limits.header_bytes: request_line (64KiB) plus header_bytes (64KiB) is more than 95KiB, the largest request head gale holds`}},
		{"head over engine input, default header_bytes", "limits: {request_line: 40KiB}\n" + okServers,
			[]string{`gale.yaml:1:24: limits.request_line: request_line (40KiB) plus header_bytes (64KiB) is more than 95KiB, the largest request head gale holds`}},
		{"header_bytes 1MiB", "limits: {header_bytes: 1MiB}\n" + okServers,
			[]string{`gale.yaml:1:24: limits.header_bytes: 1MiB is out of range 1-94KiB`}},
		{"enum with suggestion", "log: {level: inof, format: jsn}\n" + okServers,
			[]string{
				`gale.yaml:1:14: log.level: invalid value "inof": expected one of debug, info, warn, error (did you mean "info"?)`,
				`gale.yaml:1:28: log.format: invalid value "jsn": expected one of auto, text, json (did you mean "json"?)`,
			}},
		{"numa enum", "numa: on\n" + okServers,
			[]string{`gale.yaml:1:7: numa: invalid value "on": expected one of auto, off`}},
		{"defer_accept too long", "timeouts: {defer_accept: 2m}\n" + okServers,
			[]string{`gale.yaml:1:26: timeouts.defer_accept: 2m0s is longer than the 1m0s maximum`}},
		{"defer_accept negative", "timeouts: {defer_accept: -1s}\n" + okServers,
			[]string{`gale.yaml:1:26: timeouts.defer_accept: duration must not be negative`}},
		{"engine enum", "engine: uring\n" + okServers,
			[]string{`gale.yaml:1:9: engine: invalid value "uring": expected one of auto, epoll, io_uring`}},
		{"cpu affinity word", "cpu_affinity: aut\n" + okServers,
			[]string{`gale.yaml:1:15: cpu_affinity: expected "auto", "off" or a list of CPU ids, got "aut" (did you mean "auto"?)`}},
		{"cpu affinity list", "cpu_affinity: [0, x, 2, 0, 5000]\n" + okServers,
			[]string{`gale.yaml:1:19: cpu_affinity[1]: expected a CPU id, got "x"`}},
		{"cpu affinity ids", "cpu_affinity: [0, 2, 0, 5000]\n" + okServers,
			[]string{
				`gale.yaml:1:22: cpu_affinity[2]: CPU 0 is listed twice`,
				`gale.yaml:1:25: cpu_affinity[3]: CPU id 5000 is out of range 0-1023`,
			}},
		{"empty file", "",
			[]string{`gale.yaml:1:1: servers: at least one server is required`}},
		{"empty server list", "workers: 2\nservers: []\n",
			[]string{`gale.yaml:2:10: servers: at least one server is required`}},
		{"missing listen and routes", "servers:\n  - {}\n",
			[]string{
				`gale.yaml:2:5: servers[0].listen: at least one listen address is required`,
				`gale.yaml:2:5: servers[0].routes: at least one route is required`,
			}},
		{"listen port out of range", "servers:\n  - listen: [\"127.0.0.1:99999\"]\n    routes: [{respond: {}}]\n",
			[]string{`gale.yaml:2:14: servers[0].listen[0]: invalid port "99999" in listen address "127.0.0.1:99999": expected a number from 0 to 65535`}},
		{"listen without port", "servers:\n  - listen: [localhost]\n    routes: [{respond: {}}]\n",
			[]string{`gale.yaml:2:14: servers[0].listen[0]: invalid listen address "localhost": expected host:port, like 127.0.0.1:8080, [::1]:8080 or :8080`}},
		{"listen named port", "servers:\n  - listen: \"127.0.0.1:http\"\n    routes: [{respond: {}}]\n",
			[]string{`gale.yaml:2:13: servers[0].listen[0]: invalid port "http" in listen address "127.0.0.1:http": expected a number from 0 to 65535`}},
		{"listen bad host", "servers:\n  - listen: [\"bad host:80\"]\n    routes: [{respond: {}}]\n",
			[]string{`gale.yaml:2:14: servers[0].listen[0]: invalid host "bad host" in listen address "bad host:80": expected an IP address, localhost or nothing (gale listens on literal addresses, host names are not resolved)`}},
		{"listen used twice", "servers:\n  - listen: [\"127.0.0.1:80\"]\n    routes: [{respond: {}}]\n  - listen: [\"127.0.0.1:80\"]\n    routes: [{respond: {}}]\n",
			[]string{`gale.yaml:4:14: servers[1].listen[0]: address 127.0.0.1:80 is already used by servers[0].listen[0] (127.0.0.1:80); serve several hosts from one server with match.host`}},
		{"listen host out of range", "servers:\n  - listen: [\"999.1.1.1:80\"]\n    routes: [{respond: {}}]\n",
			[]string{`gale.yaml:2:14: servers[0].listen[0]: invalid host "999.1.1.1" in listen address "999.1.1.1:80": expected an IP address, localhost or nothing (gale listens on literal addresses, host names are not resolved)`}},
		{"listen host name", "servers:\n  - listen: [\"example.com:80\"]\n    routes: [{respond: {}}]\n",
			[]string{`gale.yaml:2:14: servers[0].listen[0]: invalid host "example.com" in listen address "example.com:80": expected an IP address, localhost or nothing (gale listens on literal addresses, host names are not resolved)`}},
		{"listen spelled two ways", "servers:\n  - listen: [\"127.0.0.1:19485\"]\n    routes: [{respond: {}}]\n  - listen: [\"localhost:19485\"]\n    routes: [{respond: {}}]\n",
			[]string{`gale.yaml:4:14: servers[1].listen[0]: address localhost:19485 is already used by servers[0].listen[0] (127.0.0.1:19485); serve several hosts from one server with match.host`}},
		{"listen mapped", "servers:\n  - listen: [\"127.0.0.1:80\"]\n    routes: [{respond: {}}]\n  - listen: [\"[::ffff:127.0.0.1]:80\"]\n    routes: [{respond: {}}]\n",
			[]string{`gale.yaml:4:14: servers[1].listen[0]: address [::ffff:127.0.0.1]:80 is already used by servers[0].listen[0] (127.0.0.1:80); serve several hosts from one server with match.host`}},
		{"listen wildcard overlaps", "servers:\n  - listen: [\"0.0.0.0:8080\"]\n    routes: [{respond: {}}]\n  - listen: [\"127.0.0.1:8080\"]\n    routes: [{respond: {}}]\n",
			[]string{`gale.yaml:4:14: servers[1].listen[0]: address 127.0.0.1:8080 overlaps 0.0.0.0:8080 of servers[0].listen[0]: connections would be split between the two servers; serve several hosts from one server with match.host`}},
		{"listen v6 wildcard overlaps", "servers:\n  - listen: [\"127.0.0.1:8080\"]\n    routes: [{respond: {}}]\n  - listen: [\"[::]:8080\"]\n    routes: [{respond: {}}]\n",
			[]string{`gale.yaml:4:14: servers[1].listen[0]: address [::]:8080 overlaps 127.0.0.1:8080 of servers[0].listen[0]: connections would be split between the two servers; serve several hosts from one server with match.host`}},
		{"match path above root", "servers:\n  - listen: :80\n    routes:\n      - match: {path: /a/../../b}\n        respond: {}\n",
			[]string{`gale.yaml:4:23: servers[0].routes[0].match.path: invalid path "/a/../../b": path climbs above the root (request paths are matched after normalization, see docs/routing.md)`}},
		{"route without action", "servers:\n  - listen: :80\n    routes:\n      - match: {path: /}\n",
			[]string{`gale.yaml:4:9: servers[0].routes[0]: route has no action: add one of respond, static, proxy, websocket, pubsub`}},
		{"route with two actions", "servers:\n  - listen: :80\n    routes:\n      - respond: {}\n        static: {root: .}\n",
			[]string{`gale.yaml:4:9: servers[0].routes[0]: route has 2 actions (respond, static); a route takes exactly one`}},
		{"unknown action", "servers:\n  - listen: :80\n    routes:\n      - forward: {to: x}\n",
			[]string{
				`gale.yaml:4:9: servers[0].routes[0]: unknown key "forward"`,
				`gale.yaml:4:9: servers[0].routes[0]: route has no action: add one of respond, static, proxy, websocket, pubsub`,
			}},
		{"bad status", "servers:\n  - listen: :80\n    routes:\n      - respond: {status: 99}\n      - respond: {status: 600}\n      - respond: {status: 204, body: x}\n",
			[]string{
				`gale.yaml:4:27: servers[0].routes[0].respond.status: invalid status 99: expected a final status code from 200 to 599`,
				`gale.yaml:5:27: servers[0].routes[1].respond.status: invalid status 600: expected a final status code from 200 to 599`,
				`gale.yaml:6:38: servers[0].routes[2].respond.body: a 204 response cannot have a body`,
			}},
		{"bad headers", "servers:\n  - listen: :80\n    routes:\n      - respond:\n          headers:\n            Content-Length: 5\n            X-A: a\n            x-a: b\n            \"Bad Name\": c\n",
			[]string{
				`gale.yaml:6:29: servers[0].routes[0].respond.headers.Content-Length: header Content-Length is set by the server and cannot be configured`,
				`gale.yaml:8:18: servers[0].routes[0].respond.headers.x-a: header x-a repeats X-A (header names are case-insensitive)`,
				`gale.yaml:9:25: servers[0].routes[0].respond.headers.Bad Name: invalid header name "Bad Name"`,
			}},
		{"bad match", "servers:\n  - listen: :80\n    routes:\n      - match: {path: api, path_exact: /x, host: \"bad host\", method: [GET, \"G T\", GET]}\n        respond: {}\n",
			[]string{
				`gale.yaml:4:23: servers[0].routes[0].match.path: invalid path "api": expected an absolute path starting with / without spaces, ? or #`,
				`gale.yaml:4:40: servers[0].routes[0].match.path_exact: path and path_exact cannot both be set`,
				`gale.yaml:4:50: servers[0].routes[0].match.host: invalid host "bad host": expected a host name like example.com or *.example.com`,
				`gale.yaml:4:76: servers[0].routes[0].match.method[1]: invalid method "G T": expected a token like GET or POST`,
				`gale.yaml:4:83: servers[0].routes[0].match.method[2]: method GET is listed twice`,
			}},
		{"static without root", "servers:\n  - listen: :80\n    routes:\n      - static: {browse: true}\n",
			[]string{`gale.yaml:4:17: servers[0].routes[0].static.root: root is required`}},
		{"static root missing", "servers:\n  - listen: :80\n    routes:\n      - static:\n          root: /nonexistent/gale\n",
			[]string{`gale.yaml:5:17: servers[0].routes[0].static.root: root /nonexistent/gale: no such file or directory`}},
		{"static fields", "servers:\n  - listen: :80\n    routes:\n      - static:\n          root: /\n          index: [a/b.html]\n          fallback: ../x\n          dotfiles: denyy\n          follow_symlinks: yes\n          open_file_cache: {max: -1}\n",
			[]string{
				`gale.yaml:6:19: servers[0].routes[0].static.index[0]: invalid index file name "a/b.html": expected a file name without / or \`,
				`gale.yaml:7:21: servers[0].routes[0].static.fallback: invalid fallback "../x": expected the path of a file below root, starting with /, like /index.html`,
				`gale.yaml:8:21: servers[0].routes[0].static.dotfiles: invalid value "denyy": expected one of deny, allow, ignore (did you mean "deny"?)`,
				`gale.yaml:9:28: servers[0].routes[0].static.follow_symlinks: invalid value "yes": expected one of never, inside_root, always`,
				`gale.yaml:10:34: servers[0].routes[0].static.open_file_cache.max: must not be negative`,
			}},
		// What static.New refuses at start is refused here, with its position: a
		// fallback naming a directory or not normalizing, an index name with a backslash.
		{"static fields static.New refuses", "servers:\n  - listen: :80\n    routes:\n      - static: {root: /, fallback: /dir/, index: [\"a\\\\b\"]}\n      - static: {root: /, fallback: \"/%zz\"}\n      - static: {root: /, fallback: \"/a%2Fb\"}\n      - static: {root: /, fallback: /.}\n",
			[]string{
				`gale.yaml:4:37: servers[0].routes[0].static.fallback: invalid fallback "/dir/": expected the path of a file below root, starting with /, like /index.html`,
				`gale.yaml:4:52: servers[0].routes[0].static.index[0]: invalid index file name "a\\b": expected a file name without / or \`,
				`gale.yaml:5:37: servers[0].routes[1].static.fallback: invalid fallback "/%zz": expected the path of a file below root, starting with /, like /index.html`,
				`gale.yaml:6:37: servers[0].routes[2].static.fallback: invalid fallback "/a%2Fb": expected the path of a file below root, starting with /, like /index.html`,
				`gale.yaml:7:37: servers[0].routes[3].static.fallback: invalid fallback "/.": expected the path of a file below root, starting with /, like /index.html`,
			}},
		{"yaml syntax", "workers: 2\nlimits: [1, 2\n" + okServers,
			[]string{`gale.yaml:2:1: YAML syntax: did not find expected ',' or ']'`}},
		{"yaml bad indentation", "workers: 2\ntimeouts:\n  idle: 5s\n header: 5s\n",
			[]string{`gale.yaml:4:1: YAML syntax: did not find expected key`}},
		{"yaml mapping in scalar", "workers: 2\nprocesses: 1: 2\n",
			[]string{`gale.yaml:2:1: YAML syntax: mapping values are not allowed in this context`}},
		{"yaml tab", "workers: 2\n\tprocesses: 2\n",
			[]string{`gale.yaml:2:1: YAML syntax: found a tab character that violates indentation (a tab in the indentation: YAML indents with spaces only)`}},
		{"yaml tab in a later line's indentation", "workers: 2\ntimeouts:\n  header: 1s\n  \tidle: 2s\n" + okServers,
			[]string{`gale.yaml:4:3: YAML syntax: found a tab character that violates indentation (a tab in the indentation: YAML indents with spaces only)`}},
		{"yaml tab before a list item", "workers: 2\nservers:\n\t- listen: [\":80\"]\n",
			[]string{`gale.yaml:3:1: YAML syntax: found character that cannot start any token (a tab in the indentation: YAML indents with spaces only)`}},
		{"invalid UTF-8", "workers: 2\n\nservers:\n  - listen: [\":80\"]\n    routes: [{respond: {body: \"caf\xe9\"}}]\n",
			[]string{`gale.yaml:5:35: YAML syntax: invalid UTF-8 byte 0xE9 (the file must be UTF-8 text)`}},
		{"control character", "workers: 2\nlog: {level: \"in\x01fo\"}\n" + okServers,
			[]string{`gale.yaml:2:17: YAML syntax: control character U+0001 is not allowed (write it as an escape in a double-quoted string)`}},
		{"merge key of a scalar", "servers:\n  - listen: [\":80\"]\n    routes:\n      - <<: 5\n",
			[]string{`gale.yaml:4:13: servers[0].routes[0]: merge key (<<) expects a mapping or a list of mappings, got "5"`}},
		{"merge key list with a scalar", "x: &r {respond: {}}\nservers:\n  - listen: [\":80\"]\n    routes:\n      - <<: [*r, 5]\n",
			[]string{`gale.yaml:1:1: unknown key "x"`, `gale.yaml:5:18: servers[0].routes[0]: merge key (<<) expects a mapping or a list of mappings, got "5"`}},
		{"error inside an alias points at its use", "timeouts: &t {idle: 5s}\nupstreams:\n  a:\n    servers: [\"127.0.0.1:9000\"]\n    timeouts: *t\n" + okServers,
			[]string{`gale.yaml:5:15: upstreams.a.timeouts: unknown key "idle" (written at line 1, column 15, in the value of &t)`}},
		{"validation inside an alias points at its use", "x: &bad {status: 999}\nservers:\n  - listen: [\":80\"]\n    routes:\n      - respond: {status: 200}\n      - respond: *bad\n",
			[]string{`gale.yaml:1:1: unknown key "x"`, `gale.yaml:6:18: servers[0].routes[1].respond.status: invalid status 999: expected a final status code from 200 to 599`}},
		{"error through a merge key points at the merge", "x: &r {stauts: 1}\nservers:\n  - listen: [\":80\"]\n    routes:\n      - respond:\n          <<: *r\n",
			[]string{`gale.yaml:1:1: unknown key "x"`, `gale.yaml:6:15: servers[0].routes[0].respond: unknown key "stauts" (did you mean "status"?) (written at line 1, column 8, in the value of &r)`}},
		{"unknown anchor", "workers: 2\nprocesses:   *two\n" + okServers,
			[]string{`gale.yaml:2:14: YAML syntax: unknown anchor "two"`}},
		{"two documents", "workers: 2\n---\nworkers: 3\n",
			[]string{`gale.yaml:2:1: the file holds more than one YAML document; gale reads exactly one`}},
		{"not a mapping", "- a\n- b\n",
			[]string{`gale.yaml:1:1: expected a mapping, got a list`}},
		{"every error at once", "wokers: 2\nprocesses: x\ntimeouts: {idle: 1y}\nservers:\n  - listen: [\":70000\"]\n    routes: [{}]\n",
			[]string{
				`gale.yaml:1:1: unknown key "wokers" (did you mean "workers"?)`,
				`gale.yaml:2:12: processes: expected an integer, got "x"`,
				`gale.yaml:3:18: timeouts.idle: invalid duration "1y": expected a duration like 250ms, 5s, 1m30s or 2h (units ns, us, ms, s, m, h)`,
				`gale.yaml:5:14: servers[0].listen[0]: invalid port "70000" in listen address ":70000": expected a number from 0 to 65535`,
				`gale.yaml:6:14: servers[0].routes[0]: route has no action: add one of respond, static, proxy, websocket, pubsub`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errorLines(t, tt.src)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

const fullExample = `
workers: auto            # int or auto
processes: 1
cpu_affinity: auto
numa: auto
log: { level: info, format: auto }
timeouts: { header: 10s, idle: 75s, body: 60s, write: 60s, shutdown_grace: 30s, upgrade_grace: 60s }
limits:   { request_line: 8KiB, header_bytes: 64KiB, header_fields: 100, body_bytes: 10MiB }
servers:
  - listen: ["127.0.0.1:8080"]
    routes:
      - match: { path: /hello }
        respond: { status: 200, body: "hello", headers: { Content-Type: text/plain } }
      - match: { path: / }
        static: { root: ./testdata, index: [index.html], browse: false, fallback: "", cache_control: "", follow_symlinks: inside_root, dotfiles: deny, open_file_cache: { max: 10000, revalidate: 1s } }
`

// TestTooLargeDocument checks that a document past the decoder's budget is
// reported once, where the budget ran out, and not also as every value it
// left undecoded.
func TestTooLargeDocument(t *testing.T) {
	// One server of 1024 routes (about 5 values each), used 256 times
	// through an alias: more than maxNodes values from a small text.
	var b strings.Builder
	b.WriteString("x: &server\n  listen: [\":80\"]\n  routes:\n")
	for i := range 1024 {
		fmt.Fprintf(&b, "    - {match: {path_exact: /p%d}, respond: {}}\n", i)
	}
	b.WriteString("servers: [*server" + strings.Repeat(", *server", 255) + "]\n")
	lines := errorLines(t, b.String())
	var large int
	for _, l := range lines {
		if strings.Contains(l, "document is too large") {
			large++
		}
	}
	if large != 1 || len(lines) != 2 { // the other one: unknown key "x"
		t.Fatalf("got %d errors, want the unknown key and one saying the document is too large; first ones: %q", len(lines), lines[:min(len(lines), 4)])
	}
}

func TestParseFullExample(t *testing.T) {
	c, err := Parse("gale.yaml", []byte(fullExample))
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	want := New()
	want.CPUAffinity = CPUAffinity{Mode: AffinityAuto} // the example sets it
	want.Servers = []Server{{
		Listen:     []string{"127.0.0.1:8080"},
		Protocols:  []string{ProtoHTTP1},
		H2CUpgrade: true,
		Routes: []Route{
			{Match: Match{Path: "/hello"}, Respond: &Respond{Status: 200, Body: "hello", Headers: map[string]string{"Content-Type": "text/plain"}}},
			{Match: Match{Path: "/"}, Static: &Static{
				Root: filepath.Join(wd, "testdata"), Index: []string{"index.html"},
				FollowSymlinks: SymlinksInsideRoot, Dotfiles: DotfilesDeny,
				OpenFileCache: OpenFileCache{Max: 10000, Revalidate: time.Second},
			}},
		},
	}}
	c.src = nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got\n%s\nwant\n%s", c, want)
	}
	if c.Limits.BodyBytes != 10<<20 || c.Timeouts.Idle != 75*time.Second {
		t.Errorf("sizes or durations decoded wrong: %+v %+v", c.Limits, c.Timeouts)
	}
	if got := c.Servers[0].Routes[1].Action(); got != "static" {
		t.Errorf("Action() = %q, want static", got)
	}
}

func TestValuesAndShorthands(t *testing.T) {
	src := `
workers: 3
cpu_affinity: [1, 3]
limits: {request_line: 1000, header_bytes: 2 KiB, body_bytes: 1GB}
timeouts: {idle: 1m30s, header: 250ms}
base: &base
servers:
  - listen: ":0"
    routes:
      - match: {method: GET, host: "*.example.com", path_exact: /x}
        respond: &ok {status: 201, headers: {}}
      - respond:
          <<: *ok
          status: 202
`
	// "base" is not a key; remove it to keep this a valid file.
	src = strings.Replace(src, "base: &base\n", "", 1)
	c, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"workers", c.Workers, 3},
		{"Loops", c.Loops(), 3},
		{"cpu_affinity", c.CPUAffinity, CPUAffinity{Mode: AffinityList, CPUs: []int{1, 3}}},
		{"request_line", c.Limits.RequestLine, int64(1000)},
		{"header_bytes", c.Limits.HeaderBytes, int64(2048)},
		{"body_bytes", c.Limits.BodyBytes, int64(1e9)},
		{"idle", c.Timeouts.Idle, 90 * time.Second},
		{"header", c.Timeouts.Header, 250 * time.Millisecond},
		{"listen", c.Servers[0].Listen, []string{":0"}},
		{"method", c.Servers[0].Routes[0].Match.Methods, []string{"GET"}},
		{"alias", c.Servers[0].Routes[0].Respond.Status, 201},
		{"merge override", c.Servers[0].Routes[1].Respond.Status, 202},
		{"defaults kept", c.Processes, 1},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoadResolvesRootAgainstFileDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "public"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "etc", "gale.yaml")
	src := "servers:\n  - listen: :0\n    routes:\n      - static: {root: ../public}\n      - static: {root: " + dir + "}\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Servers[0].Routes[0].Static.Root, filepath.Join(dir, "public"); got != want {
		t.Errorf("relative root = %q, want %q", got, want)
	}
	if got := c.Servers[0].Routes[1].Static.Root; got != dir {
		t.Errorf("absolute root = %q, want %q", got, dir)
	}
	if c.Name() != file {
		t.Errorf("Name() = %q, want %q", c.Name(), file)
	}
	// The same text parsed in memory resolves against the working directory,
	// where ../public does not exist.
	if _, err := Parse("mem.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "mem.yaml:4:24: servers[0].routes[0].static.root: root ") {
		t.Errorf("Parse error = %v, want a missing-root error at 4:24", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want ErrNotExist", err)
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	wd, _ := os.Getwd()
	s := c.Servers[0]
	if len(c.Servers) != 1 || !reflect.DeepEqual(s.Listen, []string{"127.0.0.1:8080"}) || len(s.Routes) != 1 {
		t.Fatalf("unexpected default servers:\n%s", c)
	}
	st := s.Routes[0].Static
	if st == nil || st.Root != wd || !st.Browse || s.Routes[0].Match.Path != "/" {
		t.Fatalf("default route does not serve %s with browsing:\n%s", wd, c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Name() != DefaultName {
		t.Errorf("Name() = %q", c.Name())
	}
}

// checkRoundTrip fails the test unless c.String() parses back into c.
func checkRoundTrip(t *testing.T, c *Config) {
	t.Helper()
	text := c.String()
	back, err := Parse("printed.yaml", []byte(text))
	if err != nil {
		t.Fatalf("printed config does not parse: %v\n%s", err, text)
	}
	back.src, c.src = nil, nil
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip changed the config:\n%s\nbecame\n%s", text, back)
	}
}

// TestStringRoundTrips checks that the effective configuration printed by
// String parses back into the same Config.
func TestStringRoundTrips(t *testing.T) {
	full, err := Parse("full.yaml", []byte(fullExample))
	if err != nil {
		t.Fatal(err)
	}
	odd := New()
	odd.Workers = 7
	odd.CPUAffinity = CPUAffinity{Mode: AffinityList, CPUs: []int{2, 0}}
	odd.Timeouts.Header = 1500 * time.Millisecond
	odd.Timeouts.Idle = time.Hour + 30*time.Second
	odd.Limits.BodyBytes = 1000
	odd.Limits.RequestLine = 12345
	odd.Servers = []Server{{Listen: []string{"[::1]:0", "localhost:0"}, Protocols: []string{ProtoHTTP1, ProtoH2C}, Routes: []Route{
		{Match: Match{Methods: []string{"GET", "HEAD"}, Host: "*.a.example"}, Respond: &Respond{Status: 418, Body: "123", Headers: map[string]string{"B": "2", "A": "true"}}},
	}}}
	for _, c := range []*Config{Default(), full, odd} {
		checkRoundTrip(t, c)
	}
	for _, want := range []string{"workers: 7\n", "header: 1.5s\n", "idle: 1h0m30s\n", "body_bytes: 1kB\n", "request_line: 12345\n", "cpu_affinity: [2, 0]\n", "body: \"123\"\n"} {
		if !strings.Contains(odd.String(), want) {
			t.Errorf("String() lacks %q:\n%s", want, odd)
		}
	}
}

func TestValidateGoBuiltConfig(t *testing.T) {
	c := New()
	if err := c.Validate(); err == nil || err.Error() != "servers: at least one server is required" {
		t.Errorf("Validate() = %v", err)
	}
	c.Servers = []Server{{Listen: []string{"127.0.0.1:8080"}, Routes: []Route{{Static: &Static{Root: t.TempDir()}}}}}
	c.Servers[0].Routes[0].Static.SetDefaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "servers[0].routes[0].static.root: root is required") {
		t.Errorf("SetDefaults must clear Root; Validate() = %v", err)
	}
	c.Servers[0].Routes[0].Static.Root = t.TempDir()
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	c.Workers = -1
	c.Timeouts.Idle = -time.Second
	c.Log.Format = "xml"
	var list ErrorList
	if err := c.Validate(); !errors.As(err, &list) || len(list) != 3 {
		t.Fatalf("Validate() = %v, want three errors", err)
	}
	for _, e := range list {
		if e.File != "" || e.Line != 0 {
			t.Errorf("a Go-built config has no positions, got %+v", e)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Column: 7, Path: "a.b", Msg: "bad"}, "f.yaml:3:7: a.b: bad"},
		{Error{File: "f.yaml", Line: 1, Column: 1, Msg: "bad"}, "f.yaml:1:1: bad"},
		{Error{Path: "a", Msg: "bad"}, "a: bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	list := ErrorList{&tests[0].e, &tests[2].e}
	if got := list.Error(); got != "f.yaml:3:7: a.b: bad\na: bad" {
		t.Errorf("ErrorList.Error() = %q", got)
	}
	var e *Error
	if !errors.As(error(list), &e) || e != &tests[0].e {
		t.Error("errors.As does not reach the first *Error")
	}
}

func TestRouteAction(t *testing.T) {
	for _, tt := range []struct {
		r    Route
		want string
	}{{Route{}, ""}, {Route{Respond: &Respond{}}, "respond"}, {Route{Static: &Static{}}, "static"}} {
		if got := tt.r.Action(); got != tt.want {
			t.Errorf("Action() = %q, want %q", got, tt.want)
		}
	}
}

// TestProtocols: the default is HTTP/1 only; h2c is accepted beside http1 or alone, and
// an unknown name or a repeated one is an error at its position.
func TestProtocols(t *testing.T) {
	base := "servers:\n  - listen: [\"127.0.0.1:0\"]\n    routes: [{ respond: { status: 204 } }]\n"
	c, err := Parse("a.yaml", []byte(base))
	if err != nil || !slices.Equal(c.Servers[0].Protocols, []string{ProtoHTTP1}) || c.Servers[0].HasProtocol(ProtoH2C) {
		t.Fatalf("default protocols %v, err %v", c.Servers[0].Protocols, err)
	}
	if _, err := Parse("a.yaml", []byte(base+"    protocols: [h2c]\n")); err != nil {
		t.Fatalf("h2c alone: %v", err)
	}
	c, err = Parse("a.yaml", []byte(base+"    protocols: [http1, h2c]\n"))
	if err != nil || !c.Servers[0].HasProtocol(ProtoH2C) {
		t.Fatalf("h2c: %v, err %v", c.Servers[0].Protocols, err)
	}
	for list, want := range map[string]string{
		"[http1, h3]":       `servers[0].protocols[1]: invalid value "h3": expected one of http1, h2c, h2`,
		"[http1, h2]":       `servers[0].protocols: "h2" is HTTP/2 over TLS: it needs a tls section`,
		"[http1, h2c, h2c]": `servers[0].protocols[2]: protocol "h2c" is listed twice`,
	} {
		_, err := Parse("a.yaml", []byte(base+"    protocols: "+list+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("protocols %s: error %v, want %q", list, err, want)
		}
	}
}

// TestLoadRefusesHugeFile: a file past MaxFileSize (here /dev/zero, endless)
// is refused after MaxFileSize+1 bytes instead of being read until memory
// runs out.
func TestLoadRefusesHugeFile(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	_, err := Load("/dev/zero")
	if err == nil || err.Error() != "/dev/zero: larger than 64 MiB: not a configuration file" {
		t.Fatalf("Load(/dev/zero): %v", err)
	}
}

// TestEmptySectionIsOn checks the documented meaning of an empty value for a
// section: it turns the section on with its defaults (as {} does), so that an
// empty TLS section is refused for want of certificates rather than read as no
// TLS, and an empty action is that action.
func TestEmptySectionIsOn(t *testing.T) {
	lines := errorLines(t, "servers:\n  - listen: [\"127.0.0.1:8443\"]\n    tls: ~\n    routes:\n      - respond: {}\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "gale.yaml:3:10: servers[0].tls.certificates: at least one certificate") {
		t.Fatalf("tls: ~ gave %q", lines)
	}
	c, err := Parse("gale.yaml", []byte("servers:\n  - listen: [\"127.0.0.1:8080\"]\n    routes:\n      - respond:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Servers[0].Routes[0].Respond; r == nil || r.Status != 200 {
		t.Fatalf("an empty respond action decoded as %#v, want the action with its defaults", r)
	}
}
