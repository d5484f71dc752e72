package nethttp

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadFromSendsFiles: the ResponseWriter is an io.ReaderFrom, as net/http's
// is, so io.Copy from a file and http.ServeContent send the file as a file segment
// (sendfile on HTTP/1.1, read by the loop on HTTP/2); the bytes arrive whole, a
// range is the right slice, the Content-Length is the handler's, a sniffed type is
// still sniffed, and ReadFrom returns only once the loop is done with the file, so
// the handler may close it at once (a client reading slowly would otherwise get a
// cut or wrong body).
func TestReadFromSendsFiles(t *testing.T) {
	data := make([]byte, 3<<20+123)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	copy(data[100:], "<html><body>") // where /copy starts: sniffed as text/html
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	readFromErr := make(chan error, 8)
	mux.HandleFunc("/copy", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(io.ReaderFrom); !ok {
			http.Error(w, "not an io.ReaderFrom", 500)
			return
		}
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		f.Seek(100, io.SeekStart)
		n, err := io.Copy(w, f)
		pos, _ := f.Seek(0, io.SeekCurrent)
		f.Close() // at once: the loop must be done with the descriptor
		if err == nil && (n != int64(len(data)-100) || pos != int64(len(data))) {
			err = fmt.Errorf("io.Copy sent %d, offset %d; want %d, %d", n, pos, len(data)-100, len(data))
		}
		readFromErr <- err
	})
	mux.HandleFunc("/content", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "blob.bin", time.Time{}, f)
	})
	onEngines(t, func(t *testing.T, eng string) {
		addr := startOn(t, eng, mux)
		bothProtocols(t, func(t *testing.T, c *http.Client) {
			resp, err := c.Get("http://" + addr + "/copy")
			if err != nil {
				t.Fatal(err)
			}
			// A slow reader: the file is still being sent when the client starts.
			time.Sleep(50 * time.Millisecond)
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !bytes.Equal(b, data[100:]) {
				t.Fatalf("io.Copy body: %d bytes (%v), want %d equal bytes", len(b), err, len(data)-100)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want the sniffed text/html", ct)
			}
			select {
			case err := <-readFromErr:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the handler did not return")
			}

			req, _ := http.NewRequest("GET", "http://"+addr+"/content", nil)
			req.Header.Set("Range", "bytes=1000-2099999")
			resp, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 206 || resp.ContentLength != 2099000 || !bytes.Equal(b, data[1000:2100000]) {
				t.Fatalf("range: status %d, length %d, %d bytes (%v); want 206 and bytes 1000-2099999", resp.StatusCode, resp.ContentLength, len(b), err)
			}
			resp, err = c.Get("http://" + addr + "/content")
			if err != nil {
				t.Fatal(err)
			}
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.ContentLength != int64(len(data)) || !bytes.Equal(b, data) {
				t.Fatalf("whole file: length %d, %d bytes (%v); want %d equal bytes", resp.ContentLength, len(b), err, len(data))
			}
		})
	})
}

// TestReadFromReturnsWhenClientGoes: a client that goes away in the middle of a
// file sent with ReadFrom makes io.Copy return an error soon, on both protocols,
// so the pool worker is free again (it does not wait for a send that will never
// complete).
func TestReadFromReturnsWhenClientGoes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(path, make([]byte, 16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	copied := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			copied <- err
			return
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		copied <- err
	})
	onEngines(t, func(t *testing.T, eng string) {
		addr := startOn(t, eng, h)
		bothProtocols(t, func(t *testing.T, c *http.Client) {
			resp, err := c.Get("http://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			io.ReadFull(resp.Body, make([]byte, 100<<10))
			resp.Body.Close() // on HTTP/2 a reset of the stream, on HTTP/1.1 a close
			c.Transport.(*http.Transport).CloseIdleConnections()
			select {
			case err := <-copied:
				if err == nil {
					t.Fatal("io.Copy reported success to a client that went away")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("io.Copy still waits for a client that went away")
			}
		})
	})
}
