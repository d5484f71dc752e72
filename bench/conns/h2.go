package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Request opens an HTTP/2 connection by prior knowledge on c and makes one GET on
// stream 1: the preface and an empty SETTINGS, the ACK of the server's SETTINGS, and the
// request; it reads until the response has ended (END_STREAM on stream 1) and fails on
// any status but 200, a GOAWAY or a reset. The connection then holds the state a browser
// tab leaves behind after one request: both HPACK tables, no stream.
func h2Request(c net.Conn, br *bufio.Reader, host, path string) error {
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", host}, {":path", path},
		{"user-agent", "gale-bench-conns"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return classify("request", err)
	}
	fr := http2.NewFramer(c, br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		return classify("request", err)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		return classify("request", err)
	}
	status := ""
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return classify("response", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return classify("request", err)
				}
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			return kindError("response:goaway-" + f.ErrCode.String())
		case *http2.RSTStreamFrame:
			return kindError("response:reset-" + f.ErrCode.String())
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 && status == "" {
				status = f.PseudoValue("status")
			}
			if f.StreamID == 1 && f.StreamEnded() {
				return h2Status(status)
			}
		case *http2.DataFrame:
			if f.StreamID == 1 && f.StreamEnded() {
				return h2Status(status)
			}
		}
	}
}

func h2Status(status string) error {
	if status != "200" {
		return kindError(fmt.Sprintf("response:status-%s", status))
	}
	return nil
}
