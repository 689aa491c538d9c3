package tlsutil

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// hmacDeriver stands in for keys.Sealer: a keyed HMAC, the same for every replica
// holding the same secret.
type hmacDeriver struct{ secret []byte }

func (h hmacDeriver) Index(purpose string, value []byte) []byte {
	m := hmac.New(sha256.New, h.secret)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(value)
	return m.Sum(nil)
}

func TestTicketKeysDerivation(t *testing.T) {
	base := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC) // 00:00-12:00 epoch
	mk := func(secret string, period time.Duration) *TicketKeys {
		tk, err := NewTicketKeys(hmacDeriver{[]byte(secret)}, TicketKeyOptions{Period: period})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	a, b := mk("kek-1", 0), mk("kek-1", 0)
	other := mk("kek-2", 0)
	at := a.Keys(base)
	if len(at) != 4 {
		t.Fatalf("%d keys, want current, next and two previous", len(at))
	}
	if bt := b.Keys(base); bt[0] != at[0] || bt[3] != at[3] {
		t.Error("two replicas sharing the secret derive different keys")
	}
	if ot := other.Keys(base); ot[0] == at[0] {
		t.Error("a different secret derives the same key")
	}
	if later := a.Keys(base.Add(5 * time.Hour)); later[0] != at[0] {
		t.Error("key changed within one 12h epoch")
	}
	next := a.Keys(base.Add(12 * time.Hour))
	if next[0] != at[1] || next[2] != at[0] || next[3] != at[2] {
		t.Error("after one epoch: the next key must encrypt and the old current one must still decrypt")
	}
	seen := map[[32]byte]bool{}
	for _, k := range at {
		if seen[k] {
			t.Error("duplicate key in one set")
		}
		seen[k] = true
	}
	if mk("kek-1", time.Hour).Keys(base)[0] == at[0] {
		t.Error("different periods share a key")
	}
	for _, p := range []time.Duration{time.Nanosecond, time.Second, 59 * time.Second} {
		if _, err := NewTicketKeys(hmacDeriver{}, TicketKeyOptions{Period: p}); err == nil {
			t.Errorf("period %s accepted", p)
		}
	}
	if _, err := NewTicketKeys(nil, TicketKeyOptions{}); err == nil {
		t.Error("nil deriver accepted")
	}
}

// A session established with one replica resumes on another that shares the
// secret, for two more epochs, and not on a replica with another secret.
func TestTicketKeysResumeAcrossReplicas(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.tlsCert(t, leafSpec{})
	// The servers' clock moves; the client's (certificate checks) is real.
	clock := newFakeClock(time.Now())
	server := func(secret string) (*tls.Config, *TicketKeys) {
		cfg, err := ServerConfig(staticCerts{cert}, "")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Time = clock.Now
		tk, err := NewTicketKeys(hmacDeriver{[]byte(secret)}, TicketKeyOptions{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		tk.Install(cfg)
		return cfg, tk
	}
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			cfgA, tkA := server("shared")
			cfgB, tkB := server("shared")
			cfgC, _ := server("other")
			client := &tls.Config{RootCAs: ca.pool, ServerName: "localhost", MaxVersion: version,
				ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			if resumed := pipeHandshake(t, cfgA, client); resumed {
				t.Fatal("first handshake resumed")
			}
			if !pipeHandshake(t, cfgB, client) {
				t.Fatal("replica B did not resume a session from replica A")
			}
			if pipeHandshake(t, cfgC, client) {
				t.Fatal("a replica with another secret resumed the session")
			}
			// The rejected resumption replaced the cached ticket; start again on A.
			pipeHandshake(t, cfgA, client)
			clock.Advance(24 * time.Hour) // two epochs later: the ticket key is "two previous"
			tkB.Install(cfgB)
			if !pipeHandshake(t, cfgB, client) {
				t.Fatal("a ticket from two epochs ago did not resume")
			}
			pipeHandshake(t, cfgA, client)
			clock.Advance(36 * time.Hour) // three epochs: the key is gone
			tkA.Install(cfgA)
			tkB.Install(cfgB)
			if pipeHandshake(t, cfgB, client) {
				t.Fatal("a ticket three epochs old still resumed")
			}
			clock.Advance(-60 * time.Hour)
		})
	}
}

// pipeHandshake runs one handshake over a loopback TCP connection and reports
// whether it resumed. (Not net.Pipe: it has no buffer, and a TLS 1.3 server
// writing its session tickets while the client writes Finished deadlocks on it.)
// The client reads once so TLS 1.3 tickets arrive.
func pipeHandshake(t testing.TB, server, client *tls.Config) bool {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		srv := tls.Server(c, server)
		if err := srv.Handshake(); err != nil {
			errc <- err
			return
		}
		_, err = srv.Write([]byte("x"))
		errc <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cli := tls.Client(c, client.Clone())
	if err := cli.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	buf := make([]byte, 1)
	if _, err := cli.Read(buf); err != nil {
		t.Fatalf("client read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server: %v", err)
	}
	return cli.ConnectionState().DidResume
}
