package numa

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Memory policy modes and flags of mbind(2) and get_mempolicy(2); x/sys/unix
// does not define them.
const (
	mpolBind  = 2      // MPOL_BIND: allocate only on the nodes in the mask
	mpolFAddr = 1 << 1 // MPOL_F_ADDR: get_mempolicy reports the policy of an address
)

// maskWords bounds node ids to 1024, far above any real machine.
const maskWords = 16

type nodeMask [maskWords]uint64

// Alloc returns size bytes of anonymous, zeroed memory whose pages the kernel
// may place only on node (mmap, then mbind with MPOL_BIND). The pages are
// allocated on first touch. The memory is outside the Go heap: release it
// with Free. An error (no such node, a kernel without NUMA, a seccomp filter
// refusing mbind) leaves nothing allocated; callers fall back to ordinary
// memory.
func Alloc(size, node int) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("numa: invalid allocation size %d", size)
	}
	if node < 0 || node >= maskWords*64 {
		return nil, fmt.Errorf("numa: invalid node %d", node)
	}
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	var mask nodeMask
	mask[node/64] |= 1 << (node % 64)
	// maxnode counts one more than the mask's bits: the kernel drops the last.
	_, _, e := unix.Syscall6(unix.SYS_MBIND, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), mpolBind,
		uintptr(unsafe.Pointer(&mask[0])), maskWords*64+1, 0)
	if e != 0 {
		unix.Munmap(b)
		return nil, os.NewSyscallError("mbind", e)
	}
	return b, nil
}

// Free releases memory returned by Alloc.
func Free(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return os.NewSyscallError("munmap", unix.Munmap(b))
}

// BoundNodes reports the nodes the memory at b is bound to with MPOL_BIND, or
// nil when it has another policy (get_mempolicy with MPOL_F_ADDR).
func BoundNodes(b []byte) ([]int, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("numa: empty buffer")
	}
	var mode int32
	var mask nodeMask
	_, _, e := unix.Syscall6(unix.SYS_GET_MEMPOLICY, uintptr(unsafe.Pointer(&mode)), uintptr(unsafe.Pointer(&mask[0])),
		maskWords*64, uintptr(unsafe.Pointer(&b[0])), mpolFAddr, 0)
	if e != 0 {
		return nil, os.NewSyscallError("get_mempolicy", e)
	}
	if mode != mpolBind {
		return nil, nil
	}
	var nodes []int
	for i := 0; i < maskWords*64; i++ {
		if mask[i/64]&(1<<(i%64)) != 0 {
			nodes = append(nodes, i)
		}
	}
	return nodes, nil
}
