package app

import "github.com/gale-server/gale/internal/os/sys"

// checkBindable reports why the socket key addr could not be bound, or nil
// (see sys.CheckBindable).
func checkBindable(addr string) error { return sys.CheckBindable(BindAddr(addr)) }
