package server

import "github.com/gale-server/gale/http1"

// RequestTrailers returns the trailer fields of a chunked request body, valid once
// the body has ended (OnBody reported end) until the response ends. Fields that RFC
// 9110 §6.5.1 keeps out of trailers never appear: such a request fails with 400.
func (c *Ctx) RequestTrailers() []http1.Header { return c.body.Trailers() }
