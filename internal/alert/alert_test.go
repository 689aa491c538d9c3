package alert

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type fakeSink struct {
	mu     sync.Mutex
	fails  int // fail this many deliveries first
	got    []Alert
	called int
}

func (f *fakeSink) Name() string { return "fake" }
func (f *fakeSink) Deliver(_ context.Context, a Alert) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called++
	if f.fails > 0 {
		f.fails--
		return errors.New("receiver down")
	}
	f.got = append(f.got, a)
	return nil
}

func (f *fakeSink) alerts() []Alert {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Alert(nil), f.got...)
}

type outcomes struct {
	mu sync.Mutex
	m  map[string]int
}

func (o *outcomes) add(sink, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]int{}
	}
	o.m[sink+"/"+outcome]++
}

func (o *outcomes) get(k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.m[k]
}

// TestGrouping: a thousand firings of one detector within the group window
// become one alert with counts; a second detector gets its own.
func TestGrouping(t *testing.T) {
	sink := &fakeSink{}
	var recorded []Alert
	d := New(Options{Sinks: []Sink{sink}, GroupWait: 30 * time.Second, RepeatInterval: time.Hour,
		OnAlert: func(_ context.Context, a Alert) { recorded = append(recorded, a) }})
	for i := range 1000 {
		subj := "ip:192.0.2." + string(rune('0'+i%30/10)) + string(rune('0'+i%10))
		d.add(Firing{Detector: "brute_force_ip", Subject: subj, Summary: "failed logins", Banned: i < 30, At: t0.Add(time.Duration(i) * 10 * time.Millisecond)})
	}
	d.add(Firing{Detector: "error_spike", Summary: "5xx", At: t0.Add(time.Second)})
	d.flush(t.Context(), t0.Add(29*time.Second))
	if len(recorded) != 0 {
		t.Fatal("sent before the group window ended")
	}
	d.flush(t.Context(), t0.Add(31*time.Second))
	d.wg.Wait()
	got := sink.alerts()
	if len(got) != 2 || len(recorded) != 2 {
		t.Fatalf("%d alerts delivered, %d recorded; want 2", len(got), len(recorded))
	}
	a := recorded[0]
	if a.Detector != "brute_force_ip" || a.Count != 1000 || a.Bans != 30 || len(a.Subjects) != MaxSubjects || a.MoreSubjects != 10 || a.ID == "" {
		t.Fatalf("grouped alert: %+v", a)
	}
	if a.Title != "Gatehouse: brute_force_ip fired 1000 times for 30 subjects, 30 banned" {
		t.Fatalf("title %q", a.Title)
	}
	if s := recorded[1]; s.Detector != "error_spike" || s.Count != 1 || s.Title != "Gatehouse: error_spike fired 1 time" {
		t.Fatalf("second alert: %+v", s)
	}
}

// TestRepeatInterval: after an alert, the same detector's next firings wait
// for the repeat interval and arrive as one alert.
func TestRepeatInterval(t *testing.T) {
	sink := &fakeSink{}
	d := New(Options{Sinks: []Sink{sink}, GroupWait: time.Second, RepeatInterval: time.Hour})
	d.add(Firing{Detector: "x", Subject: "a", At: t0})
	d.flush(t.Context(), t0.Add(time.Second))
	for i := range 5 {
		d.add(Firing{Detector: "x", Subject: "b", At: t0.Add(time.Duration(i+2) * time.Minute)})
	}
	d.flush(t.Context(), t0.Add(59*time.Minute))
	d.wg.Wait()
	if n := len(sink.alerts()); n != 1 {
		t.Fatalf("%d alerts before the repeat interval, want 1", n)
	}
	d.flush(t.Context(), t0.Add(61*time.Minute))
	d.wg.Wait()
	got := sink.alerts()
	if len(got) != 2 || got[1].Count != 5 || got[1].Subjects[0].Count != 5 {
		t.Fatalf("repeat: %+v", got)
	}
}

// TestRateLimit: the hourly cap drops alerts beyond it and counts them, and
// refills with time.
func TestRateLimit(t *testing.T) {
	sink := &fakeSink{}
	var drops []string
	d := New(Options{Sinks: []Sink{sink}, MaxPerHour: 3, OnDrop: func(r string) { drops = append(drops, r) }})
	for i := range 5 {
		d.add(Firing{Detector: "det" + string(rune('a'+i)), At: t0})
	}
	d.flush(t.Context(), t0)
	d.wg.Wait()
	if n := len(sink.alerts()); n != 3 || d.Dropped() != 2 || len(drops) != 2 || drops[0] != "rate_limited" {
		t.Fatalf("delivered %d, dropped %d (%v); want 3 and 2", n, d.Dropped(), drops)
	}
	d.add(Firing{Detector: "later", At: t0.Add(20 * time.Minute)})
	d.flush(t.Context(), t0.Add(20*time.Minute)) // 20 minutes refill one of 3/h
	d.wg.Wait()
	if n := len(sink.alerts()); n != 4 {
		t.Fatalf("after refill: %d delivered", n)
	}
}

// TestRetries: a failing receiver is retried with backoff, a bounded number
// of times; each outcome is counted.
func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fails     int
		delivered int
		failed    int
		retried   int
	}{
		{"recovers", 2, 1, 0, 2},
		{"gives up", 10, 0, 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &fakeSink{fails: tc.fails}
			o := &outcomes{}
			d := New(Options{Sinks: []Sink{sink}, Retries: 3, Backoff: time.Millisecond, OnDelivery: o.add})
			d.add(Firing{Detector: "x", At: t0})
			d.flush(t.Context(), t0)
			d.wg.Wait()
			if o.get("fake/delivered") != tc.delivered || o.get("fake/failed") != tc.failed || o.get("fake/retried") != tc.retried {
				t.Fatalf("outcomes %v", o.m)
			}
			if sink.called != min(tc.fails, 3)+1 {
				t.Fatalf("%d attempts", sink.called)
			}
		})
	}
}

// TestNotifyNeverBlocks: a full queue drops and counts.
func TestNotifyNeverBlocks(t *testing.T) {
	d := New(Options{QueueSize: 2})
	ok := 0
	for range 5 {
		if d.Notify(Firing{Detector: "x"}) {
			ok++
		}
	}
	if ok != 2 || d.Dropped() != 3 {
		t.Fatalf("queued %d, dropped %d", ok, d.Dropped())
	}
}

// TestRun: the dispatcher's own loop groups and delivers.
func TestRun(t *testing.T) {
	sink := &fakeSink{}
	d := New(Options{Sinks: []Sink{sink}, GroupWait: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	for range 10 {
		d.Notify(Firing{Detector: "x", Subject: "ip:192.0.2.1"})
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.alerts()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	got := sink.alerts()
	if len(got) != 1 || got[0].Count != 10 {
		t.Fatalf("alerts %+v", got)
	}
}

func TestSignVerify(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"id":"a1"}`)
	sig := Sign(secret, t0, body)
	good := strings.TrimPrefix(sig[strings.Index(sig, ",v1="):], ",v1=")
	cases := []struct {
		name   string
		header string
		body   string
		now    time.Time
		want   error
	}{
		{"valid", sig, string(body), t0.Add(time.Minute), nil},
		{"two v1, one right (key rotation)", "t=" + sig[2:strings.Index(sig, ",")] + ",v1=" + strings.Repeat("00", 32) + ",v1=" + good, string(body), t0, nil},
		{"replayed later", sig, string(body), t0.Add(10 * time.Minute), ErrStale},
		{"from the future", sig, string(body), t0.Add(-10 * time.Minute), ErrStale},
		{"body changed", sig, `{"id":"a2"}`, t0, ErrBadSignature},
		{"time changed", "t=" + "1" + sig[2:], string(body), t0, ErrBadSignature},
		{"no v1", "t=123", string(body), t0, ErrBadSignature},
		{"no t", "v1=" + good, string(body), t0, ErrBadSignature},
		{"two t", "t=1,t=2,v1=" + good, string(body), t0, ErrBadSignature},
		{"t not canonical", "t=+" + sig[2:], string(body), t0, ErrBadSignature},
		{"short mac", "t=1,v1=abcd", string(body), t0, ErrBadSignature},
		{"not hex", "t=1,v1=" + strings.Repeat("zz", 32), string(body), t0, ErrBadSignature},
		{"garbage", "sha256=deadbeef", string(body), t0, ErrBadSignature},
		{"empty", "", string(body), t0, ErrBadSignature},
		{"huge", strings.Repeat("v1=00,", 500), string(body), t0, ErrBadSignature},
	}
	for _, tc := range cases {
		if err := Verify(secret, tc.header, []byte(tc.body), tc.now, 5*time.Minute); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := Verify([]byte("another key, another key, 32 by"), sig, body, t0, 5*time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong key: %v", err)
	}
}

// FuzzVerify: no header is accepted unless it carries the MAC of its own
// timestamp and the body; nothing panics.
func FuzzVerify(f *testing.F) {
	secret := []byte("0123456789abcdef")
	f.Add(Sign(secret, t0, []byte("x")), "x")
	f.Add("t=1893553445,v1="+strings.Repeat("ab", 32), "x")
	f.Add("t=-1,v1=,v1=00", "")
	f.Add(",,,=,t==,v1==", "body")
	f.Fuzz(func(t *testing.T, header, body string) {
		if Verify(secret, header, []byte(body), t0, time.Hour) != nil {
			return
		}
		// Accepted: the header must contain t=<ts> and the MAC for that ts.
		var ts string
		for part := range strings.SplitSeq(header, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(part), "t="); ok {
				ts = v
			}
		}
		want := "v1=" + hex.EncodeToString(mac(secret, ts, []byte(body)))
		if !strings.Contains(header, want) {
			t.Fatalf("accepted %q for %q without its MAC", header, body)
		}
	})
}

// TestWebhookDelivery: the receiver sees JSON, the event kind and a signature
// it can verify with the shared secret.
func TestWebhookDelivery(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	var got Alert
	var verr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		verr = Verify(secret, r.Header.Get(SignatureHeader), b, time.Now(), 5*time.Minute)
		if r.Header.Get("Gatehouse-Event") != "alert" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(400)
			return
		}
		_ = json.Unmarshal(b, &got)
	}))
	defer srv.Close()
	w := &Webhook{URL: srv.URL, Secret: secret}
	if err := w.Deliver(t.Context(), Alert{ID: "a1", Detector: "x", Count: 3}); err != nil {
		t.Fatal(err)
	}
	if verr != nil || got.ID != "a1" || got.Count != 3 {
		t.Fatalf("receiver: verify %v, alert %+v", verr, got)
	}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer down.Close()
	if err := (&Webhook{URL: down.URL, Secret: secret}).Deliver(t.Context(), Alert{}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("503 receiver: %v", err)
	}
}

// TestSlackDoesNotLeakURL: the Slack URL is a credential; errors and logs
// must not carry it.
func TestSlackDoesNotLeakURL(t *testing.T) {
	var text string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		_ = json.NewDecoder(r.Body).Decode(&m)
		text = m["text"]
	}))
	defer srv.Close()
	s := &Slack{URL: srv.URL + "/services/T000/B000/SECRETPART"}
	a := Alert{Title: "Gatehouse: x fired 2 times", FirstAt: t0, LastAt: t0, Subjects: []Subject{{Subject: "ip:192.0.2.1", Count: 2, Summary: "s", Banned: true}}}
	if err := s.Deliver(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "ip:192.0.2.1 ×2: s (banned)") {
		t.Fatalf("slack text %q", text)
	}
	bad := &Slack{URL: "http://127.0.0.1:1/services/T000/B000/SECRETPART"}
	err := bad.Deliver(t.Context(), a)
	if err == nil || strings.Contains(err.Error(), "SECRETPART") {
		t.Fatalf("error leaks the URL: %v", err)
	}
	if strings.Contains(bad.LogValue().String(), "SECRETPART") || strings.Contains((&Webhook{URL: "https://x/y?k=SECRETPART", Secret: []byte("SECRETPART")}).LogValue().String(), "SECRETPART") {
		t.Fatal("LogValue leaks a secret")
	}
}

// smtpServer is just enough SMTP to receive one plain message.
func smtpServer(t *testing.T) (addr string, msgs chan string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	msgs = make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				r := bufio.NewReader(c)
				say := func(s string) { _, _ = io.WriteString(c, s+"\r\n") }
				say("220 test ESMTP")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					cmd := strings.ToUpper(strings.TrimSpace(line))
					switch {
					case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
						say("250-test")
						say("250 8BITMIME")
					case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"), strings.HasPrefix(cmd, "RSET"), strings.HasPrefix(cmd, "NOOP"):
						say("250 ok")
					case cmd == "DATA":
						say("354 go ahead")
						var b strings.Builder
						for {
							l, err := r.ReadString('\n')
							if err != nil {
								return
							}
							if l == ".\r\n" {
								break
							}
							b.WriteString(l)
						}
						msgs <- b.String()
						say("250 queued")
					case cmd == "QUIT":
						say("221 bye")
						return
					default:
						say("502 unknown")
					}
				}
			}(c)
		}
	}()
	return ln.Addr().String(), msgs
}

func TestEmailDelivery(t *testing.T) {
	addr, msgs := smtpServer(t)
	host, port, _ := net.SplitHostPort(addr)
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	e := &Email{Host: host, Port: p, TLS: "none", From: "gatehouse@example.com", To: []string{"sec@example.com"}}
	a := Alert{ID: "a7", Title: "Gatehouse: stuffing_ip fired 1 time", Count: 1, FirstAt: t0, LastAt: t0, Subjects: []Subject{{Subject: "ip:192.0.2.9", Count: 1, Summary: "12 accounts"}}}
	if err := e.Deliver(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	m := <-msgs
	for _, want := range []string{"Subject: Gatehouse: stuffing_ip fired 1 time", "X-Gatehouse-Alert-Id: a7", "ip:192.0.2.9", "To: <sec@example.com>"} {
		if !strings.Contains(m, want) {
			t.Errorf("message lacks %q:\n%s", want, m)
		}
	}
	// STARTTLS is mandatory by default: a server without it is refused.
	e.TLS = "starttls"
	if err := e.Deliver(t.Context(), a); err == nil {
		t.Fatal("sent without STARTTLS")
	}
	e.Password = "smtp-PASSWORD"
	if strings.Contains(e.LogValue().String(), "PASSWORD") {
		t.Fatal("LogValue leaks the SMTP password")
	}
}
