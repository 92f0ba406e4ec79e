package edge

import "syscall"

// lowerThreadPriority sets the calling OS thread's nice value; on Linux
// setpriority(PRIO_PROCESS, tid) applies to that thread alone. Raising
// the value needs no privilege.
func lowerThreadPriority(nice int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), nice)
}
