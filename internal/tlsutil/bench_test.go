package tlsutil

import (
	"crypto/tls"
	"testing"
	"time"
)

// The default certificate is what EnsureDevCA and ACME (certmagic's default) make:
// ECDSA P-256. The client is a default crypto/tls client (TLS 1.3, X25519MLKEM768
// first), over loopback TCP (one connection per handshake, dial and accept included).
func benchConfigs(b *testing.B) (server, client *tls.Config) {
	ca := newTestCA(b)
	server, err := ServerConfig(staticCerts{ca.tlsCert(b, leafSpec{})}, "")
	if err != nil {
		b.Fatal(err)
	}
	tk, err := NewTicketKeys(hmacDeriver{[]byte("bench")}, TicketKeyOptions{})
	if err != nil {
		b.Fatal(err)
	}
	tk.Install(server)
	return server, &tls.Config{RootCAs: ca.pool, ServerName: "localhost", Time: time.Now}
}

func BenchmarkHandshakeFull(b *testing.B) {
	server, client := benchConfigs(b)
	b.ReportAllocs()
	for b.Loop() {
		if pipeHandshake(b, server, client) {
			b.Fatal("resumed without a session cache")
		}
	}
}

func BenchmarkHandshakeResumed(b *testing.B) {
	server, client := benchConfigs(b)
	client.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	pipeHandshake(b, server, client)
	b.ReportAllocs()
	for b.Loop() {
		if !pipeHandshake(b, server, client) {
			b.Fatal("not resumed")
		}
	}
}
