package bench

import (
	"os"
	"syscall"
)

// fdatasync is what SQLite's unix VFS calls to sync a file on Linux.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
