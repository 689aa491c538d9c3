package checks

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

func TestAllRulesUniqueAndComplete(t *testing.T) {
	seen := map[string]bool{}
	checkIDs := map[string]bool{}
	for _, c := range All() {
		if checkIDs[c.ID()] {
			t.Errorf("duplicate check id %s", c.ID())
		}
		checkIDs[c.ID()] = true
		for _, r := range c.Rules() {
			if seen[r.ID] {
				t.Errorf("duplicate rule %s", r.ID)
			}
			seen[r.ID] = true
			if !strings.HasPrefix(r.ID, "GH-") || r.Title == "" || r.Fix == "" || r.Severity < scan.SeverityInfo || r.Severity > scan.SeverityHigh {
				t.Errorf("incomplete rule %+v", r)
			}
		}
	}
	if len(WeakSecrets()) < 100 {
		t.Errorf("weak secret list has %d entries, want about 100", len(WeakSecrets()))
	}
}

func TestMissingAuth(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vulns  []string
		spec   bool
		wantID bool
	}{
		{"secure with spec", nil, true, false},
		{"GET /v1/notes without token", []string{"noauth"}, true, true},
		{"soft 404 without spec stays quiet", []string{"soft404"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tgt, _ := prepared(t, newAPI(t, tc.vulns...), false, targetOpts{spec: tc.spec, users: []string{"alice@x"}})
			fs := run(t, MissingAuth{}, tgt)
			if got := has(fs, "GH-AUTH-001", scan.SeverityHigh, ""); got != tc.wantID {
				t.Fatalf("GH-AUTH-001 = %v, want %v: %v", got, tc.wantID, ids(fs))
			}
			if !tc.wantID && len(fs) > 0 {
				t.Fatalf("unexpected findings %v", ids(fs))
			}
		})
	}
}

func TestForgery(t *testing.T) {
	for _, tc := range []struct {
		name      string
		vulns     []string
		hsSecret  string
		wantID    string
		wantParam string
		wantSev   scan.Severity
	}{
		{"secure ES256", nil, "", "", "", 0},
		{"secure HS256 with a random secret", nil, "Zq8hV3k2NwE7pL0cT5yR9uB1xM4sD6fG", "", "", 0},
		{"signature ignored", []string{"any-sig"}, "", "GH-AUTH-011", "broken-signature", scan.SeverityHigh},
		{"alg none", []string{"alg-none"}, "", "GH-AUTH-002", "alg-nOnE", scan.SeverityHigh},
		{"key confusion", []string{"hs-pubkey"}, "", "GH-AUTH-003", "hs256-pem", scan.SeverityHigh},
		{"embedded jwk", []string{"jwk"}, "", "GH-AUTH-004", "jwk", scan.SeverityHigh},
		{"jku", []string{"jku"}, "", "GH-AUTH-005", "jku", scan.SeverityHigh},
		{"kid traversal", []string{"kid-path"}, "", "GH-AUTH-006", "kid-traversal", scan.SeverityHigh},
		{"kid reaches SQL", []string{"kid-sql"}, "", "GH-AUTH-006", "kid-injection-error", scan.SeverityMedium},
		{"psychic signature", []string{"psychic"}, "", "GH-AUTH-007", "psychic-ES256", scan.SeverityHigh},
		{"claims changed under a cached signature", []string{"sig-cache"}, "", "GH-AUTH-009", "aud", scan.SeverityHigh},
		{"weak HMAC secret", nil, "secret", "GH-AUTH-010", "HS256", scan.SeverityHigh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAPI(t, tc.vulns...)
			a.hsSecret = tc.hsSecret
			tgt, _ := prepared(t, a, false, targetOpts{spec: true, users: []string{"alice@x"}})
			if tgt.Baseline.Probe == nil {
				t.Fatal("no probe endpoint found")
			}
			fs := run(t, Forgery{}, tgt)
			if tc.wantID == "" {
				if len(fs) > 0 {
					t.Fatalf("secure server: unexpected findings %v", ids(fs))
				}
				return
			}
			if !has(fs, tc.wantID, tc.wantSev, tc.wantParam) {
				t.Fatalf("want %s/%s/%s, got %v", tc.wantID, tc.wantParam, tc.wantSev, ids(fs))
			}
		})
	}
}

func TestForgeryExpiredGivenToken(t *testing.T) {
	for _, tc := range []struct {
		name  string
		vulns []string
		want  bool
	}{
		{"expiry checked", nil, false},
		{"expiry ignored", []string{"expired"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAPI(t, tc.vulns...)
			expired := a.issue("alice@x", time.Now().Add(-time.Hour))
			tgt, _ := prepared(t, a, false, targetOpts{spec: true, token: expired, users: []string{"alice@x"}})
			fs := run(t, Forgery{}, tgt)
			if got := has(fs, "GH-AUTH-008", scan.SeverityHigh, "given-expired"); got != tc.want {
				t.Fatalf("GH-AUTH-008 = %v, want %v: %v", got, tc.want, ids(fs))
			}
		})
	}
}

func TestBOLA(t *testing.T) {
	for _, tc := range []struct {
		name  string
		vulns []string
		want  bool
	}{
		{"owner checked", nil, false},
		{"no owner check", []string{"bola"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAPI(t, tc.vulns...)
			tgt, _ := prepared(t, a, false, targetOpts{spec: true, users: []string{"alice@x", "bob@x"}})
			fs := run(t, BOLA{}, tgt)
			if got := has(fs, "GH-BOLA-001", scan.SeverityHigh, "GET"); got != tc.want {
				t.Fatalf("GH-BOLA-001 GET = %v, want %v: %v", got, tc.want, ids(fs))
			}
			if tc.want && !has(fs, "GH-BOLA-001", scan.SeverityHigh, "DELETE") {
				t.Errorf("B's DELETE of A's object not reported: %v", ids(fs))
			}
			if !tc.want && len(fs) > 0 {
				t.Fatalf("unexpected findings %v", ids(fs))
			}
			a.mu.Lock()
			left := len(a.notes)
			a.mu.Unlock()
			if left != 0 {
				t.Errorf("%d object(s) the scan created were left behind", left)
			}
		})
	}
}

func TestBOLANeedsTwoUsers(t *testing.T) {
	a := newAPI(t, "bola")
	tgt, _ := prepared(t, a, false, targetOpts{spec: true, users: []string{"alice@x"}})
	before := a.requestCount()
	if fs := run(t, BOLA{}, tgt); len(fs) > 0 || a.requestCount() != before {
		t.Fatalf("with one user BOLA must send nothing; findings %v", ids(fs))
	}
}

func TestInjection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		vulns []string
		want  string
		sev   scan.Severity
	}{
		{"secure", nil, "", 0},
		{"sql error leaked", []string{"sql"}, "GH-INJ-001", scan.SeverityHigh},
		{"template evaluated", []string{"ssti"}, "GH-INJ-002", scan.SeverityHigh},
		{"reflected html", []string{"xss"}, "GH-INJ-003", scan.SeverityMedium},
		{"500 on a quote", []string{"quote500"}, "GH-INJ-004", scan.SeverityMedium},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tgt, _ := prepared(t, newAPI(t, tc.vulns...), false, targetOpts{spec: true, users: []string{"alice@x"}})
			fs := run(t, Injection{}, tgt)
			if tc.want == "" {
				if len(fs) > 0 {
					t.Fatalf("unexpected findings %v", ids(fs))
				}
				return
			}
			if !has(fs, tc.want, tc.sev, "query:q") {
				t.Fatalf("want %s on query:q, got %v", tc.want, ids(fs))
			}
		})
	}
}

func TestInjectionProbesAreInert(t *testing.T) {
	for _, p := range probes {
		up := strings.ToUpper(p.value)
		for _, bad := range []string{"DROP", "DELETE", "SLEEP", "$(", "`", "UPDATE", "INSERT", "WAITFOR", "BENCHMARK"} {
			if strings.Contains(up, bad) {
				t.Errorf("probe %s contains %q", p.name, bad)
			}
		}
	}
}

func TestExposure(t *testing.T) {
	t.Run("undeclared properties against the spec", func(t *testing.T) {
		for _, tc := range []struct {
			vulns []string
			want  bool
		}{{nil, false}, {[]string{"leak"}, true}} {
			tgt, _ := prepared(t, newAPI(t, tc.vulns...), false, targetOpts{spec: true, users: []string{"alice@x"}})
			fs := run(t, Exposure{}, tgt)
			if got := has(fs, "GH-DATA-001", scan.SeverityHigh, "password_hash"); got != tc.want {
				t.Fatalf("leak=%v: GH-DATA-001 password_hash = %v: %v", tc.want, got, ids(fs))
			}
			if got := has(fs, "GH-DATA-001", scan.SeverityMedium, "owner_email"); got != tc.want {
				t.Fatalf("leak=%v: GH-DATA-001 owner_email = %v: %v", tc.want, got, ids(fs))
			}
			if got := has(fs, "GH-DATA-002", scan.SeverityHigh, "password-hash"); got != tc.want {
				t.Fatalf("leak=%v: GH-DATA-002 = %v: %v", tc.want, got, ids(fs))
			}
			for _, f := range fs {
				if strings.Contains(f.Evidence.Response, "aGFzaGhhc2hoYXNo") {
					t.Errorf("hash not masked in evidence: %s", f.Evidence.Response)
				}
			}
		}
	})
	jwtBody := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
	for _, tc := range []struct {
		name, body, id string
	}{
		{"bcrypt hash", `{"h":"$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"}`, "GH-DATA-002"},
		{"django pbkdf2", `{"h":"pbkdf2_sha256$600000$salt$YWJjZGVmZ2hpams="}`, "GH-DATA-002"},
		{"private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "GH-DATA-003"},
		{"jwt in data", `{"token":"` + jwtBody + `"}`, "GH-DATA-004"},
		{"aws key", `{"k":"AKIAIOSFODNN7EXAMPLE"}`, "GH-DATA-005"},
		{"visa test number", `{"card":"4111111111111111"}`, "GH-DATA-006"},
		{"clean", `{"id":"1","created":1700000000000,"n":"4111111111111112"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			tgt := newTargetFor(t, srv, targetOpts{})
			if _, err := tgt.Do(t.Context(), scan.Request{Method: "GET", Path: "/v1/data"}); err != nil {
				t.Fatal(err)
			}
			fs := run(t, Exposure{}, tgt)
			if tc.id == "" {
				if len(fs) > 0 {
					t.Fatalf("unexpected findings %v", ids(fs))
				}
				return
			}
			if len(fs) != 1 || fs[0].ID != tc.id {
				t.Fatalf("want one %s, got %v", tc.id, ids(fs))
			}
			for _, secret := range []string{"IOSFODNN7EXAMPLE", "4111111111111111", "MIIE", "c2lnbmF0dXJlc2lnbmF0dXJl"} {
				if strings.Contains(fs[0].Evidence.Response+fs[0].Evidence.Details, secret) {
					t.Errorf("secret %q not masked in evidence", secret)
				}
			}
		})
	}
}

func TestCORS(t *testing.T) {
	for _, tc := range []struct {
		vuln string
		want string
		sev  scan.Severity
	}{
		{"", "", 0},
		{"cors-reflect", "GH-CORS-001", scan.SeverityHigh},
		{"cors-star", "GH-CORS-002", scan.SeverityHigh},
		{"cors-nocreds", "GH-CORS-003", scan.SeverityLow},
	} {
		t.Run("vuln="+tc.vuln, func(t *testing.T) {
			tgt, _ := prepared(t, newAPI(t, tc.vuln), false, targetOpts{spec: true, users: []string{"alice@x"}})
			fs := run(t, CORS{}, tgt)
			if tc.want == "" {
				if len(fs) > 0 {
					t.Fatalf("unexpected %v", ids(fs))
				}
				return
			}
			if !has(fs, tc.want, tc.sev, "") {
				t.Fatalf("want %s, got %v", tc.want, ids(fs))
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	for _, tc := range []struct {
		vuln string
		want string
		sev  scan.Severity
	}{
		{"", "", 0},
		{"no-nosniff", "GH-HDR-001", scan.SeverityLow},
		{"token-cache", "GH-HDR-002", scan.SeverityMedium},
	} {
		t.Run("vuln="+tc.vuln, func(t *testing.T) {
			tgt, _ := prepared(t, newAPI(t, tc.vuln), false, targetOpts{spec: true, users: []string{"alice@x"}})
			fs := run(t, Headers{}, tgt)
			if tc.want == "" {
				if len(fs) > 0 {
					t.Fatalf("unexpected %v", ids(fs))
				}
				return
			}
			if len(fs) != 1 || !has(fs, tc.want, tc.sev, "") {
				t.Fatalf("want only %s, got %v", tc.want, ids(fs))
			}
		})
	}
}

func TestDebugEndpoints(t *testing.T) {
	for _, tc := range []struct {
		vuln  string
		param string
		sev   scan.Severity
	}{
		{"", "", 0},
		{"soft404", "", 0},
		{"pprof", "/debug/pprof/", scan.SeverityHigh},
		{"metrics", "/metrics", scan.SeverityMedium},
		{"dotenv", "/.env", scan.SeverityHigh},
	} {
		t.Run("vuln="+tc.vuln, func(t *testing.T) {
			tgt, _ := prepared(t, newAPI(t, tc.vuln), false, targetOpts{})
			fs := run(t, DebugEndpoints{}, tgt)
			if tc.param == "" {
				if len(fs) > 0 {
					t.Fatalf("unexpected %v", ids(fs))
				}
				return
			}
			if len(fs) != 1 || !has(fs, "GH-EXP-001", tc.sev, tc.param) {
				t.Fatalf("want GH-EXP-001 %s, got %v", tc.param, ids(fs))
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		vulns []string
		want  []string
	}{
		{"limits in place", nil, nil},
		{"no limits", []string{"no-ratelimit"}, []string{"GH-RATE-001", "GH-RATE-002"}},
		{"lockout", []string{"lockout"}, []string{"GH-RATE-003"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAPI(t, tc.vulns...)
			tgt, _ := prepared(t, a, false, targetOpts{spec: true, users: []string{"alice@x"}})
			before := a.requestCount()
			fs := run(t, RateLimit{}, tgt)
			if sent := a.requestCount() - before; sent > 30+150 {
				t.Errorf("sent %d requests, more than the 180 bound", sent)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.ID)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("findings %v, want %v", ids(fs), tc.want)
			}
			if tc.want == nil {
				return
			}
			if tc.want[0] == "GH-RATE-003" && fs[0].Severity != scan.SeverityInfo {
				t.Errorf("lockout severity %s, want info", fs[0].Severity)
			}
		})
	}
}

func TestVerboseErrors(t *testing.T) {
	for _, tc := range []struct {
		vuln string
		want bool
	}{{"", false}, {"stack", true}} {
		t.Run("vuln="+tc.vuln, func(t *testing.T) {
			tgt, _ := prepared(t, newAPI(t, tc.vuln), false, targetOpts{spec: true, users: []string{"alice@x"}})
			_ = run(t, Injection{}, tgt) // sends the double quote that breaks the vulnerable search
			fs := run(t, VerboseErrors{}, tgt)
			if got := has(fs, "GH-ERR-001", scan.SeverityMedium, "go"); got != tc.want {
				t.Fatalf("GH-ERR-001 = %v, want %v: %v", got, tc.want, ids(fs))
			}
		})
	}
}
