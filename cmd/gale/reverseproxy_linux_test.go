//go:build linux

package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
)

func TestReverseProxyCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "origin saw %s %s xff=%s", r.Method, r.URL.Path, r.Header.Get("X-Forwarded-For"))
	}))
	defer origin.Close()
	bin, _ := galeBinary(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	from := ln.Addr().String()
	ln.Close()
	// The origin listens on 127.0.0.1; --to names it localhost, which an inline
	// list takes without resolving (before, it was refused as a host name).
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(origin.URL, "http://"))
	startGale(t, bin, dir, "reverse-proxy", "--from", from, "--to", "localhost:"+port)
	out, err := exec.Command(curl, "-sS", "--max-time", "10", "http://"+from+"/hello", "http://"+from+"/again").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	if want := "origin saw GET /hello xff=127.0.0.1origin saw GET /again xff=127.0.0.1"; string(out) != want {
		t.Fatalf("curl got %q, want %q", out, want)
	}
}
