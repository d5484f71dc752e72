package app

import (
	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/lb"
	"github.com/gale-server/gale/proxy"
)

// balanceOptions copies the configured balancing method of cu into o.
func balanceOptions(o *proxy.UpstreamOptions, cu *config.Upstream) error {
	key, err := lb.ParseKey(cu.HashKey)
	if err != nil {
		return err
	}
	o.Balance, o.HashKey = cu.Balance, key
	o.BalanceOptions = lb.Options{
		VNodes: cu.VNodes, TableSize: cu.TableSize, BoundedLoad: float64(cu.BoundedLoad) / 100,
	}
	return nil
}
