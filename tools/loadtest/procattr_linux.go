package main

import "syscall"

// childAttr makes the kernel kill a child when this process dies, however it
// dies (even SIGKILL), so no server outlives the benchmark.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
