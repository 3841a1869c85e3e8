package linux

import "syscall"

func setrlimit(resource int, soft, hard uint64) error {
	return syscall.Setrlimit(resource, &syscall.Rlimit{Cur: soft, Max: hard})
}
