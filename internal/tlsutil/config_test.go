package tlsutil

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// permissiveConfig is the control server: it accepts everything crypto/tls can still
// speak, so a handshake that fails against ServerConfig but succeeds here was refused
// by ServerConfig's policy, not by the client or the certificate.
func permissiveConfig(cert *tls.Certificate) *tls.Config {
	var suites []uint16
	for _, s := range tls.CipherSuites() {
		suites = append(suites, s.ID)
	}
	for _, s := range tls.InsecureCipherSuites() {
		suites = append(suites, s.ID)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS10,
		CipherSuites: suites,
		Certificates: []tls.Certificate{*cert},
	}
}

func TestServerConfigHandshakes(t *testing.T) {
	ca := newTestCA(t)
	ecCert := ca.tlsCert(t, leafSpec{})
	rsaCert := ca.tlsCert(t, leafSpec{rsa: true})

	type tc struct {
		name       string
		minVersion string
		rsa        bool // serve the RSA certificate instead of the ECDSA one
		client     *tls.Config
		wantOK     bool
		// wantSuite and wantVersion are checked on success.
		wantVersion uint16
		wantSuite   uint16
		wantCurve   tls.CurveID
	}
	cases := []tc{
		{name: "tls1.0 refused", client: &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}},
		{name: "tls1.1 refused", client: &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}},
		{name: "tls1.0 refused rsa cert", rsa: true, client: &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}},
		{name: "tls1.2 cbc only refused", client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		}}},
		{name: "tls1.2 cbc only refused rsa cert", rsa: true, client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
		}}},
		{name: "tls1.2 rsa key exchange only refused", rsa: true, client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		}}},
		{name: "tls1.2 3des refused", rsa: true, client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
			tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
		}}},
		{name: "tls1.3 only P-384 refused", client: &tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.CurveP384}}},
		{name: "tls1.2 only P-384 refused", client: &tls.Config{MaxVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{tls.CurveP384}}},
		{name: "tls1.2 refused when min is 1.3", minVersion: "1.3", client: &tls.Config{MaxVersion: tls.VersionTLS12}},

		{name: "tls1.2 ecdsa aes128-gcm", wantOK: true,
			client:      &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
			wantVersion: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{name: "tls1.2 ecdsa aes256-gcm", wantOK: true,
			client:      &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}},
			wantVersion: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
		{name: "tls1.2 ecdsa chacha20", wantOK: true,
			client:      &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}},
			wantVersion: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
		{name: "tls1.2 rsa cert ecdhe aes256-gcm", rsa: true, wantOK: true,
			client:      &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}},
			wantVersion: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384},
		{name: "tls1.2 mixed offer picks aead", wantOK: true,
			client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}},
			wantVersion: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
		{name: "tls1.2 P-256 only", wantOK: true,
			client:      &tls.Config{MaxVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{tls.CurveP256}},
			wantVersion: tls.VersionTLS12, wantCurve: tls.CurveP256},
		{name: "tls1.3 default client", wantOK: true, client: &tls.Config{}, wantVersion: tls.VersionTLS13, wantCurve: tls.X25519MLKEM768},
		{name: "tls1.2 X25519", wantOK: true, client: &tls.Config{MaxVersion: tls.VersionTLS12}, wantVersion: tls.VersionTLS12, wantCurve: tls.X25519},
		{name: "tls1.3 X25519 only", wantOK: true,
			client: &tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519}}, wantVersion: tls.VersionTLS13},
		{name: "tls1.3 when min is 1.3", minVersion: "1.3", wantOK: true, client: &tls.Config{}, wantVersion: tls.VersionTLS13},
	}

	servers := map[[2]any]string{} // (minVersion, rsa) → address
	addr := func(minVersion string, rsa bool) string {
		k := [2]any{minVersion, rsa}
		if a, ok := servers[k]; ok {
			return a
		}
		cert := ecCert
		if rsa {
			cert = rsaCert
		}
		cfg, err := ServerConfig(staticCerts{cert}, minVersion)
		if err != nil {
			t.Fatal(err)
		}
		servers[k] = startTLS(t, cfg)
		return servers[k]
	}
	controls := map[bool]string{
		false: startTLS(t, permissiveConfig(ecCert)),
		true:  startTLS(t, permissiveConfig(rsaCert)),
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client := c.client.Clone()
			client.RootCAs = ca.pool
			client.ServerName = "localhost"
			st, err := handshake(addr(c.minVersion, c.rsa), client)
			if !c.wantOK {
				if err == nil {
					t.Fatalf("handshake succeeded (version %s, suite %s); want refusal",
						tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
				}
				// The same client must succeed against the permissive control server,
				// which proves the refusal came from ServerConfig's policy.
				if _, cerr := handshake(controls[c.rsa], client.Clone()); cerr != nil {
					t.Fatalf("control handshake failed too (%v): the case does not test ServerConfig", cerr)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if c.wantVersion != 0 && st.Version != c.wantVersion {
				t.Errorf("version = %s, want %s", tls.VersionName(st.Version), tls.VersionName(c.wantVersion))
			}
			if c.wantCurve != 0 && st.CurveID != c.wantCurve {
				t.Errorf("key exchange = %s, want %s", st.CurveID, c.wantCurve)
			}
			if c.wantSuite != 0 && st.CipherSuite != c.wantSuite {
				t.Errorf("suite = %s, want %s", tls.CipherSuiteName(st.CipherSuite), tls.CipherSuiteName(c.wantSuite))
			}
		})
	}
}

func TestServerConfigALPN(t *testing.T) {
	ca := newTestCA(t)
	cfg, err := ServerConfig(staticCerts{ca.tlsCert(t, leafSpec{})}, "")
	if err != nil {
		t.Fatal(err)
	}
	addr := startTLS(t, cfg)
	cases := []struct {
		name      string
		nextProto []string
		http2     bool
		wantProto string
	}{
		{name: "h2", http2: true, wantProto: "HTTP/2.0"},
		{name: "http/1.1 only", nextProto: []string{"http/1.1"}, wantProto: "HTTP/1.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: ca.pool, NextProtos: c.nextProto},
				ForceAttemptHTTP2: c.http2,
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			resp, err := client.Get("https://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.Proto != c.wantProto || string(body) != c.wantProto {
				t.Errorf("proto = %s (server saw %q), want %s", resp.Proto, body, c.wantProto)
			}
		})
	}
}

func TestServerConfigSettings(t *testing.T) {
	cfg, err := ServerConfig(staticCerts{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x", cfg.MinVersion)
	}
	if !slices.Equal(cfg.NextProtos, []string{"h2", "http/1.1"}) {
		t.Errorf("NextProtos = %v", cfg.NextProtos)
	}
	if !slices.Equal(cfg.CurvePreferences, []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}) {
		t.Errorf("CurvePreferences = %v", cfg.CurvePreferences)
	}
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if insecure[id] || strings.Contains(name, "CBC") || !strings.HasPrefix(name, "TLS_ECDHE_") ||
			!(strings.Contains(name, "GCM") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("non-AEAD or non-ECDHE suite allowed: %s", name)
		}
	}
	// The exported copy must not alias the config's slice.
	s := ServerCipherSuites()
	s[0] = 0
	if cfg2, _ := ServerConfig(staticCerts{}, ""); cfg2.CipherSuites[0] == 0 {
		t.Error("ServerCipherSuites returns the shared slice")
	}
}

func TestServerConfigErrors(t *testing.T) {
	for _, v := range []string{"1.0", "1.1", "1.4", "tls1.2", " 1.2", "1.2 ", "TLS1.3", "12", "1.3.0", "\x00"} {
		t.Run(v, func(t *testing.T) {
			_, err := ServerConfig(staticCerts{}, v)
			if !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("err = %v, want ErrUnsupportedVersion", err)
			}
			if !strings.Contains(err.Error(), strconv.Quote(v)) {
				t.Errorf("error %q does not name the value %q", err, v)
			}
		})
	}
	if _, err := ServerConfig(nil, ""); err == nil {
		t.Error("nil certificate source accepted")
	}
}

func FuzzParseMinVersion(f *testing.F) {
	for _, s := range []string{"", "1.2", "1.3", "1.1", "1.0", "1.4", "tls1.3", " 1.3", "1.3\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseMinVersion(s)
		switch s {
		case "", "1.2":
			if err != nil || v != tls.VersionTLS12 {
				t.Fatalf("%q → %x, %v", s, v, err)
			}
		case "1.3":
			if err != nil || v != tls.VersionTLS13 {
				t.Fatalf("%q → %x, %v", s, v, err)
			}
		default:
			if !errors.Is(err, ErrUnsupportedVersion) || v != 0 {
				t.Fatalf("%q accepted as %x (err %v)", s, v, err)
			}
		}
	})
}
