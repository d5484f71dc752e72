//go:build linux

package uring

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BufRing is a provided-buffer ring (IORING_REGISTER_PBUF_RING): count buffers of
// size bytes, in memory mapped outside the Go heap, that the kernel picks from for
// receives submitted with SqeBufferSelect and this ring's group. A buffer the kernel
// filled belongs to the caller until Recycle hands it back. Owned by the ring's
// goroutine.
type BufRing struct {
	r       *Ring
	group   uint16
	size    int
	mask    uint16
	tail    uint16
	entries []bufEntry // shared with the kernel; the tail lives in entry 0's last field
	ringMem []byte
	bufs    []byte
}

// bufEntry is io_uring_buf.
type bufEntry struct {
	addr uint64
	len  uint32
	bid  uint16
	tail uint16 // meaningful in entry 0 only: the ring's tail
}

type bufReg struct {
	ringAddr    uint64
	ringEntries uint32
	bgid        uint16
	flags       uint16
	resv        [3]uint64
}

// NewBufRing registers a buffer ring of count (a power of two, at most 32768)
// buffers of size bytes as buffer group group, with every buffer provided.
func (r *Ring) NewBufRing(group uint16, count, size int) (*BufRing, error) {
	if count <= 0 || count > 1<<15 || count&(count-1) != 0 {
		return nil, fmt.Errorf("io_uring: buffer count %d is not a power of two up to 32768", count)
	}
	ringMem, err := unix.Mmap(-1, 0, count*int(unsafe.Sizeof(bufEntry{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, os.NewSyscallError("mmap buffer ring", err)
	}
	bufs, err := unix.Mmap(-1, 0, count*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		unix.Munmap(ringMem)
		return nil, os.NewSyscallError("mmap buffers", err)
	}
	b := &BufRing{r: r, group: group, size: size, mask: uint16(count - 1), ringMem: ringMem, bufs: bufs,
		entries: unsafe.Slice((*bufEntry)(unsafe.Pointer(&ringMem[0])), count)}
	reg := bufReg{ringAddr: uint64(uintptr(unsafe.Pointer(&ringMem[0]))), ringEntries: uint32(count), bgid: group}
	if err := r.register(registerPbufRing, unsafe.Pointer(&reg), 1); err != nil {
		unix.Munmap(ringMem)
		unix.Munmap(bufs)
		return nil, err
	}
	for i := 0; i < count; i++ {
		b.put(uint16(i))
	}
	b.Publish()
	return b, nil
}

// Group returns the buffer group id to put in SQE.BufGroup.
func (b *BufRing) Group() uint16 { return b.group }

// Size returns the size of each buffer.
func (b *BufRing) Size() int { return b.size }

// Buf returns the first n bytes of buffer id (as a completion reported it).
func (b *BufRing) Buf(id uint16, n int) []byte {
	off := int(id) * b.size
	return b.bufs[off : off+n : off+b.size]
}

// Recycle gives buffer id back to the kernel; it becomes visible at the next Publish.
func (b *BufRing) Recycle(id uint16) { b.put(id) }

func (b *BufRing) put(id uint16) {
	e := &b.entries[b.tail&b.mask]
	e.addr = uint64(uintptr(unsafe.Pointer(&b.bufs[int(id)*b.size])))
	e.len = uint32(b.size)
	e.bid = id
	b.tail++
}

// Publish makes recycled buffers visible to the kernel: one release store of the
// tail. The tail shares a 32-bit word with entry 0's buffer id, which only this
// side writes, so the word is stored whole.
func (b *BufRing) Publish() {
	w := (*uint32)(unsafe.Pointer(&b.entries[0].bid))
	atomic.StoreUint32(w, uint32(b.entries[0].bid)|uint32(b.tail)<<16)
}

// Close unregisters the buffer ring and unmaps its memory. The ring must have no
// receive using the group in flight (or be closed already).
func (b *BufRing) Close() error {
	reg := bufReg{bgid: b.group}
	var err error
	if b.r.fd >= 0 {
		err = b.r.register(unregisterPbufRing, unsafe.Pointer(&reg), 1)
	}
	unix.Munmap(b.ringMem)
	unix.Munmap(b.bufs)
	return err
}
