package pubsub

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
)

// The JSON protocol (docs/pubsub.md): one JSON object per WebSocket text message.
// This file only parses and formats; it does no I/O.

// Command types a client sends.
const (
	CmdSubscribe   = "subscribe"
	CmdUnsubscribe = "unsubscribe"
	CmdPublish     = "publish"
	CmdPresence    = "presence"
)

// Error codes of "error" replies.
const (
	ErrCodeBadRequest    = "bad_request" // not a JSON object, unknown type, missing field
	ErrCodeBadTopic      = "bad_topic"   // topic empty, too long or with control characters
	ErrCodeForbidden     = "forbidden"   // the token does not grant it
	ErrCodeSubscribed    = "already_subscribed"
	ErrCodeNotSubscribed = "not_subscribed"
	ErrCodeTooMany       = "too_many_topics" // over the per-connection subscription limit
	ErrCodeHubFull       = "hub_full"        // the hub holds Options.MaxTopics topics and this one is new
)

// Command is one parsed client command.
type Command struct {
	Type   string          `json:"type"`
	ID     json.RawMessage `json:"id,omitempty"` // echoed in the reply; a number or a string
	Topic  string          `json:"topic"`
	Data   json.RawMessage `json:"data,omitempty"`
	Epoch  string          `json:"epoch,omitempty"`
	Offset *uint64         `json:"offset,omitempty"` // with subscribe: recover after this offset
}

// ProtocolError is a command refused with an "error" reply.
type ProtocolError struct {
	Code, Message string
}

func (e *ProtocolError) Error() string { return "pubsub: " + e.Code + ": " + e.Message }

// fieldKinds names what each command field must hold, for the error replies.
var fieldKinds = map[string]string{
	"type": "a string", "topic": "a string", "epoch": "a string",
	"offset": "a non-negative integer", "id": "a number or a string",
}

// describeDecodeError turns an encoding/json error into the message of a bad_request
// reply in the protocol's terms: the field and what it must hold, the byte of a syntax
// error, an unknown field, never a Go type name.
func describeDecodeError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field == "":
		return "a command must be a JSON object, not " + jsonKind(te.Value)
	case errors.As(err, &te):
		if k, ok := fieldKinds[te.Field]; ok {
			return "field " + strconv.Quote(te.Field) + " must be " + k
		}
		return "field " + strconv.Quote(te.Field) + " has the wrong type"
	case errors.As(err, &se):
		return "not valid JSON at byte " + strconv.FormatInt(se.Offset, 10)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "incomplete JSON object"
	}
	if msg, ok := strings.CutPrefix(err.Error(), "json: "); ok {
		return msg // "unknown field \"x\""
	}
	return "not a command object"
}

// jsonKind names a JSON value kind as encoding/json reports it in UnmarshalTypeError.
func jsonKind(v string) string {
	switch v {
	case "array", "object":
		return "an " + v
	}
	return "a " + v
}

// ParseCommand parses one client message.
func ParseCommand(msg []byte) (*Command, error) {
	var c Command
	d := json.NewDecoder(bytes.NewReader(msg))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return &c, &ProtocolError{ErrCodeBadRequest, describeDecodeError(err)}
	}
	if d.More() {
		return &c, &ProtocolError{ErrCodeBadRequest, "data after the command object"}
	}
	if len(c.ID) > 0 && c.ID[0] != '"' && (c.ID[0] < '0' || c.ID[0] > '9') && c.ID[0] != '-' {
		return &c, &ProtocolError{ErrCodeBadRequest, "id must be a number or a string"}
	}
	switch c.Type {
	case CmdSubscribe, CmdUnsubscribe, CmdPublish, CmdPresence:
	case "":
		return &c, &ProtocolError{ErrCodeBadRequest, "missing type"}
	default:
		return &c, &ProtocolError{ErrCodeBadRequest, "unknown type " + strconv.Quote(c.Type)}
	}
	if !ValidTopic(c.Topic) {
		return &c, &ProtocolError{ErrCodeBadTopic, "topic must be 1 to 1024 bytes without control characters"}
	}
	if c.Type == CmdPublish && len(c.Data) == 0 {
		return &c, &ProtocolError{ErrCodeBadRequest, "publish needs data"}
	}
	if c.Offset != nil && c.Type != CmdSubscribe {
		return &c, &ProtocolError{ErrCodeBadRequest, "offset is for subscribe"}
	}
	return &c, nil
}

// asProtocolError returns err as a *ProtocolError.
func asProtocolError(err error) *ProtocolError {
	if pe, ok := errors.AsType[*ProtocolError](err); ok {
		return pe
	}
	return &ProtocolError{ErrCodeBadRequest, err.Error()}
}

// reply starts a reply object of type typ for command c.
func reply(b []byte, typ string, c *Command) []byte {
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, '"')
	if c != nil && len(c.ID) > 0 {
		b = append(b, `,"id":`...)
		b = append(b, c.ID...)
	}
	if c != nil && c.Topic != "" && ValidTopic(c.Topic) {
		b = append(b, `,"topic":`...)
		b = appendJSONString(b, c.Topic)
	}
	return b
}

// AppendError appends the "error" reply to c (c may be nil when it did not parse).
func AppendError(b []byte, c *Command, pe *ProtocolError) []byte {
	b = reply(b, "error", c)
	b = append(b, `,"code":"`...)
	b = append(b, pe.Code...)
	b = append(b, `","message":`...)
	b = appendJSONString(b, pe.Message)
	return append(b, '}')
}

// AppendSubscribed appends the "subscribed" reply: the topic's epoch, the offset of
// the last message published before the subscription (the position to recover
// from later), and with a recovery whether it succeeded and how many messages follow.
func AppendSubscribed(b []byte, c *Command, j *Joined) []byte {
	b = reply(b, "subscribed", c)
	b = append(b, `,"epoch":"`...)
	b = append(b, j.Epoch...)
	b = append(b, `","offset":`...)
	b = strconv.AppendUint(b, j.Next-1, 10)
	switch {
	case j.Recovered:
		b = append(b, `,"recovery":"ok","missed":`...)
		b = strconv.AppendInt(b, int64(len(j.Replay)), 10)
	case j.Failed:
		b = append(b, `,"recovery":"failed"`...)
	}
	return append(b, '}')
}

// AppendSimple appends a reply without fields of its own ("unsubscribed").
func AppendSimple(b []byte, typ string, c *Command) []byte {
	return append(reply(b, typ, c), '}')
}

// AppendPublished appends the "published" reply with the message's offset.
func AppendPublished(b []byte, c *Command, offset uint64) []byte {
	b = reply(b, "published", c)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, offset, 10)
	return append(b, '}')
}

// AppendPresence appends the "presence" reply.
func AppendPresence(b []byte, c *Command, n int64) []byte {
	b = reply(b, "presence", c)
	b = append(b, `,"subscribers":`...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, '}')
}

// AppendDropped appends the notice that n messages were dropped for a slow reader.
func AppendDropped(b []byte, n uint64) []byte {
	b = append(b, `{"type":"dropped","count":`...)
	b = strconv.AppendUint(b, n, 10)
	return append(b, '}')
}
