package adminapi

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// CookieName is the dashboard session cookie. The __Host- prefix makes
// browsers refuse it unless it is Secure, Path=/ and without Domain, so no
// sibling host can set or overwrite it.
const CookieName = "__Host-gatehouse_admin"

// CSRFHeader carries the session's CSRF token on state-changing requests.
const CSRFHeader = "X-CSRF-Token"

// Session is one signed-in dashboard user.
type Session struct {
	UserID  string
	Email   string
	CSRF    string // sent to the page, echoed in CSRFHeader
	Expires time.Time
}

// LogValue hides the CSRF token.
func (s *Session) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user_id", s.UserID), slog.String("csrf", "[redacted]"))
}

// Sessions are the admin sessions of this process. They live in memory: an
// admin signs in again after a restart, and each replica's dashboard has its
// own (the admin listener is not load-balanced like the API).
type Sessions struct {
	mu  sync.Mutex
	m   map[[32]byte]*Session // sha256(cookie value) → session
	ttl time.Duration
	now func() time.Time
}

// maxSessions bounds memory; beyond it the oldest-expiring session is dropped.
const maxSessions = 1000

// NewSessions returns an empty store. ttl 0 → 8h; now nil → time.Now.
func NewSessions(ttl time.Duration, now func() time.Time) *Sessions {
	if ttl <= 0 {
		ttl = 8 * time.Hour
	}
	if now == nil {
		now = time.Now
	}
	return &Sessions{m: map[[32]byte]*Session{}, ttl: ttl, now: now}
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Create starts a session and sets its cookie on w.
func (s *Sessions) Create(w http.ResponseWriter, userID, email string) *Session {
	id := randomToken()
	sess := &Session{UserID: userID, Email: email, CSRF: randomToken(), Expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	if len(s.m) >= maxSessions {
		s.evictLocked()
	}
	// Only the hash is kept: a heap dump does not hand out live cookies.
	s.m[sha256.Sum256([]byte(id))] = sess
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: "/", Expires: sess.Expires,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return sess
}

func (s *Sessions) evictLocked() {
	var oldest [32]byte
	var at time.Time
	for k, v := range s.m {
		if at.IsZero() || v.Expires.Before(at) {
			oldest, at = k, v.Expires
		}
	}
	delete(s.m, oldest)
}

// Lookup returns the session of r's cookie, if it is live.
func (s *Sessions) Lookup(r *http.Request) (*Session, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil || len(c.Value) != 43 {
		return nil, false
	}
	k := sha256.Sum256([]byte(c.Value))
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[k]
	if !ok {
		return nil, false
	}
	if !s.now().Before(sess.Expires) {
		delete(s.m, k)
		return nil, false
	}
	return sess, true
}

// Delete ends r's session and clears the cookie.
func (s *Sessions) Delete(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		k := sha256.Sum256([]byte(c.Value))
		s.mu.Lock()
		delete(s.m, k)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// CheckCSRF reports whether r carries sess's CSRF token.
func CheckCSRF(r *http.Request, sess *Session) bool {
	got := r.Header.Get(CSRFHeader)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) == 1
}
