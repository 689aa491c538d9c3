package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a server process this tool started.
type child struct {
	name    string
	cmd     *exec.Cmd
	addr    string // host:port it announced
	logPath string
	done    chan struct{}
	waitErr error
}

// lineWatcher copies a child's stdout to its log and reports the address in
// the first line that starts with prefix.
type lineWatcher struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
	found  chan string // buffered, receives once
	sent   bool
}

func (l *lineWatcher) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.sent {
		l.buf = append(l.buf, p...)
		for {
			i := bytes.IndexByte(l.buf, '\n')
			if i < 0 {
				break
			}
			line := strings.TrimSpace(string(l.buf[:i]))
			l.buf = l.buf[i+1:]
			if rest, ok := strings.CutPrefix(line, l.prefix); ok {
				l.found <- rest
				l.sent, l.buf = true, nil
				break
			}
		}
		if len(l.buf) > 64<<10 {
			l.buf = nil // a line that long is not the announcement
		}
	}
	return l.w.Write(p)
}

// startChild runs bin with args, logging its output to logDir/name.log, and
// waits (at most a minute) for it to print prefix followed by its address.
func startChild(ctx context.Context, name, logDir, prefix, bin string, args ...string) (*child, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	lw := &lineWatcher{w: f, prefix: prefix, found: make(chan string, 1)}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lw, f
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case c.addr = <-lw.found:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("start %s: exited (%v) before listening:\n%s", name, c.waitErr, c.tail())
	case <-t.C:
		c.stop()
		return nil, fmt.Errorf("start %s: not listening after a minute:\n%s", name, c.tail())
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop asks the child to shut down (SIGTERM), kills it after 5 s, and waits.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// alive returns an error when the child has exited.
func (c *child) alive() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited (%v):\n%s", c.name, c.waitErr, c.tail())
	default:
		return nil
	}
}

// tail is the end of the child's log, for error messages.
func (c *child) tail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// children stops every started child, newest first; it is deferred right
// after the temporary directory is made, so every exit path runs it.
type children struct {
	mu   sync.Mutex
	list []*child
}

func (cs *children) add(c *child) *child {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.list = append(cs.list, c)
	return c
}

func (cs *children) stopAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for i := len(cs.list) - 1; i >= 0; i-- {
		cs.list[i].stop()
	}
	cs.list = nil
}
