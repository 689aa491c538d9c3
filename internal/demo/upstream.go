package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures NewUpstream. The zero value is ready to use.
type Options struct {
	// Logger receives request errors. Nil discards.
	Logger *slog.Logger
	// MaxNotes bounds the notes kept in memory (and the users remembered). Zero means
	// 10000. Creating a note beyond it answers 507.
	MaxNotes int
	// Now is the clock for users' created_at. Nil means time.Now.
	Now func() time.Time
}

// Header names the upstream reads. Gatehouse sets them from the verified token.
const (
	headerUserID = "Gatehouse-User-Id"
	headerEmail  = "Gatehouse-Email"
	// headerPrefix selects the headers /v1/whoami echoes.
	headerPrefix = "Gatehouse-"
)

// fakePasswordHash is served for every user: a well-formed argon2id string over a
// made-up salt and digest, so the data-exposure leak is visible without a real secret.
const fakePasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$ZmFrZWhhc2g"

// maxBodyBytes caps request bodies so the demo process cannot be made to buffer
// arbitrary amounts of memory; the gateway enforces the real, smaller limits.
const maxBodyBytes = 1 << 20

// Note is a note as this naive API stores and returns it, internal fields included.
type Note struct {
	ID            string        `json:"id"`
	Title         string        `json:"title"`
	Body          string        `json:"body"`
	OwnerID       string        `json:"owner_id"`
	OwnerEmail    string        `json:"owner_email"`
	InternalFlags InternalFlags `json:"internal_flags"`
}

// InternalFlags are moderation fields that should never leave the backend.
type InternalFlags struct {
	ModerationScore float64 `json:"moderation_score"`
	ShadowBanned    bool    `json:"shadow_banned"`
}

// User is a user record as this naive API returns it, password hash included.
type User struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	PasswordHash string    `json:"password_hash"`
	CreatedAt    time.Time `json:"created_at"`
}

// Upstream is the notes API. It is an http.Handler and safe for concurrent use.
type Upstream struct {
	log      *slog.Logger
	now      func() time.Time
	maxNotes int
	mux      *http.ServeMux

	mu      sync.RWMutex
	notes   []Note               // notes[i] has ID i+1
	byOwner map[string][]int     // owner id → indexes into notes, ascending
	users   map[string]time.Time // user id → first seen
}

// NewUpstream returns the sample API with an empty in-memory store.
func NewUpstream(opts Options) *Upstream {
	u := &Upstream{
		log:      opts.Logger,
		now:      opts.Now,
		maxNotes: opts.MaxNotes,
		byOwner:  map[string][]int{},
		users:    map[string]time.Time{},
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.now == nil {
		u.now = time.Now
	}
	if u.maxNotes <= 0 {
		u.maxNotes = 10000
	}
	u.mux = http.NewServeMux()
	u.addRoutes()
	return u
}

// addRoutes lists the whole API.
func (u *Upstream) addRoutes() {
	u.mux.HandleFunc("GET /v1/health", u.handleHealth)
	u.mux.HandleFunc("GET /v1/whoami", u.handleWhoami)
	u.mux.HandleFunc("POST /v1/notes", u.handleCreateNote)
	u.mux.HandleFunc("GET /v1/notes", u.handleListNotes)
	u.mux.HandleFunc("GET /v1/notes/search", u.handleSearchNotes)
	u.mux.HandleFunc("GET /v1/notes/{id}", u.handleGetNote)
	u.mux.HandleFunc("GET /v1/users/{id}", u.handleGetUser)
	u.mux.HandleFunc("GET /v1/admin/stats", u.handleStats)
}

// ServeHTTP routes r. Every caller that carries Gatehouse-User-Id is remembered as a
// user (up to MaxNotes of them) so /v1/users/{id} and /v1/admin/stats know it.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get(headerUserID); id != "" {
		u.rememberUser(id)
	}
	u.mux.ServeHTTP(w, r)
}

func (u *Upstream) rememberUser(id string) {
	u.mu.RLock()
	_, known := u.users[id]
	u.mu.RUnlock()
	if known {
		return
	}
	now := u.now().UTC()
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, known := u.users[id]; !known && len(u.users) < u.maxNotes {
		u.users[id] = now
	}
}

func (u *Upstream) handleHealth(w http.ResponseWriter, r *http.Request) {
	u.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (u *Upstream) handleWhoami(w http.ResponseWriter, r *http.Request) {
	out := map[string]string{}
	for name, values := range r.Header {
		canon := http.CanonicalHeaderKey(name)
		if strings.HasPrefix(canon, headerPrefix) {
			out[canon] = strings.Join(values, ", ")
		}
	}
	u.writeJSON(w, http.StatusOK, out)
}

type createNoteRequest struct {
	Title *string `json:"title"`
	Body  *string `json:"body"`
}

func (u *Upstream) handleCreateNote(w http.ResponseWriter, r *http.Request) {
	owner := r.Header.Get(headerUserID)
	if owner == "" {
		u.writeError(w, http.StatusUnauthorized, "missing "+headerUserID)
		return
	}
	var req createNoteRequest
	// Naive on purpose: unknown fields are ignored and lengths are not checked; the
	// gateway's schema validation (additionalProperties false, maxLength) does that.
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			u.writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		u.writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return
	}
	if dec.More() {
		u.writeError(w, http.StatusBadRequest, "invalid JSON body: trailing data")
		return
	}
	if req.Title == nil {
		u.writeError(w, http.StatusBadRequest, "title is required")
		return
	}
	note := Note{
		Title:         *req.Title,
		OwnerID:       owner,
		OwnerEmail:    r.Header.Get(headerEmail),
		InternalFlags: InternalFlags{ModerationScore: 0.02},
	}
	if req.Body != nil {
		note.Body = *req.Body
	}
	if note.OwnerEmail == "" {
		note.OwnerEmail = owner + "@users.example"
	}

	u.mu.Lock()
	if len(u.notes) >= u.maxNotes {
		u.mu.Unlock()
		u.writeError(w, http.StatusInsufficientStorage, "note store is full")
		return
	}
	// Sequential ids, enumerable on purpose: the gateway's ownership rule is what
	// stops one user reading another's note.
	note.ID = strconv.Itoa(len(u.notes) + 1)
	u.byOwner[owner] = append(u.byOwner[owner], len(u.notes))
	u.notes = append(u.notes, note)
	u.mu.Unlock()

	w.Header().Set("Location", "/v1/notes/"+note.ID)
	u.writeJSON(w, http.StatusCreated, note)
}

func (u *Upstream) handleListNotes(w http.ResponseWriter, r *http.Request) {
	owner := r.Header.Get(headerUserID)
	if owner == "" {
		u.writeError(w, http.StatusUnauthorized, "missing "+headerUserID)
		return
	}
	u.writeJSON(w, http.StatusOK, map[string][]Note{"notes": u.ownedNotes(owner, nil)})
}

// ownedNotes returns owner's notes in id order, those for which keep is true (all
// when keep is nil). Never nil, so JSON shows [] rather than null.
func (u *Upstream) ownedNotes(owner string, keep func(Note) bool) []Note {
	u.mu.RLock()
	defer u.mu.RUnlock()
	out := []Note{}
	for _, i := range u.byOwner[owner] {
		if keep == nil || keep(u.notes[i]) {
			out = append(out, u.notes[i])
		}
	}
	return out
}

func (u *Upstream) handleSearchNotes(w http.ResponseWriter, r *http.Request) {
	owner := r.Header.Get(headerUserID)
	if owner == "" {
		u.writeError(w, http.StatusUnauthorized, "missing "+headerUserID)
		return
	}
	q := r.URL.Query().Get("q")
	if i := strings.IndexAny(q, `'"`); i >= 0 {
		// The injection leak the demo shows being blocked: a real naive backend
		// would splice q into SQL, break on the quote and echo the statement.
		msg := fmt.Sprintf("SQLITE_ERROR: near \"%c\": syntax error in SELECT * FROM notes WHERE title LIKE '%%%s%%'", q[i], q)
		u.log.Warn("demo upstream: search query broke the (pretend) SQL", "query", q)
		u.writeError(w, http.StatusInternalServerError, msg)
		return
	}
	needle := strings.ToLower(q)
	notes := u.ownedNotes(owner, func(n Note) bool {
		return strings.Contains(strings.ToLower(n.Title), needle) || strings.Contains(strings.ToLower(n.Body), needle)
	})
	u.writeJSON(w, http.StatusOK, map[string][]Note{"notes": notes})
}

func (u *Upstream) handleGetNote(w http.ResponseWriter, r *http.Request) {
	// No owner check, on purpose (broken object-level authorisation, OWASP API1).
	n, err := strconv.Atoi(r.PathValue("id"))
	u.mu.RLock()
	var note Note
	found := err == nil && n >= 1 && n <= len(u.notes) && r.PathValue("id") == strconv.Itoa(n)
	if found {
		note = u.notes[n-1]
	}
	u.mu.RUnlock()
	if !found {
		u.writeError(w, http.StatusNotFound, "note not found")
		return
	}
	u.writeJSON(w, http.StatusOK, note)
}

func (u *Upstream) handleGetUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	u.mu.RLock()
	created, ok := u.users[id]
	u.mu.RUnlock()
	if !ok {
		u.writeError(w, http.StatusNotFound, "user not found")
		return
	}
	// The data-exposure leak: password_hash is returned to anyone who asks.
	u.writeJSON(w, http.StatusOK, User{
		ID:           id,
		Email:        id + "@users.example",
		PasswordHash: fakePasswordHash,
		CreatedAt:    created,
	})
}

func (u *Upstream) handleStats(w http.ResponseWriter, r *http.Request) {
	u.mu.RLock()
	stats := map[string]int{"notes": len(u.notes), "users": len(u.users)}
	u.mu.RUnlock()
	u.writeJSON(w, http.StatusOK, stats)
}

func (u *Upstream) writeError(w http.ResponseWriter, status int, msg string) {
	u.writeJSON(w, status, map[string]string{"error": msg})
}

func (u *Upstream) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		u.log.Error("demo upstream: encode response", "error", err)
		http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
