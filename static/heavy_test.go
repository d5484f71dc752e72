package static

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestHeavyLargeFileSlowReader downloads a large file over a real socket, reading
// slowly at first so that sendfile meets a full socket and must resume at its saved
// offset, and compares the SHA-256 with the file's. 1 GiB with GALE_HEAVY=1.
func TestHeavyLargeFileSlowReader(t *testing.T) {
	size := int64(64 << 20)
	if os.Getenv("GALE_HEAVY") == "1" {
		size = 1 << 30
	} else {
		t.Logf("reduced to %d MiB; GALE_HEAVY=1 runs 1 GiB", size>>20)
	}
	root := t.TempDir()
	path := filepath.Join(root, "big.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	block := make([]byte, 1<<20)
	for i := int64(0); i < size; i += int64(len(block)) {
		for j := range block {
			block[j] = byte(i>>20) ^ byte(j*31)
		}
		f.Write(block)
		want.Write(block)
	}
	f.Close()
	base := startGale(t, newHandler(t, Options{Root: root}))
	c, err := net.Dial("tcp", base[len("http://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	fmt.Fprintf(c, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != size {
		t.Fatalf("Content-Length %d, want %d", resp.ContentLength, size)
	}
	got := sha256.New()
	small := make([]byte, 1024)
	for i := 0; i < 100; i++ { // slow start: about 0.3 s at 1 KiB per 3 ms
		n, err := resp.Body.Read(small)
		got.Write(small[:n])
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond)
	}
	if _, err := io.Copy(got, resp.Body); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("downloaded bytes differ from the file")
	}
}

// TestConcurrentEditsServedWhole rewrites a file (write to a temporary name, then
// rename, as editors and deploy tools do) while clients download it: every response
// must be one complete version, never a mix, and the newest version must be served
// once the revalidation period has passed.
func TestConcurrentEditsServedWhole(t *testing.T) {
	root := t.TempDir()
	versions := make([][]byte, 8)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 200<<10+i)
	}
	path := filepath.Join(root, "f.txt")
	os.WriteFile(path, versions[0], 0o644)
	base := startGale(t, newHandler(t, Options{Root: root, OpenFileCache: CacheOptions{Revalidate: 50 * time.Millisecond}}))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(base + "/f.txt")
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				ok := false
				for _, v := range versions {
					if bytes.Equal(b, v) {
						ok = true
					}
				}
				if !ok {
					errs <- fmt.Errorf("got a response of %d bytes that matches no version", len(b))
					return
				}
			}
		}()
	}
	for i := 1; i < len(versions); i++ {
		tmp := filepath.Join(root, ".f.tmp")
		os.WriteFile(tmp, versions[i], 0o644)
		os.Rename(tmp, path)
		time.Sleep(30 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + "/f.txt")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Equal(b, versions[len(versions)-1]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last version is not served %v after the edit", 5*time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
