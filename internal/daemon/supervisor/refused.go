package supervisor

import (
	"encoding/json"
	"os"
	"time"

	"github.com/gale-server/gale/metrics"
)

// refusedSuffix is appended to the stats segment's path to name the file in
// which a supervising parent lists the reloads it refused (a file that does not
// validate never reaches its workers), so that the workers' /status.json lists
// them with the reloads they applied.
const refusedSuffix = ".refused"

// maxRefused is how many refused reloads the file keeps, as many as
// /status.json shows.
const maxRefused = 20

// recordRefused adds err, a refused reload, to the parent's list and writes the
// list beside the stats segment (a new file renamed over the old one, so that a
// reader sees a whole list).
func (p *parent) recordRefused(err error) {
	if p.seg == nil {
		return
	}
	p.refused = append(p.refused, metrics.Reload{Time: time.Now(), Error: err.Error()})
	if len(p.refused) > maxRefused {
		p.refused = p.refused[len(p.refused)-maxRefused:]
	}
	b, jerr := json.Marshal(p.refused)
	if jerr != nil {
		return
	}
	path := p.seg.Path() + refusedSuffix
	tmp := path + ".tmp"
	if werr := os.WriteFile(tmp, b, 0o600); werr != nil {
		p.log.Warn("reload: cannot list the refused reload for the workers' status", "err", werr)
		return
	}
	if rerr := os.Rename(tmp, path); rerr != nil {
		os.Remove(tmp)
		p.log.Warn("reload: cannot list the refused reload for the workers' status", "err", rerr)
	}
}

// readRefused returns a function that reads the refused reloads the parent
// listed beside the segment at statsPath (none when there is no such file).
func readRefused(statsPath string) func() []metrics.Reload {
	return func() []metrics.Reload {
		b, err := os.ReadFile(statsPath + refusedSuffix)
		if err != nil {
			return nil
		}
		var out []metrics.Reload
		if json.Unmarshal(b, &out) != nil {
			return nil
		}
		return out
	}
}
