package static

import (
	"encoding/json"
	"errors"
	"html"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/server"
)

// maxListing bounds the entries read for one directory listing; a larger directory is
// listed partially and marked truncated. Reading a directory runs on the event loop,
// so this also bounds the time one listing can hold it.
const maxListing = 10000

// listItem is one entry of a directory listing.
type listItem struct {
	Name string `json:"name"`
	// Href is the relative link to the entry ("./name", "./dir/"), percent-encoded; a
	// name that is not valid UTF-8 is only exact here, since JSON strings replace the
	// invalid bytes of Name.
	Href  string    `json:"href"`
	Dir   bool      `json:"dir"`
	Size  int64     `json:"size"`
	MTime time.Time `json:"mtime"`
}

// listing is the JSON form of a directory listing.
type listing struct {
	Path      string     `json:"path"`
	Entries   []listItem `json:"entries"`
	Truncated bool       `json:"truncated"`
	Root      bool       `json:"-"` // the served root: no parent link
	title     string     // the decoded path, for the HTML title (see displayPath)
}

// serveListing answers a directory listing of rel: JSON when the Accept field prefers
// application/json, HTML otherwise. Directories come first, then files, each sorted by
// name. Dotfiles are hidden unless allowed; symbolic links are listed only when the
// policy would serve them, with the size and type of their target; anything but
// regular files and directories is left out, and so is a name that no request path
// can name (see linkable), so that every link of a listing can be followed.
func (h *Handler) serveListing(x server.Exchange, rel string, now time.Time) {
	f, fi, err := h.open(rel)
	if err != nil {
		h.serveMissing(x, err, now)
		return
	}
	defer f.Close()
	if !fi.IsDir() {
		h.serveMissing(x, errNotFound, now)
		return
	}
	// A listing has no entity-tag and no Last-Modified, but it is a current
	// representation: "If-Match: *" holds and a list of tags fails (412), and
	// "If-None-Match: *" gives 304 (RFC 9110 §13.1.1, §13.1.2), as nginx answers; the
	// dates are ignored, as for any resource without a modification date (§13.1.3,
	// §13.1.4).
	c := requestConditions(x)
	c.ifModifiedSince, c.ifUnmodifiedSince = nil, nil
	switch evalPreconditions(c, "", 0, 0) {
	case condFailed:
		x.Error(412, "")
		return
	case condNotModified:
		x.Header().Set("Vary", "Accept")
		x.WriteHeader(304)
		x.End()
		return
	}
	l, err := h.readListing(f, rel)
	if err != nil {
		h.serveError(x, err)
		return
	}
	x.Header().Set("Vary", "Accept")
	if accept := reqList(x, "Accept"); accept != nil && wantsJSON(accept) {
		body, err := json.Marshal(l)
		if err != nil {
			h.serveError(x, err)
			return
		}
		x.Respond(200, "application/json", append(body, '\n'))
		return
	}
	x.Respond(200, "text/html; charset=utf-8", renderListingHTML(l))
}

// displayPath returns the path of directory rel under the mount prefix decoded, as a
// listing's title shows it ("/dé/ a/", as nginx's autoindex does), where Path holds
// it percent-encoded ("/d%C3%A9/%20a/"), as a link does. Bytes that are not UTF-8
// are shown as U+FFFD, since the page is UTF-8.
func (h *Handler) displayPath(rel string) string {
	p := strings.TrimSuffix(h.prefix, "/") + "/"
	if rel != "" {
		p += rel + "/"
	}
	return strings.ToValidUTF8(p, "\uFFFD")
}

// readListing reads and sorts the entries of the open directory d, which is rel.
func (h *Handler) readListing(d *os.File, rel string) (listing, error) {
	l := listing{Path: h.urlPath(rel, true), Entries: []listItem{}, Root: rel == "", title: h.displayPath(rel)}
	names, err := d.Readdirnames(maxListing + 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return l, err
	}
	if len(names) > maxListing {
		names, l.Truncated = names[:maxListing], true
	}
	dirPath := filepath.Join(h.res.root, filepath.FromSlash(rel))
	for _, name := range names {
		if h.dotfiles != dotAllow && strings.HasPrefix(name, ".") && name != ".well-known" {
			continue
		}
		if !linkable(name) {
			continue
		}
		if item, ok := h.describe(d, dirPath, rel, name); ok {
			l.Entries = append(l.Entries, item)
		}
	}
	sort.Slice(l.Entries, func(i, j int) bool {
		a, b := l.Entries[i], l.Entries[j]
		if a.Dir != b.Dir {
			return a.Dir
		}
		return a.Name < b.Name
	})
	return l, nil
}

// describe stats one directory entry; ok is false when it must not be listed.
func (h *Handler) describe(d *os.File, dirPath, rel, name string) (listItem, bool) {
	m, err := lstatAt(d, dirPath, name)
	if err != nil {
		return listItem{}, false
	}
	if m.mode&fs.ModeSymlink != 0 {
		if h.res.policy == followNever {
			return listItem{}, false
		}
		target := name
		if rel != "" {
			target = rel + "/" + name
		}
		f, fi, err := h.open(target)
		if err != nil {
			return listItem{}, false
		}
		f.Close()
		m = fileMeta{mode: fi.Mode().Type(), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	}
	if m.mode != 0 && m.mode != fs.ModeDir {
		return listItem{}, false
	}
	item := listItem{Name: name, Dir: m.mode == fs.ModeDir, MTime: time.Unix(0, m.mtime).UTC()}
	item.Href = "./" + escapePath(name)
	if item.Dir {
		item.Href += "/"
	} else {
		item.Size = m.size
	}
	return item, true
}

// linkable reports whether a request can name the directory entry name: its escaped
// link, normalized as every request path is (http1.NormalizePath), gives back exactly
// "/name". Names with a backslash, a control byte or a dot segment with parameters
// ("..;x") are refused by normalization and so are not listed; every other byte,
// '%', '?', '#', quotes, spaces and non-UTF-8 included, round-trips.
func linkable(name string) bool {
	link := []byte("/" + escapePath(name))
	n, err := http1.NormalizePath(nil, link)
	return err == nil && len(n) == len(name)+1 && string(n[1:]) == name
}

// renderListingHTML renders a listing as a small HTML page. Names are HTML-escaped in
// text and percent-encoded in links; every link starts with "./" so a name such as
// "javascript:x" or "a:b" stays a relative path.
func renderListingHTML(l listing) []byte {
	title := html.EscapeString("Index of " + l.title)
	b := make([]byte, 0, 512+128*len(l.Entries))
	b = append(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>"...)
	b = append(b, title...)
	b = append(b, "</title></head>\n<body><h1>"...)
	b = append(b, title...)
	b = append(b, "</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n"...)
	if !l.Root {
		b = append(b, "<tr><td><a href=\"../\">../</a></td><td>-</td><td></td></tr>\n"...)
	}
	for _, it := range l.Entries {
		href, text, size := it.Href, it.Name, "-"
		if it.Dir {
			text += "/"
		} else {
			size = strconv.FormatInt(it.Size, 10)
		}
		b = append(b, "<tr><td><a href=\""...)
		b = append(b, html.EscapeString(href)...)
		b = append(b, "\">"...)
		b = append(b, html.EscapeString(text)...)
		b = append(b, "</a></td><td>"...)
		b = append(b, size...)
		b = append(b, "</td><td>"...)
		b = append(b, it.MTime.Format("2006-01-02 15:04:05 UTC")...)
		b = append(b, "</td></tr>\n"...)
	}
	b = append(b, "</table>\n"...)
	if l.Truncated {
		b = append(b, "<p>Listing truncated.</p>\n"...)
	}
	return append(b, "</body></html>\n"...)
}
