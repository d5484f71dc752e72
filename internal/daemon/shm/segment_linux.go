package shm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Dir returns the directory segments live in: /dev/shm when it is a writable
// directory (memory-backed, cleared at boot), otherwise os.TempDir().
func Dir() string {
	if unix.Access("/dev/shm", unix.W_OK|unix.X_OK) == nil {
		return "/dev/shm"
	}
	return os.TempDir()
}

// Create makes a new segment with the given number of slots (DefaultSlots
// when slots <= 0) and puts it at path, replacing any file there. The file is
// complete before it appears under path (it is written under a temporary name
// and renamed), and a process that still maps a replaced segment keeps its
// own copy: nothing is truncated under a reader.
func Create(path string, slots int) (*Segment, error) {
	if slots <= 0 {
		slots = DefaultSlots
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".gale-stats-*")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tmp := f.Name()
	fail := func(err error) (*Segment, error) {
		os.Remove(tmp)
		return nil, err
	}
	size := headerSize + slots*SlotSize
	if err := f.Truncate(int64(size)); err != nil {
		return fail(err)
	}
	// Readable by everyone, so that an operator's `gale status` works without
	// the server's privileges; only the owner writes.
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	s, err := mapFile(f, path, size, os.O_RDWR)
	if err != nil {
		return fail(err)
	}
	copy(s.hdr.magic[:], magic)
	s.hdr.version = version
	s.hdr.slots = uint32(slots)
	s.hdr.created.Store(time.Now().UnixNano())
	s.n = slots
	if err := os.Rename(tmp, path); err != nil {
		s.Close()
		return fail(err)
	}
	return s, nil
}

// Open maps the existing segment at path for reading and writing (a worker,
// or a new supervisor taking over after an upgrade).
func Open(path string) (*Segment, error) {
	return open(path, os.O_RDWR)
}

// OpenReadOnly maps the existing segment at path for reading only (gale
// status); writing to its slots faults.
func OpenReadOnly(path string) (*Segment, error) {
	return open(path, os.O_RDONLY)
}

func open(path string, mode int) (*Segment, error) {
	f, err := os.OpenFile(path, mode, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size < headerSize || (size-headerSize)%SlotSize != 0 || size > headerSize+(1<<20)*SlotSize {
		return nil, fmt.Errorf("%s: %w", path, ErrFormat)
	}
	s, err := mapFile(f, path, int(size), mode)
	if err != nil {
		return nil, err
	}
	if string(s.hdr.magic[:]) != magic || s.hdr.version != version || int64(headerSize)+int64(s.hdr.slots)*SlotSize != size {
		s.Close()
		return nil, fmt.Errorf("%s: %w", path, ErrFormat)
	}
	s.n = int(s.hdr.slots)
	return s, nil
}

// mapFile maps size bytes of f, writable when mode is os.O_RDWR.
func mapFile(f *os.File, path string, size, mode int) (*Segment, error) {
	prot := unix.PROT_READ
	if mode == os.O_RDWR {
		prot |= unix.PROT_WRITE
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, os.NewSyscallError("fstat", err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return &Segment{
		path: path, mem: mem, hdr: (*header)(unsafe.Pointer(&mem[0])),
		id: fileID{dev: uint64(st.Dev), ino: st.Ino},
	}, nil
}

// Close unmaps the segment; the file stays. Slots must not be used afterwards.
func (s *Segment) Close() error {
	if s.mem == nil {
		return nil
	}
	err := unix.Munmap(s.mem)
	s.mem, s.hdr = nil, nil
	return os.NewSyscallError("munmap", err)
}

// Remove deletes the segment's file if the file at Path is still this
// segment (a newer instance may have replaced it). The mapping stays usable
// until Close.
func (s *Segment) Remove() error {
	var st unix.Stat_t
	if err := unix.Stat(s.path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return os.NewSyscallError("stat", err)
	}
	if (fileID{dev: uint64(st.Dev), ino: st.Ino}) != s.id {
		return nil
	}
	return os.Remove(s.path)
}

// ProcessAlive reports whether a process with this pid exists and has not
// exited (kill with signal 0; EPERM means it exists but belongs to another
// user). A process that was killed but not yet reaped by its parent (a zombie:
// under a shell or a container init that does not wait, it stays one) is
// found by kill but is not alive.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := unix.Kill(pid, 0); err != nil && !errors.Is(err, unix.EPERM) {
		return false
	}
	return !exited(pid)
}

// exited reports whether /proc says that pid has exited and waits to be
// reaped (state Z, zombie, or X, dead). The state is the field after the
// command name, which is in parentheses and may itself hold any byte.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] == 'Z' || b[i+2] == 'X'
}
