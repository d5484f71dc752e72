//go:build !linux

package l4

// pipePool is empty where there is no splice(2).
type pipePool struct{}

// splice is a direction's splice state: none where there is no splice(2).
type splice struct{ notify bool }

// startSplice keeps copying: read notification is a Linux engine feature.
func (d *dir) startSplice() { d.noSplice = true }

// readable is never called: read notification is never on.
func (d *dir) readable() {}

// releasePipe has no pipe to release.
func (d *dir) releasePipe() {}
