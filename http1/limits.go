package http1

import (
	"errors"
	"strconv"
)

// Limits bounds what the parser accepts from one request. A zero field means "use the
// default" (see DefaultLimits), except MaxBodyBytes, where zero means unlimited.
type Limits struct {
	// MaxRequestLine is the longest request line, without its CRLF, in bytes. Longer → 414.
	MaxRequestLine int
	// MaxHeaderBytes bounds the header section: the sum over field lines of their length
	// plus CRLF, not counting the request line or the final empty line. Larger → 431.
	MaxHeaderBytes int
	// MaxHeaderFields is the largest number of field lines. More → 431.
	MaxHeaderFields int
	// MaxBodyBytes is the largest request body, 0 for unlimited. A larger Content-Length
	// is refused by ParseHead, a longer chunked body by BodyReader.Next; both → 413.
	MaxBodyBytes int64
}

// Default limit values returned by DefaultLimits.
const (
	DefaultMaxRequestLine  = 8192
	DefaultMaxHeaderBytes  = 64 << 10
	DefaultMaxHeaderFields = 100
)

// DefaultLimits returns 8 KiB of request line, 64 KiB of header section, 100 field lines
// and no body limit.
func DefaultLimits() Limits {
	return Limits{
		MaxRequestLine:  DefaultMaxRequestLine,
		MaxHeaderBytes:  DefaultMaxHeaderBytes,
		MaxHeaderFields: DefaultMaxHeaderFields,
	}
}

// withDefaults returns l with every zero field except MaxBodyBytes replaced by its default.
func (l Limits) withDefaults() Limits {
	if l.MaxRequestLine <= 0 {
		l.MaxRequestLine = DefaultMaxRequestLine
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxHeaderFields <= 0 {
		l.MaxHeaderFields = DefaultMaxHeaderFields
	}
	if l.MaxBodyBytes < 0 {
		l.MaxBodyBytes = 0
	}
	return l
}

// ErrNeedMore reports that the input ends before the thing being parsed does. It is not a
// protocol error: the caller reads more bytes and calls again.
var ErrNeedMore = errors.New("http1: need more data")

// Error is a request-level protocol error. Its blast radius is the connection: the caller
// sends a response with Status (and a body it chooses), then closes the connection,
// because after a framing error the position of the next request is unknown.
//
// The parser returns shared *Error values; callers must not modify them.
type Error struct {
	Status int    // HTTP status code to answer with: 400, 413, 414, 417, 431, 501 or 505
	Reason string // short human-readable cause, for logs; not meant for the client
}

// Error formats the status and reason.
func (e *Error) Error() string {
	return "http1: " + strconv.Itoa(e.Status) + " " + e.Reason
}

func newErr(status int, reason string) *Error { return &Error{Status: status, Reason: reason} }

// Errors returned by ParseHead and BodyReader.Next. They are package variables so that
// the error paths do not allocate either.
var (
	errLeadingLines    = newErr(400, "too many empty lines before the request line")
	errBareLF          = newErr(400, "line ends in bare LF instead of CRLF")
	errRequestLine     = newErr(400, "malformed request line")
	errMethod          = newErr(400, "invalid character in method")
	errTarget          = newErr(400, "invalid request target")
	errVersion         = newErr(400, "malformed HTTP version")
	errObsFold         = newErr(400, "obsolete line folding")
	errSpaceName       = newErr(400, "whitespace between field name and colon")
	errFieldName       = newErr(400, "invalid character in field name")
	errNoColon         = newErr(400, "field line without colon")
	errFieldValue      = newErr(400, "invalid character in field value")
	errHostMissing     = newErr(400, "HTTP/1.1 request without Host")
	errHostMany        = newErr(400, "more than one Host field")
	errHostInvalid     = newErr(400, "invalid Host value")
	errCLInvalid       = newErr(400, "invalid Content-Length")
	errCLConflict      = newErr(400, "conflicting Content-Length values")
	errCLAndTE         = newErr(400, "both Content-Length and Transfer-Encoding")
	errTE10            = newErr(400, "Transfer-Encoding in an HTTP/1.0 request")
	errTENotChunked    = newErr(400, "Transfer-Encoding does not end in chunked")
	errTEUnsupported   = newErr(501, "unsupported transfer coding")
	errExpect          = newErr(417, "unsupported expectation")
	errTooLarge        = newErr(413, "request body too large")
	errURITooLong      = newErr(414, "request line too long")
	errHeaderTooLarge  = newErr(431, "header section too large")
	errTooManyFields   = newErr(431, "too many header fields")
	errVersionSupport  = newErr(505, "HTTP version not supported")
	errChunkSize       = newErr(400, "invalid chunk size")
	errChunkExt        = newErr(400, "invalid chunk extension")
	errChunkLine       = newErr(400, "chunk size line too long")
	errChunkCRLF       = newErr(400, "missing CRLF after chunk data")
	errTrailerTooLarge = newErr(431, "trailer section too large")
	// errTrailerForbidden: a framing, routing, modifier, authentication or content-format
	// field in the trailer section (RFC 9110 §6.5.1).
	errTrailerForbidden = newErr(400, "field not allowed in trailers")
)
