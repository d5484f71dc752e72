package pubsub

import (
	"strings"
	"testing"
)

// TestParseCommandErrorsNameTheField checks that a message encoding/json refuses gets a
// bad_request reply in the protocol's terms (the field and what it must hold), without Go
// type names such as "pubsub.Command" or "uint64".
func TestParseCommandErrorsNameTheField(t *testing.T) {
	cases := []struct{ msg, want string }{
		{`{"type":"subscribe","topic":"a","epoch":"e","offset":-1}`, `field "offset" must be a non-negative integer`},
		{`{"type":"subscribe","topic":"a","offset":"4"}`, `field "offset" must be a non-negative integer`},
		{`{"type":"subscribe","topic":7}`, `field "topic" must be a string`},
		{`{"type":1,"topic":"a"}`, `field "type" must be a string`},
		{`{"type":"subscribe","topic":"a","epoch":[]}`, `field "epoch" must be a string`},
		{`[]`, `a command must be a JSON object, not an array`},
		{`"hi"`, `a command must be a JSON object, not a string`},
		{`not json`, `not valid JSON at byte 2`},
		{`{"type":"subscribe"`, `incomplete JSON object`},
		{``, `incomplete JSON object`},
		{`{"type":"subscribe","topic":"a","extra":1}`, `unknown field "extra"`},
	}
	for _, tc := range cases {
		_, err := ParseCommand([]byte(tc.msg))
		pe, ok := err.(*ProtocolError)
		if !ok || pe.Code != ErrCodeBadRequest {
			t.Errorf("%s: error %v, want bad_request", tc.msg, err)
			continue
		}
		if pe.Message != tc.want {
			t.Errorf("%s: message %q, want %q", tc.msg, pe.Message, tc.want)
		}
		for _, leak := range []string{"Go ", "pubsub.", "uint64", "json:"} {
			if strings.Contains(pe.Message, leak) {
				t.Errorf("%s: message %q names %q", tc.msg, pe.Message, leak)
			}
		}
	}
}
