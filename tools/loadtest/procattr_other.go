//go:build !linux

package main

import "syscall"

// childAttr: only Linux can tie a child's life to its parent's; elsewhere the
// children are stopped by the deferred cleanup alone.
func childAttr() *syscall.SysProcAttr { return nil }
