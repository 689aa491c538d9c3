// Package mailpittest runs a mailpit SMTP server (github.com/axllent/mailpit)
// on loopback for tests and reads what it received through mailpit's HTTP API.
//
// mailpit's SMTP server lives in internal packages, so it cannot run
// in-process: the binary is built from the module in go.mod once per test
// binary (into a directory under os.TempDir keyed by the module version, so
// parallel test binaries share it; the build is written to a temporary name
// and renamed into place) and each Start runs its own instance with its own
// database, killed at cleanup. Test code only.
package mailpittest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const module = "github.com/axllent/mailpit"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds mailpit once per test binary.
func binary() (string, error) {
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", module).Output()
		if err != nil {
			buildErr = fmt.Errorf("mailpittest: go list %s: %w", module, err)
			return
		}
		version := strings.TrimSpace(string(out))
		dir := filepath.Join(os.TempDir(), "gatehouse-test-mailpit-"+version)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mailpit")
		if fi, err := os.Stat(binPath); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o100 != 0 {
			return
		}
		tmp, err := os.CreateTemp(dir, "mailpit-build-*")
		if err != nil {
			buildErr = err
			return
		}
		tmp.Close()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp.Name(), module)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			os.Remove(tmp.Name())
			buildErr = fmt.Errorf("mailpittest: go build %s: %w\n%s", module, err, stderr.String())
			return
		}
		buildErr = os.Rename(tmp.Name(), binPath)
	})
	return binPath, buildErr
}

// Server is a running mailpit.
type Server struct {
	// SMTPHost and SMTPPort are where to send mail (plain SMTP, no auth).
	SMTPHost string
	SMTPPort int
	api      string
	c        *http.Client
}

// Start builds (once) and runs a mailpit on free loopback ports, waits at most
// 30s until its API answers, and stops it at cleanup. args are more mailpit
// flags (e.g. --smtp-tls-cert, --smtp-tls-key, --smtp-require-starttls).
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		smtpAddr, httpAddr := freeAddr(t), freeAddr(t)
		ctx, cancel := context.WithCancel(context.Background())
		var logs bytes.Buffer
		argv := append([]string{
			"--smtp", smtpAddr, "--listen", httpAddr,
			"--database", filepath.Join(dir, fmt.Sprintf("mailpit-%d.db", attempt)),
			"--disable-version-check", "--smtp-disable-rdns"}, args...)
		cmd := exec.CommandContext(ctx, bin, argv...)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatalf("mailpittest: start: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			cancel()
			<-exited
		}
		s := &Server{api: "http://" + httpAddr, c: &http.Client{Timeout: 10 * time.Second}}
		host, port, _ := net.SplitHostPort(smtpAddr)
		s.SMTPHost = host
		s.SMTPPort, _ = strconv.Atoi(port)
		if s.waitReady(smtpAddr, exited) {
			t.Cleanup(stop)
			return s
		}
		stop()
		// A port taken between freeAddr and mailpit's bind: try new ports, a few times.
		if attempt == 2 {
			t.Fatalf("mailpittest: mailpit did not start:\n%s", logs.String())
		}
	}
}

func (s *Server) waitReady(smtpAddr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		resp, err := s.c.Get(s.api + "/livez")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if c, err := net.DialTimeout("tcp", smtpAddr, time.Second); err == nil {
					c.Close()
					return true
				}
			}
		}
		select {
		case <-exited:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Address is a mailbox in mailpit's API.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Summary is a message in the list.
type Summary struct {
	ID      string    `json:"ID"`
	From    Address   `json:"From"`
	To      []Address `json:"To"`
	Subject string    `json:"Subject"`
}

// Message is one message with its bodies.
type Message struct {
	Summary
	Text string `json:"Text"`
	HTML string `json:"HTML"`
}

// Messages lists every received message, newest first.
func (s *Server) Messages(t testing.TB) []Summary {
	t.Helper()
	var out struct {
		Messages []Summary `json:"messages"`
	}
	s.get(t, "/api/v1/messages?limit=1000", &out)
	return out.Messages
}

// To returns the messages addressed to addr (case-insensitive), newest first.
func (s *Server) To(t testing.TB, addr string) []Summary {
	t.Helper()
	var out []Summary
	for _, m := range s.Messages(t) {
		for _, to := range m.To {
			if strings.EqualFold(to.Address, addr) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Message reads one message.
func (s *Server) Message(t testing.TB, id string) Message {
	t.Helper()
	var m Message
	s.get(t, "/api/v1/message/"+url.PathEscape(id), &m)
	return m
}

// WaitFor polls until addr has at least n messages (at most 30s) and returns
// the newest one, read in full.
func (s *Server) WaitFor(t testing.TB, addr string, n int) Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if l := s.To(t, addr); len(l) >= n {
			return s.Message(t, l[0].ID)
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpittest: no message %d for the address within 30s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) get(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := s.c.Get(s.api + path)
	if err != nil {
		t.Fatalf("mailpittest: GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpittest: GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("mailpittest: GET %s: %v", path, err)
	}
}
