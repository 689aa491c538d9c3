package transit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/problem"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Limits of one request.
const (
	// MaxBody bounds a request body.
	MaxBody = 4 << 20
	// MaxBatch bounds batch_input.
	MaxBatch = 256
)

// Recorder records audit events; *audit.Recorder is one.
type Recorder interface {
	Record(ctx context.Context, e store.Event)
}

// HandlerOptions configures the HTTP API. Zero values are the documented defaults.
type HandlerOptions struct {
	// Audit records every call (never its plaintext or context). Nil: not recorded.
	Audit Recorder
	// Caller names the authenticated caller of a request, for the audit trail.
	// Nil: "".
	Caller func(*http.Request) string
	// RequestID names a request in problem bodies and logs. Nil: "".
	RequestID func(*http.Request) string
	// Logger receives internal errors under the request id. Nil: discarded.
	Logger *slog.Logger
}

// Handler serves the transit API; mount it on "/admin/v1/transit/" behind
// service authentication:
//
//	POST /admin/v1/transit/keys/{name}          create a key (201)
//	GET  /admin/v1/transit/keys/{name}          describe it
//	POST /admin/v1/transit/keys/{name}/rotate   add a version
//	POST /admin/v1/transit/keys/{name}/config   {"min_decryption_version": n}
//	POST /admin/v1/transit/encrypt/{name}       {"plaintext", "context"} or {"batch_input": [...]}
//	POST /admin/v1/transit/decrypt/{name}       {"ciphertext", "context"} or {"batch_input": [...]}
//	POST /admin/v1/transit/rewrap/{name}        {"ciphertext", "context"} or {"batch_input": [...]}
//
// plaintext and context are base64 (standard alphabet, padded).
func Handler(sv *Service, opts HandlerOptions) http.Handler {
	h := &api{sv: sv, o: opts}
	if h.o.Caller == nil {
		h.o.Caller = func(*http.Request) string { return "" }
	}
	if h.o.RequestID == nil {
		h.o.RequestID = func(*http.Request) string { return "" }
	}
	if h.o.Logger == nil {
		h.o.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	const base = "/admin/v1/transit/"
	mux.HandleFunc("POST "+base+"keys/{name}", h.create)
	mux.HandleFunc("GET "+base+"keys/{name}", h.info)
	mux.HandleFunc("POST "+base+"keys/{name}/rotate", h.rotate)
	mux.HandleFunc("POST "+base+"keys/{name}/config", h.config)
	mux.HandleFunc("POST "+base+"encrypt/{name}", h.crypt(opEncrypt))
	mux.HandleFunc("POST "+base+"decrypt/{name}", h.crypt(opDecrypt))
	mux.HandleFunc("POST "+base+"rewrap/{name}", h.crypt(opRewrap))
	// No catch-all: the mux's own 405 (with Allow) for a wrong method would be
	// shadowed by it.
	return mux
}

type api struct {
	sv *Service
	o  HandlerOptions
}

func (h *api) fail(w http.ResponseWriter, r *http.Request, p *problem.Details) {
	problem.Write(w, p, h.o.RequestID(r))
}

// errProblem maps a domain error to its problem; anything else is internal and
// logged, never shown.
func (h *api) errProblem(r *http.Request, err error) *problem.Details {
	switch {
	case errors.Is(err, ErrNotFound):
		return problem.New(http.StatusNotFound, "transit-key-not-found", "Transit key not found", "no transit key has this name")
	case errors.Is(err, ErrExists):
		return problem.New(http.StatusConflict, "transit-key-exists", "Transit key exists", "a transit key with this name already exists")
	case errors.Is(err, ErrBadName):
		return problem.New(http.StatusBadRequest, "invalid-request", "Invalid request", ErrBadName.Error())
	case errors.Is(err, ErrBadMin):
		return problem.New(http.StatusBadRequest, "invalid-request", "Invalid request", ErrBadMin.Error())
	case errors.Is(err, ErrTooLarge):
		return problem.New(http.StatusRequestEntityTooLarge, "too-large", "Too large", "a plaintext or context is larger than 32 KiB")
	case errors.Is(err, ErrBadCiphertext), errors.Is(err, ErrDecrypt), errors.Is(err, ErrRetired):
		return problem.New(http.StatusBadRequest, "transit-decrypt-failed", "Decryption failed", itemError(err))
	}
	h.o.Logger.ErrorContext(r.Context(), "transit: internal error", "request_id", h.o.RequestID(r), "error", err.Error())
	return problem.New(http.StatusInternalServerError, "internal", "Internal error", "")
}

// itemError is the public text of a per-item error.
func itemError(err error) string {
	for _, e := range []error{ErrBadCiphertext, ErrDecrypt, ErrRetired, ErrTooLarge, ErrBadName, ErrNotFound} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "internal error"
}

func (h *api) record(r *http.Request, typ string, detail map[string]string) {
	if h.o.Audit == nil {
		return
	}
	detail["service"] = h.o.Caller(r)
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	h.o.Audit.Record(r.Context(), store.Event{Type: typ, IP: ip, RequestID: h.o.RequestID(r), Detail: detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	problem.JSON(w, status, "application/json", v)
}

// decode reads one JSON object strictly: bounded size, no unknown fields, no
// trailing data.
func (h *api) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.fail(w, r, problem.New(http.StatusRequestEntityTooLarge, "too-large", "Too large", "the request body is larger than 4 MiB"))
			return false
		}
		h.fail(w, r, problem.New(http.StatusBadRequest, "invalid-request", "Invalid request", "the request body could not be read"))
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		h.fail(w, r, problem.New(http.StatusBadRequest, "invalid-request", "Invalid request", "the body must be one JSON object with only the documented fields"))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		h.fail(w, r, problem.New(http.StatusBadRequest, "invalid-request", "Invalid request", "trailing data after the JSON object"))
		return false
	}
	return true
}

func (h *api) create(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !h.decode(w, r, &struct{}{}) {
		return
	}
	k, err := h.sv.Create(r.Context(), name)
	if err != nil {
		h.fail(w, r, h.errProblem(r, err))
		return
	}
	h.record(r, audit.TransitKeyCreated, map[string]string{"key": name, "version": "1"})
	writeJSON(w, http.StatusCreated, k)
}

func (h *api) info(w http.ResponseWriter, r *http.Request) {
	k, err := h.sv.Info(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(w, r, h.errProblem(r, err))
		return
	}
	writeJSON(w, http.StatusOK, k)
}

func (h *api) rotate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !h.decode(w, r, &struct{}{}) {
		return
	}
	k, err := h.sv.Rotate(r.Context(), name)
	if err != nil {
		h.fail(w, r, h.errProblem(r, err))
		return
	}
	h.record(r, audit.TransitKeyRotated, map[string]string{"key": name, "version": strconv.Itoa(k.LatestVersion)})
	writeJSON(w, http.StatusOK, k)
}

func (h *api) config(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var in struct {
		MinDecryptionVersion *int `json:"min_decryption_version"`
	}
	if !h.decode(w, r, &in) {
		return
	}
	if in.MinDecryptionVersion == nil {
		h.fail(w, r, problem.New(http.StatusBadRequest, "invalid-request", "Invalid request", "min_decryption_version is required"))
		return
	}
	k, err := h.sv.SetMinDecryptionVersion(r.Context(), name, *in.MinDecryptionVersion)
	if err != nil {
		h.fail(w, r, h.errProblem(r, err))
		return
	}
	h.record(r, audit.TransitKeyConfigured, map[string]string{"key": name, "min_decryption_version": strconv.Itoa(k.MinDecryptionVersion)})
	writeJSON(w, http.StatusOK, k)
}

type op int

const (
	opEncrypt op = iota
	opDecrypt
	opRewrap
)

// item is one input: plaintext for encrypt, ciphertext for decrypt and rewrap.
type item struct {
	Plaintext  *string `json:"plaintext,omitempty"`
	Ciphertext *string `json:"ciphertext,omitempty"`
	Context    string  `json:"context,omitempty"`
}

type cryptRequest struct {
	item
	BatchInput []item `json:"batch_input,omitempty"`
}

type result struct {
	Ciphertext string `json:"ciphertext,omitempty"`
	Plaintext  string `json:"plaintext,omitempty"`
	KeyVersion int    `json:"key_version,omitempty"`
	Error      string `json:"error,omitempty"`
}

var b64 = base64.StdEncoding.Strict()

func (h *api) do(r *http.Request, o op, name string, in item) (result, error) {
	context, err := b64.DecodeString(in.Context)
	if err != nil {
		return result{}, errBadInput("context must be base64")
	}
	switch o {
	case opEncrypt:
		if in.Plaintext == nil || in.Ciphertext != nil {
			return result{}, errBadInput("encrypt takes plaintext (base64) and an optional context")
		}
		pt, err := b64.DecodeString(*in.Plaintext)
		if err != nil {
			return result{}, errBadInput("plaintext must be base64")
		}
		defer clear(pt)
		ct, err := h.sv.Encrypt(r.Context(), name, pt, context)
		if err != nil {
			return result{}, err
		}
		v, _, _ := ParseCiphertext(ct)
		return result{Ciphertext: ct, KeyVersion: v}, nil
	case opDecrypt:
		if in.Ciphertext == nil || in.Plaintext != nil {
			return result{}, errBadInput("decrypt takes ciphertext and an optional context")
		}
		pt, err := h.sv.Decrypt(r.Context(), name, *in.Ciphertext, context)
		if err != nil {
			return result{}, err
		}
		defer clear(pt)
		return result{Plaintext: base64.StdEncoding.EncodeToString(pt)}, nil
	default:
		if in.Ciphertext == nil || in.Plaintext != nil {
			return result{}, errBadInput("rewrap takes ciphertext and an optional context")
		}
		ct, err := h.sv.Rewrap(r.Context(), name, *in.Ciphertext, context)
		if err != nil {
			return result{}, err
		}
		v, _, _ := ParseCiphertext(ct)
		return result{Ciphertext: ct, KeyVersion: v}, nil
	}
}

type badInput string

func (e badInput) Error() string { return string(e) }

func errBadInput(s string) error { return badInput(s) }

func (h *api) crypt(o op) http.HandlerFunc {
	events := [...]string{opEncrypt: audit.TransitEncrypt, opDecrypt: audit.TransitDecrypt, opRewrap: audit.TransitRewrap}
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if !ValidName(name) {
			h.fail(w, r, h.errProblem(r, ErrBadName))
			return
		}
		var in cryptRequest
		if !h.decode(w, r, &in) {
			return
		}
		single := in.Plaintext != nil || in.Ciphertext != nil || in.Context != ""
		switch {
		case in.BatchInput != nil && single:
			h.fail(w, r, problem.New(http.StatusBadRequest, "invalid-request", "Invalid request", "send either one item or batch_input, not both"))
			return
		case in.BatchInput != nil && (len(in.BatchInput) == 0 || len(in.BatchInput) > MaxBatch):
			h.fail(w, r, problem.New(http.StatusBadRequest, "invalid-request", "Invalid request", "batch_input must hold 1 to 256 items"))
			return
		}
		if in.BatchInput == nil {
			res, err := h.do(r, o, name, in.item)
			if err != nil {
				var bi badInput
				h.record(r, events[o], map[string]string{"key": name, "count": "1", "failed": "1"})
				if errors.As(err, &bi) {
					h.fail(w, r, problem.New(http.StatusBadRequest, "invalid-request", "Invalid request", bi.Error()))
					return
				}
				h.fail(w, r, h.errProblem(r, err))
				return
			}
			d := map[string]string{"key": name, "count": "1", "failed": "0"}
			if res.KeyVersion > 0 {
				d["version"] = strconv.Itoa(res.KeyVersion)
			}
			h.record(r, events[o], d)
			writeJSON(w, http.StatusOK, res)
			return
		}
		out := make([]result, len(in.BatchInput))
		failed := 0
		for i, it := range in.BatchInput {
			res, err := h.do(r, o, name, it)
			if err != nil {
				var bi badInput
				switch {
				case errors.As(err, &bi):
					res = result{Error: bi.Error()}
				case errors.Is(err, ErrNotFound):
					// The key is missing for every item: one 404, not 256.
					h.record(r, events[o], map[string]string{"key": name, "count": strconv.Itoa(len(in.BatchInput)), "failed": strconv.Itoa(len(in.BatchInput))})
					h.fail(w, r, h.errProblem(r, err))
					return
				case itemError(err) == "internal error":
					h.fail(w, r, h.errProblem(r, err))
					return
				default:
					res = result{Error: itemError(err)}
				}
				failed++
			}
			out[i] = res
		}
		h.record(r, events[o], map[string]string{"key": name, "count": strconv.Itoa(len(out)), "failed": strconv.Itoa(failed)})
		writeJSON(w, http.StatusOK, map[string]any{"batch_results": out})
	}
}
