package nethttp

import "net/http"

// commonNames maps the request field names browsers, proxies and API clients send,
// spelled canonically and in lower case (HTTP/2, many HTTP/1 clients), to their
// canonical form, so that those names cost no allocation.
var commonNames = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Connection", "Content-Encoding", "Content-Length", "Content-Type",
		"Cookie", "Dnt", "Expect", "Forwarded", "Host", "If-Match", "If-Modified-Since",
		"If-None-Match", "If-Range", "If-Unmodified-Since", "Origin", "Pragma", "Priority",
		"Range", "Referer", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform",
		"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User",
		"Sec-Websocket-Extensions", "Sec-Websocket-Key", "Sec-Websocket-Protocol",
		"Sec-Websocket-Version", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Upgrade-Insecure-Requests", "User-Agent", "Via", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
		"X-Requested-With",
	} {
		if http.CanonicalHeaderKey(k) != k {
			panic("nethttp: commonNames entry not canonical: " + k)
		}
		m[k] = k
		m[lower(k)] = k
	}
	return m
}()

// lower returns s in ASCII lower case.
func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// commonName returns http.CanonicalHeaderKey(string(name)), without allocating
// when the name is a common one in canonical or lower-case spelling.
func commonName(name []byte) string {
	if k, ok := commonNames[string(name)]; ok {
		return k
	}
	return http.CanonicalHeaderKey(string(name))
}
