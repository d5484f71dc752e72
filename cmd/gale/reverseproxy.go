package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/gale-server/gale/config"
)

// reverseProxyConfig builds the configuration of gale reverse-proxy: one server on
// from whose only route forwards everything to the comma-separated servers in to,
// with the upstream defaults of docs/config.md.
func reverseProxyConfig(from, to string) (*config.Config, error) {
	p := &config.Proxy{}
	p.SetDefaults()
	for _, a := range strings.Split(to, ",") {
		if a = strings.TrimSpace(a); a != "" {
			p.Upstreams = append(p.Upstreams, config.UpstreamServer{Address: a, Weight: 1})
		}
	}
	cfg := config.New()
	cfg.Servers = []config.Server{{
		Listen: []string{from},
		Routes: []config.Route{{Match: config.Match{Path: "/"}, Proxy: p}},
	}}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// reverseProxyCmd runs gale reverse-proxy.
func (c *cli) reverseProxyCmd(args []string) int {
	fs := flag.NewFlagSet("gale reverse-proxy", flag.ContinueOnError)
	from := fs.String("from", "127.0.0.1:8080", "the `host:port` to listen on")
	to := fs.String("to", "", "the upstream servers, `ip:port[,ip:port…]` (localhost:port too), used in turn")
	if status, done := c.flags(fs, args, "gale reverse-proxy --from ADDR --to ADDR[,ADDR…]",
		"Forward every request to the given servers (round robin, keep-alive), with the defaults of docs/config.md."); done {
		return status
	}
	if strings.Trim(*to, ", \t") == "" { // nothing but separators names no server either
		fmt.Fprintln(c.stderr, "gale reverse-proxy: --to is required: the upstream servers, ip:port[,ip:port…]")
		return exitUsage
	}
	cfg, err := reverseProxyConfig(*from, *to)
	if err != nil {
		var list config.ErrorList
		if !errors.As(err, &list) {
			fmt.Fprintf(c.stderr, "gale reverse-proxy: %v\n", err)
			return exitError
		}
		for _, e := range list {
			flagName := "--to"
			if strings.Contains(e.Path, ".listen") {
				flagName = "--from"
			}
			fmt.Fprintf(c.stderr, "gale reverse-proxy: %s: %s\n", flagName, e.Msg)
		}
		return exitError
	}
	var addrs []string
	for _, s := range cfg.Servers[0].Routes[0].Proxy.Upstreams {
		addrs = append(addrs, s.Address)
	}
	return c.serve(cfg, fmt.Sprintf("gale proxying %s to %s", listenURL(*from), strings.Join(addrs, ",")), nil)
}
